"""`vpa demo` as a user starts it: a real process, the simulated company, embedded PostgreSQL, HTTP.

The demo runs on its own embedded PostgreSQL in a temporary data folder (DATABASE_URL is removed
from its environment), so the tests can check that stopping it leaves no PostgreSQL behind.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import psutil
import pytest
from tests.waiting import poll, wait_for_sync

VPA = str(Path(sys.executable).with_name("vpa"))
START_TIMEOUT = 180  # first start: initdb, simulation, replay of 60 days
TOKEN_LINE = re.compile(r"login token \(([A-Z]{2,4}), (at|vpa_manager)\): (\S+)")


class DemoProcess:
    """A running ``vpa demo`` whose output a thread collects (so the pipe never fills)."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("DATABASE_URL", None)
        env.pop("VPA_DASHLET_TOKENS", None)
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [VPA, "demo", "--port", str(port), "--data-dir", str(data_dir), "--summary-seconds", "1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> tuple[str, dict[str, tuple[str, str]]]:
        """The base URL and {role: (initials, token)} once the demo serves."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            out = self.output
            url = re.search(r"VPA Manager Dashlet: (http://127\.0\.0\.1:\d+)/", out)
            tokens = {role: (ini, tok) for ini, role, tok in TOKEN_LINE.findall(out)}
            if url and len(tokens) == 2 and "Ctrl-C stops the demo" in out:
                return url.group(1), tokens
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail("demo did not start:\n" + "".join(self.lines[-40:]))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"demo did not stop within {timeout} s after signal {sig}:\n" + "".join(self.lines[-20:]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL server processes serving ``data_dir``."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "postgres" in (p.info["name"] or "") and str(data_dir.resolve()) in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_no_postgres(data_dir: Path, timeout: float = 20) -> list[psutil.Process]:
    return wait_for_sync(lambda: postgres_processes(data_dir), lambda left: not left, timeout)


def _stop_leftovers(data_dir: Path) -> None:
    from services.store import embedded_pg

    if postgres_processes(data_dir):
        embedded_pg.stop(data_dir)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "pg"
    yield path
    _stop_leftovers(path)


@pytest.fixture(scope="module")
def first_run(data_dir):
    demo = DemoProcess(data_dir)
    try:
        url, tokens = demo.wait_ready()
        yield demo, url, tokens
    finally:
        demo.kill()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def all_tasks(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, dict]:
    out, offset = {}, 0
    while offset is not None:
        async with http.get(f"{url}/api/tasks", params={"limit": 500, "offset": offset}, headers=auth(token)) as r:
            assert r.status == 200
            body = await r.json()
        out.update((t["task_id"], t) for t in body["items"])
        offset = body["next_offset"]
    return out


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def post(http: aiohttp.ClientSession, url: str, token: str, type_: str, vpa_id: str, data: dict) -> int:
    body = {"event_id": f"e2e-{uuid.uuid4()}", "type": type_, "vpa_id": vpa_id, "data": data}
    async with http.post(f"{url}/api/commands", json=body, headers=auth(token)) as r:
        return r.status


async def test_both_tokens_work_and_nothing_without_one(first_run):
    _, url, tokens = first_run
    assert set(tokens) == {"at", "vpa_manager"}
    async with aiohttp.ClientSession() as http:
        for _, token in tokens.values():
            async with http.get(f"{url}/api/tasks", params={"tab": "cases"}, headers=auth(token)) as r:
                assert r.status == 200
        async with http.get(f"{url}/api/tasks") as r:
            assert r.status == 401
        async with http.get(f"{url}/") as r:
            assert "VPA Manager Dashlet" in await r.text()


async def test_every_tab_has_open_tasks_within_a_minute(first_run):
    demo, url, tokens = first_run
    token = tokens["at"][1]
    async with aiohttp.ClientSession() as http:
        async def tabs_filled():
            counts = {}
            for tab in ("cases", "reminders", "journey"):
                async with http.get(f"{url}/api/tasks", params={"tab": tab, "status": "open"}, headers=auth(token)) as r:
                    counts[tab] = len((await r.json())["items"])
            return all(counts.values()) and counts
        counts = await poll(tabs_filled, 60, "open tasks on every tab")
    assert counts["cases"] >= 10, counts  # "a few dozen open cases" for 300 VPAs

    async def summary_printed():
        return re.search(r"\d[\d,]* events \| open tasks: cases \d+, reminders \d+", demo.output)
    await poll(summary_printed, 10, "the live summary line")


async def test_the_demo_exposes_the_series_production_has(first_run):
    """One metrics wiring for both runners (issue 21): the store's truth, open work, the engine's
    clock and timers, and a command's way into the store."""
    _, url, tokens = first_run
    initials, token = tokens["at"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/tasks", params={"tab": "cases"}, headers=auth(token)) as r:
            vpa_id = (await r.json())["items"][0]["vpa_id"]
        due = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0).isoformat()
        command = {"type": "cmd.reminder.set", "vpa_id": vpa_id,
                   "data": {"reminder_id": f"metrics-{uuid.uuid4().hex[:8]}", "due_at": due, "owner": initials}}
        async with http.post(f"{url}/api/commands", json=command, headers=auth(token)) as r:
            assert r.status == 202, await r.text()

        async def scraped():
            async with http.get(f"{url}/metrics") as r:
                text = await r.text()
            wanted = ("vpa_store_up 1.0", 'vpa_open_tasks{status="open",tab="cases"}',
                      'vpa_stream_clock_lag_seconds{partition="0",service="embedded"}',
                      'vpa_pending_timers{partition="0",service="embedded"}',
                      'vpa_processing_seconds_count{service="embedded"}',
                      'vpa_end_to_end_latency_seconds_count{source="ingested"}')
            return all(w in text for w in wanted) and text
        await poll(scraped, 60, "the production series on the demo's /metrics")


async def _demo_tables(data_dir: Path) -> dict[str, str]:
    """Every table of the demo's database as one text each (the demo's PostgreSQL, reused)."""
    import asyncio

    import asyncpg

    from services.store import embedded_pg

    uri = await asyncio.to_thread(embedded_pg.start, data_dir)  # the running server, not a new one
    conn = await asyncpg.connect(uri)
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        return {t: " ".join(str(dict(r)) for r in await conn.fetch(f'SELECT * FROM "{t}"')) for t in tables}
    finally:
        await conn.close()


async def test_the_demo_keeps_token_hashes_only(first_run, data_dir):
    _, _, tokens = first_run
    tables = await _demo_tables(data_dir)
    assert "demo_state" in tables
    from services.dashlet.auth import hash_token

    for _, token in tokens.values():
        assert all(token not in text for text in tables.values())
        assert hash_token(token) in tables["demo_state"]


async def test_vpa_erase_reaches_the_running_demo_and_leaves_nothing(first_run, data_dir):
    import asyncio

    demo, url, tokens = first_run
    initials, token = tokens["at"]
    async with aiohttp.ClientSession() as http:
        tasks = await all_tasks(http, url, token)
        vpa_id, name = sorted((t["vpa_id"], t["vpa_name"]) for t in tasks.values()
                              if t["tab"] == "cases" and t.get("vpa_name"))[0]
        assert await post(http, url, token, "cmd.reminder.set", vpa_id, {
            "reminder_id": "e2e-erase", "due_at": (datetime.now(timezone.utc) + timedelta(days=1)).isoformat(),
            "owner": initials, "note": f"{name} anrufen"}) == 202
        from services.store import embedded_pg

        uri = await asyncio.to_thread(embedded_pg.start, data_dir)
        done = await asyncio.to_thread(subprocess.run, [VPA, "erase", vpa_id, "--without-kafka"],
                                       env=dict(os.environ, DATABASE_URL=uri), capture_output=True, text=True,
                                       timeout=120)
        assert done.returncode == 0, done.stderr

        async def demo_erased():
            return f"{vpa_id} erased (vpa erase)" in demo.output
        await poll(demo_erased, 30, "the demo to follow the erasure")
        async with http.get(f"{url}/api/vpas/{vpa_id}", headers=auth(token)) as r:
            assert r.status == 404
    # The simulation goes on without the VPA: a few seconds later still nothing of it anywhere.
    await _sleep(3)
    namesakes = {t["vpa_id"] for t in tasks.values() if t.get("vpa_name") == name} - {vpa_id}
    for table, text in (await _demo_tables(data_dir)).items():
        assert vpa_id not in text, f"{table} still names {vpa_id}"
        assert namesakes or name not in text, f"{table} still names {name}"


async def test_a_what_if_runs_over_the_demos_history(first_run):
    """Issue 23: a VPA Manager sets "lange Abwesenheit ab" to 28 days and sees within a minute how
    many cases fewer and for whom; the demo's own tasks stay as they were."""
    _, url, tokens = first_run
    vm = tokens["vpa_manager"][1]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/whatif", headers=auth(vm),
                             json={"changes": {"VPA_LONG_ABSENCE_DAYS": "28"}}) as r:
            assert r.status == 202, await r.text()

        async def finished():
            async with http.get(f"{url}/api/whatif", headers=auth(vm)) as r:
                body = await r.json()
            return body if body["state"] in ("done", "failed") else None
        body = await poll(finished, 60, "the what-if to finish")
    assert body["state"] == "done", body.get("error")
    report = body["report"]
    assert report["totals"]["cases"][1] < report["totals"]["cases"][0], report["summary"]
    assert "lange Abwesenheiten" in report["summary"] and report["members_delta"]


