"""Benchmark: the notifier's write path against a raw asyncpg COPY of the same rows (run by hand).

    .venv/bin/python tests/bench/bench_notifier.py [--versions 1000000] [--batch 500] [--json OUT]

The task versions are real ones: those ``vpa replay`` of a simulated company (1,000 VPAs, 180
days) emits, each as the services publish it (one history entry), repeated under new task ids
until there are ``--versions`` of them, as JSON bytes the way they arrive from ``dashlet.tasks``.

* ceiling: ``copy_records_to_table`` of (task_id, version, doc) into a plain table with a jsonb
  column, in batches of the same size, on its own connection;
* the notifier: each batch of records as the notifier's loop handles what it took off the
  topic: the check of every version (the compiled one; the full pydantic validation only for
  what it does not accept), done while the store writes the batch before, then
  ``StoreWriter.write_steps``: ``PostgresTaskStore.apply_raw`` (the versioned upsert that also
  folds history, keeps ``task_versions`` and NOTIFYs) over the connections the notifier uses
  (``VPA_NOTIFIER_WRITE_CONNECTIONS``, each task on one of them).

Kafka is not part of it (the consume side is measured by bench_kafka.py). Uses $DATABASE_URL,
each run in a fresh schema.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import asyncpg  # noqa: E402

from bench_replay import stream  # noqa: E402
from services.app.entrypoints import replay  # noqa: E402
from services.config.settings import Settings  # noqa: E402
from schemas.topics import Topic  # noqa: E402
from services.broker.port import Record  # noqa: E402
from services.config.process import NotifierConfig, StoreConfig  # noqa: E402
from services.notifier.batches import task_steps  # noqa: E402
from services.notifier.service import StoreWriter, after  # noqa: E402
from services.store.postgres import PostgresTaskStore  # noqa: E402


def versions(n: int) -> list[bytes]:
    runner = replay([str(stream(1000, 180))], Settings(), keep_versions=True)
    base = runner.drain_tasks()
    out: list[bytes] = []
    round_ = 0
    while len(out) < n:
        for task in base:
            if len(out) == n:
                break
            t = dict(task, task_id=f"{task['task_id']}#{round_}") if round_ else task
            out.append(json.dumps(t, ensure_ascii=False).encode())
        round_ += 1
    return out


async def copy_ceiling(url: str, raws: list[bytes], batch: int) -> float:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"CREATE TABLE {schema}.rows (task_id text, version int, doc jsonb)")
        rows = []
        for raw in raws:  # the ids a COPY needs, read without validation
            obj = json.loads(raw)
            rows.append((obj["task_id"], obj["version"], raw.decode()))
        await conn.execute("CHECKPOINT")  # each phase starts from a clean checkpoint (see settle)
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            await conn.copy_records_to_table("rows", records=rows[i:i + batch], schema_name=schema)
        took = time.perf_counter() - started
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        return took
    finally:
        await conn.close()


async def notifier_path(url: str, raws: list[bytes], batch: int, connections: int) -> float:
    """What the notifier does with each batch it takes off ``dashlet.tasks``, on records as the
    consumer hands them over (no version is refused, so nothing reaches the DLQ)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = await PostgresTaskStore.connect(url, schema=schema)
    writer = StoreWriter(producer=None, store_cfg=StoreConfig(), store=store,
                         connections=connections)
    records = [Record(Topic.tasks, 0, offset, json.loads(raw)["task_id"].encode(), raw, 0)
               for offset, raw in enumerate(raws)]
    try:
        await store._pool.execute("CHECKPOINT")  # noqa: SLF001 - as the ceiling: from a clean checkpoint
        started = time.perf_counter()
        writing = None
        for i in range(0, len(records), batch):  # as the notifier's loop: check one, write the one before
            writing = await after(writing, writer.write_steps(task_steps(records[i:i + batch])))
        if writing is not None:
            await writing
        took = time.perf_counter() - started
        stored = await store._pool.fetchval("SELECT count(*) FROM tasks")  # noqa: SLF001 - a check of the run
        assert stored == len({r.key for r in records}), stored
    finally:
        await store.close()
    conn = await asyncpg.connect(url)
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()
    return took


async def amain(args: argparse.Namespace) -> dict:
    url = os.environ["DATABASE_URL"]
    raws = versions(args.versions)
    size = sum(map(len, raws)) / len(raws)
    load0 = os.getloadavg()[0]
    ceiling = await copy_ceiling(url, raws, args.batch)
    ours = await notifier_path(url, raws, args.batch, args.connections)
    n = len(raws)
    res = {"versions": n, "batch": args.batch, "connections": args.connections, "avg_bytes": size, "copy_s": ceiling, "copy_per_s": n / ceiling,
           "notifier_s": ours, "notifier_per_s": n / ours, "ratio": ceiling / ours,
           "load_avg": (load0 + os.getloadavg()[0]) / 2}
    print(f"{n:,} task versions ({size:,.0f} B each), batches of {args.batch}: raw COPY {res['copy_per_s']:,.0f}/s "
          f"({ceiling:.1f} s); notifier (validate + versioned upsert + history + task_versions + NOTIFY) "
          f"{res['notifier_per_s']:,.0f}/s ({ours:.1f} s); ratio {res['ratio']:.2f}; load {res['load_avg']:.2f}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--connections", type=int, default=NotifierConfig().notifier_write_connections,
                    help="connections the notifier writes over (default: as deployed)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = asyncio.run(amain(args))
    if args.json:
        Path(args.json).write_text(json.dumps({"notifier": res}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
