"""A whole pipeline for an integration test: fresh topics, database and consumer groups, the
services as OS processes, and the conditions a test waits on (never a fixed sleep)."""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Optional

from services.app.entrypoints import replay
from services.config.settings import Settings
from services.notifier.verify import COMPARED_FIELDS as COMPARED, comparable
from services.runners.embedded.replay import final_tasks
from tests.integration.pipeline import (
    VPA, ServiceProcess, bootstrap, free_port, fresh_database, groups_stable, produce_envelopes, recreate_topics,
    service_env,
)
from tests.waiting import wait_for

STREAM_SERVICES = ("detector", "reminders", "journey")
ALL_SERVICES = (*STREAM_SERVICES, "notifier")


def differences(want: Iterable[dict], got: Iterable[dict]) -> list[str]:
    w = {t["task_id"]: comparable(t) for t in want}
    g = {t["task_id"]: comparable(t) for t in got}
    out = []
    for tid in sorted(set(w) | set(g)):
        if tid not in g or tid not in w:
            out.append(f"{tid}: only in {'replay' if tid in w else 'kafka'}")
        elif w[tid] != g[tid]:
            out.append(f"{tid}: " + ", ".join(f"{k} replay {w[tid][k]!r} kafka {g[tid][k]!r}"
                                               for k in COMPARED if w[tid][k] != g[tid][k]))
    return out


def write_stream(items: Iterable[Any], path: Path) -> Path:
    """Envelopes (dicts) and raw lines (bytes) as a JSONL file for `vpa replay` / `vpa verify`."""
    with open(path, "wb") as out:
        for item in items:
            out.write((json.dumps(item, ensure_ascii=False).encode() if isinstance(item, dict) else item) + b"\n")
    return path


def replay_tasks(envelopes: list[dict], tmp_path: Path, until: Optional[Any] = None) -> list[dict]:
    path = write_stream(envelopes, tmp_path / f"replay-{uuid.uuid4().hex[:6]}.jsonl")
    return final_tasks(replay([str(path)], Settings(), until=until).drain_tasks())


def final_tick(envelopes: list[dict], event_id: str = "final-tick") -> dict:
    """A clock.tick at the last instant of the stream (DESIGN 5.26: every partition sees it)."""
    last = max(e["occurred_at"] for e in envelopes)
    return {"event_id": event_id, "type": "clock.tick", "occurred_at": last, "vpa_id": None, "actor": None,
            "schema_version": 1, "data": {}}


