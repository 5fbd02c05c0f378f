"""The store's write rule (versioned, idempotent upsert) and the in-memory store (DESIGN 3, 4.6)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from schemas.task import TASK_FIELDS, Task
from services.store.postgres import MemoryTaskStore, latest_versions, newer


def make_task(task_id: str, version: int = 1, **fields) -> dict:
    """A valid task (DESIGN 4.6) with its keys in contract order."""
    task = {
        "task_id": task_id, "tab": "cases", "kind": "absence", "stage": None, "vpa_id": "V-1",
        "vpa_name": "Anna Muster", "status": "open", "priority": "normal", "reasons": ["long"],
        "title": f"Abwesenheit {task_id}", "action": "Assistentin ansprechen", "owner": "AB",
        "assignee": "AB", "due_at": None, "message_draft": None,
        "created_at": "2026-11-26T09:12:00+01:00", "updated_at": "2026-11-26T09:12:00+01:00",
        "version": version,
        "history": [{"at": "2026-11-26T09:12:00+01:00", "change": "Fall eröffnet", "by": "detector"}],
        "evidence": None,
    }
    task.update(fields)
    return task


WRITTEN_FIELDS = tuple(f for f in TASK_FIELDS if f != "case_task_id")  # a reminder's case: only when set


def test_factory_matches_contract():
    assert tuple(make_task("t")) == WRITTEN_FIELDS
    Task.model_validate(make_task("t"))


@pytest.mark.parametrize("existing, incoming, expected", [
    (None, 1, True),   # nothing stored yet
    (1, 2, True),      # newer
    (5, 9, True),
    (2, 2, False),     # redelivery
    (3, 2, False),     # older, out of order
])
def test_newer(existing, incoming, expected):
    assert newer(existing, incoming) is expected


def test_latest_versions_keeps_highest_first_among_equals_sorted():
    batch = [make_task("b", 1), make_task("a", 2), make_task("b", 3, title="drei"),
             make_task("b", 2), make_task("b", 3, title="wiederholt")]
    out = latest_versions(batch)
    assert [(t["task_id"], t["version"]) for t in out] == [("a", 2), ("b", 3)]
    assert out[1]["title"] == "drei"
    assert latest_versions([]) == []


async def test_older_version_never_overwrites_newer():
    store = MemoryTaskStore()
    assert await store.apply([make_task("t", 3, title="v3")]) == ["t"]
    assert await store.apply([make_task("t", 2, title="v2")]) == []
    assert await store.apply([make_task("t", 1, title="v1")]) == []
    assert (await store.get("t"))["title"] == "v3"


async def test_equal_version_is_a_redelivery_and_ignored():
    store = MemoryTaskStore()
    await store.apply([make_task("t", 1, title="erste")])
    assert await store.apply([make_task("t", 1, title="anders")]) == []
    assert (await store.get("t"))["title"] == "erste"
    assert await store.apply([make_task("t", 2, title="zweite")]) == ["t"]
    assert (await store.get("t"))["title"] == "zweite"


async def test_batch_with_several_versions_of_one_task():
    store = MemoryTaskStore()
    queue = await store.subscribe()
    changed = await store.apply([make_task("t", 1), make_task("t", 3, title="v3"), make_task("t", 2),
                                 make_task("u", 1)])
    assert changed == ["t", "u"]
    assert (await store.get("t"))["version"] == 3
    # only the version kept is announced, once
    seen = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(t["task_id"], t["version"]) for t in seen] == [("t", 3), ("u", 1)]


async def test_reads_are_copies_in_contract_key_order():
    store = MemoryTaskStore()
    written = make_task("t")
    await store.apply([dict(reversed(list(written.items())))])  # producer's key order differs
    written["title"] = "geändert nach dem Schreiben"
    got = await store.get("t")
    assert tuple(got) == WRITTEN_FIELDS
    assert got["title"] == "Abwesenheit t"
    got["history"].append({"at": "x", "change": "y", "by": "z"})
    assert len((await store.get("t"))["history"]) == 1
    assert await store.get("nope") is None


async def test_filters():
    store = MemoryTaskStore()
    await store.apply([
        make_task("c1", tab="cases", status="open", assignee="AB", vpa_id="V-1"),
        make_task("c2", tab="cases", status="done", assignee="CD", vpa_id="V-2"),
        make_task("r1", tab="reminders", kind="reminder", status="waiting", assignee="AB", vpa_id="V-2",
                  due_at="2026-11-27T09:00:00+01:00"),
        make_task("r2", tab="reminders", kind="reminder", status="open", assignee="CD", vpa_id="V-1",
                  due_at="2026-11-26T14:00:00+01:00"),
    ])

    async def ids(**f):
        return [t["task_id"] for t in await store.list(**f)]

    assert await ids(tab="cases") == ["c1", "c2"]
    assert await ids(status="open") == ["r2", "c1"]
    assert await ids(assignee="AB") == ["r1", "c1"]
    assert await ids(vpa_id="V-2", tab="reminders") == ["r1"]
    berlin = timezone(timedelta(hours=1))
    # strictly before; tasks without due_at never match
    assert await ids(due_before=datetime(2026, 11, 27, 9, 0, tzinfo=berlin)) == ["r2"]
    assert await ids(due_before=datetime(2026, 11, 27, 8, 0, 1, tzinfo=timezone.utc)) == ["r2", "r1"]
    assert await ids(tab="journey") == []
    with pytest.raises(ValueError):
        await store.list(due_before=datetime(2026, 11, 27))  # naive: no instant
    with pytest.raises(ValueError):
        await store.list(offset=-1)


async def test_ordering_due_at_as_instant_nulls_last_then_task_id_and_pages():
    store = MemoryTaskStore()
    await store.apply([
        make_task("z-null"), make_task("a-null"),
        make_task("late", due_at="2026-11-26T10:00:00+01:00"),       # 09:00Z
        make_task("early", due_at="2026-11-26T08:30:00Z"),            # 08:30Z, written with Z
        make_task("same-b", due_at="2026-11-26T09:30:00+00:00"),
        make_task("same-a", due_at="2026-11-26T10:30:00+01:00"),      # same instant as same-b
    ])
    order = ["early", "late", "same-a", "same-b", "a-null", "z-null"]
    assert [t["task_id"] for t in await store.list()] == order
    pages = [[t["task_id"] for t in await store.list(limit=4, offset=o)] for o in (0, 4, 8)]
    assert pages == [order[:4], order[4:], []]
    assert [t["task_id"] for t in await store.all()] == sorted(order)


async def test_subscribers_get_changes_only_and_can_leave():
    store = MemoryTaskStore()
    queue = await store.subscribe()
    await store.apply([make_task("t", 1)])
    await store.apply([make_task("t", 1)])  # redelivery: no event
    got = await asyncio.wait_for(queue.get(), 1)
    assert (got["task_id"], got["version"]) == ("t", 1)
    assert queue.empty()
    await store.unsubscribe(queue)
    await store.apply([make_task("t", 2)])
    assert queue.empty()
    await store.close()
