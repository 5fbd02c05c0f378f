"""Ops' view for real (issue 13): every service's /metrics passes `promtool check metrics`, and
Debian's Prometheus, scraping the services of a pipeline, answers queries for throughput, latency
and open work."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import date

import pytest

from services.simulator import SimConfig, simulate
from tests.integration.harness import ALL_SERVICES, Pipeline, final_tick

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


async def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        body = json.loads(await asyncio.to_thread(fetch, url))
    except OSError:
        return []
    return body["data"]["result"] if body.get("status") == "success" else []


async def test_prometheus_scrapes_throughput_latency_and_open_work(database_url, tmp_path):
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    assert promtool and prometheus, "Debian's prometheus package is missing (scripts/test installs it)"
    ports = {s: free_port() for s in ALL_SERVICES}
    per_service = {s: {"VPA_METRICS_PORT": str(port)} for s, port in ports.items()}
    per_service["notifier"]["VPA_STORE_GAUGE_SECONDS"] = "1"
    envelopes = [e for e in simulate(SimConfig(vpas=60, days=14, seed=4, start=date(2026, 10, 5)))
                 if isinstance(e, dict)]
    envelopes.append(final_tick(envelopes))
    async with Pipeline(database_url, tmp_path, VPA_CLOCK="stream", per_service=per_service) as pipe:
        await pipe.produce(envelopes)
        await pipe.settle()
        for service, port in ports.items():
            text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
            check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
            # promtool reports lint problems on stdout/stderr and exits 1 for them
            assert check.returncode == 0, f"{service}: {check.stdout}{check.stderr}"

        web = free_port()
        config = tmp_path / "prometheus.yml"
        targets = ", ".join(f'"127.0.0.1:{p}"' for p in ports.values())
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          f"scrape_configs:\n  - job_name: vpa\n    static_configs:\n      - targets: [{targets}]\n")
        server = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{web}"],
                                  stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        base = f"http://127.0.0.1:{web}"
        try:
            wanted = {
                "up": "sum(up)",
                "throughput": 'sum(vpa_events_processed_total{service="detector"})',
                "latency": 'sum(vpa_end_to_end_latency_seconds_count{source="ingested"})',
                "open work": "sum(vpa_open_tasks)",
                "timers": "sum(vpa_pending_timers)",
                "rate": "sum(rate(vpa_tasks_emitted_total[1m]))",
            }

            def answered(name: str, value: float) -> bool:
                # Every target scraped (the first scrapes of the targets are spread over the
                # interval), a rate once two scrapes are in (a settled pipeline's rate may be 0),
                # the rest above 0.
                return value == len(ports) if name == "up" else value >= 0 if name == "rate" else value > 0

            answers: dict[str, float] = {}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(answers) < len(wanted):
                for name, promql in wanted.items():
                    result = await query(base, promql)
                    if result and answered(name, float(result[0]["value"][1])):
                        answers[name] = float(result[0]["value"][1])
                await asyncio.sleep(1)
            assert set(answers) == set(wanted), (answers, (tmp_path / "prometheus.log").read_text()[-2000:])
        finally:
            server.terminate()
            server.wait(20)
