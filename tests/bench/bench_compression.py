"""Benchmark: what each producer codec costs and saves on the project's own records (run by hand).

    .venv/bin/python tests/bench/bench_compression.py [--records 200000] [--json OUT]

The records are task versions as the stream services write them to ``dashlet.tasks`` (the
project's largest flow; JSON of a few hundred bytes each), from ``vpa replay`` of a simulated
company, repeated under new task ids up to ``--records``. For each codec the project's own
producer (``services.broker.client.Producer``, ``VPA_KAFKA_COMPRESSION``) writes them into a
fresh topic of one partition, and the project's reader drains it again:

* bytes on the wire: the size of the partition's log on the broker (what was sent, in batches);
* produce rate and drain rate (records/s, decompression included), each beside the ``none`` run
  of the same records in the same run (the ratio).

Uses $KAFKA_BOOTSTRAP_SERVERS and $KAFKA_LOG_DIRS (the local broker of scripts/bench).
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

from bench_replay import stream  # noqa: E402
from services.app.entrypoints import replay  # noqa: E402
from services.broker.client import PartitionReader, Producer, wait_all  # noqa: E402
from services.config.kafka import KafkaConfig, load  # noqa: E402
from services.config.settings import Settings  # noqa: E402

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def task_records(n: int) -> list[bytes]:
    path = stream(1000, 60)
    runner = replay([str(path)], Settings(), keep_versions=True)
    versions = [json.dumps({**t, "history": t["history"][-1:]}, ensure_ascii=False).encode()
                for t in runner.drain_tasks()]
    out = []
    i = 0
    while len(out) < n:
        out.append(versions[i % len(versions)].replace(b'"task_id": "', f'"task_id": "{i}-'.encode(), 1))
        i += 1
    return out


def log_bytes(topic: str) -> int:
    folder = Path(os.environ.get("KAFKA_LOG_DIRS") or ROOT / ".cache" / "kafka-bench" / "data" / "kraft") / f"{topic}-0"
    return sum(p.stat().st_size for p in folder.glob("*.log"))


async def one(codec: str, records: list[bytes]) -> dict:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    cfg = load(KafkaConfig, {**os.environ, "VPA_KAFKA_COMPRESSION": codec})
    topic = f"bench-codec-{codec}-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    producer = Producer(cfg)
    await producer.start()
    t0 = time.perf_counter()
    sent = []
    for i, value in enumerate(records):
        sent.append(await producer.send(topic, str(i).encode(), value))
        if len(sent) >= 5000:
            await wait_all(sent, 120, "bench")
            sent.clear()
    await wait_all(sent, 120, "bench")
    produce_s = time.perf_counter() - t0
    await producer.stop()
    await asyncio.sleep(1.0)  # the broker's log segment is written through; its size is read below
    size = log_bytes(topic)
    reader = PartitionReader(cfg)
    await reader.start()
    reader.assign([(topic, 0)])
    await reader.seek((topic, 0), 0)
    got, t0 = 0, time.perf_counter()
    while got < len(records):
        batch = await reader.fetch(1.0, max_records=10_000)
        got += sum(len(v) for v in batch.values())
    drain_s = time.perf_counter() - t0
    await reader.stop()
    await admin.delete_topics([topic])
    await admin.close()
    raw = sum(len(r) for r in records)
    return {"codec": codec, "records": len(records), "json_bytes": raw, "log_bytes": size,
            "bytes_per_record": size / len(records), "produce_per_s": len(records) / produce_s,
            "drain_per_s": len(records) / drain_s}


async def amain(args: argparse.Namespace) -> dict:
    records = task_records(args.records)
    runs = []
    for codec in CODECS:
        r = await one(codec, records)
        runs.append(r)
        print(f"{codec:7} {r['log_bytes'] / 1e6:8.1f} MB on the broker ({r['bytes_per_record']:.0f} B/record), "
              f"produce {r['produce_per_s']:9,.0f}/s, drain {r['drain_per_s']:9,.0f}/s", flush=True)
    base = runs[0]
    for r in runs:
        r["bytes_vs_none"] = r["log_bytes"] / base["log_bytes"]
        r["produce_vs_none"] = r["produce_per_s"] / base["produce_per_s"]
        r["drain_vs_none"] = r["drain_per_s"] / base["drain_per_s"]
    return {"records": args.records, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    result = asyncio.run(amain(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
