"""A broker that lost a producer's sequence (a restart) refuses every later send of that producer
with OutOfOrderSequenceNumber: the batch renews the producer (a new producer id) once and is sent
again, instead of failing its partition for ever (found by the broker-restart reliability test)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from services.broker.client import Producer, send_batch
from services.config.kafka import KafkaConfig

RECORDS = [("dashlet.tasks", b"k1", b"v1", None, ()), ("dashlet.tasks", b"k2", b"v2", None, ())]


class BrokenUntilRenewed:
    """A producer whose first id the broker no longer accepts."""

    def __init__(self) -> None:
        self.generation, self.renewals, self.written = 1, 0, []

    async def send(self, topic, key, value, partition=None, headers=()):  # noqa: ANN001, ANN201
        fut = asyncio.get_running_loop().create_future()
        if self.generation == 1:
            fut.set_exception(OutOfOrderSequenceNumber())
        else:
            self.written.append(key)
            fut.set_result(SimpleNamespace(offset=len(self.written) - 1))
        return fut

    async def renew(self, generation: int) -> None:
        if generation == self.generation:
            self.generation += 1
            self.renewals += 1


async def test_a_batch_refused_for_its_sequence_renews_the_producer_and_is_sent_again():
    producer = BrokenUntilRenewed()
    offsets = await send_batch(producer, RECORDS, give_up=30, what="test batch")  # type: ignore[arg-type]
    assert offsets == [0, 1] and producer.written == [b"k1", b"k2"] and producer.renewals == 1


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
