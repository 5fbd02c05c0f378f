"""Benchmark: end-to-end latency at a steady rate, from produce to the committed store row (run by hand).

    KAFKA_BOOTSTRAP_SERVERS=... DATABASE_URL=... .venv/bin/python tests/bench/bench_latency.py \\
        [--rates 2000,200,200@0] [--seconds 60] [--vpas 3000] [--json OUT]

For each rate (``RATE@IDLE``: with ``VPA_INPUT_IDLE_SECONDS=IDLE`` instead of the default 0.5), a
fresh pipeline of every Kafka service (detector, reminders, journey, notifier; production
settings, stream clock) over a simulated company:

1. warm-up: the company's first ``--warm-up`` records, produced at once, until every group is
   caught up and the store is calm;
2. the next records at a steady ``rate`` per second for ``--seconds``, each sent at its moment
   (Kafka's record timestamp is the send time); then until every group is caught up again;
3. figures: the notifier's ``vpa_end_to_end_latency_seconds{source="ingested"}`` (from an input's
   arrival in Kafka to the committed store row of each task version it caused) over the steady
   phase only, as p50, p99 (linear within the histogram's buckets, like PromQL's
   ``histogram_quantile``) and the bucket that holds the maximum; beside it the raw hop, exact: a
   plain aiokafka consumer of ``vpa.events``, from each record's timestamp to its arrival.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import date
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from services.simulator import SimConfig, simulate  # noqa: E402
from services.simulator.lines import record_of, to_line  # noqa: E402
from tests.integration.harness import Pipeline  # noqa: E402
from tests.integration.pipeline import bootstrap, produce_fast  # noqa: E402

METRIC = "vpa_end_to_end_latency_seconds"


async def histogram(pipe: Pipeline) -> dict[float, float]:
    """Cumulative bucket counts (upper bound -> count) of the notifier's latency from ingestion."""
    from prometheus_client.parser import text_string_to_metric_families

    notifier = next(p for p in pipe.procs if p.service == "notifier")
    status, body = await notifier.get("/metrics")
    if status != 200:
        raise SystemExit(f"the notifier's /metrics did not answer: {body}")
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == f"{METRIC}_bucket" and s.labels.get("source") == "ingested":
                out[float(s.labels["le"])] = s.value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float:
    """PromQL's histogram_quantile over cumulative counts: linear within the bucket."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def max_bucket(buckets: dict[float, float]) -> float:
    """The upper bound of the first bucket that holds every sample (the maximum is at most this)."""
    total = buckets[max(buckets)]
    return next(upper for upper in sorted(buckets) if buckets[upper] >= total)


async def steady(items: list, rate: float, seconds: float) -> tuple[int, float]:
    """Send ``items`` at ``rate`` per second, each at its moment; returns (sent, seconds taken)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all", enable_idempotence=True, linger_ms=1)
    await producer.start()
    sent, pending = 0, []
    started = time.perf_counter()
    try:
        for item in items:
            due = started + sent / rate
            if due - time.perf_counter() > 0.002:
                await asyncio.sleep(due - time.perf_counter())
            if time.perf_counter() - started >= seconds:
                break
            topic, key = record_of(item)
            pending.append(await producer.send(topic, to_line(item), key=key))
            sent += 1
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, time.perf_counter() - started


async def raw_hop(stop: asyncio.Event, out: list[float]) -> None:
    """From each new ``vpa.events`` record's timestamp to its arrival at a plain consumer."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer("vpa.events", bootstrap_servers=bootstrap(), group_id=None,
                                auto_offset_reset="latest", fetch_max_wait_ms=10)
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                out.extend(now - r.timestamp / 1000 for r in records)
    finally:
        await consumer.stop()


def exact(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "p50_ms": 1000 * v[len(v) // 2], "p99_ms": 1000 * v[min(len(v) - 1, int(len(v) * 0.99))],
            "max_ms": 1000 * v[-1]}


async def one_rate(rate: float, idle: str, args: argparse.Namespace, database_url: str, log_dir: Path) -> dict:
    cfg = SimConfig(vpas=args.vpas, days=args.days, seed=7, start=date(2025, 1, 6))
    items = (e for e in simulate(cfg) if isinstance(e, dict))
    warm = list(islice(items, args.warm_up))
    phase = list(islice(items, int(rate * args.seconds)))
    async with Pipeline(database_url, log_dir, metrics=True, VPA_CLOCK="stream", VPA_INPUT_IDLE_SECONDS=idle) as pipe:
        await produce_fast(warm)
        await pipe.settle(timeout=1800, calm=3.0)
        before = await histogram(pipe)
        stop, hops = asyncio.Event(), []
        hop = asyncio.ensure_future(raw_hop(stop, hops))
        await asyncio.sleep(1.0)  # the plain consumer has its partitions (auto_offset_reset=latest)
        sent, took = await steady(phase, rate, args.seconds)
        caught_up_at = time.perf_counter()
        await pipe.settle(timeout=3600, calm=3.0)
        drain_s = time.perf_counter() - caught_up_at
        stop.set()
        await hop
        after = await histogram(pipe)
    buckets = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    versions = buckets.get(float("inf"), 0)
    return {"rate": rate, "input_idle_seconds": float(idle), "sent": sent, "seconds": took, "achieved_per_s": sent / took,
            "drain_after_s": drain_s, "task_versions": versions,
            "p50_s": quantile(0.5, buckets), "p99_s": quantile(0.99, buckets), "max_at_most_s": max_bucket(buckets),
            "within_250ms": buckets.get(0.25, 0) / versions if versions else None,
            "raw_hop": exact(hops), "vpas": args.vpas, "load_avg": os.getloadavg()[0]}


async def amain(args: argparse.Namespace) -> list[dict]:
    database_url = os.environ["DATABASE_URL"]
    results = []
    for spec in args.rates:
        rate_text, _, idle = spec.partition("@")
        rate = float(rate_text)
        with tempfile.TemporaryDirectory(prefix="vpa-bench-latency-") as tmp:
            res = await one_rate(rate, idle or "0.5", args, database_url, Path(tmp))
        hop = res["raw_hop"]
        print(f"{rate:,.0f}/s (VPA_INPUT_IDLE_SECONDS={idle or '0.5'}) for {args.seconds:.0f} s (achieved {res['achieved_per_s']:,.0f}/s, caught up "
              f"{res['drain_after_s']:.0f} s after the last send): {res['task_versions']:,.0f} task versions, "
              f"p50 {res['p50_s'] * 1000:,.0f} ms, p99 {res['p99_s'] * 1000:,.0f} ms, max at most "
              f"{res['max_at_most_s']:,.2f} s; raw hop p50 {hop.get('p50_ms', 0):.1f} ms, "
              f"p99 {hop.get('p99_ms', 0):.1f} ms, max {hop.get('max_ms', 0):.1f} ms", flush=True)
        results.append(res)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", type=lambda s: s.split(","), default=["2000", "200", "200@0"])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--vpas", type=int, default=3000)
    ap.add_argument("--days", type=int, default=400)
    ap.add_argument("--warm-up", type=int, default=20_000)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    results = asyncio.run(amain(args))
    if args.json:
        Path(args.json).write_text(json.dumps({"latency": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
