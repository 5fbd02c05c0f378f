"""The Kafka runner: one faust-streaming app per service (DESIGN.md 3).

* Own consumer group per service (``vpa-<service>``); scales out by partitions.
* Per-VPA state in a faust Table keyed like the topics (vpa_id), persisted in its changelog, so a
  restarted or rebalanced worker gets the state, and the timers inside it, back.
* The roster as a faust GlobalTable fed from ``at.roster``: every worker sees all of it.
* Values are the plain JSON envelopes of the contract, not faust records.
* Stream time is kept per partition (as Kafka Streams does) and stored in the table under
  ``__clock__:<partition>``, so a key's timers never fire ahead of earlier events of that key.
  In wall mode a faust timer sends a ``clock.tick`` to each partition this worker owns, so
  timers fire inside an event (faust only writes tables from within one).
* Delivery is at least once. Outputs are sent before the state is written and every id and
  version is deterministic, so a redelivered message reproduces the same task versions, which
  the store ignores; a redelivered ``event_id`` still in the key's recent ids is skipped.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from schemas.envelope import Envelope
from services.common import metrics
from services.common.decode import Decoded, Invalid, Unknown, decode
from services.common.kafka_config import KafkaConfig, ensure_topics, faust_app_kwargs
from services.common.processor import Context, Processor, Result, json_copy, pop_timer, timers_of
from services.common.roster import apply_roster_event, has_boundary_on
from services.common.settings import Settings
from services.common.timeutil import next_midnight, parse

log = logging.getLogger("vpa.kafka_runner")
ROSTER_SYNC_SECONDS = 10.0
SEEN_LIMIT = 256  # recent event_ids kept per VPA for duplicate detection
CLOCK_KEY = "__clock__:{}"


def dlq_headers(reason: str, service: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [
        ("reason", reason.encode()), ("service", service.encode()), ("origin_topic", topic.encode()),
        ("origin_partition", str(partition).encode()), ("origin_offset", str(offset).encode()),
    ]


class ProcessorShell:
    """Runs one processor inside a faust app: decoding, dedupe, clocks, timers, outputs."""

    def __init__(self, proc: Processor, settings: Settings, cfg: KafkaConfig, app: Any) -> None:
        self.proc, self.settings, self.cfg, self.app = proc, settings, cfg, app
        self.service = proc.name
        import faust

        # Plain JSON keys and values in the changelogs, readable by any tool.
        schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
        self.state = app.Table(f"{proc.name}-state", partitions=cfg.partitions, schema=schema)
        self.roster = app.GlobalTable(f"{proc.name}-roster", partitions=cfg.partitions, schema=schema)
        self.tasks_topic = app.topic("dashlet.tasks", partitions=cfg.partitions)
        self.commands_topic = app.topic("vpa.commands", partitions=cfg.partitions)
        self.dlq_topic = app.topic("vpa.dlq", partitions=cfg.partitions)
        # Internal, co-partitioned with vpa.events: carries "roster changed" to every partition
        # so the re-evaluation runs inside an event of that partition (state writes land right).
        self.reassign_topic = app.topic(f"{app.conf.id}-reassign", partitions=cfg.partitions, internal=True)
        self._heaps: dict[int, list] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._order = itertools.count()

    # ---- entry points (called from agents) ---------------------------------------------------

    async def on_message(self, event: Any) -> None:
        msg = event.message
        started = time.perf_counter()
        outcome = decode(event.value)
        if isinstance(outcome, Invalid):
            await self._dlq(outcome.reason, event.key, event.value, msg)
            return
        if isinstance(outcome, Unknown):
            metrics.UNKNOWN.labels(self.service).inc()
            return
        assert isinstance(outcome, Decoded)
        # The vpa.events and vpa.commands agents run concurrently and both touch a partition's
        # state across awaits (outputs, timers): one lock per partition serialises them.
        async with self._lock(msg.partition):
            await self._handle(outcome.envelope, event, msg)
        metrics.PROCESSING.labels(self.service).observe(time.perf_counter() - started)

    async def _handle(self, env: Envelope, event: Any, msg: Any) -> None:
        p = msg.partition
        self._ensure_index(p)
        key = env.vpa_id
        if key is not None and env.event_id in (self.state.get(key) or {}).get("_seen", ()):
            metrics.DUPLICATES.labels(self.service).inc()
            return
        now = await self._advance(p, env.occurred_at if self.cfg.clock_mode == "stream" else self._wall())
        if env.type != "clock.tick" and key is not None:
            # A private copy: if the handler fails half-way, the stored state stays untouched.
            state = json_copy(self.state.get(key) or {})
            ctx = Context(now=now, settings=self.settings, roster=self.roster)
            try:
                result = self.proc.handle(state, env, ctx)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the partition
                log.exception("handler failed on %s", env.event_id)
                await self._dlq(f"error: {type(exc).__name__}: {exc}", key.encode(), event.value, msg)
                return
            state["_seen"] = (list(state.get("_seen", ())) + [env.event_id])[-SEEN_LIMIT:]
            state["_p"] = p
            await self._publish(result, env, msg)
            self.state[key] = state
            self._index(p, key, state)
            metrics.EVENTS.labels(self.service, env.type).inc()
        await self._fire_due(p, now)  # timers set in the past by a late event fire right after it

    async def on_roster(self, event: Any) -> None:
        outcome = decode(event.value)
        if isinstance(outcome, Invalid):
            await self._dlq(outcome.reason, event.key, event.value, event.message)
            return
        if not isinstance(outcome, Decoded) or not outcome.envelope.type.startswith("roster."):
            metrics.UNKNOWN.labels(self.service).inc()
            return
        env = outcome.envelope
        initials = env.data.initials
        member = apply_roster_event(self.roster.get(initials), env)
        self.roster[initials] = member
        metrics.EVENTS.labels(self.service, env.type).inc()
        notice = json.dumps({"initials": initials, "member": member}).encode()
        for p in range(self.cfg.partitions):
            await self.reassign_topic.send(key=None, value=notice, partition=p)

    def _lock(self, p: int) -> asyncio.Lock:
        lock = self._locks.get(p)
        if lock is None:
            lock = self._locks[p] = asyncio.Lock()
        return lock

    # ---- clock and timers -------------------------------------------------------------------

    @staticmethod
    def _wall() -> datetime:
        return datetime.now(timezone.utc)

    def _clock(self, p: int) -> Optional[datetime]:
        rec = self.state.get(CLOCK_KEY.format(p))
        return parse(rec["now"]) if rec else None

    def _set_clock(self, p: int, t: datetime) -> None:
        self.state[CLOCK_KEY.format(p)] = {"now": t.isoformat(), "_p": p}
        metrics.STREAM_TIME.labels(self.service, str(p)).set(t.timestamp())

    async def _advance(self, p: int, t: datetime) -> datetime:
        current = self._clock(p)
        if current is not None and t <= current:
            return current
        await self._fire_due(p, t)
        self._set_clock(p, t)
        return t

    def _ensure_index(self, p: int) -> None:
        """Rebuild partition ``p``'s timer heap from the table once after (re)assignment."""
        if p in self._heaps:
            return
        self._heaps[p] = []
        for key, state in list(self.state.items()):
            if isinstance(state, dict) and state.get("_p") == p and not str(key).startswith("__"):
                self._index(p, key, state)

    def _index(self, p: int, key: str, state: dict) -> None:
        for t in timers_of(state):
            heapq.heappush(self._heaps[p], (t.due_at, next(self._order), key, t.timer_id, t.due_at.isoformat()))

    async def _fire_due(self, p: int, upto: datetime) -> None:
        """Fire partition ``p``'s timers and local midnights up to ``upto``, in time order."""
        heap = self._heaps.setdefault(p, [])
        while True:
            clock = self._clock(p)
            midnight = next_midnight(clock, self.settings.tz) if clock is not None else None
            if midnight is not None and midnight > upto:
                midnight = None
            timer_due = heap[0][0] if heap and heap[0][0] <= upto else None
            if midnight is None and timer_due is None:
                return
            if midnight is not None and (timer_due is None or midnight <= timer_due):
                self._set_clock(p, midnight)
                if has_boundary_on(self.roster, midnight.date()):
                    await self._reassign_partition(p, midnight)
                continue
            due, _, key, timer_id, due_iso = heapq.heappop(heap)
            state = json_copy(self.state.get(key) or {})
            current = state.get("timers", {}).get(timer_id)
            if current is None or current["due_at"] != due_iso:
                continue  # cancelled or moved, or a stale duplicate entry
            timer = pop_timer(state, timer_id)
            if clock is None or due > clock:
                self._set_clock(p, due)
            now = max(due, clock) if clock else due
            result = self.proc.on_timer(state, timer, Context(now=now, settings=self.settings, roster=self.roster))
            metrics.TIMERS.labels(self.service, timer.name).inc()
            await self._publish(result, None, None)
            self.state[key] = state
            self._index(p, key, state)

    async def _reassign_partition(self, p: int, now: datetime) -> None:
        """Roster change or midnight: re-evaluate every VPA of partition ``p`` (DESIGN 5.8)."""
        ctx = Context(now=now, settings=self.settings, roster=self.roster)
        for key, stored in list(self.state.items()):
            if str(key).startswith("__") or not isinstance(stored, dict) or stored.get("_p") != p:
                continue
            state = json_copy(stored)
            result = self.proc.reassign(state, ctx)
            if result.tasks or result.commands or state != stored:
                await self._publish(result, None, None)
                self.state[key] = state
                self._index(p, key, state)

    async def on_reassign_notice(self, event: Any) -> None:
        """A roster member changed: once this worker's roster copy has the change, re-evaluate."""
        notice = json.loads(event.value)
        p = event.message.partition
        self._ensure_index(p)
        deadline = time.monotonic() + ROSTER_SYNC_SECONDS
        # The roster GlobalTable reaches other workers through its changelog; wait for it.
        while self.roster.get(notice["initials"]) != notice["member"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        async with self._lock(p):
            clock = self._wall() if self.cfg.clock_mode == "wall" else self._clock(p)
            if clock is not None:
                await self._reassign_partition(p, clock)

    def forget_partitions(self, partitions: set[int]) -> None:
        for p in partitions:
            self._heaps.pop(p, None)

    # ---- outputs -----------------------------------------------------------------------------

    async def _publish(self, result: Result, cause: Optional[Envelope], msg: Any) -> None:
        for task in result.tasks:
            await self.tasks_topic.send(key=task["task_id"].encode(), value=json.dumps(task).encode())
        metrics.TASKS.labels(self.service).inc(len(result.tasks))
        for cmd in result.commands:
            await self.commands_topic.send(key=cmd.vpa_id.encode(), value=cmd.to_bytes())
        for reason in result.rejections:
            metrics.REJECTED.labels(self.service, cause.type if cause else "timer").inc()
            await self._dlq(reason, cause.vpa_id.encode() if cause and cause.vpa_id else None,
                            cause.to_bytes() if cause else b"", msg)

    async def _dlq(self, reason: str, key: Optional[bytes], value: bytes, msg: Any) -> None:
        topic, partition, offset = (msg.topic, msg.partition, msg.offset) if msg is not None else ("timer", -1, -1)
        log.warning("to vpa.dlq: %s (%s[%s]@%s)", reason, topic, partition, offset)
        metrics.DLQ.labels(self.service, metrics.dlq_kind(reason)).inc()
        await self.dlq_topic.send(key=key, value=value or b"",
                                  headers=dlq_headers(reason, self.service, topic, partition, offset))


def _tick_envelope(now: datetime) -> bytes:
    return json.dumps({"event_id": f"wall-tick:{uuid.uuid4()}", "type": "clock.tick",
                       "occurred_at": now.isoformat(), "data": {}}).encode()


def build_processor_app(proc: Processor, settings: Settings, cfg: KafkaConfig):
    import faust

    app = faust.App(
        f"{cfg.group_prefix}-{proc.name}",
        store="memory://",
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        **faust_app_kwargs(cfg),
    )
    shell = ProcessorShell(proc, settings, cfg, app)
    inputs = [t for t in ("vpa.events", "vpa.commands") if t in proc.topics]
    for name in inputs:
        topic = app.topic(name, partitions=cfg.partitions)

        async def consume(stream, _name=name):
            async for event in stream.events():
                await shell.on_message(event)

        app.agent(topic, name=f"{proc.name}-{name}")(consume)

    async def consume_roster(stream):
        async for event in stream.events():
            await shell.on_roster(event)

    app.agent(app.topic("at.roster", partitions=cfg.partitions), name=f"{proc.name}-roster")(consume_roster)

    async def consume_reassign(stream):
        async for event in stream.events():
            await shell.on_reassign_notice(event)

    app.agent(shell.reassign_topic, name=f"{proc.name}-reassign")(consume_reassign)

    if cfg.clock_mode == "wall":
        events_topic = app.topic("vpa.events", partitions=cfg.partitions)

        @app.timer(interval=cfg.wall_tick_seconds)
        async def wall_ticks() -> None:
            # One tick per owned partition of vpa.events; handled like any event, so timers fire
            # inside an event and their state writes reach the right changelog partition.
            now = datetime.now(timezone.utc)
            for tp in app.assignor.assigned_actives():
                if tp.topic == "vpa.events":
                    await events_topic.send(value=_tick_envelope(now), partition=tp.partition)

    watch_lag(app, proc.name, set(inputs) | {"at.roster"})

    @app.on_partitions_revoked.connect
    async def on_revoked(app_, revoked, **kwargs) -> None:  # noqa: ANN001
        shell.forget_partitions({tp.partition for tp in revoked})

    app.shell = shell
    return app


def watch_lag(app: Any, service: str, topics: set[str], interval: float = 10.0) -> None:
    """Publish ``vpa_consumer_lag`` (high watermark minus the next offset to read) for ops."""

    @app.timer(interval=interval)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in app.assignor.assigned_actives():
            if tp.topic not in topics:
                continue
            try:
                highwater = consumer.highwater(tp)
                read = consumer._read_offset.get(tp)  # faust's last offset handed to the stream
            except Exception:  # noqa: BLE001 - metrics must never break processing
                continue
            if highwater is None:
                continue
            lag = max(0, highwater - (read + 1 if read is not None else 0))
            metrics.CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(lag)


def _start_metrics(port: Optional[int]) -> None:
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)


def run_service(name: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = KafkaConfig.from_env(name)
    settings = Settings.from_env()
    asyncio.run(ensure_topics(cfg))
    _start_metrics(cfg.metrics_port)
    if name == "notifier":
        from services.notifier.service import build_notifier_app

        app = build_notifier_app(cfg)
    elif name == "dashlet":
        from services.dashlet.api import serve_forever

        return serve_forever()
    else:
        from services.bootstrap import processor

        app = build_processor_app(processor(name), settings, cfg)
    import faust

    worker = faust.Worker(app, loglevel="INFO", quiet=True, override_logging=False)
    worker.execute_from_commandline()
    return 0
