"""The embedded runner: every service in one process over in-memory topics (DESIGN.md 3).

Default for ``vpa replay`` and ``vpa demo``: no broker needed. It executes exactly the same
processors as the Kafka runner. Semantics of the stream clock (DESIGN 5.1 to 5.4):

* a timer due at or before the clock's new value fires before the event that moved the clock,
  with ``now`` = the timer's due time; timers due at the same instant fire in the order set;
* a timer set in the past (by a late event) fires right after that event;
* invalid input, unknown types and repeated event_ids never move the clock.

Commands a service emits (e.g. the detector asking for a reminder) go back on the in-memory
``vpa.commands`` topic and are handled right after the envelope that caused them.
"""
from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional

from schemas.envelope import Envelope, topic_for_type
from services.common import metrics
from services.common.clock import Clock, StreamClock
from services.common.decode import Decoded, Invalid, Unknown, decode
from services.common.processor import Context, Processor, Result, json_copy, pop_timer, timers_of
from services.common.roster import apply_roster_event, has_boundary_on, roster_key
from services.common.settings import Settings
from services.common.timeutil import next_midnight


@dataclass
class DlqRecord:
    reason: str
    origin: str  # where it came from: file:line, or the service that rejected it
    value: bytes
    key: Optional[str] = None


@dataclass
class EmbeddedRunner:
    processors: list[Processor]
    settings: Settings
    clock: Clock = field(default_factory=StreamClock)

    def __post_init__(self) -> None:
        self.roster: dict[str, dict] = {}
        self.states: dict[tuple[str, str], dict] = {}
        self.seen: set[str] = set()
        self.dlq: list[DlqRecord] = []
        self.stats: Counter = Counter()
        self._emitted: list[dict] = []
        self._queue: deque[Envelope] = deque()
        self._heap: list[tuple[datetime, int, str, str, str, str]] = []
        self._order = itertools.count()
        self._known_timers: set[tuple[str, str, str, str]] = set()
        self._by_name = {p.name: p for p in self.processors}

    # ---- input ----------------------------------------------------------------------------

    def submit_raw(self, raw: bytes | str, origin: str) -> None:
        """Decode one line or message; invalid input goes to the DLQ, unknown types are skipped."""
        outcome = decode(raw)
        if isinstance(outcome, Invalid):
            self._to_dlq(outcome.reason, origin, raw)
        elif isinstance(outcome, Unknown):
            self.stats["unknown_types"] += 1
            metrics.UNKNOWN.labels("embedded").inc()
        elif isinstance(outcome, Decoded):
            self.submit(outcome.envelope)

    def submit(self, env: Envelope) -> None:
        self._queue.append(env)
        while self._queue:
            self._process(self._queue.popleft())

    def advance_to(self, t: datetime) -> None:
        """Move the clock to ``t`` (``--until``, or wall ticks), firing timers on the way."""
        self._fire_due(t)
        if isinstance(self.clock, StreamClock):
            self.clock.advance(t)
        self._drain_queue()

    def drain_tasks(self) -> list[dict]:
        out, self._emitted = self._emitted, []
        return out

    # ---- internals ------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock.now()
        assert now is not None, "stream clock has not started"
        return now

    def _process(self, env: Envelope) -> None:
        if env.event_id in self.seen:
            self.stats["duplicates"] += 1
            metrics.DUPLICATES.labels("embedded").inc()
            return
        self.seen.add(env.event_id)
        if isinstance(self.clock, StreamClock) and self.clock.would_advance(env.occurred_at):
            self._fire_due(env.occurred_at)
            self.clock.advance(env.occurred_at)
        self.stats["processed"] += 1
        topic = topic_for_type(env.type)
        if topic == "at.roster":
            key = roster_key(env)
            self.roster[key] = apply_roster_event(self.roster.get(key), env)
            self._reassign_all()
            return
        if env.type == "clock.tick":
            return
        ctx = Context(now=self._now(), settings=self.settings, roster=self.roster)
        for proc in self.processors:
            if topic not in proc.topics:
                continue
            stored = self.states.get((proc.name, env.vpa_id), {})
            state = json_copy(stored)  # a failing handler leaves the stored state untouched
            started = time.perf_counter()
            try:
                result = proc.handle(state, env, ctx)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the pipeline
                self._to_dlq(f"error: {proc.name}: {type(exc).__name__}: {exc}", proc.name, env.to_bytes(), env.vpa_id)
                continue
            self.states[(proc.name, env.vpa_id)] = state
            metrics.PROCESSING.labels(proc.name).observe(time.perf_counter() - started)
            metrics.EVENTS.labels(proc.name, env.type).inc()
            self._publish(proc.name, env, result)
            self._index_timers(proc.name, env.vpa_id, state)
        # Timers set in the past by a late event fire right after it (DESIGN 5.3).
        self._fire_due(self._now())

    def _publish(self, service: str, cause: Optional[Envelope], result: Result) -> None:
        self._emitted.extend(result.tasks)
        metrics.TASKS.labels(service).inc(len(result.tasks))
        self._queue.extend(result.commands)
        for reason in result.rejections:
            metrics.REJECTED.labels(service, cause.type if cause else "timer").inc()
            value = cause.to_bytes() if cause else b""
            self._to_dlq(reason, service, value, key=cause.vpa_id if cause else None)

    def _to_dlq(self, reason: str, origin: str, raw: bytes | str, key: Optional[str] = None) -> None:
        value = raw.encode() if isinstance(raw, str) else raw
        self.dlq.append(DlqRecord(reason, origin, value, key))
        self.stats["rejected" if reason.startswith("rejected:") else "invalid"] += 1
        metrics.DLQ.labels("embedded", metrics.dlq_kind(reason)).inc()

    def _index_timers(self, service: str, key: str, state: dict) -> None:
        for t in timers_of(state):
            ident = (service, key, t.timer_id, t.due_at.isoformat())
            if ident not in self._known_timers:
                self._known_timers.add(ident)
                heapq.heappush(self._heap, (t.due_at, next(self._order), service, key, t.timer_id, ident[3]))

    def _reassign_all(self) -> None:
        ctx = Context(now=self._now(), settings=self.settings, roster=self.roster)
        for (service, key), state in list(self.states.items()):
            result = self._by_name[service].reassign(state, ctx)
            self._publish(service, None, result)
            self._index_timers(service, key, state)

    def _fire_due(self, upto: datetime) -> None:
        """Fire timers and local midnights up to ``upto`` in time order (midnight first on a tie)."""
        while True:
            now = self.clock.now()
            midnight = next_midnight(now, self.settings.tz) if now is not None else None
            if midnight is not None and midnight > upto:
                midnight = None
            timer_due = self._heap[0][0] if self._heap and self._heap[0][0] <= upto else None
            if midnight is None and timer_due is None:
                return
            if midnight is not None and (timer_due is None or midnight <= timer_due):
                if isinstance(self.clock, StreamClock):
                    self.clock.advance(midnight)
                if has_boundary_on(self.roster, midnight.date()):
                    self._reassign_all()
                self._drain_queue()
                continue
            due, _, service, key, timer_id, due_iso = heapq.heappop(self._heap)
            self._known_timers.discard((service, key, timer_id, due_iso))
            state = self.states.get((service, key), {})
            current = state.get("timers", {}).get(timer_id)
            if current is None or current["due_at"] != due_iso:
                continue  # cancelled or moved since it was indexed
            timer = pop_timer(state, timer_id)
            if isinstance(self.clock, StreamClock):
                self.clock.advance(due)
            proc = self._by_name[service]
            ctx = Context(now=max(self._now(), due), settings=self.settings, roster=self.roster)
            result = proc.on_timer(state, timer, ctx)
            metrics.TIMERS.labels(service, timer.name).inc()
            self._publish(service, None, result)
            self._index_timers(service, key, state)
            self._drain_queue()

    def _drain_queue(self) -> None:
        while self._queue:
            self._process(self._queue.popleft())


def replay_lines(runner: EmbeddedRunner, sources: Iterable[tuple[str, int, str]]) -> None:
    """Feed (file, line number, text) in the given order; decoding errors go to the DLQ."""
    for name, lineno, text in sources:
        runner.submit_raw(text, f"{name}:{lineno}")
