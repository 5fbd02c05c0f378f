"""The notifier: the only writer of the dashlet store. Consumes ``dashlet.tasks`` in batches.

Validation at the edge (a task version must have the shape of DESIGN 4.6), then one batched,
versioned, idempotent write per batch; a failed write is retried with backoff rather than
skipped, so no valid version is lost (the offsets are only committed once it is written).
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from typing import Any, Coroutine, Optional

from schemas.dead_letters import DlqReason
from schemas.topics import Topic
from services.broker.client import GroupConsumer, OutRecord, Producer, Record, send_batch
from services.broker.dead_letters import DeadLetters
from services.broker.topics import app_id
from services.config.kafka import KafkaConfig
from services.config.process import NotifierConfig, StoreConfig
from services.config.settings import Settings
from services.engine.decode import Invalid
from services.notifier.batches import CheckedBatch, Erase, Step, Versions, check_batch
from services.ops import metrics
from services.store import gauges as store_gauges

log = logging.getLogger("vpa.notifier")
SERVICE = "notifier"
UPSTREAM_TOPICS = (Topic.events, Topic.roster)


async def write_batch(store: Any, tasks: list[dict], attempts: int = 0) -> list[str]:
    """Write with retries; gives up only after ``attempts`` tries (0 = keep trying)."""
    delay, tried = 0.2, 0
    while True:
        try:
            changed = await store.apply(tasks)
            metrics.STORE_UP.set(1)  # also where the demo writes: its /metrics tells its store's truth
            metrics.STORE_WRITES.inc(len(changed))
            metrics.STORE_BATCH.observe(len(tasks))
            return changed
        except Exception:  # noqa: BLE001 - any store failure is retried, never dropped
            tried += 1
            metrics.STORE_UP.set(0)
            metrics.STORE_WRITE_ERRORS.inc()
            log.exception("store write failed (try %d), retrying in %.1fs", tried, delay)
            if attempts and tried >= attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def after(writing: Optional[asyncio.Task], write: Coroutine[Any, Any, None]) -> asyncio.Task:
    """Start ``write`` once the write before it (``writing``) is done; it runs on while the caller
    fetches and checks the next batch (one batch in flight, so batches are written in order)."""
    if writing is not None:
        try:
            await writing
        except BaseException:
            write.close()  # never started: its batch is fetched again after the restart
            raise
    started = asyncio.ensure_future(write)
    await asyncio.sleep(0)  # let it send its first statement before the caller's CPU work
    return started


def _header_ms(record: Any, name: str) -> int:
    headers = getattr(record, "headers", None) or ()
    items = headers.items() if isinstance(headers, dict) else headers
    for key, value in items:
        if key == name:
            try:
                return int(value)
            except (TypeError, ValueError):
                return 0
    return 0


def observe_latency(events: list[Any], committed: float) -> None:
    """End to end, to the committed store row: from the input's ``occurred_at`` and from its arrival
    in Kafka (the headers a stream service puts on every task version it sends)."""
    for event in events:
        for source, header in (("occurred_at", "occurred_at_ms"), ("ingested", "ingested_at_ms")):
            ms = _header_ms(event, header)
            if ms > 0:
                metrics.END_TO_END_LATENCY.labels(source).observe(max(0.0, committed - ms / 1000))


class StoreWriter:
    """Makes each batch of ``dashlet.tasks`` records durable: versions the store cannot take go to
    ``vpa.dlq``, every other one into the store, retried for as long as the store is away (refused,
    restarting, a missing socket, a closed pool); only then does the notifier commit the offsets,
    so an offset is committed only after its version is in the store or the DLQ."""

    def __init__(self, producer: Any, store_cfg: StoreConfig, store: Any = None, connections: int = 1) -> None:
        # A batch is what the caller hands over (the notifier's fetch of VPA_NOTIFIER_BATCH records).
        self.producer, self.store_cfg = producer, store_cfg
        self.dead_letters = DeadLetters(SERVICE, on_suppressed=metrics.dlq_log_suppressed(SERVICE))
        self._store: Any = store  # opened on first use from store_cfg when not given
        self._opening = asyncio.Lock()  # parallel writes open one store, not one each
        # A batch's versions are written over this many connections at once, each task always on
        # the same one (by its key), so a task's versions stay in order (issue 22: PostgreSQL
        # works one statement on one core; two connections wrote 1.5 times as much per second).
        self.connections = connections
        self.healthy = True
        self.retrying = False
        self._last_ok = 0.0  # loop time of the last answer from the store

    async def write_steps(self, steps: list[Step]) -> None:
        """Checked steps, in order: a tombstone (a null value, from an erasure) deletes its task;
        the task versions between tombstones are written together."""
        for step in steps:
            if isinstance(step, Versions):
                await self._write_versions(step)
            elif isinstance(step, Erase):
                await self._erase_vpa(step.vpa_id, step.marker_key)
            else:
                await self._delete([step.task_id])

    async def project(self, envelopes: list[Any], tz: Any) -> None:
        """The upstream's envelopes into the read model (profiles, events, roster)."""
        if envelopes:
            await self._retrying("read model", lambda store: store.apply_upstream(envelopes, tz))

    async def _delete(self, task_ids: list[str]) -> None:
        await self._retrying("delete", lambda store: store.delete(task_ids))
        metrics.EVENTS.labels(SERVICE, "erased").inc(len(task_ids))

    async def _erase_vpa(self, vpa_id: str, marker_key: bytes) -> None:
        """An erasure marker: every stored task of the VPA goes, each with a tombstone on the
        compacted dashlet.tasks (tasks a service's retention had forgotten included), then the
        marker's own tombstone, so nothing of the VPA stays on the topic either."""
        task_ids = await self._retrying("read", lambda store: store.task_ids_of(vpa_id))
        tombstones: list[OutRecord] = [(Topic.tasks, t.encode(), None, None, ()) for t in task_ids]
        tombstones.append((Topic.tasks, marker_key, None, None, ()))
        await send_batch(self.producer, tombstones, 60, "the erasure's tombstones")
        await self._retrying("erase", lambda store: store.erase_vpa(vpa_id))  # its profile and events too
        metrics.EVENTS.labels(SERVICE, "erased").inc(len(task_ids))

    async def _retrying(self, what: str, op: Any) -> Any:
        """``op(store)`` until it succeeds: while the store is away (refused, restarting, a missing
        socket, a closed pool) wait with backoff and reconnect. Data errors are the caller's."""
        import asyncpg

        delay = 0.2
        while True:
            store = None
            try:
                store = await self._open()
                result = await op(store)
                self._set_health(True, f"{what} succeeded")
                self.retrying = False
                return result
            except asyncpg.DataError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store is away: wait and try again
                self.retrying = True
                metrics.STORE_WRITE_ERRORS.inc()
                self._set_health(False, f"{what} failed: {type(exc).__name__}: {exc}"[:300])
                log.warning("store %s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
                if store is not None:  # not opened: nothing to close
                    await self._drop(store)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _write_versions(self, versions: Versions) -> None:
        if versions.refused:
            await self._to_dlq(versions.refused)
        # The bytes as they arrived (checked already) go to PostgreSQL, which parses them itself.
        items = [(bytes(rec.value or b""), rec) for rec in versions.good]
        shards: list[list[tuple[bytes, Any]]] = [[] for _ in range(self.connections)]
        for item in items:
            shards[zlib.crc32(item[1].key or b"") % self.connections].append(item)
        # ``_apply`` writes every version PostgreSQL takes (halving around a refused one), so the
        # refused ones only go to the DLQ: nothing is written twice.
        outcomes = await asyncio.gather(*(self._apply(shard) for shard in shards if shard))
        refused = [one for outcome in outcomes for one in outcome]
        if refused:
            await self._to_dlq([(invalid, event) for invalid, (_, event) in refused])
        metrics.EVENTS.labels(SERVICE, "task").inc(len(versions.good))
        observe_latency(versions.good, time.time())

    async def _apply(self, items: list[tuple[bytes, Any]]) -> list[tuple[Invalid, tuple[bytes, Any]]]:
        """Write the task versions ``items`` ((JSON bytes, event)); retries until the store takes
        them. Returns the items PostgreSQL refuses for what they hold (found by halving the batch),
        which no retry can cure."""
        import asyncpg

        try:
            changed = await self._retrying("write", lambda store: store.apply_raw([raw for raw, _ in items]))
        except asyncpg.DataError as exc:  # SQLSTATE class 22: this data, not the store
            if len(items) == 1:
                return [(Invalid(f"the store refuses this task: {exc}"), items[0])]
            half = len(items) // 2
            return await self._apply(items[:half]) + await self._apply(items[half:])
        metrics.STORE_WRITES.inc(len(changed))
        metrics.STORE_BATCH.observe(len(items))
        return []

    async def _open(self) -> Any:
        async with self._opening:
            if self._store is None:
                from services.store.postgres import open_store

                self._store = await open_store(self.store_cfg.url, self.store_cfg.data_dir)
            return self._store

    async def close(self) -> None:
        await self._drop()

    async def _drop(self, failed: Any = None) -> None:
        """Close the store; with ``failed``, only if that is still the open one (a parallel write
        may have opened a new one after the same failure)."""
        if failed is not None and failed is not self._store:
            return
        store, self._store = self._store, None
        if store is not None:
            try:
                await asyncio.wait_for(store.close(), 5)
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    def _set_health(self, ok: bool, detail: str) -> None:
        from services.ops.health import HEALTH

        self.healthy = ok
        if ok:
            self._last_ok = asyncio.get_running_loop().time()
        metrics.STORE_UP.set(1 if ok else 0)
        HEALTH.set("store", ok, detail)

    async def watch(self, interval: float = 5.0) -> None:
        """While no batch comes, ask the store now and then, so /healthz tells even an idle
        notifier's store is away (a batch being retried reports by itself)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)  # a probe period
            if loop.time() - self._last_ok < interval or (not self.healthy and self.retrying):
                continue  # recent answer, or a batch is retrying and reporting already
            try:
                store = await asyncio.wait_for(self._open(), interval)
                await asyncio.wait_for(store.get("__health__"), interval)
                self._set_health(True, "answers")
            except Exception as exc:  # noqa: BLE001 - away: the next batch retries it anyway
                self._set_health(False, f"probe failed: {type(exc).__name__}: {exc}"[:300])
                await self._drop()

    async def _to_dlq(self, rejected: list[tuple[Invalid, Record]]) -> None:
        records: list[OutRecord] = []
        for invalid, rec in rejected:
            metrics.DLQ.labels(SERVICE, invalid.kind.value).inc()
            task_id = rec.key.decode("utf-8", "replace") if rec.key else None
            records.append(self.dead_letters.record(
                DlqReason(invalid.kind, invalid.detail), rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                log_ids={"task_id": task_id}))
        await send_batch(self.producer, records, 60, "the batch's dead letters")


class Notifier:
    """``vpa run notifier``: the group over ``dashlet.tasks``, the writer, the store's gauges."""

    def __init__(self, cfg: KafkaConfig, notifier_cfg: NotifierConfig, store_cfg: StoreConfig,
                 settings: Settings) -> None:
        self.cfg = cfg
        self.producer = Producer(cfg)
        self.writer = StoreWriter(self.producer, store_cfg, connections=notifier_cfg.notifier_write_connections)
        # dashlet.tasks into the store; vpa.events and at.roster into the read model beside it
        self.consumer = GroupConsumer(cfg, app_id(cfg, SERVICE), (Topic.tasks, *UPSTREAM_TOPICS), self,
                                      max_records=notifier_cfg.notifier_batch)
        self.tz = settings.tz
        self.poller = store_gauges.StoreGaugePoller(store_gauges.store_url(store_cfg.url, store_cfg.data_dir),
                                                    settings)
        self.gauge_seconds = notifier_cfg.store_gauge_seconds
        self.failed: Optional[BaseException] = None
        self._writing = asyncio.Lock()  # a batch being written and committed
        self._pending: dict[tuple[str, int], int] = {}  # written, not committed yet

    async def run(self, stop: asyncio.Event) -> None:
        from services.ops.lifecycle import Stopped, until_stopped

        background: list[asyncio.Task] = []
        writing: Optional[asyncio.Task] = None  # the batch the store is writing
        try:
            await until_stopped(stop, self.producer.start())
            await until_stopped(stop, self.consumer.start())
            background = [asyncio.ensure_future(self.writer.watch()), asyncio.ensure_future(self._gauges())]
            delay = 0.2
            while not stop.is_set():
                if writing is not None and writing.done():
                    writing, done = None, writing
                    done.result()  # its failure ends the notifier here
                try:
                    fetched = await self.consumer.fetch(0.2)
                    delay = 0.2
                except Exception as exc:  # noqa: BLE001 - the group or the broker: wait and go on
                    log.warning("notifier: fetching failed (%s: %s); again in %.1f s", type(exc).__name__, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                if fetched:
                    # Checked while the store writes the batch before: one batch in flight, in order.
                    writing = await after(writing, self._write(check_batch(fetched, Topic.tasks)))
                self.writer.dead_letters.flush_log()
            if writing is not None:
                await writing  # stopping: the batch being written is written and committed first
        except Stopped:
            pass
        except Exception as exc:  # noqa: BLE001 - e.g. the broker refused a DLQ record: exit, restart from the commit
            log.exception("the store writer failed; the notifier exits and starts again from its last commit")
            self.failed = exc
        finally:
            if writing is not None and not writing.done():
                writing.cancel()  # the notifier itself was cancelled: so is its write, as before
            for task in background:
                task.cancel()
            await self._commit()
            await self.consumer.stop(1.0)
            await self.producer.stop(1.0)
            await self.writer.close()

    async def _write(self, batch: CheckedBatch) -> None:
        async with self._writing:
            await self.writer.write_steps(batch.steps)
            await self.writer.project(batch.envelopes, self.tz)
            self._pending.update(batch.offsets)
            await self._commit()

    async def _commit(self) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            await self.consumer.commit(pending)

    async def _gauges(self) -> None:
        while True:
            await self.poller.refresh()
            await asyncio.sleep(self.gauge_seconds)

    async def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        """The batch being written finishes first (bounded): its offsets are committed before the
        partitions move; beyond the bound, the next owner writes it again (idempotently)."""
        try:
            await asyncio.wait_for(self._writing.acquire(), 2.0)
        except asyncio.TimeoutError:
            log.warning("notifier: a batch was still being written when its partitions were revoked; "
                        "the next owner writes it again")
            return
        try:
            await self._commit()
        finally:
            self._writing.release()

    async def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        pass

