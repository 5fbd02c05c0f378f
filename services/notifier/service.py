"""The notifier: the only writer of the dashlet store. Consumes ``dashlet.tasks`` in batches.

Validation at the edge (a task version must have the shape of DESIGN 4.6), then one batched,
versioned, idempotent write per batch; a failed write is retried with backoff rather than
skipped, so no valid version is lost (the offsets are only committed once it is written).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Union

from pydantic import ValidationError

from schemas.task import Task
from services.common import metrics
from services.common.kafka_config import KafkaConfig, faust_app_kwargs
from services.common.service_config import NotifierConfig, StoreConfig
from services.common.settings import Settings
from services.notifier import store_gauges

log = logging.getLogger("vpa.notifier")
SERVICE = "notifier"


def parse_task(raw: bytes) -> Union[dict, str]:
    """The task dict, or the reason it is not a valid task version."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"undecodable: {exc}"
    try:
        # Strict JSON validation: datetimes must be RFC 3339 strings with an offset, so nothing
        # reaches the store that PostgreSQL would refuse (a refused batch would be retried forever).
        Task.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return f"invalid: task {'.'.join(map(str, first['loc']))}: {first['msg']}"
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


def build_notifier_app(cfg: KafkaConfig):
    import faust

    from services.common.kafka_runner import dlq_headers, watch_lag
    from services.notifier.store import open_store

    app = faust.App(
        f"{cfg.group_prefix}-notifier",
        key_serializer="raw", value_serializer="raw", web_enabled=False,
        consumer_auto_offset_reset="earliest",
        **faust_app_kwargs(cfg),
    )
    tasks_topic = app.topic("dashlet.tasks", partitions=cfg.partitions)
    dlq_topic = app.topic("vpa.dlq", partitions=cfg.partitions)
    notifier_cfg = NotifierConfig.from_env()
    batch_size = notifier_cfg.notifier_batch
    store_cfg = StoreConfig.from_env()
    holder: dict[str, Any] = {}

    async def store() -> Any:
        if "store" not in holder:
            holder["store"] = await open_store(store_cfg.url, store_cfg.data_dir)
        return holder["store"]

    @app.agent(tasks_topic, name="notifier-store-writer")
    async def write(stream):  # noqa: ANN001
        async for events in stream.take_events(batch_size, within=0.2):
            good: list[dict] = []
            for ev in events:
                parsed = parse_task(ev.value)
                if isinstance(parsed, str):
                    m = ev.message
                    metrics.DLQ.labels(SERVICE, metrics.dlq_kind(parsed)).inc()
                    await dlq_topic.send(key=ev.key, value=ev.value or b"",
                                         headers=dlq_headers(parsed, SERVICE, m.topic, m.partition, m.offset))
                else:
                    good.append(parsed)
            if good:
                await write_batch(await store(), good)
            metrics.EVENTS.labels(SERVICE, "task").inc(len(good))

    watch_lag(app, SERVICE, {"dashlet.tasks"})
    store_gauges.attach(app, store_cfg.url, store_cfg.data_dir, Settings.from_env(), notifier_cfg.store_gauge_seconds)
    return app
