"""One partition of one stream service on Kafka: the ordered merge in front of its engine.

A worker owns partition ``p`` of a service. It takes the records of its co-partitioned input
topics (``vpa.events``, ``vpa.commands``, and the commands of a service it follows), plus every
``at.roster`` record (``RosterFeed``), and hands them to its ``PartitionEngine`` in order-key
order, timestamp first (``services.common.order``): the order ``vpa replay`` uses, whatever the
order in which the broker delivers the topics.

The merge takes the smallest head among the inputs, but only once no input could still deliver a
smaller one: an input with nothing buffered must be caught up with the broker and have stayed
empty for ``input_idle_seconds`` (Kafka Streams' ``max.task.idle.ms``); the commands of a followed
service must have reached, with their progress mark, the key about to be taken (waiting at most
``upstream_wait_seconds``). Records that need no place in the order (undecodable, unknown types,
progress marks) are handled at once.

After a batch of steps the worker sends the batch's outputs, waits until the broker has all of
them, then writes the changed slots to the table and acks the input records: a crash at any point
repeats at most the batch, with the same outputs.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Optional

from services.common.clock import ClockMode
from services.common.decode import Decoded, Invalid, Outcome, decode
from services.common.engine import Origin, Output, PartitionEngine
from services.common.kafka.feedback import FeedbackCommand, ProgressMark, command_record, mark_record, parse_feedback
from services.common.kafka.slots import TableSlots
from services.common.kafka.topics import DLQ_TOPIC, TASKS_TOPIC, dlq_headers, dlq_value, erase_marker
from services.common.order import TOPIC_RANK, OrderKey

log = logging.getLogger("vpa.kafka.worker")
BATCH_STEPS = 500  # steps between two flushes while a backlog is worked through
BUFFER_HIGH = 5000  # records buffered per input partition before its fetching pauses
REFETCH_GIVE_UP = 60.0  # seconds a partition tries to read records the client skipped
# Seconds an input may stay empty while the broker holds more of it before the worker reads those
# records itself: far above a fetch round trip, far below anything an operator would call a stall.
TAIL_STALL_SECONDS = 15.0
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
    stream: Any = None
    event: Any = None
    received: float = field(default_factory=time.monotonic)


@dataclass
class InputBuffer:
    topic: str
    upstream: Optional[str] = None  # the followed service, for a commands topic of another service
    records: deque = field(default_factory=deque)
    next_offset: Optional[int] = None  # after the last record received
    done_offset: Optional[int] = None  # after the last record handled
    empty_since: float = field(default_factory=time.monotonic)
    paused: bool = False
    expect: Optional[int] = None  # the offset the next record must have (from the stored state at start)
    held: Optional[list] = None  # while skipped records are read again: what arrived meanwhile
    behind_since: Optional[float] = None  # empty, while the broker holds more (time.monotonic())
    late: deque = field(default_factory=deque)  # (offset, stream, event) delivered again: acked once applied


class _PartitionEvent:
    """What faust's table code reads of "the current event": the partition a write belongs to."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition)


