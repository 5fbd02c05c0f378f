"""The pipeline against a secured broker: the local KRaft broker's SASL_PLAINTEXT listener
(deploy/kafka/kafka.sh, PLAIN and SCRAM-SHA-256/512), every client configured only through the
environment as in production."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid

import pytest

from schemas.topics import CONTRACT_TOPICS
from services.broker.client import aiokafka_kwargs
from services.config.kafka import KafkaConfig
from tests.integration.pipeline import VPA, ServiceProcess, fresh_database, service_env
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
USER = os.environ.get("KAFKA_LOCAL_SASL_USER", "vpa")
PASSWORD = os.environ.get("KAFKA_LOCAL_SASL_PASSWORD", "vpa-secret")


def sasl_bootstrap() -> str:
    servers = os.environ.get("KAFKA_SASL_BOOTSTRAP_SERVERS")
    if not servers:
        raise RuntimeError("KAFKA_SASL_BOOTSTRAP_SERVERS is not set: run the tests with scripts/test")
    return servers


def sasl_env(mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": sasl_bootstrap(), "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": mechanism, "KAFKA_SASL_USERNAME": USER, "KAFKA_SASL_PASSWORD": password}


def sasl_config(mechanism: str, password: str = PASSWORD) -> KafkaConfig:
    return KafkaConfig.from_env("test", sasl_env(mechanism, password))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_every_mechanism_authenticates_and_a_wrong_password_is_refused(mechanism):
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**aiokafka_kwargs(sasl_config(mechanism)), request_timeout_ms=10000)
    await admin.start()
    try:
        assert isinstance(await admin.list_topics(), list)
    finally:
        await admin.close()
    refused = AIOKafkaAdminClient(**aiokafka_kwargs(sasl_config(mechanism, "wrong")), request_timeout_ms=10000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(refused.start(), 30)
    await refused.close()


def test_vpa_topics_create_over_sasl_and_a_refused_login_is_a_clear_error():
    env = dict(os.environ, **sasl_env("SCRAM-SHA-256"))
    done = subprocess.run([VPA, "topics", "create"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for topic in CONTRACT_TOPICS:
        assert f" {topic}: 4 partitions" in done.stdout
    bad = dict(env, KAFKA_SASL_PASSWORD="wrong")
    refused = subprocess.run([VPA, "topics", "create"], env=bad, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert "vpa topics create: cannot set up topics on" in refused.stderr
    assert "Traceback" not in refused.stderr


async def _produce_over_sasl(cfg: KafkaConfig, envelopes: list[dict]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**aiokafka_kwargs(cfg), acks="all")
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait("vpa.events", json.dumps(env).encode(), key=env["vpa_id"].encode())
    finally:
        await producer.stop()


async def test_detector_and_notifier_run_over_sasl(database_url, tmp_path):
    from services.store.postgres import PostgresTaskStore

    url = await fresh_database(database_url)
    run = uuid.uuid4().hex[:8]
    env = service_env(url, f"sasl-{run}", **sasl_env("SCRAM-SHA-512"))
    procs = [ServiceProcess(s, env, tmp_path) for s in ("detector", "notifier")]
    store = await PostgresTaskStore.connect(url)
    vpa = f"V-SASL-{run}"
    try:
        await _produce_over_sasl(sasl_config("SCRAM-SHA-512"), [
            {"event_id": f"sasl-{run}", "type": "vpa.absence_registered", "occurred_at": "2026-11-26T09:12:00+01:00",
             "vpa_id": vpa, "actor": None, "schema_version": 1,
             "data": {"absence_id": "A-1", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}},
        ])
        task = await wait_for(lambda: store.get(f"case:absence:{vpa}:A-1"), lambda t: t is not None, timeout=180)
        logs = "\n\n".join(f"== {p.service}\n{p.log_tail()}" for p in procs)
        assert task is not None, f"no task over SASL within 180 s\n{logs}"
        assert (task["tab"], task["status"], task["reasons"]) == ("cases", "open", ["long"])
    finally:
        for p in procs:
            p.stop()
        await store.close()
