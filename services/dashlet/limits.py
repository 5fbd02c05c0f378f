"""Limits per person (issue 28): no token can slow the others beyond a stated bound.

* Commands: a token bucket per principal (``VPA_COMMANDS_PER_SECOND``, burst ``VPA_COMMAND_BURST``);
  beyond it the API answers 429 with ``Retry-After`` before anything is checked or sent.
* Live feeds: at most ``VPA_FEEDS_PER_TOKEN`` open per principal; a new one closes the oldest (a
  person with many tabs keeps the newest ones, a script cannot pile up connections).
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class _Bucket:
    tokens: float
    at: float


class CommandRate:
    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second, self.burst, self._clock = per_second, burst, clock
        self._buckets: "OrderedDict[str, _Bucket]" = OrderedDict()

    def take(self, who: str) -> float:
        """0 when ``who`` may send a command now (and it is counted), else seconds to wait."""
        now = self._clock()
        b = self._buckets.get(who)
        if b is None:
            b = self._buckets[who] = _Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.per_second)
        b.at = now
        self._buckets.move_to_end(who)
        while len(self._buckets) > 10_000:  # tokens that went quiet
            self._buckets.popitem(last=False)
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.per_second

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))


@dataclass
class FeedLimit:
    per_token: int
    _open: dict[str, deque] = field(default_factory=dict)

    def add(self, who: str, stop: asyncio.Event) -> None:
        """Count a feed of ``who``; beyond the limit the oldest is asked to stop."""
        feeds = self._open.setdefault(who, deque())
        feeds.append(stop)
        while len(feeds) > self.per_token:
            feeds.popleft().set()

    def remove(self, who: str, stop: asyncio.Event) -> None:
        feeds = self._open.get(who)
        if feeds is not None:
            try:
                feeds.remove(stop)
            except ValueError:
                pass
            if not feeds:
                del self._open[who]

    def count(self, who: str) -> int:
        return len(self._open.get(who, ()))
