"""Benchmark: dashlet API latency over 100,000 tasks in PostgreSQL (a plain script, not part of pytest).

    .venv/bin/python tests/bench/bench_api.py [--tasks 100000] [--rate 200] [--seconds 30]

Fills a fresh schema with ``--tasks`` tasks (20 assignees, about 15% waiting or open, the rest done
or cancelled, as a store looks after months), starts the dashlet in a separate process (so the load
generator does not share its event loop), and sends ``GET /api/tasks?assignee=AB&status=open&limit=50``
at ``--rate`` requests per second (open loop: requests start on schedule whether or not earlier ones
have finished) for ``--seconds``, with ``GET /healthz`` at a tenth of that rate in the same run as the
baseline. Prints p50/p99/max of both and the query plan. Uses $DATABASE_URL, else an embedded
PostgreSQL in a temporary folder.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid

import aiohttp
import asyncpg

ASSIGNEES = ["AB", "CD", "EF", "GH", "IJ", "KL", "MN", "OP", "QR", "ST",
             "UV", "WX", "YZ", "ABC", "BCD", "CDE", "DEF", "EFG", "FGH", "GHI"]
QUERY = "/api/tasks?assignee=AB&status=open&limit=50"


def make_task(n: int, rng: random.Random) -> dict:
    tab, kind = rng.choice([("cases", "absence"), ("cases", "inactive"), ("reminders", "reminder"),
                            ("journey", "journey")])
    status = rng.choices(["open", "waiting", "done", "cancelled"], weights=[10, 5, 75, 10])[0]
    day = 1 + n % 28
    at = f"2026-{1 + n % 11:02}-{day:02}T09:{n % 60:02}:00+01:00"
    return {
        "task_id": f"bench:{tab}:{n:06}", "tab": tab, "kind": kind, "stage": "NEW_0_3" if tab == "journey" else None,
        "vpa_id": f"V-{n % 5000:04}", "vpa_name": "Anna Muster", "status": status,
        "priority": rng.choice(["high", "normal", "normal", "low"]), "reasons": ["long"],
        "title": f"Aufgabe {n}", "action": "Assistentin ansprechen", "owner": ASSIGNEES[n % 20],
        "assignee": ASSIGNEES[n % 20], "due_at": at if tab != "journey" else None, "message_draft": None,
        "created_at": at, "updated_at": at, "version": 1,
        "history": [{"at": at, "change": "Fall eröffnet", "by": "detector"}],
        "evidence": [{"code": "long", "text": "31 Tage: länger als die Schwelle von 21 Tagen.", "event_id": f"e{n}"}],
    }


async def fill(url: str, schema: str, count: int) -> None:
    from services.store.postgres import PostgresTaskStore

    store = await PostgresTaskStore.connect(url, schema=schema)
    rng = random.Random(7)
    try:
        for i in range(0, count, 1000):
            await store.apply([make_task(n, rng) for n in range(i, min(i + 1000, count))])
    finally:
        await store.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        # Settle what a fresh bulk load leaves to do (autovacuum, dirty buffers), so the run measures
        # reads, not the tail of the load.
        await conn.execute("VACUUM ANALYZE tasks")
        await conn.execute("VACUUM ANALYZE task_versions")
        await conn.execute("CHECKPOINT")
        matching = await conn.fetchval("SELECT count(*) FROM tasks WHERE assignee = 'AB' AND status = 'open'")
        plan = await conn.fetch("EXPLAIN ANALYZE SELECT doc, count(*) OVER () FROM tasks WHERE assignee = 'AB' "
                                "AND status = 'open' ORDER BY due_at NULLS LAST, task_id LIMIT 50 OFFSET 0")
    finally:
        await conn.close()
    print(f"{count} tasks written; {matching} match assignee=AB&status=open")
    print("query plan:\n  " + "\n  ".join(r[0] for r in plan))


def serve(url: str, schema: str, port: int) -> None:
    """The dashlet over the filled schema (runs in the child process)."""
    from aiohttp import web

    from services.dashlet.api import build_app
    from services.dashlet.auth import Principal
    from services.store.postgres import PostgresTaskStore

    async def main() -> None:
        store = await PostgresTaskStore.connect(url, schema=schema)

        async def sink(raw: bytes, vpa_id: str):  # no commands in this benchmark
            return None

        runner = web.AppRunner(build_app(store, sink, {"bench": Principal("AB", "at")}), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def load(base: str, rate: float, seconds: float) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"tasks": [], "healthz": []}
    errors: list[str] = []
    headers = {"Authorization": "Bearer bench"}
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=200)) as http:
        for _ in range(50):  # warm up connections and plans
            async with http.get(QUERY, headers=headers) as r:
                await r.read()

        async def one(kind: str, path: str) -> None:
            start = time.perf_counter()
            async with http.get(path, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors.append(f"{path}: {r.status}")
            latencies[kind].append((time.perf_counter() - start) * 1000)
            slowest[int(start - t0)] = max(slowest.get(int(start - t0), 0.0), (time.perf_counter() - start) * 1000)

        pending = []
        slowest: dict[int, float] = {}
        t0 = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one("tasks", QUERY)))
            if i % 10 == 0:
                pending.append(asyncio.create_task(one("healthz", "/healthz")))
        await asyncio.gather(*pending)
        achieved = total / (time.perf_counter() - t0)
    print(f"sent {total} task requests at {achieved:.0f}/s; errors: {len(errors)} {errors[:3]}; "
          f"load average after the run {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("slowest request per second of the run (ms): " + " ".join(f"{slowest[k]:.0f}" for k in sorted(slowest)))
    return latencies


async def bench(url: str, count: int, rate: float, seconds: float) -> None:
    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (figures mean little on a busy machine)")
    await fill(url, schema, count)
    port = 18000 + os.getpid() % 1000
    child = subprocess.Popen([sys.executable, __file__, "--serve", url, schema, str(port)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", "the dashlet did not start"
        lat = await load(f"http://127.0.0.1:{port}", rate, seconds)
        for kind, values in lat.items():
            print(f"{kind:8} n={len(values):5}  p50 {percentile(values, 50):6.2f} ms  "
                  f"p99 {percentile(values, 99):6.2f} ms  max {max(values):6.2f} ms")
    finally:
        child.terminate()
        child.wait(10)
        conn = await asyncpg.connect(url)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(bench(url, args.tasks, args.rate, args.seconds))
        return
    from services.store import embedded_pg

    with tempfile.TemporaryDirectory() as tmp:
        url = embedded_pg.start(os.path.join(tmp, "pg"))
        try:
            asyncio.run(bench(url, args.tasks, args.rate, args.seconds))
        finally:
            embedded_pg.stop(os.path.join(tmp, "pg"))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    main()
