"""The output under construction: envelopes planned at any future instant, emitted in time order.

Generators plan ahead (an absence registered today is cancelled next week), so planned envelopes
wait in a heap until the day loop reaches them. Order: the instant (whole seconds), then the topic
(``at.roster``, ``vpa.events``, ``vpa.commands``: the tie order of DESIGN's runners), then the order
in which they were planned. Event ids count in planning order, so they are deterministic too.
"""
from __future__ import annotations

import heapq
import itertools
from datetime import datetime
from typing import Iterator, Optional

from schemas.envelope import topic_for_type
from schemas.topics import Topic
from services.simulator.timeline import stamp

TOPIC_RANK = {Topic.roster: 0, Topic.events: 1, Topic.commands: 2}
# Suffix of the event_id of a command the simulated person gets wrong on purpose (the service
# rejects it): lets tests tell deliberate rejections from a simulation that misjudged the state.
WRONG = "-wrong"


class Stream:
    def __init__(self, seed: int, end: datetime) -> None:
        self._prefix = f"s{seed}-"
        self._heap: list[tuple[int, int, int, dict]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._end = stamp(end)
        self.floor = 0  # nothing may be planned before the day being generated

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._ids):07d}"

    def add(self, when: datetime, type_: str, data: dict, vpa_id: Optional[str] = None,
            actor: Optional[dict] = None, wrong: bool = False) -> str:
        """Plan one envelope; returns its event_id (also when it lies beyond the end and is dropped)."""
        event_id = self.new_id() + (WRONG if wrong else "")
        ts = stamp(when)
        assert ts >= self.floor, f"{type_} planned at {when} before the day being generated"
        if ts < self._end:
            env = {"event_id": event_id, "type": type_, "occurred_at": when.isoformat(timespec="seconds"),
                   "vpa_id": vpa_id, "actor": actor, "schema_version": 1, "data": data}
            heapq.heappush(self._heap, (ts, TOPIC_RANK[topic_for_type(type_) or Topic.events], next(self._order), env))
        return event_id

    def pop_before(self, ts: int) -> Iterator[tuple[int, dict]]:
        while self._heap and self._heap[0][0] < ts:
            item = heapq.heappop(self._heap)
            yield item[0], item[3]
