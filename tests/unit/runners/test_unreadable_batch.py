"""A batch the Kafka client cannot read (issue 24): the records before it are delivered, its
partition is reported once and paused, and the other partitions go on (services.broker.client).

The client double behaves as aiokafka does: a fetch whose later batch fails raises and delivers
nothing of that fetch; asked for one record at a time, it hands over each record up to the batch."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.errors import UnsupportedCodecError

from services.broker.client import GroupConsumer, Unreadable
from services.config.kafka import KafkaConfig


class _Client:
    def __init__(self, bad_at: int) -> None:
        self.records = {("vpa.events", 0): list(range(10)), ("vpa.events", 1): list(range(10))}
        self.bad = {("vpa.events", 1): bad_at}  # the batch at this offset cannot be decompressed
        self.position_of = {tp: 0 for tp in self.records}
        self.paused: set = set()

    async def getmany(self, *tps, timeout_ms=0, max_records=None):  # noqa: ANN001, ANN201
        out = {}
        for tp in tps:
            key = (tp.topic, tp.partition)
            if key in self.paused:
                continue
            pos, bad = self.position_of[key], self.bad.get(key)
            take = [o for o in self.records[key] if o >= pos][: max_records or 1000]
            if bad is not None and any(o >= bad for o in take):
                if max_records == 1 and pos < bad:
                    take = [pos]
                else:
                    raise UnsupportedCodecError("Libraries for lz4 compression codec not found")
            if take:
                self.position_of[key] = take[-1] + 1
                out[tp] = [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o, key=b"k", value=b"v",
                                           timestamp=0, headers=()) for o in take]
        return out

    async def position(self, tp):  # noqa: ANN001, ANN201
        return self.position_of[(tp.topic, tp.partition)]

    def pause(self, tp):  # noqa: ANN001
        self.paused.add((tp.topic, tp.partition))

    def resume(self, tp):  # noqa: ANN001
        self.paused.discard((tp.topic, tp.partition))


def test_an_unreadable_batch_stops_its_partition_after_the_records_before_it_and_no_other():
    reported: list[Unreadable] = []
    consumer = GroupConsumer(KafkaConfig(), "g", ("vpa.events",), listener=None, on_unreadable=reported.append)
    client = consumer._consumer = _Client(bad_at=6)
    consumer._assigned = set(client.records)
    got = asyncio.run(consumer.fetch(0.01))
    assert [r.offset for r in got[("vpa.events", 0)]] == list(range(10))
    assert [r.offset for r in got[("vpa.events", 1)]] == list(range(6)), "nothing before the bad batch is lost"
    assert reported == [Unreadable("vpa.events", 1, 6, "UnsupportedCodecError: Libraries for lz4 compression "
                                                         "codec not found")]
    assert ("vpa.events", 1) in client.paused
    assert consumer.unreadable == reported
    assert asyncio.run(consumer.fetch(0.01)) == {}  # reported once, not in a loop
    assert len(reported) == 1
