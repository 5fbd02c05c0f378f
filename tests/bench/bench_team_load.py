"""Benchmark: the dashlet under a whole team's load (issue 27), run by hand or by ``scripts/bench``.

    .venv/bin/python tests/bench/bench_team_load.py [--runner demo|kafka|both] [--vpas 12000]
        [--pages 100] [--users 30] [--think 5] [--loopers 100] [--seconds 60] [--json OUT]

For each runner a live dashlet over a simulated company:
- ``demo``: ``vpa demo --vpas N`` (the embedded pipeline and its own PostgreSQL);
- ``kafka``: every Kafka service (``vpa run``) over the same company produced to the broker
  ($KAFKA_BOOTSTRAP_SERVERS, $DATABASE_URL), drained, and ``vpa run dashlet`` beside them.
The tokens are the company's roster (``VPA_DASHLET_TOKENS``), so every user sees their own work.

Two phases on that dashlet, the load generator in this process (the same two cores):
1. ``team``: ``--pages`` open pages, each holding the live feed, and ``--users`` people working
   with ``--think`` seconds between actions: the three lists, a filtered list, a task's detail,
   "Heute", a VPA's page, and one action in ten a reschedule of one of their reminders. Measured:
   p50/p95/p99 per route, the command's latency, how long until every open page has the change
   (from the POST to the last page's feed event), errors, the server's CPU.
2. ``loop``: ``--loopers`` people doing the same without a pause for half of ``--seconds``: no 5xx,
   and afterwards every task a command touched has as many history entries as versions.
Goals (issue 27): list p95 < 150 ms, command p95 < 300 ms, every page current within 1 s, no 5xx;
looping: no 5xx, no history lost.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
VPA = str(Path(sys.executable).with_name("vpa"))
GOALS = {"list_p95_ms": 150.0, "command_p95_ms": 300.0, "current_p95_s": 1.0}
LIST_ROUTES = ("list cases", "list reminders", "list journey")


def roster(vpas: int, seed: int, start: date, days: int) -> list[tuple[str, str]]:
    """(initials, role) of the simulated company's members: its first records."""
    from services.simulator import SimConfig, simulate

    out = []
    for env in simulate(SimConfig(vpas=vpas, days=days, seed=seed, start=start)):
        if env["type"] != "roster.member_upserted":
            if out:
                break
            continue
        who = (env["data"]["initials"], env["data"]["role"])
        if who not in out:
            out.append(who)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


class Server:
    """A dashlet process (and what it started) whose CPU time we read."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def cpu_seconds(self) -> float:
        try:
            p = psutil.Process(self.proc.pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for q in procs:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def wait_http(url: str, token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
    raise RuntimeError(f"the dashlet at {url} did not answer within {timeout:.0f} s")


def start_demo(vpas: int, seed: int, tokens: str, work: Path) -> Server:
    port = free_port()
    env = dict(os.environ, VPA_DASHLET_TOKENS=tokens, PYTHONUNBUFFERED="1")
    env.pop("DATABASE_URL", None)
    log = work / "demo.log"
    proc = subprocess.Popen([VPA, "demo", "--vpas", str(vpas), "--seed", str(seed), "--port", str(port),
                             "--data-dir", str(work / "demo-pg"), "--summary-seconds", "0"],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return Server(proc, f"http://127.0.0.1:{port}", log)


async def start_kafka(vpas: int, seed: int, days: int, tokens: str, work: Path) -> tuple[Server, Any]:
    """The Kafka services over the company (produced at once, drained), then ``vpa run dashlet``."""
    from services.simulator import SimConfig, simulate
    from tests.integration.harness import Pipeline
    from tests.integration.pipeline import produce_fast

    today = datetime.now(timezone.utc).date()
    envelopes = list(simulate(SimConfig(vpas=vpas, days=days, seed=seed, start=today - timedelta(days=days))))
    from services.config.kafka import KafkaConfig

    # The services as deployed: the test harness waits longer for quiet inputs (1 s, for a busy CI
    # machine), which would count twice in how long a change takes to reach the pages.
    idle = KafkaConfig.model_fields["input_idle_seconds"].default
    pipe = Pipeline(os.environ["DATABASE_URL"], work / "kafka", VPA_CLOCK="catchup", VPA_INPUT_IDLE_SECONDS=str(idle))
    await pipe.__aenter__()
    t0 = time.monotonic()
    await produce_fast(envelopes)
    await pipe.settle(timeout=3600, calm=5)
    print(f"kafka: {len(envelopes):,} envelopes drained in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    port = free_port()
    env = dict(pipe.env, VPA_DASHLET_TOKENS=tokens, VPA_HTTP_PORT=str(port), VPA_HTTP_HOST="127.0.0.1")
    log = work / "dashlet.log"
    proc = subprocess.Popen([VPA, "run", "dashlet"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return Server(proc, f"http://127.0.0.1:{port}", log), pipe


class Load:
    """The figures of one phase."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.sent: dict[tuple[str, int], float] = {}  # (task_id, version) -> when the POST went out
        self.pending: dict[str, float] = {}  # task_id -> POST time, until the answer names no version
        self.arrivals: dict[tuple[str, int], list[float]] = defaultdict(list)
        self.touched: set[str] = set()

    def note(self, route: str, status: int, seconds: float) -> None:
        self.status[route][status] += 1
        if status < 500:
            self.latency[route].append(seconds)


