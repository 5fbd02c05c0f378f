"""Helpers for integration tests: services as real OS processes against the real broker and DB.

Nothing here is mocked: `vpa run SERVICE` starts exactly as in production, with its own
consumer group and environment.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[2]
VPA = str(Path(sys.executable).with_name("vpa"))


def bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests with scripts/test")
    return servers


async def fresh_database(base_url: str) -> str:
    """Create an empty database on the server of ``base_url`` and return its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    if "?" in base_url:
        head, _, query = base_url.partition("?")
        return f"{head.rsplit('/', 1)[0]}/{name}?{query}"
    return f"{base_url.rsplit('/', 1)[0]}/{name}"


class ServiceProcess:
    def __init__(self, service: str, env: dict[str, str], log_dir: Path, command: Optional[list[str]] = None) -> None:
        self.service = service
        self.log_path = log_dir / f"{service}-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")
        # /metrics and /healthz: the dashlet's HTTP port, a Kafka service's metrics port (0: none)
        self.metrics_port = int(env.get("VPA_HTTP_PORT" if service == "dashlet" else "VPA_METRICS_PORT") or 0)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(command or [VPA, "run", service], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        """GET ``path`` on the service's metrics port: (status, body); (0, error) when it does not answer."""
        import aiohttp

        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
                async with http.get(f"http://127.0.0.1:{self.metrics_port}{path}") as resp:
                    return resp.status, await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    async def metric(self, name: str, **labels: str) -> Optional[float]:
        """The value of one sample on the metrics endpoint (None when absent or unreachable)."""
        status, body = await self.get("/metrics")
        if status != 200:
            return None
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return None

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def service_env(database_url: str, group_prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(KAFKA_BOOTSTRAP_SERVERS=bootstrap(), DATABASE_URL=database_url, VPA_CLOCK="stream",
               VPA_GROUP_PREFIX=group_prefix, VPA_METRICS_PORT="0", PYTHONUNBUFFERED="1",
               VPA_COMMIT_INTERVAL_SECONDS="0.2")
    env.update(extra)
    return env


async def produce(topic: str, records: list[tuple[Optional[str], bytes]], partition: Optional[int] = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode() if key else None, partition=partition)
    finally:
        await producer.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def produce_fast(items: list[Any], in_flight: int = 2000) -> list[tuple[str, int, int]]:
    """Envelopes (dicts, to the topic of their type, keyed like the contract; a clock.tick to every
    partition) and raw records (``(topic, key, value)``, value None for a null) with one idempotent
    producer, many sends in flight: for streams of 100,000 records. Returns (topic, partition,
    offset) of every record, in order (a tick: its first partition)."""
    from schemas.envelope import topic_for_type

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all", enable_idempotence=True, linger_ms=10,
                                max_batch_size=256 * 1024, max_request_size=2 * 1024 * 1024)
    await producer.start()
    where: list[Any] = []
    try:
        pending: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                topic = topic_for_type(item["type"]) or "vpa.events"
                value = json.dumps(item, ensure_ascii=False).encode()
                if item["type"] == "clock.tick":
                    futs = [await producer.send(topic, value, partition=p) for p in sorted(await producer.partitions_for(topic))]
                    pending += futs
                    where.append(futs[0])
                    continue
                key = item.get("vpa_id") or (item.get("data") or {}).get("initials")
                fut = await producer.send(topic, value, key=key.encode() if key else None)
            else:
                topic, key, value = item
                fut = await producer.send(topic, value, key=key.encode() if isinstance(key, str) else key)
            pending.append(fut)
            where.append(fut)
            if len(pending) >= in_flight:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return [(m.topic, m.partition, m.offset) for m in (f.result() for f in where)]


async def produce_envelopes(envelopes: list[dict]) -> None:
    """Each envelope to its topic by type, keyed like the contract (vpa_id or initials)."""
    from schemas.envelope import topic_for_type

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all")
    await producer.start()
    try:
        for env in envelopes:
            topic = topic_for_type(env["type"])
            key = env.get("vpa_id") or env.get("data", {}).get("initials")
            if env["type"] == "clock.tick":  # a tick goes to every partition (DESIGN 3)
                for p in await producer.partitions_for(topic):
                    await producer.send_and_wait(topic, json.dumps(env).encode(), partition=p)
                continue
            await producer.send_and_wait(topic, json.dumps(env).encode(), key=key.encode() if key else None)
    finally:
        await producer.stop()


async def read_topic(topic: str, predicate, timeout: float = 60) -> list[Any]:
    """Read ``topic`` from the start until ``predicate(records)`` is true or the time is up."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(), auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate(records):
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                records.extend(msgs)
        return records
    finally:
        await consumer.stop()


async def quiesce(groups: list[str], topics: tuple[str, ...] = ("vpa.events", "vpa.commands", "at.roster"),
                  timeout: float = 60) -> bool:
    """Wait until every group has committed every partition of ``topics`` up to its end.

    Kafka orders records within a partition, not across topics: a test that needs "this
    command after that event" waits here between the two (services commit after processing).
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None)
    meta = AIOKafkaProducer(bootstrap_servers=bootstrap())  # partitions_for() fetches metadata
    await admin.start()
    await probe.start()
    await meta.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(await meta.partitions_for(t))]
        deadline = time.monotonic() + timeout
        calm = 0
        while time.monotonic() < deadline:
            ends = await probe.end_offsets(tps)
            behind = False
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group)
                for tp, end in ends.items():
                    done = committed.get(tp)
                    if end > 0 and (done is None or done.offset < end):
                        behind = True
                        break
                if behind:
                    break
            if not behind:
                calm += 1
                if calm >= 2:  # twice in a row: a command a service is still sending has landed
                    return True
            else:
                calm = 0
            await asyncio.sleep(0.1)
        return False
    finally:
        await meta.stop()
        await probe.stop()
        await admin.close()


async def recreate_topics() -> None:
    """Empty contract topics: stream time is per partition, so old events would be 'ahead'."""
    from aiokafka.admin import AIOKafkaAdminClient

    from schemas.topics import CONTRACT_TOPICS

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in CONTRACT_TOPICS if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
        for _ in range(100):  # deletion is asynchronous on the broker
            if not set(doomed) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def groups_stable(groups: list[str], timeout: float = 90) -> bool:
    """Wait until every consumer group is Stable with at least one member (its partitions assigned)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = 0
            for group in groups:
                try:
                    [resp] = await admin.describe_consumer_groups([group])
                    _, _, state, _, _, members, *_ = resp.groups[0]
                except Exception:  # noqa: BLE001 - no coordinator yet, group unknown: not ready
                    continue
                if state == "Stable" and members:
                    ready += 1
            if ready == len(groups):
                return True
            await asyncio.sleep(0.3)
        return False
    finally:
        await admin.close()
