"""The runner contract suite on the real broker: the Kafka driver (``StreamDriver``) that runs on the
local broker in ``tests/unit/runners`` runs here on Apache Kafka, the same tests, unchanged. With
the embedded driver that makes three drivers for one suite (issue 21).

Each test gets empty contract topics of one partition, its own consumer group and its own
changelog and feedback topics; the driver is settled when the group has committed every input and
the worker has nothing left to send.
"""
from __future__ import annotations

import asyncio
import inspect
import uuid
from typing import Any

import pytest

from schemas.topics import CONTRACT_TOPICS
from services.broker.client import KafkaBroker
from services.broker.topic_setup import setup_topics
from services.broker.topics import changelog_topic, feedback_topic
from services.config.kafka import KafkaConfig, TopicSpec
from tests.integration.pipeline import bootstrap, recreate_topics
from tests.unit.runner_drivers import StreamRunner, close_all
from tests.unit.runners import test_embedded_runner as timers_and_clock
from tests.unit.runners import test_runner_failures as failures

pytestmark = pytest.mark.integration


def on_kafka(cfg: KafkaConfig, service: str) -> KafkaBroker:
    """Empty contract topics of one partition and the service's own topics, on the real broker."""
    async def prepare() -> None:
        await recreate_topics()
        own = [TopicSpec(changelog_topic(cfg, service), {"cleanup.policy": "compact"}),
               TopicSpec(feedback_topic(cfg, service), {})]
        report = await setup_topics(cfg, [TopicSpec(t, {}) for t in CONTRACT_TOPICS] + own)
        assert not [e for e in report.errors if "could not be created" in e], report.errors
    asyncio.run(prepare())
    return KafkaBroker(cfg)


def kafka_runner(*processors: Any) -> StreamRunner:
    [proc] = processors
    return StreamRunner(proc, lambda cfg: on_kafka(cfg, proc.name), bootstrap_servers=bootstrap(),
                        group_prefix=f"contract-{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def _close_stream_runners():
    yield
    close_all()


@pytest.fixture(scope="module", autouse=True)
def _no_one_partition_topics_left():
    """The tests after these expect the contract topics as the services make them."""
    yield
    asyncio.run(recreate_topics())


@pytest.fixture
def make_runner():
    return kafka_runner


def _contract_tests(module: Any, fixture: str) -> dict[str, Any]:
    """The module's tests that take the driver as a fixture (the others are one driver's own)."""
    return {name: fn for name, fn in vars(module).items()
            if name.startswith("test_") and fixture in inspect.signature(fn).parameters
            and not hasattr(fn, "pytestmark")}


globals().update(_contract_tests(timers_and_clock, "make_runner"))


@pytest.fixture
def driver():
    return "kafka-broker"


@pytest.fixture(autouse=True)
def _kafka_broker_driver(monkeypatch: pytest.MonkeyPatch):
    """``make("kafka-broker", proc)`` in the failure tests: the driver on this broker."""
    monkeypatch.setattr(failures, "make", lambda driver, *procs: kafka_runner(*procs))


globals().update(_contract_tests(failures, "driver"))
