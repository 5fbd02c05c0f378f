"""``vpa demo``: a simulated company on the embedded runner, an embedded PostgreSQL and the dashlet.

At its first start the demo asks the simulator (``services.simulator``) for a company of about 300
VPAs from 60 days ago to 14 days ahead. Everything up to now is replayed in stream time into the
store; from then on the clock follows the wall clock (a tick a second) and the simulated platform's
events arrive as the wall clock passes them. The simulated AT members stop acting when the demo goes
live: from then on the people working the dashlet are its users.

Restart-safe: the parameters (company, seed, first day, when it went live, login tokens) and every
command accepted from the API (with the occurred_at the server stamped) are kept in the demo's
database (``demo_store``). A restart replays the same simulation merged with that log, so the
rebuilt runner is the one that stopped: task ids and versions come out the same, the store ignores
the versions it already has, and reminders set before the restart can still be completed.
"""
from __future__ import annotations

import asyncio
import errno
import heapq
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional

from aiohttp import web

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.dashlet.api import build_app
from services.dashlet.auth import Principal, hash_token, tokens_from_env
from services.dashlet.whatif_job import WhatIfJobs
from services.notifier.service import write_batch
from services.ops import metrics
from services.runners.embedded.replay import final_tasks
from services.runners.embedded.runner import EmbeddedRunner
from services.store import projection

log = logging.getLogger("vpa.demo")

DEMO_VPAS = 300
DEMO_SEED = 1
HISTORY_DAYS = 60
AHEAD_DAYS = 14
SUMMARY_SECONDS = 5.0
STORE_CHUNK = 500
EXIT_PORT_IN_USE = 3
EXIT_DATA_BUSY = 4
EXIT_FOREIGN_DATA = 5


class EmbeddedPipeline:
    """The embedded runner plus the notifier step into the store, behind one lock."""

    def __init__(self, runner: EmbeddedRunner, store) -> None:  # noqa: ANN001
        self.runner, self.store, self._lock = runner, store, asyncio.Lock()
        self._unwritten: list[dict] = []  # versions drained from the runner, not yet in the store

    async def feed(self, lines: list[str], origin: str) -> None:
        async with self._lock:
            for n, line in enumerate(lines, 1):
                self.runner.submit_raw(line, f"{origin}:{n}")
            await self._flush()

    async def tick(self, now: datetime) -> None:
        async with self._lock:
            self.runner.advance_to(now)
            await self._flush()

    async def command(self, raw: bytes, vpa_id: str) -> Optional[str]:
        arrived = time.time()
        async with self._lock:
            before = len(self.runner.dlq)
            self._submit_command(raw)
            await self._flush()
            _written_since(arrived)
            new = self.runner.dlq[before:]
            return new[0].reason if new else None

    def _submit_command(self, raw: bytes) -> None:
        """A command from the API into the runner, timed like a Kafka worker times a record."""
        started = time.perf_counter()
        self.runner.submit_raw(raw, "api")
        metrics.PROCESSING.labels("embedded").observe(time.perf_counter() - started)

    async def _flush(self) -> None:
        # Versions leave the runner once: until the store has them they are kept here, so a write
        # that fails (or is interrupted) is done again by the next flush, and no version and no
        # history entry is lost (issue 27).
        self._unwritten += self.runner.drain_tasks()
        while self._unwritten:
            chunk = self._unwritten[:STORE_CHUNK]
            await write_batch(self.store, chunk)
            del self._unwritten[:len(chunk)]
        await write_read_model(self.store, self.runner)
        erased = self.runner.drain_erased()  # offboarded VPAs past their retention
        if erased:
            await self.store.delete(erased)


def _written_since(arrived: float) -> None:
    """From a command's arrival to its versions in the store, as the notifier measures it on Kafka."""
    metrics.END_TO_END_LATENCY.labels("ingested").observe(time.time() - arrived)


