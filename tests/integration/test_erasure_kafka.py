"""`vpa erase VPA_ID` against the Kafka runner (issue 13): the store forgets the VPA's tasks and
their history, every stream service drops its state of the VPA (a tombstone in its changelog), and
each task gets a tombstone on the compacted dashlet.tasks; the other VPAs are untouched."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import STREAM_SERVICES, Pipeline, _partitions
from tests.integration.pipeline import bootstrap
from tests.unit.core.test_erasure import company

pytestmark = pytest.mark.integration


class Lines:
    def __init__(self) -> None:
        self.envelopes: list[dict] = []

    def submit_raw(self, raw: str, origin: str) -> None:
        self.envelopes.append(json.loads(raw))


async def read_all(topic: str) -> list:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                records += msgs
        return records
    finally:
        await consumer.stop()


async def test_vpa_erase_removes_the_vpa_from_store_state_and_topics(database_url, tmp_path):
    lines = Lines()
    company(lines)
    async with Pipeline(database_url, tmp_path, VPA_CLOCK="stream") as pipe:
        await pipe.produce(lines.envelopes)
        before = await pipe.settle()
        gone = {t["task_id"] for t in before if t["vpa_id"] == "V-GONE"}
        assert len(gone) == 3
        vpa = Path(sys.executable).with_name("vpa")
        out = subprocess.run([str(vpa), "erase", "V-GONE", "--reason", "Löschantrag"], env=pipe.env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "3 tasks" in out.stdout
        after = await pipe.settle()
        assert {t["vpa_id"] for t in after} == {"V-STAY"}
        assert await pipe.store.versions(next(iter(gone))) == []  # the history too
        tombstones = {r.key.decode() for r in await read_all("dashlet.tasks") if r.value is None}
        assert tombstones == gone | {"erase:V-GONE"}  # the tasks, and the notifier's erase marker
        for service in STREAM_SERVICES:
            changelog = f"{pipe.prefix}-{service}-{service}-state-changelog"
            records = [r for r in await read_all(changelog) if r.key == b"V-GONE"]
            assert records and records[-1].value is None, service  # its last word on the VPA: a tombstone


async def test_erasure_after_offboarding_removes_tasks_a_retention_had_forgotten(database_url, tmp_path):
    """With a short VPA_TASK_RETENTION_DAYS the services forget closed tasks; the erasure
    VPA_ERASE_AFTER_DAYS after the offboarding still removes every task of the VPA (the
    notifier's erase marker), and nothing of another VPA."""
    lines = Lines()
    company(lines)

    def env(eid: str, type_: str, vpa, at: str, data: dict) -> dict:  # noqa: ANN001
        return {"event_id": eid, "type": type_, "occurred_at": at, "vpa_id": vpa, "actor": None,
                "schema_version": 1, "data": data}
    lines.envelopes += [
        env("off", "vpa.offboarded", "V-GONE", "2026-11-05T09:00:00+01:00", {}),  # its tasks close now
        env("t1", "clock.tick", None, "2026-11-09T09:00:00+01:00", {}),  # tombstones forgotten (1 day)
        env("t2", "clock.tick", None, "2026-11-20T09:00:00+01:00", {}),  # erased (10 days)
    ]
    async with Pipeline(database_url, tmp_path, VPA_CLOCK="stream", VPA_TASK_RETENTION_DAYS="1",
                        VPA_ERASE_AFTER_DAYS="10") as pipe:
        await pipe.produce(lines.envelopes)
        after = await pipe.settle()
        assert {t["vpa_id"] for t in after} == {"V-STAY"}
        latest: dict = {}
        for r in await read_all("dashlet.tasks"):
            latest[r.key.decode()] = r.value
        assert [k for k, v in latest.items() if "V-GONE" in k and v is not None] == []