class PartitionWorker:
    def __init__(self, driver: Any, partition: int) -> None:  # a stream_app.StreamDriver
        self.d, self.p = driver, partition
        self.inputs: dict[str, InputBuffer] = {t: InputBuffer(t) for t in driver.co_topics}
        for upstream, topic in driver.followed_topics.items():
            self.inputs[topic] = InputBuffer(topic, upstream=upstream)
        self.slots = TableSlots(driver.table, partition)
        self.engine = PartitionEngine([driver.proc], driver.settings, name=driver.service, mode=driver.mode,
                                      slots=self.slots, limits=driver.limits, follows=driver.follows)
        self.engine.load(list(self.slots))
        for buf in self.inputs.values():
            done = self.engine.positions.get(buf.topic)
            buf.expect = None if done is None else done + 1
        self.roster_cursor: dict[int, int] = {}
        self.roster_empty_since: dict[int, Optional[float]] = {}
        self.wake = asyncio.Event()
        self._outputs: list[tuple[Output, int, int]] = []  # (output, occurred_at ms, ingested ms)
        self._acks: list[tuple[Any, Any]] = []
        self._marked: Optional[OrderKey] = self.engine.done_key
        self._last_advance = 0.0
        self._upstream_waiting_since: Optional[float] = None
        self._context = _PartitionEvent("vpa.events", partition)
        self.task: Optional[asyncio.Task] = None

    # ---- records arriving ----------------------------------------------------------------

    def offer(self, stream: Any, event: Any) -> None:
        msg = event.message
        buf = self.inputs.get(msg.topic)
        if buf is None:
            return
        if buf.held is not None:
            buf.held.append((stream, event))  # after the records being read again
            return
        if buf.next_offset is not None and msg.offset < buf.next_offset:
            # Delivered again, or read already by a client of our own: taken once. The client's
            # copy is acked once that offset is applied, so that commits go past it.
            if stream is not None and buf.done_offset is not None and msg.offset < buf.done_offset:
                self._acks.append((stream, event))  # applied already: acked with the next batch
                self.wake.set()
            elif stream is not None:
                buf.late.append((msg.offset, stream, event))
            return
        expected = buf.next_offset if buf.next_offset is not None else buf.expect
        if expected is not None and msg.offset > expected:
            buf.held = [(stream, event)]
            asyncio.ensure_future(self._read_skipped(buf, expected, msg.offset))
            return
        self._take(buf, stream, event)

    def _take(self, buf: InputBuffer, stream: Any, event: Any) -> None:
        msg = event.message
        raw = event.value if isinstance(event.value, (bytes, bytearray)) else (event.value or b"")
        raw = bytes(raw)
        origin = Origin(f"{msg.topic}[{msg.partition}]@{msg.offset}", msg.topic, msg.partition, msg.offset,
                        msg.key if isinstance(msg.key, bytes) else None)
        ts = int(msg.timestamp * 1000) if msg.timestamp else 0
        if buf.upstream is not None:
            parsed = parse_feedback(raw)
            key = parsed.key if isinstance(parsed, FeedbackCommand) else None
            rec = Buffered(key, parsed, raw, origin, ts, stream, event)
        else:
            outcome = misrouted(decode(raw), origin.key)
            key = None
            if isinstance(outcome, Decoded):
                env = outcome.envelope
                key = (*_key_time(env.occurred_at), TOPIC_RANK.get(msg.topic, 3), msg.partition, msg.offset)
            rec = Buffered(key, outcome, raw, origin, ts, stream, event)
        buf.records.append(rec)
        buf.next_offset = msg.offset + 1
        buf.behind_since = None
        if len(buf.records) > BUFFER_HIGH and not buf.paused:
            buf.paused = True
            self.d.pause(msg.topic, self.p)
        self.wake.set()

    async def _read_skipped(self, buf: InputBuffer, expected: int, got: int, tail: bool = False) -> None:
        """The client handed over ``got`` while the stored state says ``expected`` comes next: after a
        rebalance faust can drop records as stale and commit over them, and it will not deliver
        them again. Read them with a client of our own and take them first, then what arrived
        meanwhile. Records already applied are taken again harmlessly (their event ids are known);
        records gone (retention) are logged and skipped.

        ``tail``: no record after them has come to show the gap; the broker's end offset ``got``
        says they exist. What cannot be read now is asked for again later, not skipped."""
        if tail:
            log.warning("%s[%d]: %s: nothing arrived for %.0f s while the broker holds offsets %d to %d; "
                        "reading them", self.d.service, self.p, buf.topic, TAIL_STALL_SECONDS, expected, got - 1)
        else:
            log.warning("%s[%d]: %s: got offset %d, expected %d; reading %d to %d again", self.d.service, self.p,
                        buf.topic, got, expected, expected, got - 1)
        self.d.metrics.refetch(buf.topic)
        records: list[Any] = []
        try:
            records = await self.d.read_range(buf.topic, self.p, expected, got, REFETCH_GIVE_UP)
        except Exception as exc:  # noqa: BLE001 - the broker is away: take what comes next
            log.error("%s[%d]: %s: reading offsets %d to %d again failed (%s: %s)", self.d.service, self.p,
                      buf.topic, expected, got - 1, type(exc).__name__, exc)
        missing = (got - expected) - len(records)
        if tail:
            for event in records:
                self._take(buf, None, event)
            held, buf.held = buf.held or [], None
            for stream, event in held:
                self.offer(stream, event)
            return
        if missing:
            log.error("%s[%d]: %s: %d of the offsets %d to %d could not be read again; going on from %d",
                      self.d.service, self.p, buf.topic, missing, expected, got - 1, got)
        for event in records:
            self._take(buf, None, event)  # not faust's events: nothing to ack (the later acks commit past them)
        buf.next_offset = got  # what could not be read is gone: go on from the record that showed the gap
        held, buf.held = buf.held or [], None
        for stream, event in held:
            self.offer(stream, event)

    # ---- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        from faust.streams import _current_event

        _current_event.set(weakref.ref(self._context))  # table writes of this task go to partition p
        await self.d.roster.started.wait()
        unsubscribe = self.d.roster.subscribe(self.wake.set)
        try:
            steps = 0
            while True:
                now = time.monotonic()
                action, arg = self._choose(now)
                if action == "step":
                    self._step(*arg)
                    steps += 1
                    if steps >= BATCH_STEPS:
                        await self._flush()
                        steps = 0
                        await asyncio.sleep(0)  # let the agents and other partitions run
                    continue
                self._maybe_advance(now, idle=(action == "idle"))
                if self._outputs or self._acks or steps or self._mark_pending():
                    await self._flush()
                    steps = 0
                    continue
                timeout = self.d.cfg.wall_tick_seconds
                if action == "wait" and arg is not None:
                    timeout = max(0.005, min(timeout, arg - now))
                due = self._watch_tails(now)
                if due is not None:
                    timeout = max(0.005, min(timeout, due - now))
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
        finally:
            unsubscribe()

    def _choose(self, now: float) -> tuple[str, Any]:
        """("step", what), ("wait", until or None) or ("idle", None)."""
        engine = self.engine
        candidates: list[tuple[OrderKey, str, Any]] = []
        for buf in self.inputs.values():
            if buf.records:
                head = buf.records[0]
                if head.key is None:
                    return "step", ("now", buf)
                candidates.append((head.key, "input", buf))
        feed = self.d.roster
        for q in feed.partitions:
            rec = feed.next_record(q, self.roster_cursor.get(q, engine.roster_positions.get(q, 0)))
            if rec is None:
                if self.roster_empty_since.get(q) is None:
                    self.roster_empty_since[q] = now
                continue
            self.roster_empty_since[q] = None
            if not isinstance(rec.outcome, Decoded):
                return "step", ("roster", rec)
            env = rec.outcome.envelope
            candidates.append(((*_key_time(env.occurred_at), TOPIC_RANK["at.roster"], q, rec.offset), "roster", rec))
        if not candidates:
            return "idle", None
        key, kind, src = min(candidates, key=lambda c: c[0])
        idle = self.d.cfg.input_idle_seconds
        until: Optional[float] = None
        if not self._proven_empty(src.records[0].received if kind == "input" else src.received):
            return "wait", None  # the broker has not yet said that the empty inputs hold nothing earlier
        for buf in self.inputs.values():
            if buf.records or buf.upstream is not None:
                continue
            if not self._caught_up(buf):
                return "wait", None  # records are on their way
            if now < buf.empty_since + idle:
                until = min(until or 1e18, buf.empty_since + idle)
        for q in feed.partitions:
            since = self.roster_empty_since.get(q)
            if since is None:
                continue
            if not feed.caught_up(q, self.roster_cursor.get(q, engine.roster_positions.get(q, 0))):
                return "wait", None
            if now < since + idle:
                until = min(until or 1e18, since + idle)
        for buf in self.inputs.values():
            if buf.upstream is None:
                continue
            if buf.records:
                # The upstream service emits in key order: everything before its next command is out.
                engine.set_watermark(buf.upstream, buf.records[0].key)
                continue
            mark = engine.watermarks.get(buf.upstream)
            if mark is not None and mark >= key:
                continue
            if self._upstream_waiting_since is None:
                self._upstream_waiting_since = now
            give_up = self._upstream_waiting_since + self.d.cfg.upstream_wait_seconds
            if now < give_up:
                until = min(until or 1e18, give_up)
                continue
            log.warning("%s[%d]: no progress from %s for %.0f s; going on without it (its commands may "
                        "arrive late)", self.d.service, self.p, buf.upstream, self.d.cfg.upstream_wait_seconds)
            self.d.metrics.upstream_timeout(buf.upstream)
            engine.set_watermark(buf.upstream, key)
        if until is not None:
            return "wait", until
        self._upstream_waiting_since = None
        return "step", (kind, src)

    def _proven_empty(self, received: float) -> bool:
        """Every input with nothing buffered holds nothing more on the broker, by an end offset asked
        after the record about to be taken was received. The consumer's own high watermarks can be
        seconds old, and the roster comes through a client of its own: an input that had been empty
        for a while looked caught up, so the first record of a new burst on one input overtook
        earlier records of the same burst on another (a follow-up decided before the activity that
        preceded it). One producer appends in order, so an end offset asked after the record arrived
        covers everything written before it."""
        wanted: list[tuple[str, int, int]] = []
        for buf in self.inputs.values():
            if not buf.records and buf.upstream is None:
                offset = buf.next_offset if buf.next_offset is not None else self.d.committed(buf.topic, self.p)
                wanted.append((buf.topic, self.p, offset or 0))
        feed = self.d.roster
        for q in feed.partitions:
            if self.roster_empty_since.get(q) is not None:
                wanted.append(("at.roster", q, max(feed.fetched_to(q), self.roster_cursor.get(
                    q, self.engine.roster_positions.get(q, 0)))))
        proven = True
        for topic, partition, offset in wanted:
            end = self.d.end_offset_since(topic, partition, received, self.wake.set)
            if end is None or end > offset:
                proven = False  # asked (the answer wakes this worker), or records are on their way
        return proven

    def _watch_tails(self, now: float) -> Optional[float]:
        """Looks at every empty input the broker holds more of (see ``_behind``); returns when to
        look again."""
        due: Optional[float] = None
        for buf in self.inputs.values():
            if buf.records or buf.held is not None or self._caught_up(buf):
                buf.behind_since = None
                continue
            until = self._behind(buf, now)
            if until is not None:
                due = until if due is None else min(due, until)
        return due

    def _behind(self, buf: InputBuffer, now: float) -> Optional[float]:
        """An empty input the broker holds more of. The records are on their way, unless the client
        dropped them and no later record comes to show the gap (found by the soak: faust dropped
        the rest of a fetched batch of a partition paused meanwhile, and the worker waited for
        them for good). After ``TAIL_STALL_SECONDS`` it reads them itself; returns when to look again."""
        if buf.behind_since is None:
            buf.behind_since = now
        due = buf.behind_since + TAIL_STALL_SECONDS
        if now < due:
            return due
        buf.behind_since = None
        hw = self.d.highwater(buf.topic, self.p)
        offset = buf.next_offset if buf.next_offset is not None else self.d.committed(buf.topic, self.p)
        if hw is None or hw <= (offset or 0):
            return None
        buf.held = []
        # At most a buffer's worth: the rest comes from the client, or from the next such read.
        end = min(hw, (offset or 0) + BUFFER_HIGH)
        asyncio.ensure_future(self._read_skipped(buf, offset or 0, end, tail=True))
        return None

    def _caught_up(self, buf: InputBuffer) -> bool:
        hw = self.d.highwater(buf.topic, self.p)
        if hw is None:
            return False
        offset = buf.next_offset if buf.next_offset is not None else self.d.committed(buf.topic, self.p)
        return (offset or 0) >= hw

    def _step(self, kind: str, src: Any) -> None:
        wall = datetime.now(timezone.utc)
        started = time.perf_counter()
        if kind == "roster":
            rec = src
            self.roster_cursor[rec.partition] = rec.offset + 1
            origin = Origin(f"at.roster[{rec.partition}]@{rec.offset}", "at.roster", rec.partition, rec.offset, rec.key)
            # Every partition of a service reads the whole roster: an invalid record is reported to
            # vpa.dlq once per service, by the partition of the same number, not once per partition.
            if rec.partition == self.p or isinstance(rec.outcome, Decoded):
                self.engine.submit(rec.outcome, rec.raw, (TOPIC_RANK["at.roster"], rec.partition, rec.offset),
                                   origin, wall)
            self.engine.note_roster_position(rec.partition, rec.offset + 1)
            self._collect(rec.outcome, rec.timestamp_ms)
            return
        buf: InputBuffer = src
        rec: Buffered = buf.records.popleft()
        if not buf.records:
            buf.empty_since = time.monotonic()
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
                self.engine.submit(Invalid(str(item)), rec.raw, (9, o.partition, o.offset), o, wall)
        else:
            self.engine.submit(rec.outcome, rec.raw, (TOPIC_RANK.get(o.topic, 3), o.partition, o.offset), o, wall)
        buf.done_offset = o.offset + 1
        self.engine.note_input(o.topic, o.offset)
        if rec.stream is not None:
            self._acks.append((rec.stream, rec.event))
        late = buf.late
        while late and late[0][0] < buf.done_offset:  # in offset order, as the client delivers them
            _, stream, event = late.popleft()
            self._acks.append((stream, event))
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
        self.engine.advance(datetime.now(timezone.utc))
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
        producer = self.d.app.producer
        sent: list[Any] = []
        outputs, self._outputs = self._outputs, []
        for out, occurred_ms, ingested_ms in outputs:
            headers = [("occurred_at_ms", str(occurred_ms).encode()), ("ingested_at_ms", str(ingested_ms).encode())]
            for task in out.tasks:
                sent.append(await producer.send(TASKS_TOPIC, task["task_id"].encode(),
                                                json.dumps(task, ensure_ascii=False).encode(), None, None, headers))
            for task_id in out.erased:  # erasure: the compacted topic and the store forget the task
                sent.append(await producer.send(TASKS_TOPIC, task_id.encode(), None, None, None, headers))
            for vpa_id in out.erased_vpas:  # and the notifier every other task of the VPA it stores
                sent.append(await producer.send(TASKS_TOPIC, *erase_marker(vpa_id), None, None, headers))
            for key, cmd in out.commands:
                sent.append(await producer.send(self.d.own_feedback, cmd.vpa_id.encode(), command_record(key, cmd),
                                                self.p, None, None))
            for rec in out.dlq:
                value, truncated = dlq_value(rec.value)
                o = rec.origin
                key = o.key if o.key is not None else (rec.key.encode() if rec.key else None)
                sent.append(await producer.send(DLQ_TOPIC, key, value, None, None, dlq_headers(
                    rec.reason, rec.service, o.topic or o.label, o.partition, o.offset, truncated)))
                log.warning("to vpa.dlq: %s (%s)", rec.reason[:300], o.label,
                            extra={"vpa_id": rec.key, "event_id": _event_id(rec.value)})
            self.d.metrics.apply(out.counts)
        done = self.engine.done_key
        if self.d.emits_marks and done is not None and done != self._marked:
            sent.append(await producer.send(self.d.own_feedback, None, mark_record(done), self.p, None, None))
            self._marked = done
        if sent:
            await self._bounded("the batch's outputs", producer.flush())
            for fut in sent:
                exc = fut.exception() if fut.done() else None
                if exc is not None:
                    raise exc  # the broker refused a record: crash, restart from the last commit
        changed = self.engine.take_dirty()
        if changed:
            self.slots.write(changed)
            # The table's changelog records wait in faust's producer buffer, and faust commits offsets
            # without draining it: acked before they are on the broker, a SIGKILL would leave offsets
            # committed past the state (found by the crash test). Outputs first, then state, then acks.
            await self._bounded("the batch's state", producer.flush())
        acks, self._acks = self._acks, []
        for stream, event in acks:
            if stream is not None:
                await stream.ack(event)
        self.d.metrics.partition(self)


    async def _bounded(self, what: str, step: Any) -> None:
        try:
            await asyncio.wait_for(step, FLUSH_GIVE_UP)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{self.d.service}[{self.p}]: {what} did not reach the broker within "
                               f"{FLUSH_GIVE_UP:.0f} s") from None


def _event_id(value: bytes) -> Optional[str]:
    """The event_id of a DLQ'd envelope, for the log line (None when it has none to read)."""
    if len(value) > 65536:
        return None
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError):
        return None
    event_id = obj.get("event_id") if isinstance(obj, dict) else None
    return event_id if isinstance(event_id, str) else None


def misrouted(outcome: Outcome, key: Optional[bytes]) -> Outcome:
    """An envelope about a VPA keyed otherwise than by its ``vpa_id`` (DESIGN 4.1) is invalid: it sits
    in a partition that does not hold the VPA's state, so taking it would split that state in two
    and put its order against the VPA's other events at the mercy of the partitioner."""
    if isinstance(outcome, Decoded) and outcome.envelope.vpa_id is not None:
        vpa_id = outcome.envelope.vpa_id
        if key != vpa_id.encode():
            shown = "no key" if key is None else f"key {key[:80].decode('utf-8', 'replace')!r}"
            return Invalid(f"invalid: {shown}, but the message is about {vpa_id!r}: "
                           "records about a VPA must be keyed by its vpa_id")
    return outcome


def _key_time(t: datetime) -> tuple[int]:
    from services.common.order import micros

    return (micros(t),)
