"""A broker that lost a producer's sequence (a restart) refuses every later send of that producer
with OutOfOrderSequenceNumber: the batch renews the producer (a new producer id) once and is sent
again, instead of failing its partition for ever (found by the broker-restart reliability test).
The batch logic runs on the local broker; the Kafka producer's own parts on a stand-in client."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from services.broker.client import Producer, ProducerRestarting
from services.broker.local import LocalBroker, ProducerBroken
from services.broker.port import Failure, send_batch
from services.config.kafka import KafkaConfig

RECORDS = [("dashlet.tasks", b"k1", b"v1", None, ()), ("dashlet.tasks", b"k2", b"v2", None, ())]


async def test_a_batch_refused_for_its_sequence_renews_the_producer_and_is_sent_again():
    broker = LocalBroker()
    producer = broker.producer()
    await producer.start()
    broker.fail_sends.append(ProducerBroken("lost sequence"))
    offsets = await send_batch(producer, RECORDS, give_up=30, what="test batch")
    assert offsets == [0, 1] and [r.key for r in broker.records("dashlet.tasks")] == [b"k1", b"k2"]
    assert producer.generation == 2  # renewed once: a new producer id


async def test_a_batch_the_broker_refuses_outright_is_not_sent_again():
    broker = LocalBroker()
    producer = broker.producer()
    await producer.start()
    broker.fail_sends.append(ValueError("record too large"))
    with pytest.raises(ValueError):
        await send_batch(producer, RECORDS, give_up=30, what="test batch")
    assert broker.records("dashlet.tasks") == [] and producer.generation == 1


def test_the_kafka_producer_tells_a_broken_producer_from_a_broker_away_and_a_refusal():
    producer = Producer(KafkaConfig())
    assert producer.failure(OutOfOrderSequenceNumber()) is Failure.broken
    assert producer.failure(KafkaConnectionError()) is Failure.away
    assert producer.failure(ProducerRestarting()) is Failure.away
    assert producer.failure(ValueError()) is Failure.refused


async def test_a_renewal_whose_start_fails_is_started_again_by_the_next_send(monkeypatch: pytest.MonkeyPatch):
    """The broker is still away when the producer is renewed: it must not stay stopped (every
    later send would be refused for good and the partitions restart for ever)."""
    producer = Producer(KafkaConfig())
    attempts: list[int] = []

    class Started:
        async def send(self, topic, value, key=None, partition=None, headers=None):  # noqa: ANN001, ANN201
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(SimpleNamespace(offset=0))
            return fut

        async def stop(self) -> None:
            pass

    async def start() -> None:
        attempts.append(1)
        if len(attempts) == 2:  # the renewal's start: the broker is away
            raise KafkaConnectionError()
        producer._producer = Started()
        producer.generation += 1
        producer._restart_pending = False

    monkeypatch.setattr(producer, "start", start)
    await producer.start()
    await producer.renew(producer.generation)
    assert producer._producer is None and len(attempts) == 2
    fut = await producer.send("dashlet.tasks", b"k", b"v")  # starts it again
    assert (await fut).offset == 0 and len(attempts) == 3 and producer.generation == 2


async def test_batches_failing_on_the_same_producer_renew_it_once(monkeypatch: pytest.MonkeyPatch):
    producer = Producer(KafkaConfig())
    starts: list[int] = []

    async def start() -> None:
        producer._producer = object()
        producer.generation += 1
        starts.append(producer.generation)

    async def stop(timeout: float = 2.0) -> None:
        producer._producer = None

    monkeypatch.setattr(producer, "start", start)
    monkeypatch.setattr(producer, "stop", stop)
    await producer.start()
    seen: Any = producer.generation
    await asyncio.gather(*(producer.renew(seen) for _ in range(4)))
    assert starts == [1, 2], "renewed more than once for one broken producer id"
    await producer.renew(seen)  # a late caller of the old generation: nothing to do
    assert starts == [1, 2]
