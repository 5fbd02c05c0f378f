"""The clock port (DESIGN.md 3): rules never read the wall clock, they get ``now`` from here.

* ``WallClock``: production; now is the machine's time.
* ``StreamClock``: replay, backfill and tests; now is the highest ``occurred_at`` seen so far,
  moved forward by events and by ``clock.tick``. It never goes back.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional, Protocol

from services.config.clock_mode import ClockMode

__all__ = ["Clock", "ClockMode", "StreamClock", "WallClock", "make_clock"]


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