class Pipeline:
    def __init__(self, database_url: str, log_dir: Path, services: tuple[str, ...] = ALL_SERVICES, *,
                 fresh_db: bool = True, keep_topics: bool = False, metrics: bool = False,
                 per_service: Optional[dict[str, dict[str, str]]] = None, **env: str) -> None:
        self.base_url, self.log_dir, self.services = database_url, log_dir, services
        log_dir.mkdir(parents=True, exist_ok=True)
        self.fresh_db, self.keep_topics = fresh_db, keep_topics
        self.metrics = metrics  # each process gets a metrics port of its own (/metrics, /healthz)
        self.per_service = per_service or {}
        self.prefix = f"it-{uuid.uuid4().hex[:8]}"
        # faust's local folders go with the run's logs, not into the working copy
        self.extra_env = {"VPA_INPUT_IDLE_SECONDS": "1", "VPA_STATE_DIR": str(log_dir / "state"), **env}
        self.procs: list[ServiceProcess] = []
        self.store: Any = None
        self.url = ""
        self.env: dict[str, str] = {}

    async def __aenter__(self) -> "Pipeline":
        from services.store.postgres import PostgresTaskStore

        if not self.keep_topics:
            await recreate_topics()
        self.url = await fresh_database(self.base_url) if self.fresh_db else self.base_url
        self.env = service_env(self.url, self.prefix, **self.extra_env)
        for s in self.services:
            self.start(s, **self.per_service.get(s, {}))
        assert await groups_stable(self.groups), "consumer groups did not form:\n" + self.logs()
        if self.fresh_db:
            self.store = await PostgresTaskStore.connect(self.url)
        return self

    async def connect_store(self, timeout: float = 60) -> None:
        """(Re)connect the test's own reader, e.g. after the server was restarted."""
        from services.store.postgres import PostgresTaskStore

        if self.store is not None:
            try:
                await asyncio.wait_for(self.store.close(), 5)
            except Exception:  # noqa: BLE001 - the old pool may be broken
                pass
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.store = await PostgresTaskStore.connect(self.url)
                return
            except (OSError, Exception):  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def __aexit__(self, *exc: Any) -> None:
        for p in self.procs:
            p.send_signal()  # all at once: each stops cleanly on SIGTERM, in parallel
        for p in self.procs:
            p.stop()
        if self.store is not None:
            await self.store.close()

    @property
    def groups(self) -> list[str]:
        return [f"{self.prefix}-{s}" for s in dict.fromkeys(p.service for p in self.procs) if s != "dashlet"]

    def start(self, service: str, command: Optional[list[str]] = None, **env: str) -> ServiceProcess:
        if self.metrics and "VPA_METRICS_PORT" not in env:
            env["VPA_METRICS_PORT"] = str(free_port())
        proc = ServiceProcess(service, {**self.env, **env}, self.log_dir, command)
        proc.own_env = dict(env)  # a restart of this worker gets the same (its port, its state folder)
        self.procs.append(proc)
        return proc

    def kill(self, proc: ServiceProcess, sig: int = 9) -> None:
        """SIGKILL (by default) and wait until the process is gone."""
        proc.stop(sig)

    def restart(self, proc: ServiceProcess, sig: int = 9) -> ServiceProcess:
        """Kill ``proc`` and start the same service again with the same settings (and port)."""
        self.kill(proc, sig)
        return self.restart_like(proc)

    def restart_like(self, proc: ServiceProcess) -> ServiceProcess:
        """Start the service of a process that has ended, with the same settings (port, state folder)."""
        env = dict(getattr(proc, "own_env", {}))
        if proc.metrics_port:
            env["VPA_METRICS_PORT"] = str(proc.metrics_port)
        return self.start(proc.service, **env)

    @property
    def partitions(self) -> int:
        return int(self.env.get("VPA_PARTITIONS") or 4)

    def input_topics(self, service: str) -> list[str]:
        if service == "notifier":
            return ["dashlet.tasks"]
        return ["vpa.events", "vpa.commands"] + ([f"{self.prefix}-detector-commands"] if service == "reminders" else [])

    async def progress(self, service: str) -> tuple[int, int]:
        """(records committed, records on its input topics) of a service's group: how far it got."""
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
        probe = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None)
        await admin.start()
        await probe.start()
        try:
            tps = [TopicPartition(t, p) for t in self.input_topics(service) for p in sorted(await _partitions(probe, t))]
            ends = await probe.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(f"{self.prefix}-{service}")
            done = sum(min(committed[tp].offset, end) for tp, end in ends.items()
                       if tp in committed and committed[tp].offset >= 0)
            return done, sum(ends.values())
        finally:
            await probe.stop()
            await admin.close()

    async def assignments(self, service: str) -> list[set[int]]:
        """The vpa.events partitions of each member of a service's group (empty while it rebalances)."""
        return list((await self.members(service)).values())

    async def members(self, service: str) -> dict[str, set[int]]:
        """member id -> its vpa.events (or dashlet.tasks) partitions; empty while the group rebalances."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
        await admin.start()
        try:
            [resp] = await admin.describe_consumer_groups([f"{self.prefix}-{service}"])
            _, _, state, _, _, members, *_ = resp.groups[0]
            if state != "Stable":
                return {}
            topic = self.input_topics(service)[0]
            out = {}
            for member in members:
                assignment = ConsumerProtocolMemberAssignment.decode(member[-1])
                out[member[0]] = {p for t, parts in assignment.assignment if t == topic for p in parts}
            return out
        finally:
            await admin.close()

    def verify(self, files: Iterable[Path] = (), *args: str) -> dict:
        """`vpa verify --json` against this pipeline's store (and `vpa replay` of ``files``)."""
        import subprocess

        cmd = [VPA, "verify", "--json", *args]
        files = [str(f) for f in files]
        if files:
            cmd += ["--replay", *files]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=1800)
        assert out.returncode in (0, 1), f"vpa verify failed ({out.returncode}): {out.stderr[-3000:]}"
        report = json.loads(out.stdout)
        assert report["ok"] == (out.returncode == 0)
        return report

    def running(self, service: str) -> list[ServiceProcess]:
        return [p for p in self.procs if p.service == service and p.proc.poll() is None]

    async def dump_stacks(self, timeout: float = 15.0) -> None:
        """Every running service writes its tasks' and threads' stacks to its log (SIGUSR1)."""
        import signal

        from services.ops.diagnostics import DUMP_END

        running = [p for p in self.procs if p.proc.poll() is None]
        for p in running:
            os.kill(p.pid, signal.SIGUSR1)
        await wait_for(lambda: all(DUMP_END in p.log_tail(5) for p in running), timeout=timeout, interval=0.2)

    def logs(self, n: int = 30) -> str:
        return "\n".join(f"--- {p.service} ({p.log_path.name})\n{p.log_tail(n)}" for p in self.procs)

    async def produce(self, envelopes: list[dict]) -> None:
        await produce_envelopes(envelopes)

    async def tasks(self) -> list[dict]:
        return await self.store.all()

    async def caught_up(self) -> bool:
        """Every group has committed every input partition up to its end."""
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition

        inputs = {s: self.input_topics(s) for s in ALL_SERVICES}  # the dashlet consumes nothing
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
        probe = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None)
        await admin.start()
        await probe.start()
        try:
            for service in dict.fromkeys(p.service for p in self.procs if p.service in inputs):
                tps = [TopicPartition(t, p) for t in inputs[service]
                       for p in sorted(probe.partitions_for_topic(t) or await _partitions(probe, t))]
                ends = await probe.end_offsets(tps)
                committed = await admin.list_consumer_group_offsets(f"{self.prefix}-{service}")
                for tp, end in ends.items():
                    done = committed.get(tp)
                    if end > 0 and (done is None or done.offset < end):
                        return False
            return True
        finally:
            await probe.stop()
            await admin.close()

    async def settle(self, timeout: float = 300, calm: float = 3.0, stall: Optional[float] = None) -> list[dict]:
        """Wait until every group is caught up and, while it stays so, the store has not changed for
        ``calm`` seconds; returns the tasks. (Caught up first: a store that is still empty because
        nothing has been processed yet is not settled.) ``stall``: fail as soon as no group has
        committed anything for that long, with every service's stacks in its log (SIGUSR1)."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        moved, moved_at, looked_at = None, time.monotonic(), 0.0
        while time.monotonic() < deadline:
            if not await self.caught_up():
                last = None
                if stall is not None and time.monotonic() - looked_at >= min(30.0, stall / 4):
                    looked_at = time.monotonic()
                    now_done = [await self.progress(s) for s in dict.fromkeys(p.service for p in self.procs)
                                if s in ALL_SERVICES]
                    if now_done != moved:
                        moved, moved_at = now_done, looked_at
                    elif looked_at - moved_at >= stall:
                        await self.dump_stacks()
                        raise AssertionError(f"the pipeline stalled: no group committed anything for "
                                             f"{stall:.0f} s (progress {now_done}); stacks in the logs\n{self.logs()}")
            else:
                tasks = await self.tasks()
                snapshot = [(t["task_id"], t["version"]) for t in tasks]
                if snapshot != last:
                    last, since = snapshot, time.monotonic()
                elif time.monotonic() - since >= calm:
                    return tasks
            await asyncio.sleep(0.5)
        raise AssertionError(f"the pipeline did not settle within {timeout} s\n{self.logs()}")


async def _partitions(consumer: Any, topic: str) -> set[int]:
    for _ in range(50):
        cluster = await consumer._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return parts
        await asyncio.sleep(0.1)
    return set()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
