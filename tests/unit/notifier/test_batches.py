"""The notifier's checked batches (issue 22, point 4): the CPU part of a write, on plain records,
and the one-batch-in-flight order of writes."""
from __future__ import annotations

import asyncio
import json

import pytest

from schemas.topics import Topic
from services.broker.port import Record
from services.broker.topics import ERASE_PREFIX
from services.engine.decode import Invalid
from services.notifier.batches import Delete, Erase, Versions, check_batch, task_steps
from services.notifier.service import after
from tests.builders import activity, kafka_record
from tests.unit.store.test_store_rules import make_task


def rec(offset: int, key: bytes | None, value: bytes | None, topic: str = Topic.tasks, partition: int = 0) -> Record:
    return Record(topic, partition, offset, key, value, 0)


def version(offset: int, task_id: str, n: int = 1) -> Record:
    return rec(offset, task_id.encode(), json.dumps(make_task(task_id, n)).encode())


def test_tombstones_and_erasures_split_the_versions_in_order():
    marker = json.dumps({"erase_vpa": "V-9"}).encode()
    steps = task_steps([
        version(0, "a"), version(1, "b"), rec(2, b"a", None), version(3, "c"),
        rec(4, f"{ERASE_PREFIX}V-9".encode(), marker), version(5, "d"), rec(6, b"c", b"{not json"),
    ])
    assert [type(s) for s in steps] == [Versions, Delete, Versions, Erase, Versions]
    assert [r.offset for r in steps[0].good] == [0, 1] and steps[1] == Delete("a")
    assert steps[3] == Erase("V-9", f"{ERASE_PREFIX}V-9".encode())
    last = steps[4]
    assert [r.offset for r in last.good] == [5]
    assert [(type(i), r.offset) for i, r in last.refused] == [(Invalid, 6)]


def test_a_value_without_a_key_is_refused_not_a_tombstone():
    (step,) = task_steps([rec(0, None, None)])
    assert isinstance(step, Versions) and not step.good and "empty" in step.refused[0][0].reason


def test_a_fetch_is_checked_per_topic_with_its_offsets():
    good = activity("V-1")
    fetched = {
        (Topic.tasks, 1): [version(7, "a"), version(8, "b")],
        (Topic.events, 0): [kafka_record(good, offset=3, topic=Topic.events), rec(4, b"V-1", b"x", Topic.events)],
    }
    batch = check_batch(fetched, Topic.tasks)
    assert [r.offset for s in batch.steps for r in s.good] == [7, 8]
    assert [e.event_id for e in batch.envelopes] == [good["event_id"]]  # the invalid one is the services' DLQ's
    assert batch.offsets == {(Topic.tasks, 1): 9, (Topic.events, 0): 5}


async def test_one_batch_in_flight_and_in_order():
    log: list[str] = []
    release = {n: asyncio.Event() for n in range(3)}

    async def write(n: int) -> None:
        log.append(f"start {n}")
        await release[n].wait()
        log.append(f"end {n}")

    first = await after(None, write(0))
    assert log == ["start 0"]  # started before the caller goes on to check the next batch
    second = asyncio.ensure_future(after(first, write(1)))
    await asyncio.sleep(0)
    assert log == ["start 0"]  # waits for the batch before it
    release[0].set()
    running = await second
    assert log == ["start 0", "end 0", "start 1"]
    release[1].set()
    await running
    assert log[-1] == "end 1"


async def test_a_failed_write_stops_the_next_one_from_starting():
    async def fails() -> None:
        raise RuntimeError("the DLQ refused a record")

    async def never() -> None:
        raise AssertionError("started after a failed write")

    failed = await after(None, fails())
    with pytest.raises(RuntimeError, match="DLQ refused"):
        await after(failed, never())  # closed, never awaited: no warning either
