"""Benchmark: dashlet store write throughput by batch size (a plain script, not part of pytest).

    .venv/bin/python tests/bench/bench_store.py [--versions 20000] [--batches 1,100,500]

Writes the same task versions (N/5 tasks with versions 1..5, arriving round by round like a
stream of updates) once per batch size, each time into a fresh schema, one batch after the other
as the notifier does. Reports versions/s as ratios against the batch-of-1 run of the same
invocation, since absolute figures depend on the machine. Uses $DATABASE_URL, else an embedded
PostgreSQL in a temporary folder.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

import asyncpg

from services.store import embedded_pg
from services.store.postgres import PostgresTaskStore

VERSIONS_PER_TASK = 5


def task_versions(count: int) -> list[dict]:
    tasks = max(1, count // VERSIONS_PER_TASK)
    out = []
    for version in range(1, VERSIONS_PER_TASK + 1):
        for n in range(tasks):
            at = f"2026-11-{20 + version:02}T09:{n % 60:02}:00+01:00"
            out.append({
                "task_id": f"case:absence:V-{n:05}:A{n}", "tab": "cases", "kind": "absence", "stage": None,
                "vpa_id": f"V-{n:05}", "vpa_name": "Anna Muster", "status": "open", "priority": "normal",
                "reasons": ["long"], "title": "Lange Abwesenheit", "action": "Assistentin ansprechen",
                "owner": "AB", "assignee": ["AB", "CD", "EF"][n % 3], "due_at": at, "message_draft": None,
                "created_at": "2026-11-21T09:00:00+01:00", "updated_at": at, "version": version,
                "history": [{"at": at, "change": f"Version {v}", "by": "detector"} for v in range(1, version + 1)],
            })
    return out[:count]


async def run(url: str, versions: list[dict], batch: int) -> float:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = await PostgresTaskStore.connect(url, schema=schema)
    try:
        start = time.perf_counter()
        for i in range(0, len(versions), batch):
            await store.apply(versions[i:i + batch])
        elapsed = time.perf_counter() - start
        top = {t["version"] for t in await store.all()}
        assert top == {VERSIONS_PER_TASK}, f"unexpected final versions {top}"
        return elapsed
    finally:
        await store.close()
        conn = await asyncpg.connect(url)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


async def main(url: str, count: int, batches: list[int]) -> None:
    versions = task_versions(count)
    print(f"{len(versions)} task versions ({len(versions) // VERSIONS_PER_TASK} tasks x {VERSIONS_PER_TASK})")
    print(f"{'batch':>6} {'seconds':>9} {'versions/s':>11} {'vs batch 1':>11}")
    baseline = None
    for batch in batches:
        seconds = await run(url, versions, batch)
        rate = len(versions) / seconds
        baseline = baseline or (rate if batch == 1 else None)
        ratio = f"{rate / baseline:10.1f}x" if baseline else f"{'-':>11}"
        print(f"{batch:>6} {seconds:>9.2f} {rate:>11.0f} {ratio}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--batches", default="1,100,500", help="comma separated; put 1 first for the baseline")
    args = parser.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]
    database_url = os.environ.get("DATABASE_URL")
    data_dir = None
    if not database_url:
        data_dir = os.path.join(tempfile.mkdtemp(prefix="bench-pg-"), "data")
        database_url = embedded_pg.start(data_dir)
    try:
        asyncio.run(main(database_url, args.versions, sizes))
    finally:
        if data_dir:
            embedded_pg.stop(data_dir)
