"""The producer hands a stream service's batch over as whole record batches (issue 22, point 3).

``Producer.send_many`` builds each partition's batches itself instead of aiokafka's record-by-record
``send``. Against a real broker: every record lands where ``send`` puts it (the key's murmur2
partition, or the partition it names), with its key, value and headers, in the order handed over
within its partition; the offsets returned are where each one is; a tombstone stays a tombstone;
and records larger together than one batch are split over several.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.broker.client import Producer, default_partition
from services.broker.port import OutRecord, send_batch
from services.config.kafka import KafkaConfig
from tests.integration.pipeline import bootstrap, read_topic

pytestmark = pytest.mark.integration

PARTITIONS = 3


async def new_topic() -> str:
    name = f"test-send-many-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    return name


def records(topic: str) -> list[OutRecord]:
    """Keyed records of about 2 KB (far more than one 16 KB batch per partition), some naming
    their partition, some with headers, and a tombstone."""
    out: list[OutRecord] = []
    for n in range(300):
        key = f"V-{n % 40}".encode()
        value = None if n == 150 else (f"{n:04d}:" + "x" * 2000).encode()
        partition = 1 if n % 7 == 0 else None
        headers = (("n", str(n).encode()),) if n % 3 == 0 else ()
        out.append((topic, key, value, partition, headers))
    return out


def test_each_record_lands_where_send_puts_it_with_the_offset_returned():
    async def run() -> None:
        topic = await new_topic()
        producer = Producer(KafkaConfig.from_env("test-send-many"))
        await producer.start()
        try:
            sent = records(topic)
            offsets = await send_batch(producer, sent, 60, "the test's batch")
            one = await (await producer.send(topic, b"V-7", b"after"))  # record by record, after them
        finally:
            await producer.stop()
        assert len(offsets) == len(sent)
        got = await read_topic(topic, lambda recs: len(recs) >= len(sent) + 1)
        assert len(got) == len(sent) + 1
        at = {(r.partition, r.offset): r for r in got}
        for (_t, key, value, partition, headers), offset in zip(sent, offsets):
            want = partition if partition is not None else default_partition(key, PARTITIONS)
            r = at[(want, offset)]
            assert (r.key, r.value, tuple(r.headers or ())) == (key, value, headers)
        for p in range(PARTITIONS):  # in the order handed over, within each partition
            mine = [o for (_t, key, _v, partition, _h), o in zip(sent, offsets)
                    if (partition if partition is not None else default_partition(key, PARTITIONS)) == p]
            assert mine == sorted(mine) == list(range(mine[0], mine[0] + len(mine)))
        assert one.partition == default_partition(b"V-7", PARTITIONS)  # aiokafka's own send agrees
        assert one.offset == 1 + max(o for (_t, k, _v, p, _h), o in zip(sent, offsets)
                                     if (p if p is not None else default_partition(k, PARTITIONS)) == one.partition)

    asyncio.run(run())


def test_nothing_to_send_is_no_batch():
    async def run() -> None:
        producer = Producer(KafkaConfig.from_env("test-send-many"))
        await producer.start()
        try:
            assert await send_batch(producer, [], 10, "nothing") == []
        finally:
            await producer.stop()

    asyncio.run(run())
