"""A real Kafka cluster as operations run it (issue 26): three KRaft brokers from the same jars as
the local broker (deploy/kafka/cluster.sh), auto-create off, broker min.insync.replicas=1,
replication 3. One broker is killed with SIGKILL while the four stream services drain a backlog
and started again 20 s later: the store equals `vpa replay`, every topic the project made has 3
replicas and min.insync.replicas 2, and the outage costs at most 20 ERROR lines over all services.
And on the single local broker: replication 3 fails, twice in a row, with the broker's reason,
and leaves no topic behind."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
from datetime import date

import pytest

from tests.integration.harness import STREAM_SERVICES, Pipeline, write_stream
from tests.integration.pipeline import ROOT, VPA, bootstrap, produce_fast
from tests.reliability.faults import wait_progress
from tests.reliability.streams import company, drift_figures

pytestmark = pytest.mark.integration
CLUSTER = ["bash", str(ROOT / "deploy" / "kafka" / "cluster.sh")]
OUTAGE_SECONDS = 20.0
ERROR_LIMIT = 20


@pytest.fixture(scope="module")
def cluster() -> str:
    started = subprocess.run([*CLUSTER, "start", "--fresh"], capture_output=True, text=True, timeout=400)
    assert started.returncode == 0, started.stderr[-4000:]
    servers = [line.split("=", 1)[1] for line in started.stdout.splitlines()
               if line.startswith("KAFKA_CLUSTER_BOOTSTRAP_SERVERS=")][0]
    yield servers
    subprocess.run([*CLUSTER, "stop"], capture_output=True, timeout=120)


async def topic_settings(prefix: str) -> dict[str, tuple[int, int]]:
    """topic -> (fewest replicas of a partition, min.insync.replicas) of every topic the project made."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from schemas.topics import CONTRACT_TOPICS

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t in CONTRACT_TOPICS or t.startswith(prefix)]
        described = {t["topic"]: t for t in await admin.describe_topics(names)}
        out = {}
        for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
            for resource in response.to_object()["resources"]:
                configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
                name = resource["resource_name"]
                replicas = min(len(p["replicas"]) for p in described[name]["partitions"])
                out[name] = (replicas, int(configs["min.insync.replicas"]))
        return out
    finally:
        await admin.close()


def error_lines(pipe: Pipeline, since: float) -> list[str]:
    """ERROR lines the services wrote after ``since`` (time.time())."""
    from datetime import datetime

    out = []
    for proc in pipe.procs:
        for line in proc.log_path.read_text(errors="replace").splitlines():
            if " ERROR " not in line:
                continue
            try:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            if at >= since:
                out.append(f"{proc.service}: {line}")
    return out


async def longest_pause(pipe: Pipeline, service: str, until: asyncio.Event) -> float:
    """The longest stretch without committed progress of ``service`` while it had work left."""
    longest, last_done, last_move = 0.0, -1, time.monotonic()
    while not until.is_set():
        try:
            done, end = await pipe.progress(service)
        except Exception:  # noqa: BLE001 - the probe itself met the outage: no answer is no progress
            done, end = last_done, last_done + 1
        now = time.monotonic()
        if done != last_done or done >= end:
            last_done, last_move = done, now
        longest = max(longest, now - last_move)
        await asyncio.sleep(0.5)
    return round(longest, 1)


async def test_a_broker_killed_and_started_again_costs_no_task_and_no_flood(database_url, tmp_path, cluster,
                                                                           monkeypatch, figures):
    """Three brokers, replication 3; broker 2 SIGKILLed while a 400-VPA backlog drains, started 20 s later."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", cluster)
    envelopes = company(400, 45, date(2026, 4, 6), seed=26)
    path = write_stream(envelopes, tmp_path / "stream.jsonl")
    async with Pipeline(database_url, tmp_path, VPA_CLOCK="stream", VPA_REPLICATION_FACTOR="3",
                        VPA_SESSION_TIMEOUT_SECONDS="10") as pipe:
        topics_made = await topic_settings(pipe.prefix)
        await produce_fast(envelopes)
        _, end = await pipe.progress("detector")
        await wait_progress(pipe, "detector", end // 5)
        done = asyncio.Event()
        watcher = asyncio.ensure_future(longest_pause(pipe, "detector", done))
        killed_at = time.time()
        subprocess.run([*CLUSTER, "kill", "2"], check=True, capture_output=True, timeout=60)
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself is what this test is about
        subprocess.run([*CLUSTER, "start-node", "2"], check=True, capture_output=True, timeout=60)
        await pipe.settle(timeout=600, stall=180)
        done.set()
        pause = await watcher
        report = pipe.verify([path])
        errors = error_lines(pipe, killed_at)
        warnings = sum(1 for p in pipe.procs for line in p.log_path.read_text(errors="replace").splitlines()
                       if "vpa.brokers" in line)
        alive = [p.service for p in pipe.procs if p.alive()]
    figures.set(events=len(envelopes), outage_s=OUTAGE_SECONDS, longest_pause_s=pause, error_lines=len(errors),
                broker_warnings=warnings, topics=len(topics_made), **drift_figures(report))
    assert report["ok"], report["drift"][:20]
    assert sorted(alive) == sorted((*STREAM_SERVICES, "notifier")), alive
    assert topics_made and all(r == 3 and m >= 2 for r, m in topics_made.values()), topics_made
    assert len(errors) <= ERROR_LIMIT, "\n".join(errors[:40])


def test_replication_three_on_one_broker_fails_with_the_brokers_reason_and_leaves_no_topic(tmp_path):
    """`vpa topics create` with VPA_REPLICATION_FACTOR=3 against the single local broker, twice."""
    import asyncio as aio

    from aiokafka.admin import AIOKafkaAdminClient

    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    before = aio.run(topics())
    env = dict(os.environ, VPA_REPLICATION_FACTOR="3", VPA_GROUP_PREFIX=f"rf3-{os.getpid()}")
    for _ in range(2):
        done = subprocess.run([VPA, "topics", "create"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "InvalidReplicationFactorError" in done.stderr and "1 broker(s) are registered" in done.stderr, done.stderr
    assert aio.run(topics()) == before
