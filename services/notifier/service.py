"""The notifier: the only writer of the dashlet store. Consumes ``dashlet.tasks`` in batches.

Validation at the edge (a task version must have the shape of DESIGN 4.6), then one batched,
versioned, idempotent write per batch; a failed write is retried with backoff rather than
skipped, so no valid version is lost (the offsets are only committed once it is written).
"""
from __future__ import annotations

import asyncio
import time
import json
import logging
from typing import Any, Optional, Union

from pydantic import ValidationError

from schemas.base import MAX_YEAR, MIN_YEAR
from schemas.dead_letters import DlqKind, DlqReason
from schemas.task import Task
from schemas.topics import Topic
from services.broker.client import GroupConsumer, Producer, Record, wait_all
from services.broker.dead_letters import DeadLetters
from services.broker.topics import app_id, erased_vpa
from services.config.kafka import KafkaConfig
from services.config.process import NotifierConfig, StoreConfig
from services.config.settings import Settings
from services.engine.decode import Invalid, poison_in
from services.ops import metrics
from services.store import gauges as store_gauges

log = logging.getLogger("vpa.notifier")
SERVICE = "notifier"
UPSTREAM_TOPICS = (Topic.events, Topic.roster)


MAX_VERSION = 2**31 - 1  # the store's version column is an integer
_DATETIMES = ("created_at", "updated_at", "due_at")


