"""The notifier's writer on a real PostgreSQL and a real broker (issue 22, point 4): batches checked
while the one before is written, each batch's versions over several connections (each task on
one), and a version PostgreSQL refuses found among them and sent to vpa.dlq while the others are
written."""
from __future__ import annotations

import json
import random
import uuid

import asyncpg
import pytest

from schemas.topics import Topic
from services.broker.client import Producer
from services.broker.port import Record
from services.config.kafka import KafkaConfig
from services.config.process import StoreConfig
from services.notifier.batches import task_steps
from services.notifier.service import StoreWriter, after
from services.store.postgres import PostgresTaskStore
from tests.integration.pipeline import read_topic
from tests.unit.store.test_store_rules import make_task

pytestmark = pytest.mark.integration


def versions_of(tasks: int, per_task: int, vpa: str = "V") -> list[Record]:
    """Every task's versions, each with its own history entry, in an order that mixes the tasks
    (a task's own versions keep their order, as on its partition of dashlet.tasks)."""
    rng = random.Random(22)
    queues = {f"case:absence:{vpa}-{t}:A": list(range(1, per_task + 1)) for t in range(tasks)}
    records = []
    while queues:
        task_id = rng.choice(sorted(queues))
        version = queues[task_id].pop(0)
        if not queues[task_id]:
            del queues[task_id]
        entry = {"at": f"2026-11-26T09:{version:02d}:00+01:00", "change": f"Schritt {version}", "by": "detector"}
        task = make_task(task_id, version, status="done" if version == per_task else "open", history=[entry],
                         updated_at=entry["at"])
        records.append(Record(Topic.tasks, 0, len(records), task_id.encode(), json.dumps(task).encode(), 0))
    return records


async def write_all(database_url: str, schema: str, records: list[Record], connections: int) -> list[dict]:
    store = await PostgresTaskStore.connect(database_url, schema=schema)
    producer = Producer(KafkaConfig.from_env("test-store-writer"))  # refused versions go to vpa.dlq
    await producer.start()
    writer = StoreWriter(producer, StoreConfig(), store=store, connections=connections)
    try:
        writing = None
        for i in range(0, len(records), 50):
            writing = await after(writing, writer.write_steps(task_steps(records[i:i + 50])))
        assert writing is not None
        await writing
        return await store.all()
    finally:
        await writer.close()
        await producer.stop()


async def test_several_connections_write_what_one_writes(database_url, pg_schema):
    records = versions_of(tasks=40, per_task=4)
    try:
        one = await write_all(database_url, pg_schema + "_one", records, 1)
    finally:
        conn = await asyncpg.connect(database_url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema}_one CASCADE")
        await conn.close()
    three = await write_all(database_url, pg_schema, records, 3)
    assert one == three
    assert len(three) == 40
    for task in three:  # every version's entry, in version order: no version overtook another
        assert task["version"] == 4 and task["status"] == "done"
        assert [h["change"] for h in task["history"]] == [f"Schritt {v}" for v in range(1, 5)]


async def test_a_version_postgresql_refuses_goes_to_the_dlq_and_the_rest_is_written(database_url, pg_schema):
    vpa = f"V{uuid.uuid4().hex[:8]}"  # this test's keys: vpa.dlq holds other tests' records too
    records = versions_of(tasks=30, per_task=1, vpa=vpa)
    bad = json.loads(records[17].value)
    bad["due_at"] = "2026-11-26T09:00:00+20:00"  # passes both checks; PostgreSQL refuses the offset
    records[17] = Record(Topic.tasks, 0, 17, records[17].key, json.dumps(bad).encode(), 0)
    stored = await write_all(database_url, pg_schema, records, 3)
    assert sorted(t["task_id"] for t in stored) == sorted(r.key.decode() for i, r in enumerate(records) if i != 17)
    ours = await read_topic(Topic.dlq, lambda got: any(r.key == records[17].key for r in got), timeout=30)
    dead = [r for r in ours if r.key and vpa.encode() in r.key]
    assert [r.key for r in dead] == [records[17].key]  # that version only
    assert b"the store refuses this task" in dict(dead[0].headers)["reason"]
