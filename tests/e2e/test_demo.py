"""`vpa demo` as a user starts it: a real process, embedded runner, real PostgreSQL, HTTP API."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

VPA = str(Path(sys.executable).with_name("vpa"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # With DATABASE_URL set (scripts/test) the demo uses that server, else its embedded one.
    proc = subprocess.Popen([VPA, "demo", "--port", "0", "--data-dir", str(data / "pg")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = token = None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (url and token):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(r"(http://127\.0\.0\.1:\d+)/", line):
            url = m.group(1)
        if m := re.search(r"login token \(VM, vpa_manager\): (\S+)", line):
            token = m.group(1)
    if not (url and token):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("demo did not start:\n" + "".join(seen[-40:]))
    yield url, token
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def test_demo_serves_the_sample_cases(demo):
    url, token = demo
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/tasks", params={"tab": "cases"},
                            headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        reasons = {r for t in body["items"] for r in t["reasons"]}
        assert {"long", "frequent", "short_notice"} <= reasons
        cancelled = [t for t in body["items"] if t["status"] == "cancelled"]
        assert cancelled, "the cancelled sample absence is kept as a cancelled case"
        async with http.get(f"{url}/api/tasks") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{url}/openapi.json") as resp:
            assert "/api/tasks" in (await resp.json())["paths"]
        async with http.get(f"{url}/") as resp:
            assert "VPA Manager Dashlet" in await resp.text()
