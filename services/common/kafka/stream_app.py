"""The Kafka runner: one faust-streaming app per stream service (DESIGN.md 3), a thin driver.

* Own consumer group per service (``<prefix>-<service>``); scales out by partitions of
  ``vpa.events``/``vpa.commands`` (co-partitioned by vpa_id).
* One ``PartitionWorker`` per assigned partition: the time-ordered merge of the inputs in front
  of a ``PartitionEngine`` (the same engine the embedded runner uses).
* Per-VPA state in a faust Table whose changelog gives a restarted or rebalanced worker the state
  back, the timers inside it included; the roster from ``RosterFeed`` (every worker reads all of
  ``at.roster``).
* Values on every topic are the plain JSON of the contract, not faust records.
* Delivery is at least once, with outputs before state (see ``worker``); ids and versions are
  deterministic, so a repeated batch repeats the same task versions, which the store ignores.
* In wall and catch-up modes the workers advance their clocks by the wall clock themselves; no
  tick is written to any topic.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

from services.common.clock import ClockMode
from services.common.engine import EngineLimits
from services.common.kafka.roster_feed import RosterFeed
from services.common.kafka.topics import (
    CO_PARTITIONED, app_id, feedback_topic, internal_topics, state_table,
)
from services.common.kafka.worker import PartitionWorker
from services.common.kafka_config import KafkaConfig, faust_app_kwargs
from services.common.metrics import StreamMetrics
from services.common.processor import Processor
from services.common.settings import Settings

log = logging.getLogger("vpa.kafka")


def limits_of(settings: Settings) -> EngineLimits:
    from datetime import timedelta

    return EngineLimits(dedupe_window=timedelta(days=settings.dedupe_window_days),
                        max_future=timedelta(minutes=settings.max_future_minutes))


def store_kwargs(cfg: KafkaConfig, service: str) -> dict:
    """faust's table store: in memory, or RocksDB (rocksdict) in the app's folder under
    ``cfg.state_dir`` (see faust_app_kwargs)."""
    return {"store": "rocksdb://" if cfg.state_store == "rocksdb" else "memory://"}


class StreamDriver:
    """Everything a service's workers share: the app, its table, the roster feed, settings."""

    def __init__(self, proc: Processor, settings: Settings, cfg: KafkaConfig, follows: tuple[str, ...],
                 emits_marks: bool) -> None:
        import faust

        self.proc, self.settings, self.cfg = proc, settings, cfg
        self.service = proc.name
        self.mode = ClockMode(cfg.clock_mode)
        self.limits = limits_of(settings)
        self.follows = follows
        self.emits_marks = emits_marks
        self.co_topics = tuple(t for t in CO_PARTITIONED if t in proc.topics)
        self.followed_topics = {u: feedback_topic(cfg, u) for u in follows}
        self.own_feedback = feedback_topic(cfg, self.service)
        self.metrics = StreamMetrics(self.service)
        self.app = faust.App(
            app_id(cfg, self.service), **faust_app_kwargs(cfg),
            table_standby_replicas=cfg.standby_replicas, **store_kwargs(cfg, self.service),
            key_serializer="raw", value_serializer="raw", web_enabled=False,
            consumer_auto_offset_reset="earliest",
            # Records wait in the workers' merge buffers unacked; a rebalance must not wait for them
            # (they come again from the last commit).
            stream_wait_empty=False,
        )
        schema = faust.Schema(key_type=str, key_serializer="raw", value_serializer="raw")
        self.table = self.app.Table(state_table(self.service), partitions=cfg.partitions, schema=schema)
        self.roster = RosterFeed(cfg)
        self.workers: dict[int, PartitionWorker] = {}
        self._assigned: set[int] = set()
        # End offsets asked from the broker: (topic, partition) -> (end, time.monotonic() when asked)
        self._ends: dict[tuple[str, int], tuple[int, float]] = {}
        self._ends_wanted: set[tuple[str, int]] = set()
        self._ends_waiters: set[Callable[[], None]] = set()
        self._ends_task: Optional[asyncio.Future] = None
        self._wire()

    # ---- wiring ------------------------------------------------------------------------------

    def _wire(self) -> None:
        app = self.app
        for topic_name in (*self.co_topics, *self.followed_topics.values()):
            topic = app.topic(topic_name, partitions=self.cfg.partitions, key_type=bytes, value_type=bytes)

            async def consume(stream, _name=topic_name):  # noqa: ANN001
                noack = stream.noack()
                async for event in noack.events():
                    self._offer(noack, event)

            app.agent(topic, name=f"{self.service}-{topic_name}")(consume)

        @app.on_partitions_revoked.connect
        async def on_revoked(app_, revoked, **kwargs) -> None:  # noqa: ANN001
            await self._stop_workers({tp.partition for tp in revoked if tp.topic == "vpa.events"})

        @app.on_rebalance_complete.connect
        async def on_rebalanced(app_, **kwargs) -> None:  # noqa: ANN001
            self._assigned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == "vpa.events"}
            await self._stop_workers(set(self.workers) - self._assigned)
            self.reapply_pauses()
            for p in sorted(self._assigned):
                self._ensure_worker(p)

        @app.task
        async def start_roster() -> None:
            await self.roster.start()

        @app.timer(interval=5.0)
        async def report_lag() -> None:
            for worker in list(self.workers.values()):
                self.metrics.lag(worker)

    def _offer(self, stream: Any, event: Any) -> None:
        p = event.message.partition
        worker = self.workers.get(p)
        if worker is None and p in self._assigned:
            worker = self._ensure_worker(p)
        if worker is not None:
            worker.offer(stream, event)
        # else: a record of a partition this worker no longer owns; unacked, it comes again to the
        # worker that owns it now, from the last commit

    def _ensure_worker(self, p: int) -> Optional[PartitionWorker]:
        worker = self.workers.get(p)
        if worker is None:
            worker = self.workers[p] = PartitionWorker(self, p)
            worker.task = asyncio.ensure_future(self._run_worker(worker))
            log.info("%s: partition %d assigned (%d stored slots)", self.service, p, len(worker.slots))
        return worker

    async def _run_worker(self, worker: PartitionWorker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the broker refused a record: start over cleanly
            if self.app.should_stop:
                # Stopping (SIGTERM): faust stopped its producer under the last batch. Nothing of it
                # was acked, so the next owner of the partition takes it again.
                log.info("%s[%d]: stopped during a batch (%s); its inputs are taken again by the next owner",
                         self.service, worker.p, exc)
                return
            log.exception("%s[%d]: worker failed; the service restarts from its last commit",
                          self.service, worker.p)
            await self.app.crash(exc)

    async def _stop_workers(self, partitions: set[int]) -> None:
        stopping = [self.workers.pop(p) for p in partitions if p in self.workers]
        for worker in stopping:
            if worker.task is not None:
                worker.task.cancel()
        await asyncio.gather(*(w.task for w in stopping if w.task is not None), return_exceptions=True)

    # ---- what workers ask ----------------------------------------------------------------------

    def _tp(self, topic: str, partition: int) -> Any:
        from faust.types import TP

        return TP(topic, partition)

    def highwater(self, topic: str, partition: int) -> Optional[int]:
        try:
            return self.app.consumer.highwater(self._tp(topic, partition))
        except Exception:  # noqa: BLE001 - not assigned (any more) or not fetched yet
            return None

    def committed(self, topic: str, partition: int) -> Optional[int]:
        return self.app.consumer._committed_offset.get(self._tp(topic, partition))

    def end_offset_since(self, topic: str, partition: int, since: float, wake: Callable[[], None]) -> Optional[int]:
        """The partition's end offset as the broker gave it in answer to a question asked at or after
        ``since`` (time.monotonic()); None while that is not known yet: it is asked (for every
        worker's partitions at once) and ``wake`` is called with the answer."""
        known = self._ends.get((topic, partition))
        if known is not None and known[1] >= since:
            return known[0]
        self._ends_wanted.add((topic, partition))
        self._ends_waiters.add(wake)
        if self._ends_task is None or self._ends_task.done():
            self._ends_task = asyncio.ensure_future(self._ask_ends())
        return None

    async def _ask_ends(self) -> None:
        await asyncio.sleep(0)  # the other workers' questions of this moment go along
        while self._ends_wanted:
            tps, self._ends_wanted = sorted(self._ends_wanted), set()
            waiters, self._ends_waiters = self._ends_waiters, set()
            asked = time.monotonic()
            try:
                ends = await asyncio.wait_for(self.roster.end_offsets(tps), 10)
            except Exception as exc:  # noqa: BLE001 - the broker is away: the workers wait and ask again
                log.warning("%s: asking the broker for end offsets failed (%s: %s); asking again",
                            self.service, type(exc).__name__, exc)
                await asyncio.sleep(1.0)
                ends = {}
            for tp, end in ends.items():
                self._ends[tp] = (end, asked)
            for wake in waiters:
                wake()

    async def read_range(self, topic: str, partition: int, start: int, end: int, timeout: float) -> list[Any]:
        """The records at offsets ``start`` to ``end - 1`` of ``topic``'s ``partition``, read with a
        client of its own (faust's would drop them as already seen), as events the worker takes."""
        from types import SimpleNamespace

        from aiokafka import AIOKafkaConsumer, TopicPartition

        from services.common.kafka_config import aiokafka_kwargs

        consumer = AIOKafkaConsumer(**aiokafka_kwargs(self.cfg), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        out: list[Any] = []
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline and await consumer.position(tp) < end:
                for m in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    if start <= m.offset < end:
                        message = SimpleNamespace(topic=m.topic, partition=m.partition, offset=m.offset, key=m.key,
                                                  timestamp=(m.timestamp or 0) / 1000)
                        out.append(SimpleNamespace(message=message, value=m.value))
        finally:
            await consumer.stop()
        return out

    def pause(self, topic: str, partition: int) -> None:
        self._at_client("pause", topic, partition)

    def resume(self, topic: str, partition: int) -> None:
        self._at_client("resume", topic, partition)

    def _at_client(self, action: str, topic: str, partition: int) -> None:
        """Pause or resume fetching in aiokafka itself, in the thread faust runs it in. Not with
        faust's pause_partitions: that only filters what was fetched, and it drops the rest of a
        fetched batch of a partition paused meanwhile, which faust then counts as a gap and commits
        over (the soak stalled on such records at the end of a partition). aiokafka keeps its
        position at the last record handed over and fetches the rest again after the resume."""
        from aiokafka import TopicPartition

        thread = self.app.consumer._thread
        client = thread._ensure_consumer()
        thread.thread_loop.call_soon_threadsafe(getattr(client, action), TopicPartition(topic, partition))

    def reapply_pauses(self) -> None:
        """A rebalance gives the client fresh partition states, all fetching: pause again what the
        workers that keep their partition hold paused."""
        for worker in self.workers.values():
            for buf in worker.inputs.values():
                if buf.paused:
                    self.pause(buf.topic, worker.p)


def build_stream_app(proc: Processor, settings: Settings, cfg: KafkaConfig, follows: tuple[str, ...] = (),
                     emits_marks: bool = False) -> StreamDriver:
    return StreamDriver(proc, settings, cfg, follows, emits_marks)


def topics_for(cfg: KafkaConfig, service: str, follows: tuple[str, ...]) -> dict[str, dict]:
    return internal_topics(cfg, service, follows)
