"""The notifier as a process: its /metrics shows the open work in the store, refreshed while it runs."""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import uuid

import aiohttp
import pytest

from tests.integration.pipeline import ServiceProcess, fresh_database, produce, recreate_topics, service_env
from tests.unit.store.test_store_rules import make_task
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _scrape(url: str) -> str:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return await resp.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return ""


def _sample(text: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_open_work_gauges_follow_the_store(database_url, tmp_path):
    await recreate_topics()  # an empty dashlet.tasks: only this test's task reaches the store
    url = await fresh_database(database_url)
    port = _free_port()
    env = service_env(url, f"nm-{uuid.uuid4().hex[:8]}", VPA_METRICS_PORT=str(port), VPA_STORE_GAUGE_SECONDS="0.5")
    notifier = ServiceProcess("notifier", env, tmp_path)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        task_id = f"case:absence:V-{uuid.uuid4().hex[:6]}:A1"
        task = make_task(task_id, created_at="2020-01-06T09:00:00+01:00")  # long open: older than a working day
        await produce("dashlet.tasks", [(task_id, json.dumps(task).encode())])
        text = await wait_for(lambda: _scrape(metrics_url),
                              lambda t: _sample(t, "vpa_open_tasks", 'status="open",tab="cases"') == 1, timeout=120)
        assert _sample(text, "vpa_open_tasks", 'status="open",tab="cases"') == 1, notifier.log_tail()
        assert _sample(text, "vpa_open_tasks_older_than_working_day", 'tab="cases"') == 1
        assert _sample(text, "vpa_oldest_open_task_age_seconds", 'tab="cases"') > 86400
        assert _sample(text, "vpa_reminders_due", 'state="overdue"') == 0

        done = dict(task, status="done", version=2, updated_at="2020-01-06T10:00:00+01:00")
        await produce("dashlet.tasks", [(task_id, json.dumps(done).encode())])
        text = await wait_for(lambda: _scrape(metrics_url),
                              lambda t: _sample(t, "vpa_open_tasks", 'status="open",tab="cases"') == 0, timeout=60)
        assert _sample(text, "vpa_open_tasks", 'status="open",tab="cases"') == 0
        assert _sample(text, "vpa_open_tasks_older_than_working_day", 'tab="cases"') == 0

        if shutil.which("promtool"):  # scripts/test installs it
            lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        notifier.stop()
