"""Which timer of a partition falls due next: a heap over the timers kept inside the states.

Timers live in each service's state (``state["timers"]``, see ``processor.set_timer``); their
order keys (``order.timer_key``) live in the runner's slot beside it. This index only answers
"what is next": an entry is pushed when a timer is set or moved, never again while it stays as it
is, and entries of timers since cancelled or moved are dropped when they reach the top, so the
heap holds at most one live entry per timer plus the stale ones of timers changed since.
"""
from __future__ import annotations

import heapq
from typing import Optional

from services.engine.order import OrderKey

TimerRef = tuple[str, str, str]  # (slot key, service, timer_id)


class TimerIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[OrderKey, str, str, str]] = []
        self._live: dict[TimerRef, OrderKey] = {}

    def __len__(self) -> int:
        return len(self._live)

    def set(self, ref: TimerRef, key: OrderKey) -> None:
        if self._live.get(ref) == key:
            return
        self._live[ref] = key
        heapq.heappush(self._heap, (key, *ref))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._live):
            self._compact()

    def discard(self, ref: TimerRef) -> None:
        self._live.pop(ref, None)

    def peek(self) -> Optional[tuple[OrderKey, TimerRef]]:
        """The next live timer (its key and reference), without removing it."""
        heap = self._heap
        while heap:
            key, slot, service, timer_id = heap[0]
            if self._live.get((slot, service, timer_id)) == key:
                return key, (slot, service, timer_id)
            heapq.heappop(heap)  # cancelled or moved since it was pushed
        return None

    def pop(self) -> Optional[tuple[OrderKey, TimerRef]]:
        head = self.peek()
        if head is not None:
            heapq.heappop(self._heap)
            del self._live[head[1]]
        return head

    def _compact(self) -> None:
        self._heap = [(key, *ref) for ref, key in self._live.items()]
        heapq.heapify(self._heap)
