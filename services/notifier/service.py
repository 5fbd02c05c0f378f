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
from typing import Any, Union

from pydantic import ValidationError

from schemas.task import Task
from services.common import metrics
from schemas.base import MAX_YEAR, MIN_YEAR
from services.common.decode import poison_in
from services.common.kafka.topics import DLQ_TOPIC, TASKS_TOPIC, app_id, dlq_headers, dlq_value, erased_vpa
from services.common.kafka_config import KafkaConfig, faust_app_kwargs
from services.common.service_config import NotifierConfig, StoreConfig
from services.common.settings import Settings
from services.notifier import store_gauges

log = logging.getLogger("vpa.notifier")
SERVICE = "notifier"


MAX_VERSION = 2**31 - 1  # the store's version column is an integer
_DATETIMES = ("created_at", "updated_at", "due_at")


def parse_task(raw: bytes | None) -> Union[dict, str]:
    """The task dict, or the reason it is not a task version the store can take."""
    if not raw:
        return "undecodable: empty record (a null value or no bytes)"
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"undecodable: {exc}"
    except RecursionError:
        return "invalid: task nested too deeply"
    poison = poison_in(obj)  # U+0000 (PostgreSQL refuses it), deep nesting
    if poison:
        return poison
    try:
        # Strict JSON validation: datetimes must be RFC 3339 strings with an offset, so nothing
        # reaches the store that PostgreSQL would refuse (a refused batch would be retried forever).
        Task.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return f"invalid: task {'.'.join(map(str, first['loc']))}: {first['msg']}"
    if not 0 < obj["version"] <= MAX_VERSION:
        return f"invalid: task version {obj['version']} is outside 1 to {MAX_VERSION}"
    stamps = [obj.get(k) for k in _DATETIMES] + [h.get("at") for h in obj.get("history", [])]
    for value in filter(None, stamps):
        year = int(value[:4]) if value[:4].isdigit() else 0
        if not MIN_YEAR <= year <= MAX_YEAR:
            return f"invalid: task datetime {value} is outside the years {MIN_YEAR} to {MAX_YEAR}"
    return obj