async def write_read_model(store, runner: EmbeddedRunner) -> None:  # noqa: ANN001
    """The upstream envelopes handed to ``runner`` since the last call into the store's read model
    (profiles, events, roster)."""
    upstream = [e for e in runner.drain_upstream() if projection.relevant(e)]
    for i in range(0, len(upstream), STORE_CHUNK):
        await store.apply_upstream(upstream[i:i + STORE_CHUNK], runner.settings.tz)


# ---- parameters --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoParams:
    vpas: int
    seed: int
    start: date
    days: int
    live_since: datetime  # when the demo first went live: simulated people act only before
    tokens: dict[str, Principal]  # by SHA-256 (``sha256:<hex>``), like VPA_DASHLET_TOKENS: never the token

    def to_json(self) -> dict:
        return {"version": 1, "vpas": self.vpas, "seed": self.seed, "start": self.start.isoformat(),
                "days": self.days, "live_since": self.live_since.isoformat(),
                "tokens": {t: {"initials": p.initials, "role": p.role} for t, p in self.tokens.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "DemoParams":
        return cls(d["vpas"], d["seed"], date.fromisoformat(d["start"]), d["days"],
                   datetime.fromisoformat(d["live_since"]),
                   {t: Principal(p["initials"], p["role"]) for t, p in d["tokens"].items()})


def _second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


# ---- the simulated company as input lines -------------------------------------------------------

@dataclass(frozen=True)
class CompanyFeed:
    lines: list[tuple[float, bytes]]  # (instant, line) in time order: what the demo feeds
    members: list[Principal]          # the roster in the simulator's order


def company_feed(params: DemoParams, tz_name: str, erased: frozenset[str] = frozenset()) -> CompanyFeed:
    """The simulated company's lines, without the VPAs erased with ``vpa erase`` (by hash)."""
    from services.store.postgres import erasure_hash
    from services.simulator import SimConfig, simulate, to_line

    cfg = SimConfig(vpas=params.vpas, days=params.days, seed=params.seed, start=params.start, timezone=tz_name)
    live = params.live_since.timestamp()
    lines: list[tuple[float, bytes]] = []
    members: list[Principal] = []
    for env in simulate(cfg):
        at = datetime.fromisoformat(env["occurred_at"]).timestamp()
        if env["type"].startswith("cmd.") and at > live:
            continue  # the simulated AT stops acting when the demo goes live: the users take over
        if erased and env.get("vpa_id") and erasure_hash(env["vpa_id"]) in erased:
            continue
        if env["type"] == "roster.member_upserted" and all(m.initials != env["data"]["initials"] for m in members):
            members.append(Principal(env["data"]["initials"], env["data"]["role"]))
        lines.append((at, to_line(env)))
    return CompanyFeed(lines, members)


def first_tokens(members: list[Principal], tasks: Iterable[dict] = ()) -> dict[str, Principal]:
    """One login for an AT member and one for a VPA Manager: of each role, the one with the most
    live tasks assigned (the busiest page to show), the first in the roster on a tie."""
    load: dict[str, int] = {}
    for t in tasks:
        if t["status"] in ("waiting", "open") and t.get("assignee"):
            load[t["assignee"]] = load.get(t["assignee"], 0) + 1
    tokens: dict[str, Principal] = {}
    for role in ("at", "vpa_manager"):
        ranked = sorted((m for m in members if m.role == role), key=lambda m: -load.get(m.initials, 0))
        if ranked:
            tokens[secrets.token_urlsafe(16)] = ranked[0]
    return tokens


# ---- the live pipeline ---------------------------------------------------------------------------

class LiveDemo(EmbeddedPipeline):
    """The embedded pipeline following the wall clock, with the simulated platform still writing.

    Every instant handed to the runner is a whole second and never goes back (``mark``). A command
    from the API is stamped with that instant and logged before it is handled; simulated events up
    to the same instant go first. That is exactly the order ``rebuild`` replays, so a restart gets
    the same runner back."""

    def __init__(self, runner: EmbeddedRunner, store, inputs, upcoming: Iterable[tuple[float, bytes]],  # noqa: ANN001
                 tz, mark: datetime, wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:  # noqa: ANN001
        super().__init__(runner, store)
        self.inputs, self.tz, self.mark, self._wall = inputs, tz, mark, wall
        self.upcoming: deque[tuple[float, bytes]] = deque(upcoming)
        self._fed = 0
        self.erased: set[str] = set()  # hashes of the VPAs erased (the demo_state 'erased' list)

    def _instant(self) -> datetime:
        self.mark = max(_second(self._wall()).astimezone(self.tz), self.mark)
        return self.mark

    def _feed_until(self, t: datetime) -> None:
        limit = t.timestamp()
        while self.upcoming and self.upcoming[0][0] <= limit:
            _, line = self.upcoming.popleft()
            self._fed += 1
            self.runner.submit_raw(line, f"simulation:live:{self._fed}")

    async def follow(self) -> None:
        async with self._lock:
            t = self._instant()
            self._feed_until(t)
            self.runner.advance_to(t)
            await self._flush()

    async def erase(self, hashes: set[str]) -> list[str]:
        """``vpa erase`` was run against this demo's database: the runner, the simulation still to
        come and the command log forget those VPAs too (the store's rows went with the command,
        and go again here, with whatever the runner wrote in between). Returns the VPAs erased."""
        from services.store.postgres import erasure_hash

        async with self._lock:
            new = set(hashes) - self.erased
            if not new:
                return []
            known = set(self.runner.known_vpas()) | {_vpa_of(line) for _, line in self.upcoming}
            vpas = sorted(v for v in known if v and erasure_hash(v) in new)
            t = self._instant()
            for vpa_id in vpas:
                self.runner.submit_raw(json.dumps({
                    "event_id": f"erase:{erasure_hash(vpa_id)[:16]}", "type": "cmd.vpa.erase",
                    "occurred_at": t.isoformat(), "vpa_id": vpa_id, "actor": {"initials": "SYS", "role": "system"},
                    "schema_version": 1, "data": {"reason": "vpa erase"}}), "erasure")
            await self._flush()
            for vpa_id in vpas:
                await self.store.erase_vpa(vpa_id)
            gone = set(vpas)
            self.upcoming = deque(x for x in self.upcoming if _vpa_of(x[1]) not in gone)
            await self.inputs.forget(gone, sorted(self.erased | new))
            self.erased |= new
            return vpas

    async def command(self, raw: bytes, vpa_id: str) -> Optional[str]:
        arrived = time.time()
        async with self._lock:
            t = self._instant()
            self._feed_until(t)
            stamped = _restamp(raw, t)
            await self.inputs.append(t, stamped)  # logged first: whatever is handled is in the log
            dlq, duplicates = len(self.runner.dlq), self.runner.stats["duplicates"]
            self._submit_command(stamped)
            await self._flush()
            _written_since(arrived)
            new = self.runner.dlq[dlq:]
            if new:
                return new[0].reason
            if self.runner.stats["duplicates"] > duplicates:
                return "rejected: this event_id was handled before; a repeated command has no effect"
            return None


def demo_history(params: DemoParams, tz_name: str, demo_db, demo: "LiveDemo") -> Callable[[str], Any]:  # noqa: ANN001
    """The demo's history for a what-if (issue 23): the simulated past up to now and the commands
    from the page, merged in the order ``rebuild`` replays them, as one JSONL file."""
    async def write(folder: str) -> list[str]:
        feed = await asyncio.to_thread(company_feed, params, tz_name, frozenset(demo.erased))
        inputs = await demo_db.inputs()
        cut = demo.mark.timestamp()
        path = os.path.join(folder, "demo-history.jsonl")

        def dump() -> None:
            sim = ((at, 0, n, line) for n, (at, line) in enumerate(feed.lines) if at <= cut)
            api = ((t.timestamp(), 1, n, raw) for n, (t, raw) in enumerate(inputs))
            with open(path, "wb") as f:
                for _, _, _, line in heapq.merge(sim, api):
                    f.write(line.rstrip(b"\n") + b"\n")
        await asyncio.to_thread(dump)
        return [path]
    return write


def _vpa_of(line: bytes) -> Optional[str]:
    try:
        return json.loads(line).get("vpa_id")
    except (ValueError, AttributeError):
        return None


def _restamp(raw: bytes, t: datetime) -> bytes:
    """The command with the server's instant as occurred_at (the API validated it already)."""
    obj = json.loads(raw)
    obj["occurred_at"] = t.isoformat()
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def rebuild(runner: EmbeddedRunner, history: list[tuple[float, bytes]], inputs: list[tuple[datetime, bytes]]) -> None:
    """Replay simulated history and logged API commands in the order the live demo handled them:
    by instant, simulated lines before commands of the same second, each in its own order."""
    sim = ((at, 0, n, line) for n, (at, line) in enumerate(history))
    api = ((at.timestamp(), 1, n, raw) for n, (at, raw) in enumerate(inputs))
    for _, source, n, line in heapq.merge(sim, api):
        runner.submit_raw(line, f"{'simulation' if source == 0 else 'api-log'}:{n + 1}")


# ---- start and stop ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "var/demo"
    database_url: Optional[str] = None
    vpas: int = DEMO_VPAS
    seed: int = DEMO_SEED
    reset: bool = False
    summary_seconds: float = SUMMARY_SECONDS


def bind(host: str, port: int) -> socket.socket:
    """Take the port before anything else starts (raises OSError when it is in use)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does; a listener still blocks
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def say(text: str) -> None:
    print(text, flush=True)


async def _serve(opts: DemoOptions, sock: socket.socket, stop: asyncio.Event) -> int:
    from services.store import embedded_pg
    from services.store.demo_tables import DemoBusy, DemoStore
    from services.store.postgres import PostgresTaskStore

    settings = Settings.from_env()
    started_pg = False
    store = demo_db = web_runner = None
    background: list[asyncio.Task] = []
    try:
        url = opts.database_url
        if not url:
            say(f"vpa demo: starting PostgreSQL in {opts.data_dir} ...")
            url = await asyncio.to_thread(embedded_pg.start, opts.data_dir)
            started_pg = True
        if stop.is_set():
            return 0
        store = await PostgresTaskStore.connect(url)
        try:
            demo_db = await DemoStore.open(url)
        except DemoBusy:
            started_pg = False  # that demo's PostgreSQL: leave it running for it
            print(f"vpa demo: another vpa demo is running on {opts.data_dir if not opts.database_url else 'this database'};"
                  " stop it first or pass another --data-dir", file=sys.stderr)
            return EXIT_DATA_BUSY

        params = await demo_db.params()
        if params is not None and opts.reset:
            await demo_db.reset()
            params = None
            say("vpa demo: --reset: the previous demo's tasks and inputs are gone; starting a new company")
        if params is None and await demo_db.has_tasks():
            if opts.database_url:
                print("vpa demo: the database holds tasks that no demo wrote; --reset clears them (all tasks!)",
                      file=sys.stderr)
                return EXIT_FOREIGN_DATA
            await demo_db.reset()  # our own data folder, from an older demo without a log
            say(f"vpa demo: {opts.data_dir} held tasks of an older demo; starting a new company")

        now = _second(datetime.now(settings.tz))
        if params is None:
            today = now.date()
            draft = DemoParams(opts.vpas, opts.seed, today - timedelta(days=HISTORY_DAYS),
                               HISTORY_DAYS + 1 + AHEAD_DAYS, now, {})
            feed = company_feed(draft, settings.timezone)
            params = draft
            say(f"vpa demo: a new company of {params.vpas} VPAs (seed {params.seed}), history from {params.start}")
        else:
            params = DemoParams.from_json(params)
            feed = company_feed(params, settings.timezone, frozenset(await demo_db.erased()))
            say(f"vpa demo: resuming the demo live since {params.live_since:%Y-%m-%d %H:%M} "
                f"({params.vpas} VPAs, seed {params.seed}; --reset starts a new one)")

        inputs = await demo_db.inputs()
        mark = max([now, *(t.astimezone(settings.tz) for t, _ in inputs)])
        cut = mark.timestamp()
        history = [x for x in feed.lines if x[0] <= cut]
        upcoming = [x for x in feed.lines if x[0] > cut]
        say(f"vpa demo: replaying {len(history)} simulated envelopes and {len(inputs)} command"
            f"{'' if len(inputs) == 1 else 's'} from the page ...")
        runner = EmbeddedRunner(processors(), settings, StreamClock(), keep_upstream=True)
        rebuild(runner, history, inputs)
        runner.advance_to(mark)
        latest = final_tasks(runner.drain_tasks())
        for i in range(0, len(latest), STORE_CHUNK):  # versions the store has already are ignored
            await write_batch(store, latest[i:i + STORE_CHUNK])
        await _check_consistency(demo_db, latest)
        # The read model of the whole history before the page opens: left to the first wall-clock
        # step, it was written under the command lock, and the first commands and changes of a team
        # waited for it (at 12,000 VPAs a command's p95 was 10 s; issue 27).
        await write_read_model(store, runner)
        # The logins: the same two people as before, with new tokens at every start. Only their
        # hashes are kept (a copy of the database holds no login); a page left open signs in again.
        people = list(params.tokens.values()) or list(first_tokens(feed.members, latest).values())
        logins = {secrets.token_urlsafe(16): who for who in people}
        params = replace(params, tokens={hash_token(t): who for t, who in logins.items()})
        await demo_db.save_params(params.to_json())
        # The demo's writes go over the command path's own connections: a command never waits
        # for the connections that list reads hold (issue 27).
        demo = LiveDemo(runner, await store.command_side(), demo_db, upcoming, settings.tz, mark)
        demo.erased = set(await demo_db.erased())
        if stop.is_set():
            return 0

        tokens = tokens_from_env() or logins
        crm = os.environ.get("VPA_CRM_URL_TEMPLATE") or None
        jobs = WhatIfJobs(history=demo_history(params, settings.timezone, demo_db, demo))
        web_runner = web.AppRunner(build_app(store, demo.command, tokens, settings, crm_url_template=crm, whatif=jobs,
                                             env=os.environ),
                                   shutdown_timeout=2)
        await web_runner.setup()
        await web.SockSite(web_runner, sock).start()
        host, port = sock.getsockname()[:2]
        shown = opts.host if opts.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        base = f"http://{shown}:{port}"
        say(f"VPA Manager Dashlet: {base}/")
        if tokens is logins:  # the demo's own logins: shown once, kept only as hashes
            for token, who in tokens.items():
                say(f"login token ({who.initials}, {who.role}): {token}")
                say(f"  or open {base}/#token={token}")
        else:  # an operator's tokens never reach the output (or a log collecting it)
            say(f"logins: the {len(tokens)} tokens of VPA_DASHLET_TOKENS")
        say(f"Ctrl-C stops the demo; its data stays in {opts.data_dir if not opts.database_url else 'the database'}"
            " and a restart resumes it (--reset starts afresh).")

        background.append(asyncio.create_task(_follow_wall_clock(demo)))
        background.append(asyncio.create_task(_store_gauges(url, settings)))
        if opts.summary_seconds > 0:
            background.append(asyncio.create_task(_summaries(demo, demo_db, settings, opts.summary_seconds)))
        await stop.wait()
        say("vpa demo: stopping ...")
        return 0
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if web_runner is not None:
            await web_runner.cleanup()
        if demo_db is not None:
            await demo_db.close()
        if store is not None:
            await store.close()
        if started_pg:  # the demo started its own PostgreSQL: leave nothing running
            await asyncio.to_thread(embedded_pg.stop, opts.data_dir)
        sock.close()


async def _check_consistency(demo_db, latest: list[dict]) -> None:  # noqa: ANN001
    """The store must hold nothing the rebuilt runner does not explain (else say so loudly)."""
    ours = {t["task_id"]: t["version"] for t in latest}
    ahead = [tid for tid, v in (await demo_db.task_versions()).items() if ours.get(tid, 0) < v]
    if ahead:
        log.warning("%d tasks in the store are ahead of the rebuilt pipeline (e.g. %s): something else wrote "
                    "this database; --reset starts afresh", len(ahead), ahead[0])


async def _follow_wall_clock(demo: LiveDemo) -> None:
    n = 0
    while True:
        await asyncio.sleep(1)
        await demo.follow()
        demo.runner.publish_metrics()
        n += 1
        if n % 2 == 0:  # `vpa erase` against this database: every 2 s
            for vpa_id in await demo.erase(await demo.store.erasures()):
                say(f"vpa demo: {vpa_id} erased (vpa erase): its state, inputs and tasks are gone")


async def _store_gauges(url: str, settings: Settings) -> None:
    """The store's gauges as the notifier publishes them in production: open work read from the
    store, and ``vpa_store_up`` from whether the store answered (not only from the last write)."""
    from services.config.process import NotifierConfig
    from services.store.gauges import StoreGaugePoller

    async def fixed() -> str:
        return url

    every = NotifierConfig.from_env().store_gauge_seconds
    poller = StoreGaugePoller(fixed, settings)
    try:
        while True:
            metrics.STORE_UP.set(1 if await poller.refresh() else 0)
            await asyncio.sleep(every)
    finally:
        await poller.close()


async def _summaries(demo: LiveDemo, demo_db, settings: Settings, every: float) -> None:  # noqa: ANN001
    from services.reminders.shifts import current_shift

    while True:
        await asyncio.sleep(every)
        now = datetime.now(settings.tz)
        window = current_shift(now, settings)
        counts = await demo_db.open_counts(window[1] if window else None)
        due = f" ({counts['due_this_shift']} due by the end of this shift)" if window else ""
        say(f"{now:%H:%M:%S} {demo.runner.stats['processed']:,} events | open tasks: "
            f"cases {counts.get('cases', 0)}, reminders {counts.get('reminders', 0)}{due}, "
            f"journey {counts.get('journey', 0)}")


def run_demo(host: str = "127.0.0.1", port: int = 8080, data_dir: str = "var/demo",
             database_url: Optional[str] = None, vpas: int = DEMO_VPAS, seed: int = DEMO_SEED,
             reset: bool = False, summary_seconds: float = SUMMARY_SECONDS) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # initdb chatter on first start
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    opts = DemoOptions(host, port, data_dir, database_url or os.environ.get("DATABASE_URL") or None, vpas, seed,
                       reset, summary_seconds)
    if vpas < 1:
        print("vpa demo: --vpas must be at least 1", file=sys.stderr)
        return 2
    try:
        sock = bind(host, port)  # before PostgreSQL starts: a busy port must not leave a server behind
    except OSError as exc:
        why = "already in use (another vpa demo?)" if exc.errno == errno.EADDRINUSE else exc.strerror
        print(f"vpa demo: cannot listen on {host}:{port}: {why}; stop that process or pick another --port",
              file=sys.stderr)
        return EXIT_PORT_IN_USE

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)  # all three stop cleanly, PostgreSQL included
        return await _serve(opts, sock, stop)

    return asyncio.run(main())