def parse_task(raw: bytes | None) -> Union[dict, Invalid]:
    """The task dict, or why it is not a task version the store can take."""
    if not raw:
        return Invalid("empty record (a null value or no bytes)", DlqKind.undecodable)
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Invalid(str(exc), DlqKind.undecodable)
    except RecursionError:
        return Invalid("task nested too deeply")
    poison = poison_in(obj)  # U+0000 (PostgreSQL refuses it), deep nesting
    if poison:
        return Invalid(poison)
    try:
        # Strict JSON validation: datetimes must be RFC 3339 strings with an offset, so nothing
        # reaches the store that PostgreSQL would refuse (a refused batch would be retried forever).
        Task.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return Invalid(f"task {'.'.join(map(str, first['loc']))}: {first['msg']}")
    if not 0 < obj["version"] <= MAX_VERSION:
        return Invalid(f"task version {obj['version']} is outside 1 to {MAX_VERSION}")
    stamps = [obj.get(k) for k in _DATETIMES] + [h.get("at") for h in obj.get("history", [])]
    for value in filter(None, stamps):
        year = int(value[:4]) if value[:4].isdigit() else 0
        if not MIN_YEAR <= year <= MAX_YEAR:
            return Invalid(f"task datetime {value} is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return obj


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

    def __init__(self, producer: Any, store_cfg: StoreConfig, batch_size: int) -> None:
        self.producer, self.store_cfg, self.batch_size = producer, store_cfg, batch_size
        self.dead_letters = DeadLetters(SERVICE, on_suppressed=metrics.dlq_log_suppressed(SERVICE))
        self._store: Any = None
        self.healthy = True
        self.retrying = False
        self._last_ok = 0.0  # loop time of the last answer from the store

    async def write(self, batch: list[Record]) -> None:
        """One batch, in order: a tombstone (a null value, from an erasure) deletes its task; the
        task versions between tombstones are written together."""
        run: list[Record] = []
        for rec in batch:
            vpa_id = erased_vpa(rec.key, rec.value)
            if (rec.value is None and rec.key) or vpa_id:
                await self._write_versions(run)
                run = []
                if vpa_id:
                    await self._erase_vpa(vpa_id, rec.key)
                else:
                    await self._delete([rec.key.decode("utf-8", "replace")])
            else:
                run.append(rec)
        await self._write_versions(run)

    async def project(self, records: list[Record], tz: Any) -> None:
        """The upstream's valid envelopes into the read model (profiles, events, roster); what is
        invalid the stream services send to vpa.dlq, so it is only skipped here."""
        from services.engine.decode import Decoded, decode
        from services.store import projection

        envelopes = []
        for rec in records:
            outcome = decode(rec.value or b"")
            if isinstance(outcome, Decoded) and projection.relevant(outcome.envelope):
                envelopes.append(outcome.envelope)
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
        sent = [await self.producer.send(Topic.tasks, t.encode(), None) for t in task_ids]
        sent.append(await self.producer.send(Topic.tasks, marker_key, None))
        await wait_all(sent, 60, "the erasure's tombstones")
        await self._retrying("erase", lambda store: store.erase_vpa(vpa_id))  # its profile and events too
        metrics.EVENTS.labels(SERVICE, "erased").inc(len(task_ids))

    async def _retrying(self, what: str, op: Any) -> Any:
        """``op(store)`` until it succeeds: while the store is away (refused, restarting, a missing
        socket, a closed pool) wait with backoff and reconnect. Data errors are the caller's."""
        import asyncpg

        delay = 0.2
        while True:
            try:
                result = await op(await self._open())
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
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _write_versions(self, batch: list[Record]) -> None:
        if not batch:
            return
        good: list[tuple[dict, Record]] = []
        rejected: list[tuple[Invalid, Record]] = []
        for rec in batch:
            parsed = parse_task(rec.value)
            if isinstance(parsed, Invalid):
                rejected.append((parsed, rec))
            else:
                good.append((parsed, rec))
        if rejected:
            await self._to_dlq(rejected)
        # The bytes as they arrived (validated above) go to PostgreSQL, which parses them itself.
        items = [(bytes(rec.value or b""), rec) for _, rec in good]
        while items:
            refused = await self._apply(items)
            if not refused:
                break
            await self._to_dlq([(invalid, event) for invalid, (_, event) in refused])
            gone = {id(item) for _, item in refused}
            items = [item for item in items if id(item) not in gone]
        metrics.EVENTS.labels(SERVICE, "task").inc(len(good))
        observe_latency([rec for _, rec in good], time.time())

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
        if self._store is None:
            from services.store.postgres import open_store

            self._store = await open_store(self.store_cfg.url, self.store_cfg.data_dir)
        return self._store

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
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
        sent = []
        for invalid, rec in rejected:
            metrics.DLQ.labels(SERVICE, invalid.kind.value).inc()
            task_id = rec.key.decode("utf-8", "replace") if rec.key else None
            topic, key, value, partition, headers = self.dead_letters.record(
                DlqReason(invalid.kind, invalid.detail), rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                log_ids={"task_id": task_id})
            sent.append(await self.producer.send(topic, key, value, partition, headers))
        await wait_all(sent, 60, "the batch's dead letters")


class Notifier:
    """``vpa run notifier``: the group over ``dashlet.tasks``, the writer, the store's gauges."""

    def __init__(self, cfg: KafkaConfig, notifier_cfg: NotifierConfig, store_cfg: StoreConfig,
                 settings: Settings) -> None:
        self.cfg = cfg
        self.producer = Producer(cfg)
        self.writer = StoreWriter(self.producer, store_cfg, notifier_cfg.notifier_batch)
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
        try:
            await until_stopped(stop, self.producer.start())
            await until_stopped(stop, self.consumer.start())
            background = [asyncio.ensure_future(self.writer.watch()), asyncio.ensure_future(self._gauges())]
            delay = 0.2
            while not stop.is_set():
                try:
                    fetched = await self.consumer.fetch(0.2)
                    delay = 0.2
                except Exception as exc:  # noqa: BLE001 - the group or the broker: wait and go on
                    log.warning("notifier: fetching failed (%s: %s); again in %.1f s", type(exc).__name__, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                if fetched:
                    await self._write(fetched)
                self.writer.dead_letters.flush_log()
        except Stopped:
            pass
        except Exception as exc:  # noqa: BLE001 - e.g. the broker refused a DLQ record: exit, restart from the commit
            log.exception("the store writer failed; the notifier exits and starts again from its last commit")
            self.failed = exc
        finally:
            for task in background:
                task.cancel()
            await self._commit()
            await self.consumer.stop(1.0)
            await self.producer.stop(1.0)
            await self.writer.close()

    async def _write(self, fetched: dict[tuple[str, int], list[Record]]) -> None:
        async with self._writing:
            records = [rec for tp in sorted(fetched) if tp[0] == Topic.tasks for rec in fetched[tp]]
            upstream = [rec for tp in sorted(fetched) if tp[0] != Topic.tasks for rec in fetched[tp]]
            await self.writer.write(records)
            await self.writer.project(upstream, self.tz)
            for tp, recs in fetched.items():
                self._pending[tp] = recs[-1].offset + 1
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