async def test_restart_resumes_and_stopping_leaves_no_postgres(first_run, data_dir):
    demo, url, tokens = first_run
    initials, token = tokens["at"]
    now = datetime.now(timezone.utc)
    async with aiohttp.ClientSession() as http:
        before = await all_tasks(http, url, token)
        vpa_id = next(t["vpa_id"] for t in before.values() if t["tab"] == "cases")
        assert await post(http, url, token, "cmd.reminder.set", vpa_id, {
            "reminder_id": "e2e-keep", "due_at": (now + timedelta(days=2)).isoformat(), "owner": initials,
            "note": "vor dem Neustart gesetzt"}) == 202
        assert await post(http, url, token, "cmd.reminder.set", vpa_id, {
            "reminder_id": "e2e-done", "due_at": (now + timedelta(hours=1)).isoformat(), "owner": initials,
            "note": "vor dem Neustart erledigt"}) == 202
        assert await post(http, url, token, "cmd.reminder.complete", vpa_id,
                          {"reminder_id": "e2e-done", "file_updated": True}) == 202

        async def both_stored():
            tasks = await all_tasks(http, url, token)
            keep, done = tasks.get("reminder:e2e-keep"), tasks.get("reminder:e2e-done")
            return keep and done and done["status"] == "done" and tasks
        before = await poll(both_stored, 30, "the two reminders in the store")
    assert before["reminder:e2e-keep"]["status"] == "waiting"

    assert demo.stop(signal.SIGTERM) == 0
    assert not wait_no_postgres(data_dir), "SIGTERM left PostgreSQL running"

    again = DemoProcess(data_dir)
    try:
        url, tokens_after = again.wait_ready()
        assert {r: ini for r, (ini, _) in tokens_after.items()} == {r: ini for r, (ini, _) in tokens.items()}
        assert all(tokens_after[r][1] != tokens[r][1] for r in tokens), "new tokens at every start"
        token = tokens_after["at"][1]
        assert "resuming the demo" in again.output
        async with aiohttp.ClientSession() as http:
            after = await all_tasks(http, url, token)
            for task_id in ("reminder:e2e-keep", "reminder:e2e-done"):
                assert after[task_id]["status"] == before[task_id]["status"]
                assert after[task_id]["version"] == before[task_id]["version"]
                assert after[task_id]["history"] == before[task_id]["history"]
            lost = [t for t, task in before.items() if t not in after or after[t]["version"] < task["version"]]
            assert not lost, lost[:5]
            # the rebuilt runner knows the reminder set before the restart: it can be completed
            assert await post(http, url, token, "cmd.reminder.complete", vpa_id,
                              {"reminder_id": "e2e-keep", "file_updated": True}) == 202

            async def kept_done():
                async with http.get(f"{url}/api/tasks/reminder:e2e-keep", headers=auth(token)) as r:
                    return (await r.json()).get("status") == "done"
            await poll(kept_done, 30, "the reminder set before the restart to be done")
        assert "ahead of the rebuilt pipeline" not in again.output
        assert again.stop(signal.SIGHUP) == 0
        assert not wait_no_postgres(data_dir), "SIGHUP left PostgreSQL running"
    finally:
        again.kill()


def test_a_busy_port_is_reported_before_postgres_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        done = subprocess.run([VPA, "demo", "--port", str(port), "--data-dir", str(tmp_path / "pg")], env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: already in use" in done.stderr
    assert "starting PostgreSQL" not in done.stdout
    assert not (tmp_path / "pg").exists(), "no PostgreSQL data folder for a demo that cannot serve"
