"""Every scenario of tests/scenarios/ through the Kafka runner, compared with `vpa replay`.

Each scenario gets a fresh pipeline: contract topics recreated, a new consumer-group prefix (so
new state changelogs), a new database, and all four stream services as OS processes. DESIGN
5.26: once every partition has seen the final tick, the task fields must equal the embedded
runner's. Compared without ``history``, ``version`` and ``updated_at``: roster changes reach a
partition as a notice handled at that partition's stream time, so intermediate versions (and
the time of the last one) may differ in passing; what the AT sees must not.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from services.common.replay import final_tasks, replay
from services.common.settings import Settings
from tests.integration.pipeline import (
    ServiceProcess, fresh_database, produce_envelopes, quiesce, recreate_topics, service_env, wait_for,
)

pytestmark = pytest.mark.integration

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*/*.jsonl"))
IGNORED = {"history", "version", "updated_at"}
STREAM_SERVICES = ("detector", "reminders", "journey")


def runs(envelopes: list[dict]) -> list[list[dict]]:
    """One envelope at a time, each after the services have caught up with the last one.

    Kafka orders records within a partition of one topic only. The embedded runner handles a
    command a service emits right after its cause; on Kafka it arrives when it arrives, and a
    service that already consumed later events stamps it with its later stream time. Feeding
    the stream one envelope at a time gives the interleaving the embedded runner defines, which
    is what this test compares (DESIGN 5.26); production needs no such pacing.
    """
    return [[e] for e in envelopes]


def differences(want: list[dict], got: list[dict]) -> list[str]:
    w, g = {t["task_id"]: t for t in want}, {t["task_id"]: t for t in got}
    out = []
    for tid in sorted(set(w) | set(g)):
        if tid not in g or tid not in w:
            out.append(f"{tid}: only in {'replay' if tid in w else 'kafka'}")
            continue
        out += [f"{tid}.{k}: replay {w[tid][k]!r} kafka {g[tid][k]!r}" for k in w[tid] if w[tid][k] != g[tid].get(k)]
    return out


def _comparable(task: dict) -> dict:
    return {k: v for k, v in task.items() if k not in IGNORED}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{p.parent.name}/{p.stem}" for p in SCENARIOS])
async def test_kafka_runner_matches_replay(scenario: Path, database_url, tmp_path):
    expected = final_tasks(replay([str(scenario)], Settings()).drain_tasks())
    envelopes = sorted((json.loads(line) for line in scenario.read_text().splitlines() if line.strip()),
                       key=lambda e: e["occurred_at"])  # the replay order (stable)

    await recreate_topics()
    url = await fresh_database(database_url)
    prefix = f"sc-{uuid.uuid4().hex[:8]}"
    env = service_env(url, prefix)
    procs = [ServiceProcess(s, env, tmp_path) for s in (*STREAM_SERVICES, "notifier")]
    groups = [f"{prefix}-{s}" for s in STREAM_SERVICES]
    from services.notifier.store import PostgresTaskStore

    store = await PostgresTaskStore.connect(url)
    try:
        await asyncio.sleep(8)  # let the workers join their groups before the first roster event
        for run in runs(envelopes):
            await produce_envelopes(run)
            assert await quiesce(groups), "services did not catch up within 60 s"

        want = [_comparable(t) for t in expected]

        async def fetch():
            return [_comparable(t) for t in await store.all()]
        got = await wait_for(fetch, lambda ts: ts == want, timeout=120)
        if got != want:
            assert not differences(want, got), f"Kafka runner differs from replay for {scenario.name}:\n" + \
                "\n".join(differences(want, got))
    finally:
        for p in procs:
            p.stop()
        await store.close()
