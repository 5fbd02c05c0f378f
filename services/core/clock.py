"""The clock port (DESIGN.md 3): rules never read the wall clock, they get ``now`` from here.

* ``WallClock``: production; now is the machine's time.
* ``StreamClock``: replay, backfill and tests; now is the highest ``occurred_at`` seen so far,
  moved forward by events and by ``clock.tick``. It never goes back.

A live driver also waits: how long an input has stayed empty, when a batch is committed, when timers
fall due by the wall clock. It reads both from a ``MachineClock`` (``SystemClock`` in production,
``ManualClock`` in tests), so its idle and tick rules are tested in milliseconds, without sleeping.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Optional, Protocol

from services.config.clock_mode import ClockMode

__all__ = ["Clock", "ClockMode", "MachineClock", "ManualClock", "StreamClock", "SystemClock", "WallClock",
           "make_clock"]


class Clock(Protocol):
    mode: str

    def now(self) -> Optional[datetime]: ...


class WallClock:
    mode = "wall"

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class StreamClock:
    mode = "stream"

    def __init__(self, start: Optional[datetime] = None) -> None:
        self._now = start

    def now(self) -> Optional[datetime]:
        return self._now

    def would_advance(self, t: datetime) -> bool:
        return self._now is None or t > self._now

    def advance(self, t: datetime) -> bool:
        """Move to ``t`` if it is later; returns whether the clock moved."""
        if self.would_advance(t):
            self._now = t
            return True
        return False


def make_clock(mode: str) -> Clock:
    if mode == "wall":
        return WallClock()
    if mode == "stream":
        return StreamClock()
    raise ValueError(f"unknown clock mode {mode!r} (wall or stream)")


class MachineClock(Protocol):
    """The machine's two clocks as a live driver reads them."""

    def monotonic(self) -> float:
        """Seconds that only go forward: for waits, idle times and intervals."""
        ...

    def wall(self) -> datetime:
        """The wall clock (UTC): for timers in live modes."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """Both clocks moved by hand, together (tests, the in-memory driver)."""

    def __init__(self, wall: datetime, monotonic: float = 1000.0) -> None:
        self._wall, self._monotonic = wall, monotonic

    def monotonic(self) -> float:
        return self._monotonic

    def wall(self) -> datetime:
        return self._wall

    def forward(self, seconds: float) -> None:
        assert seconds >= 0, "a machine clock does not go back"
        self._monotonic += seconds
        self._wall += timedelta(seconds=seconds)
