"""Benchmark: one detector process draining a preloaded ``vpa.events``, then killed and restarted.

    KAFKA_BOOTSTRAP_SERVERS=... .venv/bin/python tests/bench/bench_kafka.py \\
        [--vpas 100000] [--days 60] [--partitions 6] [--store memory|rocksdb] [--json OUT]

1. ``vpa simulate --kafka`` preloads a simulated company into the contract topics (``vpa.events``
   with ``--partitions`` partitions; 100,000 VPAs over 60 days is about 1,000,000 events there).
2. Client ceilings on the same topic, one after the other: ``kcat`` consuming every record of
   ``vpa.events`` (to /dev/null), and a plain aiokafka loop that only ``json.loads`` each value.
   Then ``vpa replay`` of the same simulated stream (same seed, start and size, as a file: what
   ``bench_replay.py`` runs), the baseline of issue 22's target: one detector drains the backlog at
   least half as fast as the replay works off the same stream (the ratio of their times).
3. ``vpa run detector`` (stream clock, its own group) drains everything; the time runs from its
   start until its group has committed every partition of ``vpa.events`` to the end (its task
   versions are on ``dashlet.tasks`` before it commits). Reported also from its first commit
   (start-up excluded).
4. The detector, now holding every VPA, is killed (SIGKILL) and started again; one new event is
   produced; the time from the restart until its group has committed that event is reported
   (issue 11: within 30 s), with the table store it ran on (``--store``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from bench_replay import replay, stream  # noqa: E402  (the replay baseline: the same stream as a file)

VPA = str(ROOT / ".venv" / "bin" / "vpa")
TOPIC = "vpa.events"


def bootstrap() -> str:
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


async def end_offsets(topic: str) -> dict:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None)
    await c.start()
    try:
        parts: set = set()
        for _ in range(50):
            cluster = await c._client.fetch_all_metadata()
            parts = cluster.partitions_for_topic(topic) or set()
            if parts:
                break
            await asyncio.sleep(0.2)
        return await c.end_offsets([TopicPartition(topic, p) for p in sorted(parts)])
    finally:
        await c.stop()


async def committed(group: str) -> dict:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        return {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items() if tp.topic == TOPIC}
    except Exception:  # noqa: BLE001 - the group does not exist yet
        return {}
    finally:
        await admin.close()


async def aiokafka_loop(total: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    ends = await end_offsets(TOPIC)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None, enable_auto_commit=False,
                         max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20)
    await c.start()
    try:
        c.assign(list(ends))
        await c.seek_to_beginning(*ends)
        started, n = time.perf_counter(), 0
        while n < total:
            batch = await c.getmany(timeout_ms=1000, max_records=10000)
            for msgs in batch.values():
                for m in msgs:
                    json.loads(m.value)
                    n += 1
        return time.perf_counter() - started
    finally:
        await c.stop()


def kcat(total: int) -> float:
    started = time.perf_counter()
    subprocess.run(["kcat", "-b", bootstrap(), "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def changelog_slots(topic: str) -> int:
    """Slots the changelog holds: keys whose last record in their partition is not a tombstone. Per
    partition: every partition keeps its own copy of each AT member's slot under the same key."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(), group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = consumer.assignment() or set()
        while not tps:
            await asyncio.sleep(0.1)
            tps = consumer.assignment()
        ends = await consumer.end_offsets(list(tps))
        last: dict[tuple[int, bytes], bool] = {}

        async def behind() -> bool:  # not any() over awaits: that is an async generator, never iterated
            return any([(await consumer.position(tp)) < end for tp, end in ends.items()])

        while await behind():
            for msgs in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).values():
                for m in msgs:
                    last[(m.partition, m.key)] = m.value is not None
        return sum(last.values())
    finally:
        await consumer.stop()


def restored(log: Path, since: int) -> tuple[int, int]:
    """(slots held, changelog records read) over the partitions the restarted detector logged."""
    import re

    text = log.read_bytes()[since:].decode(errors="replace")
    found = re.findall(r"partition (\d+) assigned: (\d+) stored slots, (\d+) changelog records read", text)
    latest = {p: (int(s), int(r)) for p, s, r in found}
    return sum(s for s, _ in latest.values()), sum(r for _, r in latest.values())