async def timed(http: aiohttp.ClientSession, load: Load, route: str, method: str, path: str, **kw: Any) -> Any:
    t0 = time.monotonic()
    try:
        async with http.request(method, path, **kw) as r:
            body = await r.json(content_type=None)
            load.note(route, r.status, time.monotonic() - t0)
            return r.status, body
    except (aiohttp.ClientError, asyncio.TimeoutError):
        load.note(route, 599, time.monotonic() - t0)
        return 599, None


async def feed(url: str, token: str, load: Load, stop: asyncio.Event, ready: asyncio.Event, counter: list) -> None:
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=None)) as http:
        async with http.get("/api/stream", headers={"Authorization": f"Bearer {token}"}) as r:
            buf = b""
            while not stop.is_set():
                try:
                    chunk = await asyncio.wait_for(r.content.readany(), 1.0)
                except asyncio.TimeoutError:
                    continue
                if not chunk:
                    return
                buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    text = block.decode("utf-8", "replace")
                    if "event: ready" in text:
                        counter[0] += 1
                        if counter[0] >= counter[1]:
                            ready.set()
                    m = re.search(r"^data: (.*)$", text, re.M)
                    if "event: task" in text and m:
                        t = json.loads(m.group(1))
                        load.arrivals[(t["task_id"], t["version"])].append(time.monotonic())


async def user(url: str, token: str, initials: str, load: Load, stop: asyncio.Event, think: float,
               rng: random.Random) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=auth) as http:
        await asyncio.sleep(rng.uniform(0, think or 0.1))
        while not stop.is_set():
            roll = rng.random()
            if roll < 0.1:
                status, body = await timed(http, load, "list own reminders", "GET", "/api/tasks",
                                           params=[("tab", "reminders"), ("assignee", initials), ("status", "waiting"),
                                                   ("status", "open"), ("limit", "20")])
                items = (body or {}).get("items") or []
                if status == 200 and items:
                    rid = rng.choice(items)["task_id"].removeprefix("reminder:")
                    due = (datetime.now(timezone.utc) + timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 600)))
                    body = {"type": "cmd.reminder.reschedule", "vpa_id": rng.choice(items)["vpa_id"],
                            "data": {"reminder_id": rid, "due_at": due.isoformat(timespec="seconds")}}
                    task = next(t for t in items if t["task_id"] == f"reminder:{rid}")
                    body["vpa_id"] = task["vpa_id"]
                    t0 = time.monotonic()
                    st, answer = await timed(http, load, "command", "POST", "/api/commands", json=body)
                    if st == 202:
                        load.touched.add(task["task_id"])
                        load.sent[(task["task_id"], task["version"] + 1)] = t0
            elif roll < 0.45:
                tab = rng.choice(["cases", "reminders", "journey"])
                await timed(http, load, f"list {tab}", "GET", "/api/tasks",
                            params=[("tab", tab), ("sort", "priority"), ("status", "waiting"), ("status", "open"),
                                    ("limit", "50")])
            elif roll < 0.6:
                await timed(http, load, "list filtered", "GET", "/api/tasks",
                            params=[("assignee", initials), ("status", "open"), ("limit", "50")])
            elif roll < 0.75:
                status, body = await timed(http, load, "list filtered", "GET", "/api/tasks",
                                           params=[("assignee", initials), ("limit", "20")])
                items = (body or {}).get("items") or []
                if items:
                    t = rng.choice(items)
                    await timed(http, load, "detail", "GET", f"/api/tasks/{t['task_id']}")
                    await timed(http, load, "vpa page", "GET", f"/api/vpas/{t['vpa_id']}")
            else:
                await timed(http, load, "today", "GET", "/api/today")
            if think:
                await asyncio.sleep(rng.expovariate(1 / think))


