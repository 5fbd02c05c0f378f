"""The Kafka runner of a stream service (DESIGN.md 3): a consumer group in front of one engine per
partition, a thin driver.

* Own consumer group per service (``<prefix>-<service>``); partition numbers of the co-partitioned
  inputs (``vpa.events``, ``vpa.commands``, a followed service's commands) move together and stay
  with their owner where the balance allows (``assignor``).
* One ``PartitionWorker`` per assigned partition: the time-ordered merge of the inputs in front of
  a ``PartitionEngine`` (the same engine the embedded runner uses).
* Per-VPA state in a partition store (memory or RocksDB) that is a copy of the partition's
  compacted changelog topic. A worker that takes a partition over reads the changelog from where
  its copy ends (all of it for a new memory copy, the tail for a RocksDB copy on disk), and then
  continues its inputs right after the last record the state applied. The roster comes from
  ``RosterFeed`` (every worker reads all of ``at.roster``).
* Values on every topic are the plain JSON of the contract.
* Delivery is at least once, with outputs before state (see ``worker``); ids and versions are
  deterministic, so a repeated batch repeats the same task versions, which the store ignores.
* A revoked partition's worker stops within ``REVOKE_GRACE`` seconds, flushing what it applied;
  SIGTERM ends the service within ``STOP_GRACE`` seconds, the last batches flushed.
* In wall and catch-up modes the workers advance their clocks by the wall clock themselves; no
  tick is written to any topic.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Optional

from schemas.topics import CO_PARTITIONED
from services.broker.client import KafkaBroker
from services.broker.dead_letters import DeadLetters
from services.broker.port import TP, Broker, Failure, Unreadable
from services.broker.topics import app_id, changelog_topic, feedback_topic
from services.config.clock_mode import ClockMode
from services.config.kafka import KafkaConfig
from services.config.settings import Settings
from services.core.clock import MachineClock, SystemClock
from services.core.processor import Processor
from services.engine.records import EngineLimits
from services.ops.lifecycle import Stopped, until_stopped
from services.ops.metrics import StreamMetrics, dlq_log_suppressed
from services.runners.kafka.roster_feed import RosterFeed
from services.runners.kafka.slots import TableSlots
from services.runners.kafka.state_store import (
    BATCH_HEADER, BatchReader, PartitionStore, StateFolder, open_store, slot_key, slot_value,
)
from services.runners.kafka.worker import FLUSH_GIVE_UP, PartitionWorker

log = logging.getLogger("vpa.kafka")
REVOKE_GRACE = 2.0  # seconds a revoked partition's worker has to flush before it is cancelled
FLUSH_SETTLE = 60.0  # seconds a failed worker's records in flight get before its partition starts again
RESTORE_TIMEOUT = 600.0  # seconds a changelog read may take before the partition is tried again


class StateLost(RuntimeError):
    """The changelog held slots, the restored copy holds none: a bug, never a quiet fresh start."""


class StreamDriver:
    """Everything a service's workers share: the group, the producer, the stores, the roster feed."""

    def __init__(self, proc: Processor, settings: Settings, cfg: KafkaConfig, follows: tuple[str, ...],
                 emits_marks: bool, machine: Optional[MachineClock] = None, broker: Optional[Broker] = None) -> None:
        self.proc, self.settings, self.cfg = proc, settings, cfg
        self.broker: Broker = broker or KafkaBroker(cfg)
        self.machine = machine or SystemClock()
        self.service = proc.name
        self.mode = ClockMode(cfg.clock_mode)
        self.limits = EngineLimits.of(settings)
        self.follows = follows
        self.emits_marks = emits_marks
        self.co_topics = tuple(t for t in CO_PARTITIONED if t in proc.topics)
        self.followed_topics = {u: feedback_topic(cfg, u) for u in follows}
        self.own_feedback = feedback_topic(cfg, self.service)
        self.changelog = changelog_topic(cfg, self.service)
        self.group = app_id(cfg, self.service)
        self.metrics = StreamMetrics(self.service)
        self.dead_letters = DeadLetters(self.service, on_suppressed=dlq_log_suppressed(self.service))
        self.producer = self.broker.producer()
        self.offsets = self.broker.offsets()
        self.roster = RosterFeed(self.broker, self.machine)
        self.consumer = self.broker.group_consumer(self.group, (*self.co_topics, *self.followed_topics.values()),
                                                   self, on_unreadable=self._unreadable)
        self.workers: dict[int, PartitionWorker] = {}
        self.stores: dict[int, PartitionStore] = {}  # local copies, kept across a rebalance
        self._restoring: dict[int, asyncio.Task] = {}
        self._state_folder: Optional[StateFolder] = None  # RocksDB: this process's, locked
        self._assigned: set[int] = set()
        self._failures: dict[int, int] = {}  # partition -> worker failures in a row (backoff)
        self.failed: Optional[BaseException] = None  # what ended the service
        self.partition_count: Optional[int] = None  # of the inputs: where a VPA's records belong
        self._stop = asyncio.Event()
        # End offsets asked from the broker: (topic, partition) -> (end, time.monotonic() when asked)
        self._ends: dict[TP, tuple[int, float]] = {}
        self._ends_wanted: set[TP] = set()
        self._ends_waiters: set[Callable[[], None]] = set()
        self._ends_task: Optional[asyncio.Future] = None

    # ---- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: join the group, restore assigned partitions, feed their workers."""
        self._stop = stop
        try:
            await until_stopped(stop, self.producer.start())
            await until_stopped(stop, self.offsets.start())
            await until_stopped(stop, self.roster.start())
            counts = {len(await until_stopped(stop, self.broker.partitions(t))) for t in self._inputs()}
            self.partition_count = min(counts) if counts else None
            await until_stopped(stop, self.consumer.start())
            last_report, delay = 0.0, 0.2
            while not stop.is_set():
                try:
                    batch = await self.consumer.fetch(0.2)
                    delay = 0.2
                except Exception as exc:  # noqa: BLE001 - the group or the broker: wait and go on
                    log.warning("%s: fetching failed (%s: %s); again in %.1f s", self.service,
                                type(exc).__name__, exc, delay)
                    await until_stopped(stop, asyncio.sleep(delay))
                    delay = min(delay * 2, 10.0)
                    continue
                for (topic, p), records in batch.items():
                    worker = self.workers.get(p)
                    if worker is not None:
                        worker.offer(topic, records, await self.consumer.position((topic, p)))
                now = time.monotonic()
                if now - last_report > 1.0:
                    last_report = now
                    await self._positions()
                    for worker in list(self.workers.values()):
                        self.metrics.lag(worker)
                    self.metrics.unreadable(self.consumer.unreadable)
        except Stopped:
            pass
        finally:
            await self.shutdown()

    async def _positions(self) -> None:
        """The client's position past transaction markers and records of no worker's interest."""
        for p, worker in list(self.workers.items()):
            for topic in worker.inputs:
                worker.offer(topic, [], await self.consumer.position((topic, p)))

    async def shutdown(self) -> None:
        started = time.monotonic()
        for task in self._restoring.values():
            task.cancel()
        await self._stop_workers(set(self.workers))
        await self.consumer.stop(1.0)
        await self.producer.stop(1.0)
        await self.roster.stop()
        await self.offsets.stop()
        for store in self.stores.values():
            store.close()
        self.stores.clear()
        if self._state_folder is not None:
            self._state_folder.release()
        log.info("%s: stopped in %.2f s", self.service, time.monotonic() - started)

    # ---- the group's decisions ----------------------------------------------------------------

    async def on_revoked(self, partitions: set[TP]) -> None:
        numbers = {p for _, p in partitions}
        started = time.monotonic()
        for p in numbers:
            task = self._restoring.pop(p, None)
            if task is not None:
                task.cancel()
        stopped = await self._stop_workers(numbers)
        self._assigned -= numbers
        if numbers:
            log.info("%s: partitions %s revoked in %.2f s (%d workers stopped)", self.service, sorted(numbers),
                     time.monotonic() - started, stopped)

    async def on_assigned(self, partitions: set[TP]) -> None:
        numbers = {p for _, p in partitions}
        if self.cfg.state_store.value == "memory":
            for p in set(self.stores) - numbers:  # moved elsewhere: the memory copy is not needed now
                self.stores.pop(p).close()
        # A RocksDB copy stays open (and on disk) while the process lives: if the partition comes
        # back, only the changelog's tail is read, and no database is opened twice by one process.
        self._assigned = numbers
        for p in sorted(numbers):
            if p not in self.workers and p not in self._restoring:
                self._start_partition(p)

    def _start_partition(self, p: int, delay: float = 0.0) -> None:
        for topic in self._inputs():
            self.consumer.pause((topic, p))  # nothing is fetched for it until its state is back
        self._restoring[p] = asyncio.ensure_future(self._take_over(p, delay))

    def _inputs(self) -> tuple[str, ...]:
        return (*self.co_topics, *self.followed_topics.values())

    async def _take_over(self, p: int, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            started = time.monotonic()
            store = self.stores.get(p)  # not ``or``: an empty store is falsy, and RocksDB locks its folder
            if store is None:
                store = self.stores[p] = open_store(self.cfg.state_store.value, self._folder(p))
            store, read, cut_off = await self._restore(p, store)
            slots = TableSlots(store)
            worker = PartitionWorker(self, p, slots)
            if cut_off:
                await worker.rewrite(cut_off)  # before anything else this worker writes (BatchReader)
            start = worker.start_offsets()
            for topic in worker.inputs:
                committed = await self.consumer.committed((topic, p))
                # An operator who reset the group's offsets past a batch (README: an unreadable
                # batch) is followed; otherwise the stored state says where the partition stands.
                at = max(start.get(topic, 0), committed or 0)
                if at:
                    self.consumer.seek((topic, p), at)
                worker.inputs[topic].fetched_to = at
            if p not in self._assigned:
                return
            self.workers[p] = worker
            worker.task = asyncio.ensure_future(self._run_worker(worker))
            for topic in worker.inputs:
                self.consumer.resume((topic, p))
            log.info("%s: partition %d assigned: %d stored slots, %d changelog records read in %.2f s",
                     self.service, p, len(slots), read, time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except StateLost as exc:
            log.critical("%s: partition %d: state lost on restore; stopping the service", self.service, p,
                         exc_info=True)
            self.failed = exc
            self._stop.set()
        except Exception:  # noqa: BLE001 - the broker or the disk: try again
            log.exception("%s: taking over partition %d failed; trying again", self.service, p)
            if p in self._assigned:
                self._restoring.pop(p, None)
                self._start_partition(p, delay=self._backoff(p))
            return
        finally:
            if self._restoring.get(p) is asyncio.current_task():
                del self._restoring[p]

    async def _restore(self, p: int, store: PartitionStore) -> tuple[PartitionStore, int, list[str]]:
        """Read the partition's changelog from where ``store`` ends to the broker's end; returns the
        store, the records read, and the keys of a batch cut off by its writer's death."""
        tp = (self.changelog, p)
        ends = await self.offsets.end_offsets([tp])
        end = ends.get(tp, 0)
        if store.changelog_offset > end:
            # The changelog was recreated (or is another cluster's): the copy is not of it.
            log.warning("%s: partition %d: the local state goes to changelog offset %d, the changelog ends at %d; "
                        "reading it again from the start", self.service, p, store.changelog_offset, end)
            store.close()
            if self.cfg.state_store.value == "rocksdb":
                from services.runners.kafka.state_store import RocksStore

                RocksStore.wipe(self._folder(p))
            store = self.stores[p] = open_store(self.cfg.state_store.value, self._folder(p))
        read = 0
        live: set[str] = set()  # keys whose last changelog record applied holds a slot
        batches = BatchReader()
        if store.changelog_offset < end:
            async for batch in self.broker.read_range(tp, store.changelog_offset, end, RESTORE_TIMEOUT,
                                          isolation="read_uncommitted"):
                items = []
                for rec in batch:
                    key = slot_key(rec.key)
                    if key is None:
                        continue
                    tag = next((v for h, v in rec.headers if h == BATCH_HEADER), None)
                    for k, value in batches.add(key, slot_value(rec.value), tag):
                        items.append((k, value))
                        (live.add if value is not None else live.discard)(k)
                store.apply(items, batch[-1].offset + 1)
                read += len(batch)
            store.apply([], end)
            if batches.unfinished:
                log.info("%s: partition %d: %d changelog records of a batch cut off by a crash were left out "
                         "(their inputs are done again; their slots are written again first)", self.service, p,
                         batches.unfinished)
        missing = [k for k in live if store.get(k) is None]
        if missing:
            raise StateLost(f"{self.service}: partition {p}: read {len(live)} slots from {self.changelog}, and the "
                            f"{self.cfg.state_store.value} store lacks {len(missing)} of them (e.g. {missing[0]!r})")
        return store, read, batches.unfinished_keys()

    def _folder(self, p: int) -> str:
        if self._state_folder is None:
            self._state_folder = StateFolder(self.cfg.state_dir, self.group, self.cfg.instance_id)
            log.info("%s: RocksDB state in %s", self.service, self._state_folder.path)
        return self._state_folder.partition(p)

    def _backoff(self, p: int) -> float:
        n = self._failures[p] = self._failures.get(p, 0) + 1
        return min(30.0, 0.5 * 2 ** (n - 1))

    async def _run_worker(self, worker: PartitionWorker) -> None:
        try:
            await worker.run()
            self._failures.pop(worker.p, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the broker refused a record, or did not answer in time
            if self.producer.failure(exc) is Failure.away:
                log.warning("%s[%d]: the broker did not take a batch for %.0f s (%s); the partition starts again "
                            "from its stored state", self.service, worker.p, FLUSH_GIVE_UP, type(exc).__name__)
            else:
                log.exception("%s[%d]: worker failed; the partition starts again from its stored state",
                              self.service, worker.p)
            if self.workers.get(worker.p) is worker:
                del self.workers[worker.p]
                # Its records still in flight land before the partition's state is read again, not
                # after (they would come after the new worker's batches in the changelog).
                if not await self.producer.flush(FLUSH_SETTLE):
                    log.warning("%s[%d]: records of the failed batch still in flight after %.0f s", self.service,
                                worker.p, FLUSH_SETTLE)
                if worker.p in self._assigned:
                    self._start_partition(worker.p, delay=self._backoff(worker.p))

    async def _stop_workers(self, partitions: set[int]) -> int:
        stopping = [self.workers.pop(p) for p in partitions if p in self.workers]
        for worker in stopping:
            worker.stopping = True
            worker.wake.set()
        tasks = [w.task for w in stopping if w.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=REVOKE_GRACE)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%s: %d workers did not finish their batch within %.0f s and were cancelled; "
                            "what they had not written is done again", self.service, len(pending), REVOKE_GRACE)
                await asyncio.wait(pending, timeout=0.5)
                # What the cancelled batches handed to the producer lands now, before the partitions
                # go to their next owner, not after it has read their changelog.
                await self.producer.flush(REVOKE_GRACE)
        return len(stopping)

    # ---- what workers ask ----------------------------------------------------------------------

    def stable_end(self, topic: str, partition: int) -> Optional[int]:
        return self.consumer.stable_end((topic, partition))

    def pause(self, topic: str, partition: int) -> None:
        self.consumer.pause((topic, partition))

    def resume(self, topic: str, partition: int) -> None:
        self.consumer.resume((topic, partition))

    async def commit(self, partition: int, offsets: dict[str, int]) -> None:
        await self.consumer.commit({(topic, partition): off for topic, off in offsets.items()})

    def known_end(self, topic: str, partition: int) -> Optional[tuple[int, float]]:
        """The partition's end offset as the broker last gave it, and when it was asked (the machine
        clock's monotonic seconds); None when never asked."""
        return self._ends.get((topic, partition))

    def ask_end(self, topic: str, partition: int, wake: Callable[[], None]) -> None:
        """Ask the broker for the partition's end offset (for every worker's partitions at once);
        ``wake`` is called with the answer."""
        self._ends_wanted.add((topic, partition))
        self._ends_waiters.add(wake)
        if self._ends_task is None or self._ends_task.done():
            self._ends_task = asyncio.ensure_future(self._ask_ends())

    async def _ask_ends(self) -> None:
        await asyncio.sleep(0)  # the other workers' questions of this moment go along
        while self._ends_wanted:
            tps, self._ends_wanted = sorted(self._ends_wanted), set()
            waiters, self._ends_waiters = self._ends_waiters, set()
            asked = self.machine.monotonic()
            try:
                ends = await asyncio.wait_for(self.offsets.end_offsets(tps), 10)
            except Exception as exc:  # noqa: BLE001 - the broker is away: the workers wait and ask again
                log.warning("%s: asking the broker for end offsets failed (%s: %s); asking again",
                            self.service, type(exc).__name__, exc)
                await asyncio.sleep(1.0)
                ends = {}
            for tp, end in ends.items():
                self._ends[tp] = (end, asked)
            for wake in waiters:
                wake()

    def _unreadable(self, bad: Unreadable) -> None:
        log.error("%s: %s[%d]: the batch at offset %d cannot be read (%s); the partition stops there. See "
                  "README, Troubleshooting: 'a batch that cannot be read'", self.service, bad.topic, bad.partition,
                  bad.offset, bad.reason)


def build_stream_app(proc: Processor, settings: Settings, cfg: KafkaConfig, follows: tuple[str, ...] = (),
                     emits_marks: bool = False) -> StreamDriver:
    return StreamDriver(proc, settings, cfg, follows, emits_marks)
