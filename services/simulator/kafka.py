"""``vpa simulate --kafka``: one producer, the output order, the contract topics and keys (DESIGN 4.1).

One producer with idempotence keeps each partition in output order even when a send is retried;
``acks=all`` and the final flush mean that when the command returns, every record is written.
A hostile line goes to the topic and key of the line before it.
"""
from __future__ import annotations

import asyncio
from typing import Iterable

from schemas.topics import Topic
from services.broker.client import Producer
from services.broker.topic_setup import ensure_topics
from services.config.kafka import KafkaConfig
from services.simulator.lines import Item, record_of, to_line

IN_FLIGHT = 5000  # sends awaited in groups: memory stays flat on long runs


class TopicsUnfit(RuntimeError):
    """The contract topics exist in a form the services cannot use (e.g. another partition count)."""


async def produce(items: Iterable[Item], cfg: KafkaConfig) -> int:
    report = await ensure_topics(cfg)  # with VPA_PARTITIONS partitions, co-partitioned like the services expect
    if report.errors:
        raise TopicsUnfit("\n".join(report.errors))
    # upstream's records as an upstream producer sends them: uncompressed, in large batches
    producer = Producer(cfg, compression_type=None, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    sent = 0
    try:
        topic, key = Topic.events, None  # type: str, Optional[bytes]
        pending: list[asyncio.Future] = []
        for item in items:
            if isinstance(item, dict):
                topic, key = record_of(item)
            pending.append(await producer.send(topic, key, to_line(item)))
            sent += 1
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush(timeout=600)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
