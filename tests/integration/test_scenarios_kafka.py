"""Every scenario of tests/scenarios/ through the Kafka runner, compared with `vpa replay`.

Each scenario gets a fresh pipeline (contract topics recreated, a new consumer-group prefix, a new
database, the four stream services as OS processes) and is produced at once, all topics by one
producer, with no pacing: the runner merges a partition's inputs in time order itself. DESIGN 5.26:
once every partition has seen the final tick, what the AT sees equals the embedded runner's.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.harness import Pipeline, replay_tasks

pytestmark = pytest.mark.integration

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*/*.jsonl"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{p.parent.name}/{p.stem}" for p in SCENARIOS])
async def test_kafka_runner_matches_replay(scenario: Path, database_url, tmp_path):
    envelopes = [json.loads(line) for line in scenario.read_text().splitlines() if line.strip()]
    want = replay_tasks(envelopes, tmp_path)
    async with Pipeline(database_url, tmp_path, VPA_CLOCK="stream") as pipe:
        # In file order, as an upstream writes them; replay sorts by occurred_at, the runner merges.
        await pipe.produce(envelopes)
        got = await pipe.settle(calm=2.0)
        # Every field but the bookkeeping of versions (a roster change may reach a partition's
        # tasks as another sequence of versions; what the AT sees must be the same).
        diffs = all_field_differences(want, got)
        assert diffs == [], f"Kafka runner differs from replay for {scenario.name}:\n" + "\n".join(diffs)


IGNORED = {"history", "version", "updated_at"}


def all_field_differences(want: list[dict], got: list[dict]) -> list[str]:
    w, g = {t["task_id"]: t for t in want}, {t["task_id"]: t for t in got}
    out = [f"{tid}: only in {'replay' if tid in w else 'kafka'}" for tid in sorted(set(w) ^ set(g))]
    for tid in sorted(set(w) & set(g)):
        out += [f"{tid}.{k}: replay {w[tid][k]!r} kafka {g[tid].get(k)!r}" for k in w[tid]
                if k not in IGNORED and w[tid][k] != g[tid].get(k)]
    return out