def detector(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([VPA, "run", "detector"], env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            cwd=ROOT, start_new_session=True)


async def wait_committed(group: str, want: dict, proc: subprocess.Popen, timeout: float) -> tuple[float, float]:
    """Seconds until the group committed ``want`` on every partition; and until its first commit."""
    started, first = time.perf_counter(), None
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the detector exited ({proc.returncode})")
        done = await committed(group)
        if first is None and any(v > 0 for v in done.values()):
            first = time.perf_counter() - started
        if all(done.get(tp, -1) >= end for tp, end in want.items()):
            return time.perf_counter() - started, first or 0.0
        await asyncio.sleep(0.5)
    raise SystemExit(f"the detector did not catch up within {timeout} s")


async def amain(args: argparse.Namespace) -> dict:
    env = dict(os.environ, VPA_PARTITIONS=str(args.partitions), PYTHONUNBUFFERED="1")
    t = time.perf_counter()
    sim = subprocess.run([VPA, "simulate", "--vpas", str(args.vpas), "--days", str(args.days), "--seed", "1",
                          "--start", "2026-01-05", "--kafka"], env=env, stderr=subprocess.PIPE, text=True)
    if sim.returncode != 0:  # e.g. topics left with another partition count: the bench wants a fresh broker
        raise SystemExit(f"vpa simulate --kafka failed ({sim.returncode}):\n{sim.stderr[-3000:]}")
    produce_s = time.perf_counter() - t
    ends = await end_offsets(TOPIC)
    total = sum(ends.values())
    print(f"preloaded {total:,} records into {TOPIC} ({len(ends)} partitions) in {produce_s:.0f} s", flush=True)
    kcat_s = kcat(total)
    print(f"kcat: {total / kcat_s:,.0f} records/s ({kcat_s:.1f} s)", flush=True)
    loop_s = await aiokafka_loop(total)
    print(f"aiokafka + json.loads: {total / loop_s:,.0f} records/s ({loop_s:.1f} s)", flush=True)
    path = stream(args.vpas, args.days)
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    rep = replay(path)
    print(f"vpa replay of the same stream: {lines:,} lines in {rep['wall_s']:.0f} s ({lines / rep['wall_s']:,.0f} "
          f"lines/s, peak RSS {rep['peak_rss_mb']:.0f} MB)", flush=True)

    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    state_dir = Path(tempfile.mkdtemp(prefix="vpa-bench-state-"))
    log = ROOT / ".cache" / "bench" / f"detector-{prefix}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    denv = dict(env, VPA_CLOCK="stream", VPA_GROUP_PREFIX=prefix, VPA_METRICS_PORT="0",
                VPA_STATE_STORE=args.store, VPA_STATE_DIR=str(state_dir), VPA_COMMIT_INTERVAL_SECONDS="1",
                VPA_INSTANCE_ID="detector-1")
    group = f"{prefix}-detector"
    load0 = os.getloadavg()[0]
    proc = detector(denv, log)
    try:
        drain_s, first_s = await wait_committed(group, ends, proc, args.timeout)
        load1 = os.getloadavg()[0]
        drain_cpu = cpu_seconds(proc.pid)
        tasks = sum((await end_offsets("dashlet.tasks")).values())
        print(f"ratio to vpa replay (its time over the drain's): {rep['wall_s'] / drain_s:.2f}", flush=True)
        print(f"detector: {total / drain_s:,.0f} records/s from its start ({drain_s:.0f} s; first commit after "
              f"{first_s:.0f} s: {total / max(drain_s - first_s, 1e-9):,.0f}/s after it; {drain_cpu:.0f} s CPU: "
              f"{total / drain_cpu:,.0f}/s of CPU); {tasks:,} task versions "
              f"on dashlet.tasks; store {args.store}", flush=True)
        restarts = {}
        for n, store in enumerate((args.store, "memory" if args.store == "rocksdb" else "rocksdb")):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            # counted after each kill: the event each restart takes moves the clock a year on, and the
            # erasures that are due then change the changelog before the next restart
            live = await changelog_slots(f"{prefix}-detector-detector-state-changelog")
            mark = log.stat().st_size
            restarted = time.perf_counter()
            proc = detector(dict(denv, VPA_STATE_STORE=store), log)
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all")
            await producer.start()
            try:
                env_ = {"event_id": f"bench-after-restart-{prefix}-{n}", "type": "vpa.activity_seen",
                        "occurred_at": "2027-06-01T10:00:00+02:00", "vpa_id": "V-1001", "actor": None,
                        "schema_version": 1, "data": {"channel": "web"}}
                meta = await producer.send_and_wait(TOPIC, json.dumps(env_).encode(), key=b"V-1001")
            finally:
                await producer.stop()
            ends = {tp: (end + 1 if tp.partition == meta.partition else end) for tp, end in ends.items()}
            await wait_committed(group, ends, proc, args.timeout)
            restart_s = time.perf_counter() - restarted
            held, read = restored(log, mark)
            restarts[store] = {"restart_s": restart_s, "slots_held": held, "changelog_records_read": read,
                               "slots_in_changelog": live, "holds_every_slot": held == live}
            print(f"killed and restarted holding {args.vpas:,} VPAs: processing again {restart_s:.1f} s after the "
                  f"restart (store {store}); it holds {held:,} slots, the changelog {live:,}; read {read:,} "
                  f"changelog records", flush=True)
        restart_s = restarts[args.store]["restart_s"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(state_dir, ignore_errors=True)
    return {"vpas": args.vpas, "days": args.days, "partitions": args.partitions, "records": total,
            "produce_s": produce_s, "kcat_s": kcat_s, "kcat_per_s": total / kcat_s, "aiokafka_s": loop_s,
            "aiokafka_per_s": total / loop_s, "detector_s": drain_s, "detector_first_commit_s": first_s,
            "detector_per_s": total / drain_s, "detector_cpu_s": drain_cpu, "detector_per_cpu_s": total / drain_cpu, "ratio_to_aiokafka": loop_s / drain_s, "task_versions": tasks,
            "replay_lines": lines, "replay_s": rep["wall_s"], "replay_per_s": lines / rep["wall_s"],
            "replay_peak_rss_mb": rep["peak_rss_mb"], "ratio_to_replay": rep["wall_s"] / drain_s,
            "restart_s": restart_s, "restarts": restarts, "store": args.store, "load_avg": (load0 + load1) / 2}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vpas", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--store", choices=("memory", "rocksdb"), default="rocksdb")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = asyncio.run(amain(args))
    if args.json:
        Path(args.json).write_text(json.dumps({"kafka": res}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