async def write_batch(store: Any, tasks: list[dict], attempts: int = 0) -> list[str]:
    """Write with retries; gives up only after ``attempts`` tries (0 = keep trying)."""
    delay, tried = 0.2, 0
    while True:
        try:
            changed = await store.apply(tasks)
            metrics.STORE_WRITES.inc(len(changed))
            metrics.STORE_BATCH.observe(len(tasks))
            return changed
        except Exception:  # noqa: BLE001 - any store failure is retried, never dropped
            tried += 1
            metrics.STORE_WRITE_ERRORS.inc()
            log.exception("store write failed (try %d), retrying in %.1fs", tried, delay)
            if attempts and tried >= attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def _header_ms(event: Any, name: str) -> int:
    headers = getattr(event, "headers", None) or getattr(event.message, "headers", None) or {}
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
    """Takes task versions off ``dashlet.tasks`` in batches and makes each batch durable: versions
    the store cannot take go to ``vpa.dlq``, every other one into the store, retried for as long as
    the store is away (refused, restarting, a missing socket, a closed pool), and only then are the
    records acked, so an offset is committed only after its version is in the store or the DLQ."""

    def __init__(self, app: Any, store_cfg: StoreConfig, batch_size: int) -> None:
        self.app, self.store_cfg, self.batch_size = app, store_cfg, batch_size
        self.queue: asyncio.Queue = asyncio.Queue(batch_size * 4)  # a full queue holds the agent back
        self._store: Any = None
        self.healthy = True
        self._last_ok = 0.0  # loop time of the last answer from the store

    async def run(self) -> None:
        while True:
            # What is queued now, without lingering: a write in flight lets the next batch gather,
            # so batches are large under a backlog and a lone version is written at once.
            batch = [await self.queue.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self._write(batch)

    async def _write(self, batch: list[tuple[Any, Any]]) -> None:
        """One batch, in order: a tombstone (a null value, from an erasure) deletes its task; the
        task versions between tombstones are written together."""
        run: list[tuple[Any, Any]] = []
        for stream, event in batch:
            vpa_id = erased_vpa(event.key, event.value)
            if (event.value is None and event.key) or vpa_id:
                await self._write_versions(run)
                run = []
                if vpa_id:
                    await self._erase_vpa(vpa_id, event.key)
                else:
                    await self._delete([event.key.decode("utf-8", "replace")])
            else:
                run.append((stream, event))
        await self._write_versions(run)
        for stream, event in batch:
            await stream.ack(event)

    async def _delete(self, task_ids: list[str]) -> None:
        await self._retrying("delete", lambda store: store.delete(task_ids))
        metrics.EVENTS.labels(SERVICE, "erased").inc(len(task_ids))

    async def _erase_vpa(self, vpa_id: str, marker_key: bytes) -> None:
        """An erasure marker: every stored task of the VPA goes, each with a tombstone on the
        compacted dashlet.tasks (tasks a service's retention had forgotten included), then the
        marker's own tombstone, so nothing of the VPA stays on the topic either."""
        task_ids = await self._retrying("read", lambda store: store.task_ids_of(vpa_id))
        producer = self.app.producer
        sent = [await producer.send(TASKS_TOPIC, t.encode(), None, None, None, None) for t in task_ids]
        sent.append(await producer.send(TASKS_TOPIC, marker_key, None, None, None, None))
        await producer.flush()
        for fut in sent:
            if fut.done() and fut.exception() is not None:
                raise fut.exception()
        await self._delete(task_ids)

    async def _retrying(self, what: str, op: Any) -> Any:
        """``op(store)`` until it succeeds: while the store is away (refused, restarting, a missing
        socket, a closed pool) wait with backoff and reconnect. Data errors are the caller's."""
        import asyncpg

        delay = 0.2
        while True:
            try:
                result = await op(await self._open())
                self._set_health(True, f"{what} succeeded")
                return result
            except asyncpg.DataError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store is away: wait and try again
                metrics.STORE_WRITE_ERRORS.inc()
                self._set_health(False, f"{what} failed: {type(exc).__name__}: {exc}"[:300])
                log.warning("store %s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _write_versions(self, batch: list[tuple[Any, Any]]) -> None:
        if not batch:
            return
        good: list[tuple[dict, Any]] = []
        rejected: list[tuple[str, Any]] = []
        for stream, event in batch:
            parsed = parse_task(event.value)
            if isinstance(parsed, str):
                rejected.append((parsed, event))
            else:
                good.append((parsed, event))
        if rejected:
            await self._to_dlq(rejected)
        # The bytes as they arrived (validated above) go to PostgreSQL, which parses them itself.
        items = [(bytes(event.value), event) for _, event in good]
        while items:
            refused = await self._apply(items)
            if not refused:
                break
            await self._to_dlq([(reason, event) for reason, (_, event) in refused])
            gone = {id(item) for _, item in refused}
            items = [item for item in items if id(item) not in gone]
        metrics.EVENTS.labels(SERVICE, "task").inc(len(good))
        observe_latency([event for _, event in good], time.time())

    async def _apply(self, items: list[tuple[bytes, Any]]) -> list[tuple[str, tuple[bytes, Any]]]:
        """Write the task versions ``items`` ((JSON bytes, event)); retries until the store takes
        them. Returns the items PostgreSQL refuses for what they hold (found by halving the batch),
        which no retry can cure."""
        import asyncpg

        try:
            changed = await self._retrying("write", lambda store: store.apply_raw([raw for raw, _ in items]))
        except asyncpg.DataError as exc:  # SQLSTATE class 22: this data, not the store
            if len(items) == 1:
                return [(f"invalid: the store refuses this task: {exc}", items[0])]
            half = len(items) // 2
            return await self._apply(items[:half]) + await self._apply(items[half:])
        metrics.STORE_WRITES.inc(len(changed))
        metrics.STORE_BATCH.observe(len(items))
        return []

    async def _open(self) -> Any:
        if self._store is None:
            from services.notifier.store import open_store

            self._store = await open_store(self.store_cfg.url, self.store_cfg.data_dir)
        return self._store

    async def _drop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                await asyncio.wait_for(store.close(), 5)
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    def _set_health(self, ok: bool, detail: str) -> None:
        from services.common.health import HEALTH

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
            if loop.time() - self._last_ok < interval or (not self.healthy and self.queue.qsize()):
                continue  # recent answer, or a batch is retrying and reporting already
            try:
                store = await asyncio.wait_for(self._open(), interval)
                await asyncio.wait_for(store.get("__health__"), interval)
                self._set_health(True, "answers")
            except Exception as exc:  # noqa: BLE001 - away: the next batch retries it anyway
                self._set_health(False, f"probe failed: {type(exc).__name__}: {exc}"[:300])
                await self._drop()

    async def _to_dlq(self, rejected: list[tuple[str, Any]]) -> None:
        producer = self.app.producer
        sent = []
        for reason, event in rejected:
            m = event.message
            value, truncated = dlq_value(event.value)
            metrics.DLQ.labels(SERVICE, metrics.dlq_kind(reason)).inc()
            log.warning("to vpa.dlq: %s (%s[%s]@%s)", reason[:300], m.topic, m.partition, m.offset,
                        extra={"task_id": m.key.decode("utf-8", "replace") if m.key else None})
            sent.append(await producer.send(DLQ_TOPIC, m.key, value, None, None,
                                            dlq_headers(reason, SERVICE, m.topic, m.partition, m.offset, truncated)))
        await producer.flush()
        for fut in sent:
            if fut.done() and fut.exception() is not None:
                raise fut.exception()


def build_notifier_app(cfg: KafkaConfig):
    import faust

    app = faust.App(
        app_id(cfg, SERVICE), key_serializer="raw", value_serializer="raw", web_enabled=False,
        consumer_auto_offset_reset="earliest", stream_wait_empty=False, **faust_app_kwargs(cfg),
    )
    notifier_cfg, store_cfg = NotifierConfig.from_env(), StoreConfig.from_env()
    writer = StoreWriter(app, store_cfg, notifier_cfg.notifier_batch)
    tasks_topic = app.topic(TASKS_TOPIC, partitions=cfg.partitions, key_type=bytes, value_type=bytes)

    @app.agent(tasks_topic, name="notifier-store-writer")
    async def take(stream):  # noqa: ANN001
        noack = stream.noack()
        async for event in noack.events():
            await writer.queue.put((noack, event))

    @app.task
    async def write() -> None:
        try:
            await writer.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the broker refused a DLQ record: start over
            log.exception("the store writer failed; the notifier restarts from its last commit")
            await app.crash(exc)

    @app.task
    async def watch() -> None:
        await writer.watch()

    store_gauges.attach(app, store_cfg.url, store_cfg.data_dir, Settings.from_env(), notifier_cfg.store_gauge_seconds)
    app.writer = writer
    return app
