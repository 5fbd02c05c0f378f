"""One partition of one stream service on Kafka: the ordered merge in front of its engine.

A worker owns partition ``p`` of a service. It takes the records of its co-partitioned input
topics (``vpa.events``, ``vpa.commands``, and the commands of a service it follows), plus every
``at.roster`` record (``RosterFeed``), and hands them to its ``PartitionEngine`` in order-key
order, timestamp first (``services.engine.order``): the order ``vpa replay`` uses, whatever the
order in which the broker delivers the topics.

The merge takes the smallest head among the inputs, but only once no input could still deliver a
smaller one: an input with nothing buffered must be caught up with the broker and have stayed
empty for ``input_idle_seconds`` (Kafka Streams' ``max.task.idle.ms``); the commands of a followed
service must have reached, with their progress mark, the key about to be taken (waiting at most
``upstream_wait_seconds``). Records that need no place in the order (undecodable, unknown types,
progress marks) are handled at once.

After a batch of steps the worker sends the batch's outputs, waits until the broker has all of
them, then sends the changed slots to the partition's changelog, waits again, and only then puts
them into its local copy; the inputs' offsets are committed after that, now and then. The stored
state carries the offset of the last input it applied, and a worker that takes the partition over
continues right after it: a crash at any point repeats at most the batch, with the same outputs.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

import msgspec

from schemas.dead_letters import DlqReason
from schemas.topics import Topic
from services.broker.port import OutRecord, Record, send_batch
from services.broker.topics import erase_marker
from services.config.clock_mode import ClockMode
from services.engine.decode import Decoded, decode
from services.engine.order import TOPIC_RANK, OrderKey, micros
from services.engine.partition import PartitionEngine
from services.engine.records import META_SLOT, Origin, Output
from services.runners.kafka.feedback import FeedbackCommand, ProgressMark, command_record, mark_record, parse_feedback
from services.runners.kafka.keys import misrouted
from services.runners.kafka.merge import Action, Candidate, Empty, Upstream, View, decide
from services.runners.kafka.slots import TableSlots
from services.runners.kafka.state_store import BATCH_HEADER

log = logging.getLogger("vpa.kafka.worker")
_ROSTER = Topic.roster  # looked up once: the merge reads it for every roster partition at every step
_NOTHING = View((), ())
BATCH_STEPS = 500  # steps between two flushes while a backlog is worked through
BUFFER_HIGH = 5000  # records buffered per input partition before its fetching pauses
# Seconds a batch may take to reach the broker. The producer retries inside it; beyond it the
# worker fails loudly (the service restarts from its last commit) instead of waiting for good.
FLUSH_GIVE_UP = 180.0


@dataclass
class Buffered:
    key: Optional[OrderKey]  # its place in the order; None: handled at once
    outcome: Any  # decode Outcome, or a FeedbackCommand / ProgressMark / reason str (feedback)
    raw: bytes
    origin: Origin
    timestamp_ms: int
    received: float  # the machine clock's monotonic seconds when the record was handed over


@dataclass
class InputBuffer:
    topic: str
    upstream: Optional[str] = None  # the followed service, for a commands topic of another service
    records: deque = field(default_factory=deque)
    fetched_to: int = 0  # the client's position: every offset before it was handed over (or was a marker)
    done_offset: Optional[int] = None  # after the last record handled
    empty_since: float = 0.0  # monotonic seconds (the machine clock) since the buffer is empty
    paused: bool = False


# Task versions leave as compact UTF-8 JSON, encoded in C (json.dumps took 7% of a drain).
_JSON = msgspec.json.Encoder()


class PartitionWorker:
    def __init__(self, driver: Any, partition: int, slots: TableSlots,
                 start: Optional[dict[str, int]] = None) -> None:  # driver: a stream_app.StreamDriver
        self.d, self.p = driver, partition
        self.machine = driver.machine  # a MachineClock: every wait and live timer reads it
        started = self.machine.monotonic()
        self.inputs: dict[str, InputBuffer] = {t: InputBuffer(t, empty_since=started) for t in driver.co_topics}
        for upstream, topic in driver.followed_topics.items():
            self.inputs[topic] = InputBuffer(topic, upstream=upstream, empty_since=started)
        self.slots = slots
        self.engine = PartitionEngine([driver.proc], driver.settings, name=driver.service, mode=driver.mode,
                                      slots=self.slots, limits=driver.limits, follows=driver.follows)
        self.engine.load(list(self.slots))
        for topic, buf in self.inputs.items():
            buf.fetched_to = (start or {}).get(topic, 0)
        self.roster_cursor: dict[int, int] = {}
        self.roster_empty_since: dict[int, Optional[float]] = {}
        self.wake = asyncio.Event()
        self.stopping = False
        self._outputs: list[tuple[Output, int, int]] = []  # (output, occurred_at ms, ingested ms)
        self._marked: Optional[OrderKey] = self.engine.done_key
        self._last_advance = 0.0
        self._last_commit = 0.0
        self._uncommitted = False
        self._writer, self._batch = uuid.uuid4().hex[:12], 0  # this worker's state batches (BATCH_HEADER)
        self._upstream_waiting_since: Optional[float] = None
        self._flushing = False
        self.task: Optional[asyncio.Task] = None

    def start_offsets(self) -> dict[str, int]:
        """Where each input continues: after the last record the stored state has applied."""
        out = {}
        for topic in self.inputs:
            done = self.engine.positions.get(topic)
            if done is not None:
                out[topic] = done + 1
        return out

    def settled(self) -> bool:
        """Nothing buffered, nothing applied that is not yet sent and stored: what a test waits for
        after writing its inputs (with the inputs read up to the broker's end offsets)."""
        return not (self._flushing or self._outputs or self.engine.has_dirty()
                    or any(buf.records for buf in self.inputs.values()))

    # ---- records arriving ----------------------------------------------------------------

    def offer(self, topic: str, records: list[Record], position: Optional[int]) -> None:
        """Records the client handed over for this partition of ``topic``, in offset order, and the
        client's position after them."""
        buf = self.inputs.get(topic)
        if buf is None:
            return
        for rec in records:
            if rec.offset < buf.fetched_to:
                continue  # before where this worker started: applied already
            self._take(buf, rec)
        if position is not None and position > buf.fetched_to:
            buf.fetched_to = position
            self._uncommitted = True
        if len(buf.records) > BUFFER_HIGH and not buf.paused:
            buf.paused = True
            self.d.pause(topic, self.p)
        self.wake.set()

    def _take(self, buf: InputBuffer, msg: Record) -> None:
        raw = msg.value or b""
        origin = Origin(f"{msg.topic}[{msg.partition}]@{msg.offset}", msg.topic, msg.partition, msg.offset, msg.key)
        if buf.upstream is not None:
            parsed = parse_feedback(raw)
            key = parsed.key if isinstance(parsed, FeedbackCommand) else None
            rec = Buffered(key, parsed, raw, origin, msg.timestamp_ms, self.machine.monotonic())
        else:
            outcome = misrouted(decode(raw), origin.key, msg.partition, self.d.partition_count)
            key = None
            if isinstance(outcome, Decoded):
                env = outcome.envelope
                key = (micros(env.occurred_at), TOPIC_RANK.get(msg.topic, 3), msg.partition, msg.offset)
            rec = Buffered(key, outcome, raw, origin, msg.timestamp_ms, self.machine.monotonic())
        buf.records.append(rec)
        buf.fetched_to = max(buf.fetched_to, msg.offset + 1)

    # ---- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        await self.d.roster.started.wait()
        unsubscribe = self.d.roster.subscribe(self.wake.set)
        try:
            steps = 0
            while not self.stopping:
                now = self.machine.monotonic()
                action, arg = self._choose(now)
                if action == "step":
                    self._step(*arg)
                    steps += 1
                    if steps >= BATCH_STEPS:
                        await self._flush()
                        steps = 0
                        # while a backlog is worked off too: lag tools see it shrink, and an
                        # operator's offset reset starts near where the partition is
                        await self._commit_due()
                        await asyncio.sleep(0)  # let the fetch loop and other partitions run
                    continue
                self._maybe_advance(now, idle=(action == "idle"))
                if self._outputs or steps or self._mark_pending() or self.engine.has_dirty():
                    await self._flush()
                    steps = 0
                    continue
                await self._commit_due()
                self.d.dead_letters.flush_log()
                timeout = self.d.cfg.wall_tick_seconds
                if action == "wait" and arg is not None:
                    timeout = max(0.005, min(timeout, arg - now))
                self.wake.clear()
                await _wait(self.wake, timeout)
            await self._flush()  # stopping: what was applied is made durable, nothing beyond it
            await self._commit_due(force=True)
        finally:
            unsubscribe()

    def _choose(self, now: float) -> tuple[str, Any]:
        """("step", what), ("wait", until or None) or ("idle", None): the merge policy's decision
        (``merge.decide``) on what the worker sees now, with its effects carried out."""
        immediate, view = self._view(now)
        if immediate is not None:
            return "step", immediate
        decision = decide(view, now)
        for topic, partition in decision.ask:
            self.d.ask_end(topic, partition, self.wake.set)  # the answer wakes this worker
        for upstream, key in decision.marks:
            self.engine.set_watermark(upstream, key)
        for upstream in decision.timed_out:
            log.warning("%s[%d]: no progress from %s for %.0f s; going on without it (its commands may "
                        "arrive late)", self.d.service, self.p, upstream, self.d.cfg.upstream_wait_seconds)
            self.d.metrics.upstream_timeout(upstream)
        self._upstream_waiting_since = decision.upstream_waiting_since
        if decision.action is Action.step:
            assert decision.take is not None
            return "step", (decision.take.kind, decision.take.source)
        return decision.action.value, decision.until

    def _view(self, now: float) -> tuple[Optional[tuple[str, Any]], View]:
        """What the merge decides on: the inputs' heads, the empty inputs with what the broker said
        of them, the followed services' progress. A record that needs no place in the order (an
        undecodable one, a progress mark) goes at once, before anything is gathered further."""
        engine, feed, known_end, p = self.engine, self.d.roster, self.d.known_end, self.p
        candidates: list[Candidate] = []
        empty: list[Empty] = []
        upstreams: list[Upstream] = []
        for buf in self.inputs.values():
            records = buf.records
            if records:
                head = records[0]
                if head.key is None:
                    return ("now", buf), _NOTHING
                candidates.append(Candidate(head.key, "input", buf, head.received))
            if buf.upstream is not None:
                upstreams.append(Upstream(buf.upstream, records[0].key if records else None,
                                          engine.watermarks.get(buf.upstream)))
            elif not records:
                empty.append(Empty(buf.topic, p, buf.fetched_to, buf.empty_since, self._caught_up(buf),
                                   known_end(buf.topic, p)))
        cursors, positions, empty_since = self.roster_cursor, engine.roster_positions, self.roster_empty_since
        for q in feed.partitions:
            cursor = cursors.get(q)
            if cursor is None:
                cursor = positions.get(q, 0)
            rec = feed.next_record(q, cursor)
            if rec is None:
                since = empty_since.get(q)
                if since is None:
                    since = empty_since[q] = now
                empty.append(Empty(_ROSTER, q, max(feed.fetched_to(q), cursor), since, feed.caught_up(q, cursor),
                                   known_end(_ROSTER, q)))
                continue
            empty_since[q] = None
            if rec.order_key is None:  # not a valid record: no place in the order
                return ("roster", rec), _NOTHING
            candidates.append(Candidate(rec.order_key, "roster", rec, rec.received))
        return None, View(tuple(candidates), tuple(empty), tuple(upstreams), self._upstream_waiting_since,
                          self.d.cfg.input_idle_seconds, self.d.cfg.upstream_wait_seconds)

    def _caught_up(self, buf: InputBuffer) -> bool:
        end = self.d.stable_end(buf.topic, self.p)
        return end is not None and buf.fetched_to >= end

    def _step(self, kind: str, src: Any) -> None:
        wall = self.machine.wall()
        started = time.perf_counter()  # a measurement (the processing histogram), not a decision
        if kind == "roster":
            rec = src
            self.roster_cursor[rec.partition] = rec.offset + 1
            origin = Origin(f"at.roster[{rec.partition}]@{rec.offset}", Topic.roster, rec.partition, rec.offset, rec.key)
            # Every partition of a service reads the whole roster: an invalid record is reported to
            # vpa.dlq once per service, by the partition of the same number, not once per partition.
            if rec.partition == self.p or isinstance(rec.outcome, Decoded):
                self.engine.submit(rec.outcome, rec.raw, (TOPIC_RANK[Topic.roster], rec.partition, rec.offset),
                                   origin, wall)
            self.engine.note_roster_position(rec.partition, rec.offset + 1)
            self._collect(rec.outcome, rec.timestamp_ms)
            return
        buf: InputBuffer = src
        rec: Buffered = buf.records.popleft()
        if not buf.records:
            buf.empty_since = self.machine.monotonic()
            if buf.paused:
                buf.paused = False
                self.d.resume(buf.topic, self.p)
        elif buf.paused and len(buf.records) < BUFFER_HIGH // 2:
            buf.paused = False
            self.d.resume(buf.topic, self.p)
        o = rec.origin
        if buf.upstream is not None:
            item = rec.outcome
            if isinstance(item, ProgressMark):
                self.engine.set_watermark(buf.upstream, item.key)
            elif isinstance(item, FeedbackCommand):
                self.engine.submit_keyed(item.envelope, item.key, o, buf.upstream, wall)
            else:
                self.engine.submit(item, rec.raw, (9, o.partition, o.offset), o, wall)
        else:
            self.engine.submit(rec.outcome, rec.raw, (TOPIC_RANK.get(o.topic, 3), o.partition, o.offset), o, wall)
        buf.done_offset = o.offset + 1
        self.engine.note_input(o.topic, o.offset)
        self._uncommitted = True
        self.d.metrics.processing(time.perf_counter() - started)
        self._collect(rec.outcome, rec.timestamp_ms)

    def _collect(self, outcome: Any, ingested_ms: int) -> None:
        out = self.engine.take_output()
        if out or out.counts:
            env = getattr(outcome, "envelope", None)
            occurred = int(env.occurred_at.timestamp() * 1000) if env is not None else 0
            self._outputs.append((out, occurred, ingested_ms))

    def _maybe_advance(self, now: float, idle: bool) -> None:
        """Timers by the wall clock: always in wall mode, in catch-up mode once caught up."""
        mode = self.d.mode
        if mode is ClockMode.stream or now - self._last_advance < self.d.cfg.wall_tick_seconds:
            return
        if mode is ClockMode.catchup and not (idle and self._all_caught_up(now)):
            return
        self._last_advance = now
        self.engine.advance(self.machine.wall())
        self._collect(None, 0)

    def _all_caught_up(self, now: float) -> bool:
        idle = self.d.cfg.input_idle_seconds
        for buf in self.inputs.values():
            if buf.upstream is not None:
                continue
            if buf.records or not self._caught_up(buf) or now < buf.empty_since + idle:
                return False
        feed = self.d.roster
        return all(feed.caught_up(q, self.roster_cursor.get(q, self.engine.roster_positions.get(q, 0)))
                   for q in feed.partitions)

    def _mark_pending(self) -> bool:
        """A followed service owes its followers a progress mark (after a wall-clock advance too)."""
        return self.d.emits_marks and self.engine.done_key is not None and self.engine.done_key != self._marked

    # ---- making a batch durable ------------------------------------------------------------

    async def _flush(self) -> None:
        """Outputs first, then state, then the inputs' offsets: a crash at any point repeats at
        most the batch, with the same outputs."""
        self._flushing = True
        try:
            await self._send_batch()
        finally:
            self._flushing = False

    async def _send_batch(self) -> None:
        records: list[OutRecord] = []
        outputs, self._outputs = self._outputs, []
        for out, occurred_ms, ingested_ms in outputs:
            headers = (("occurred_at_ms", str(occurred_ms).encode()), ("ingested_at_ms", str(ingested_ms).encode()))
            for task in out.tasks:
                records.append((Topic.tasks, task["task_id"].encode(), _JSON.encode(task),
                                None, headers))
            for task_id in out.erased:  # erasure: the compacted topic and the store forget the task
                records.append((Topic.tasks, task_id.encode(), None, None, headers))
            for vpa_id in out.erased_vpas:  # and the notifier every other task of the VPA it stores
                key, value = erase_marker(vpa_id)
                records.append((Topic.tasks, key, value, None, headers))
            for key, cmd in out.commands:
                records.append((self.d.own_feedback, cmd.vpa_id.encode(), command_record(key, cmd), self.p, ()))
            for rec in out.dlq:
                o = rec.origin
                dkey = o.key if o.key is not None else (rec.key.encode() if rec.key else None)
                records.append(self.d.dead_letters.record(
                    DlqReason(rec.kind, rec.detail), o.topic or o.label, o.partition, o.offset, dkey, rec.value,
                    service=rec.service, label=o.label, log_ids={"vpa_id": rec.key}))
            self.d.metrics.apply(out.counts)
        done = self.engine.done_key
        if self.d.emits_marks and done is not None and done != self._marked:
            records.append((self.d.own_feedback, None, mark_record(done), self.p, ()))
            self._marked = done
        name = f"{self.d.service}[{self.p}]"
        await send_batch(self.d.producer, records, FLUSH_GIVE_UP, f"{name}: the batch's outputs")
        changed = self.engine.take_dirty()
        if changed:
            await self._write_state(self.slots.encode(changed), f"{name}: the batch's state")
        self.d.metrics.partition(self)

    async def _write_state(self, state: list[tuple[str, Optional[bytes]]], what: str) -> None:
        """``state`` (ending with the meta slot) to the changelog as one batch. Every record carries
        the batch's id and the meta slot comes last: a worker that restores the partition applies
        a batch only once it has read its meta record, so a batch cut off by a crash is never
        applied in part (state_store.BatchReader)."""
        self._batch += 1
        tag = ((BATCH_HEADER, f"{self._writer}:{self._batch}".encode()),)
        offsets = await send_batch(self.d.producer, [(self.d.changelog, key.encode(), value, self.p, tag)
                                                     for key, value in state], FLUSH_GIVE_UP, what)
        self.slots.stored(state, max(offsets) + 1)

    async def rewrite(self, keys: list[str]) -> None:
        """Write ``keys`` again with the values they had before a batch its writer did not finish
        (a tombstone where there was none), as one whole batch: a reader that releases the cut-off
        records (state_store.BatchReader) ends with these values."""
        state = [(k, self.slots.store.get(k)) for k in keys if k != META_SLOT]
        state.append((META_SLOT, self.slots.store.get(META_SLOT) or b"{}"))
        await self._write_state(state, f"{self.d.service}[{self.p}]: the repaired state")

    async def _commit_due(self, force: bool = False) -> None:
        """Commit the inputs' offsets now and then (the stored state, not the commit, says where a
        partition continues; the commit is for lag tools and an operator's offset reset)."""
        now = self.machine.monotonic()
        if not self._uncommitted or (not force and now - self._last_commit < self.d.cfg.commit_interval_seconds):
            return
        # Everything before the client's position was applied, or was no record (a transaction
        # marker), once nothing is buffered: then the commit goes that far.
        offsets = {buf.topic: (buf.fetched_to if not buf.records else buf.done_offset)
                   for buf in self.inputs.values() if buf.done_offset is not None or not buf.records}
        offsets = {t: o for t, o in offsets.items() if o}
        self._last_commit, self._uncommitted = now, False
        await self.d.commit(self.p, offsets)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` passed. Not ``asyncio.wait_for``: in CPython 3.11
    it can swallow a cancellation when the event is set at the same moment (gh-86296), and a
    revoked partition's worker then runs on while the rebalance waits for it."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()
