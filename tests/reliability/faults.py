"""Injecting faults into a running pipeline and measuring what they cost.

Every wait here is on a condition with a deadline (a group's committed progress, a group being
stable again, a process gone): never a fixed sleep.
"""
from __future__ import annotations

import asyncio
import random
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from tests.integration.harness import Pipeline, rss_kib
from tests.integration.pipeline import ROOT, produce_fast
from tests.reliability.figures import Figures
from tests.waiting import wait_for


@dataclass
class Kill:
    service: str
    part: int  # which part of the stream was being processed
    done_at_kill: int  # records of its inputs the victim had committed when it was killed
    pending_at_kill: int  # records on its inputs it had not committed yet
    down_seconds: float  # from SIGKILL until its restarted group was stable again
    recovery_seconds: float  # from SIGKILL until it committed input beyond where it died (or had all)


async def wait_progress(pipe: Pipeline, service: str, target: int, timeout: float = 300) -> tuple[int, int]:
    """Until the service has committed ``target`` records of its inputs (or all there are)."""
    return await wait_for(lambda: pipe.progress(service), lambda de: de[0] >= min(target, de[1]), timeout, 0.1)


async def wait_members(pipe: Pipeline, service: str, count: int, without: set[str] = frozenset(),
                       timeout: float = 300) -> dict[str, set[int]]:
    """Until the service's group is stable with ``count`` members, none of them in ``without``, and
    every partition assigned; returns the members and their partitions."""
    def stable(members: dict) -> bool:
        return (len(members) == count and not set(members) & set(without)
                and sum(len(p) for p in members.values()) == pipe.partitions)

    members = await wait_for(lambda: pipe.members(service), stable, timeout, 0.2)
    assert stable(members), f"{service}: no stable group of {count} within {timeout} s\n{pipe.logs()}"
    return members


async def kill_and_restart(pipe: Pipeline, service: str, part: int, timeout: float = 300) -> Kill:
    victim = pipe.running(service)[0]
    before = await wait_members(pipe, service, len(pipe.running(service)), timeout=timeout)
    done, end = await pipe.progress(service)
    t0 = time.monotonic()
    pipe.kill(victim)  # SIGKILL: no shutdown, no commit, no leave-group
    pipe.restart_like(victim)
    # The dead member stays in the group until its session times out; then the new one gets its partitions.
    await wait_members(pipe, service, len(pipe.running(service)), without=set(before), timeout=timeout)
    down = time.monotonic() - t0
    deadline = t0 + timeout
    while True:
        now_done, now_end = await pipe.progress(service)
        if now_done > done or now_done >= now_end:
            break
        assert time.monotonic() < deadline, f"{service} did not recover within {timeout} s\n{pipe.logs()}"
        await asyncio.sleep(0.1)
    return Kill(service, part, done, end - done, round(down, 1), round(time.monotonic() - t0, 1))


async def crash_run(pipe: Pipeline, stream: Sequence[Any], victims: Sequence[str], rng: random.Random,
                    figures: Optional[Figures] = None) -> list[Kill]:
    """Produce ``stream`` in ``len(victims) + 1`` parts; while part i is being worked through, wait
    until victim i has committed a random share (20 to 80%) of what is on its inputs, then SIGKILL
    it and start it again. Returns what each kill cost."""
    n = len(victims) + 1
    bounds = [round(len(stream) * i / n) for i in range(n + 1)]
    kills: list[Kill] = []
    for i in range(n):
        if i < len(victims):
            base, _ = await pipe.progress(victims[i])
        await produce_fast(list(stream[bounds[i]:bounds[i + 1]]))
        if i == len(victims):
            break
        victim = victims[i]
        _, end = await pipe.progress(victim)
        await wait_progress(pipe, victim, base + int(rng.uniform(0.2, 0.8) * (end - base)))
        kill = await kill_and_restart(pipe, victim, i)
        kills.append(kill)
        if figures is not None:
            figures.fault(kind="SIGKILL", **asdict(kill))
    return kills


class RssSampler:
    """Samples the resident memory of every running service process every ``interval`` seconds."""

    def __init__(self, pipe: Pipeline, interval: float = 2.0, figures: Optional[Figures] = None) -> None:
        self.pipe, self.interval, self.figures = pipe, interval, figures
        self.samples: dict[str, list[tuple[float, int]]] = {}
        self._task: Optional[asyncio.Task] = None
        self._t0 = time.monotonic()

    async def _run(self) -> None:
        while True:
            t = round(time.monotonic() - self._t0, 1)
            for p in self.pipe.procs:
                if p.alive():
                    try:
                        self.samples.setdefault(p.service, []).append((t, rss_kib(p.pid)))
                    except OSError:
                        pass  # it just ended
            if self.figures is not None:
                self.figures.sample_load()
            await asyncio.sleep(self.interval)  # a sampling period, not a wait for anything

    def __enter__(self) -> "RssSampler":
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()

    def peak(self, service: str) -> int:
        return max((kib for _, kib in self.samples.get(service, [])), default=0)


class LocalBroker:
    """The broker scripts/test started (deploy/kafka/kafka.sh, same KAFKA_PORT and KAFKA_HOME_DIR),
    stopped and started again with its data kept."""

    SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"

    def __init__(self) -> None:
        import os

        from tests.integration.pipeline import bootstrap

        out = subprocess.run(["bash", str(self.SCRIPT), "status"], capture_output=True, text=True, timeout=60,
                             env=os.environ)
        self.ours = f"KAFKA_BOOTSTRAP_SERVERS={bootstrap()}" in out.stdout

    def stop(self) -> None:
        subprocess.run(["bash", str(self.SCRIPT), "stop"], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        out = subprocess.run(["bash", str(self.SCRIPT), "start"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]


async def wait_health(proc: Any, ok: bool, timeout: float = 120, check: Optional[str] = None) -> float:
    """Until the process's /healthz says ``ok`` (and, when not ok, that ``check`` is the failing
    one); returns the seconds it took."""
    import json

    t0 = time.monotonic()
    while True:
        status, body = await proc.get("/healthz", timeout=3)
        if status in (200, 503):
            checks = json.loads(body).get("checks", {}) if body.startswith("{") else {}
            failing = {n for n, c in checks.items()  # a Kafka service's {"ok": ...}, the dashlet's "ok" or a reason
                       if (isinstance(c, dict) and not c.get("ok")) or (isinstance(c, str) and c != "ok")}
            if ok and status == 200:
                return time.monotonic() - t0
            if not ok and status == 503 and (check is None or check in failing or not checks):
                return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"{proc.service}: /healthz never said ok={ok}: {status} {body[:300]}"
        await asyncio.sleep(0.5)


def assert_no_restart(pipe: Pipeline, pids: dict[str, int]) -> None:
    """Every process of ``pids`` (service -> pid) still runs, none was added, none logged a crash."""
    for p in pipe.procs:
        if p.pid in pids.values():
            assert p.alive(), f"{p.service} exited:\n{p.log_tail()}"
    assert {p.service: p.pid for p in pipe.procs if p.alive()} == pids, "a process was restarted or added"
    for p in pipe.procs:
        text = p.log_path.read_text(errors="replace")
        assert "Crashed reason" not in text and "worker failed" not in text, f"{p.service} crashed:\n{p.log_tail()}"
