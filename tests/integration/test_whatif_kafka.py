"""``vpa whatif --from-kafka`` against the real broker (issue 23): the retained history read without
a consumer group gives the same report as the file-based run on the same records."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.simulator import SimConfig, simulate
from tests.integration.harness import write_stream
from tests.integration.pipeline import VPA, bootstrap, produce_fast, recreate_topics

pytestmark = pytest.mark.integration


async def groups() -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        return {g[0] for g in await admin.list_consumer_groups()}
    finally:
        await admin.close()


def whatif(*args: str) -> dict:
    done = subprocess.run([VPA, "whatif", "--json", "--set", "VPA_LONG_ABSENCE_DAYS=14", *args],
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    report.pop("history", None)
    return report | {"stderr": done.stderr}


async def test_from_kafka_equals_the_files_and_joins_no_group(tmp_path: Path):
    await recreate_topics()
    envelopes = list(simulate(SimConfig(vpas=80, days=30, seed=23, start=date(2026, 3, 2))))
    await produce_fast(envelopes)
    path = write_stream(envelopes, tmp_path / "history.jsonl")
    before = await groups()
    from_files = whatif(str(path))
    from_kafka = await asyncio.to_thread(whatif, "--from-kafka")
    assert "history from 2026-03-02" in from_kafka.pop("stderr")
    from_files.pop("stderr")
    assert from_kafka == from_files
    assert from_files["differences"]["count"] > 0  # 14 days instead of 21: more long absences
    assert await groups() == before