async def phase(url: str, logins: list[tuple[str, str, str]], pages: int, users: int, think: float, seconds: float,
                server: Server, seed: int) -> dict:
    load, stop, ready = Load(), asyncio.Event(), asyncio.Event()
    rng = random.Random(seed)
    counter = [0, pages]
    feeds = [asyncio.create_task(feed(url, logins[i % len(logins)][0], load, stop, ready, counter))
             for i in range(pages)]
    if pages:
        await asyncio.wait_for(ready.wait(), 120)
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    at = [x for x in logins if x[2] == "at"] or logins
    workers = [asyncio.create_task(user(url, tok, ini, load, stop, think, random.Random(rng.random())))
               for tok, ini, _ in (at[i % len(at)] for i in range(users))]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*workers, return_exceptions=True)
    wall, cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
    await asyncio.sleep(3)  # the last changes reach the pages
    await asyncio.gather(*feeds, return_exceptions=True)
    current = []
    for key, sent in load.sent.items():
        arrived = load.arrivals.get(key, [])
        if pages and len(arrived) >= pages:
            current.append(sorted(arrived)[pages - 1] - sent)
    lists = [x for r in LIST_ROUTES for x in load.latency[r]]
    out = {
        "pages": pages, "users": users, "think_s": think, "seconds": round(wall, 1),
        "requests": sum(sum(v.values()) for v in load.status.values()),
        "requests_per_s": round(sum(sum(v.values()) for v in load.status.values()) / wall, 1),
        "server_cpu_share": round(cpu / wall, 2),
        "routes": {r: {"n": len(v), "p50_ms": round(pct(v, 50) * 1000, 1), "p95_ms": round(pct(v, 95) * 1000, 1),
                       "p99_ms": round(pct(v, 99) * 1000, 1)} for r, v in sorted(load.latency.items()) if v},
        "status": {r: dict(v) for r, v in sorted(load.status.items())},
        "errors_5xx": sum(n for v in load.status.values() for s, n in v.items() if s >= 500),
        "list_p95_ms": round(pct(lists, 95) * 1000, 1) if lists else None,
        "command_p95_ms": round(pct(load.latency["command"], 95) * 1000, 1) if load.latency["command"] else None,
        "commands": len(load.sent),
        "current_p50_s": round(pct(current, 50), 2) if current else None,
        "current_p95_s": round(pct(current, 95), 2) if current else None,
        "changes_seen_by_every_page": len(current),
    }
    out["touched"] = sorted(load.touched)
    return out


async def history_lost(url: str, token: str, task_ids: list[str]) -> list[str]:
    lost = []
    async with aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {token}"}) as http:
        for task_id in task_ids:
            async with http.get(f"/api/tasks/{task_id}") as r:
                t = await r.json()
            if len(t.get("history") or []) < t.get("version", 0):
                lost.append(task_id)
    return lost


async def run_one(runner: str, args: argparse.Namespace, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    today = datetime.now(timezone.utc).date()
    members = roster(args.vpas, args.seed, today - timedelta(days=60), 75)
    logins = [(f"bench-{ini.lower()}-{n}", ini, role) for n, (ini, role) in enumerate(members)]
    tokens = ",".join(f"{tok}={ini}:{role}" for tok, ini, role in logins)
    t0 = time.monotonic()
    pipe = None
    if runner == "demo":
        server = start_demo(args.vpas, args.seed, tokens, work)
    else:
        server, pipe = await start_kafka(args.vpas, args.seed, args.kafka_days, tokens, work)
    try:
        await wait_http(server.url, logins[0][0], 1800)
        up = time.monotonic() - t0
        print(f"{runner}: up in {up:.0f} s ({len(members)} members)", file=sys.stderr)
        team = await phase(server.url, logins, args.pages, args.users, args.think, args.seconds, server, 1)
        loop = await phase(server.url, logins, 0, args.loopers, 0.0, args.seconds / 2, server, 2)
        lost = await history_lost(server.url, logins[0][0], sorted(set(team.pop("touched")) | set(loop.pop("touched"))))
        loop["history_lost"] = len(lost)
        goals = {
            "list_p95": team["list_p95_ms"] is not None and team["list_p95_ms"] < GOALS["list_p95_ms"],
            "command_p95": team["command_p95_ms"] is not None and team["command_p95_ms"] < GOALS["command_p95_ms"],
            "every_page_current": team["current_p95_s"] is not None and team["current_p95_s"] < GOALS["current_p95_s"],
            "no_5xx": team["errors_5xx"] == 0 and loop["errors_5xx"] == 0,
            "no_history_lost": not lost,
        }
        return {"runner": runner, "vpas": args.vpas, "members": len(members), "up_seconds": round(up, 1),
                "team": team, "loop": loop, "goals": goals}
    finally:
        server.stop()
        if pipe is not None:
            await pipe.__aexit__(None, None, None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", choices=["demo", "kafka", "both"], default="both")
    ap.add_argument("--vpas", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kafka-days", type=int, default=60, help="days of history produced for the Kafka runner")
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--users", type=int, default=30)
    ap.add_argument("--think", type=float, default=5.0)
    ap.add_argument("--loopers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    runners = ["demo", "kafka"] if args.runner == "both" else [args.runner]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        for runner in runners:
            results.append(asyncio.run(run_one(runner, args, Path(tmp) / runner)))
            print(json.dumps(results[-1], indent=1), file=sys.stderr)
    out = {"goals": GOALS, "runs": results, "load_average": os.getloadavg()}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    else:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
