"""PostgresTaskStore on a real PostgreSQL: migrations, versioned upserts, history, NOTIFY, filters.

Each test gets its own schema (fixture ``pg_store``/``pg_schema``), so tables start empty and
migrations run from scratch.
"""
from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from schemas.task import TASK_FIELDS
from services.store import embedded_pg
from services.store.postgres import MIGRATIONS, MemoryTaskStore, PostgresTaskStore, open_store
from tests.unit.store.test_store_rules import make_task
from tests.waiting import poll

pytestmark = pytest.mark.integration
FILES = sorted(p.name for p in MIGRATIONS.glob("*.sql"))


async def until(predicate, timeout: float = 5.0) -> None:
    await poll(predicate, timeout, "the condition", interval=0.02)


async def fetch(database_url: str, schema: str, sql: str, *args) -> list:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_migrations_are_applied_once_and_connect_is_idempotent(database_url, pg_schema):
    first = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    second = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    try:
        assert first.migrations_applied == FILES
        assert second.migrations_applied == []
        rows = await fetch(database_url, pg_schema, "SELECT name FROM schema_migrations ORDER BY name")
        assert [r["name"] for r in rows] == FILES
        await second.apply([make_task("t")])
        assert (await first.get("t"))["task_id"] == "t"
    finally:
        await first.close()
        await second.close()


async def test_concurrent_connects_do_not_race(database_url, pg_schema):
    stores = await asyncio.gather(*(PostgresTaskStore.connect(database_url, schema=pg_schema) for _ in range(4)))
    try:
        # the advisory lock serialises them: exactly one applied each file, none failed
        assert sorted(n for s in stores for n in s.migrations_applied) == FILES
        rows = await fetch(database_url, pg_schema, "SELECT count(*) AS n FROM schema_migrations")
        assert rows[0]["n"] == len(FILES)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_round_trip_keeps_the_task_shape(pg_store):
    written = make_task("case:absence:V-1:A1", due_at="2026-11-27T09:00:00+01:00",
                        message_draft="Hallo Jörg, schön!", reasons=["long", "frequent"])
    await pg_store.apply([dict(reversed(list(written.items())))])  # jsonb reorders keys anyway
    got = await pg_store.get(written["task_id"])
    assert got == written
    assert tuple(got) == tuple(f for f in TASK_FIELDS if f != "case_task_id")  # a reminder's case: only when set
    assert tuple(got["history"][0]) == ("at", "change", "by")
    assert got["due_at"] == "2026-11-27T09:00:00+01:00"  # the string as written, offset kept
    assert await pg_store.get("nope") is None


async def test_versioned_upsert_ignores_older_and_redelivered_versions(pg_store):
    assert await pg_store.apply([make_task("t", 2, title="v2")]) == ["t"]
    assert await pg_store.apply([make_task("t", 1, title="v1")]) == []      # older
    assert await pg_store.apply([make_task("t", 2, title="anders")]) == []  # redelivery
    assert (await pg_store.get("t"))["title"] == "v2"
    assert await pg_store.apply([make_task("t", 3, title="v3", status="done")]) == ["t"]
    got = await pg_store.get("t")
    assert (got["version"], got["title"], got["status"]) == (3, "v3", "done")
    # the filter columns follow the document
    assert [t["task_id"] for t in await pg_store.list(status="done")] == ["t"]
    assert await pg_store.list(status="open") == []


async def test_batch_with_several_versions_of_one_task(pg_store):
    changed = await pg_store.apply([make_task("a", 1), make_task("a", 3, title="v3"), make_task("b", 1),
                                    make_task("a", 2), make_task("a", 3, title="später")])
    assert changed == ["a", "b"]
    assert (await pg_store.get("a"))["title"] == "v3"
    assert [v["version"] for v in await pg_store.versions("a")] == [3]  # only the kept version
    assert await pg_store.apply([]) == []


async def test_every_applied_version_is_kept_as_history(pg_store, database_url, pg_schema):
    for version in (1, 2, 2, 1, 4, 3):
        await pg_store.apply([make_task("t", version, title=f"v{version}")])
    assert [(v["version"], v["title"]) for v in await pg_store.versions("t")] == [(1, "v1"), (2, "v2"), (4, "v4")]
    rows = await fetch(database_url, pg_schema, "SELECT version, written_at FROM task_versions ORDER BY version")
    assert [r["version"] for r in rows] == [1, 2, 4] and all(r["written_at"] for r in rows)


def entry(n: int) -> dict:
    return {"at": f"2026-11-26T09:{n:02d}:00+01:00", "change": f"change {n}", "by": "detector"}


def delta(task_id: str, version: int) -> dict:
    """A version as the services write it: the history entry of its own change only."""
    return make_task(task_id, version, title=f"v{version}", history=[entry(version)])


class _RawWriter:
    """The notifier's path: the versions' JSON bytes as they arrived (PostgresTaskStore.apply_raw)."""

    def __init__(self, store: PostgresTaskStore) -> None:
        self.store = store

    async def apply(self, tasks: list[dict]) -> list[str]:
        return await self.store.apply_raw([json.dumps(t, ensure_ascii=False).encode() for t in tasks])

    def __getattr__(self, name: str):
        return getattr(self.store, name)


@pytest.mark.parametrize("store_kind", ["postgres", "postgres-raw", "memory"])
async def test_history_is_put_together_from_the_versions(pg_store, store_kind):
    store = {"postgres": pg_store, "postgres-raw": _RawWriter(pg_store), "memory": MemoryTaskStore()}[store_kind]
    await store.apply([delta("a", 1)])
    await store.apply([delta("a", 3), delta("a", 2), delta("a", 2)])  # out of order, repeated, in one batch
    await store.apply([delta("a", 2), delta("a", 3)])  # redelivered: nothing added
    got = await store.get("a")
    assert (got["version"], got["title"]) == (3, "v3")
    assert got["history"] == [entry(1), entry(2), entry(3)]
    await store.apply([delta("b", 1), delta("b", 2)])  # new in one batch
    assert (await store.get("b"))["history"] == [entry(1), entry(2)]
    whole = make_task("a", 4, history=[entry(9), entry(8), entry(7), entry(6)])  # carries its whole history
    await store.apply([whole])
    assert (await store.get("a"))["history"] == whole["history"]
    if store_kind != "memory":
        assert [v["history"] for v in await store.versions("b")] == [[entry(1), entry(2)]]


async def test_changes_are_announced_to_listeners(pg_store, database_url, pg_schema):
    seen: list[dict] = []
    stop = await pg_store.listen(seen.append)
    queue = await pg_store.subscribe()
    writer = await PostgresTaskStore.connect(database_url, schema=pg_schema)  # another writer's commits
    try:
        await writer.apply([make_task("t1", 1), make_task("t2", 1)])
        await writer.apply([make_task("t1", 1)])  # redelivery: no notification
        await writer.apply([make_task("t1", 2, status="done")])
        await until(lambda: len(seen) == 3)
        assert sorted(map(str, seen[:2])) == sorted(map(str, [{"task_id": "t1", "version": 1},
                                                             {"task_id": "t2", "version": 1}]))
        assert seen[2] == {"task_id": "t1", "version": 2}
        docs = [await asyncio.wait_for(queue.get(), 5) for _ in range(3)]
        assert sorted((d["task_id"], d["version"]) for d in docs) == [("t1", 1), ("t1", 2), ("t2", 1)]
        # the full document of that version, its history put together from both versions' entries
        assert docs[-1] == make_task("t1", 2, status="done", history=make_task("t1")["history"] * 2)
        await asyncio.sleep(0.2)
        assert len(seen) == 3 and queue.empty()

        stop()
        await pg_store.unsubscribe(queue)
        await writer.apply([make_task("t1", 3)])
        await asyncio.sleep(0.2)
        assert len(seen) == 3 and queue.empty()
    finally:
        await writer.close()


async def test_filters_ordering_and_pagination(pg_store):
    await pg_store.apply([
        make_task("c1", tab="cases", status="open", assignee="AB", vpa_id="V-1"),
        make_task("c2", tab="cases", status="done", assignee="CD", vpa_id="V-2"),
        make_task("r1", tab="reminders", kind="reminder", status="waiting", assignee="AB", vpa_id="V-2",
                  due_at="2026-11-27T09:00:00+01:00"),
        make_task("r2", tab="reminders", kind="reminder", status="open", assignee="CD", vpa_id="V-1",
                  due_at="2026-11-26T14:00:00+01:00"),
        make_task("r3", tab="reminders", kind="reminder", status="open", assignee="CD", vpa_id="V-1",
                  due_at="2026-11-26T13:00:00Z"),  # the same instant as r2, other offset
    ])

    async def ids(**f):
        return [t["task_id"] for t in await pg_store.list(**f)]

    assert await ids() == ["r2", "r3", "r1", "c1", "c2"]
    assert await ids(tab="cases") == ["c1", "c2"]
    assert await ids(status="open", assignee="CD") == ["r2", "r3"]
    assert await ids(vpa_id="V-2") == ["r1", "c2"]
    berlin = timezone(timedelta(hours=1))
    assert await ids(due_before=datetime(2026, 11, 26, 14, 0, tzinfo=berlin)) == []  # strictly before
    assert await ids(due_before=datetime(2026, 11, 26, 14, 0, 1, tzinfo=berlin)) == ["r2", "r3"]
    assert await ids(due_before=datetime(2026, 11, 28, tzinfo=timezone.utc), tab="reminders",
                     status="waiting") == ["r1"]
    assert [await ids(limit=2, offset=o) for o in (0, 2, 4, 6)] == [["r2", "r3"], ["r1", "c1"], ["c2"], []]
    assert [t["task_id"] for t in await pg_store.all()] == ["c1", "c2", "r1", "r2", "r3"]
    with pytest.raises(ValueError):
        await pg_store.list(due_before=datetime(2026, 11, 26))


async def test_same_answers_as_the_memory_store(pg_store):
    """Both stores are interchangeable: the same writes give the same reads (incl. order)."""
    rnd = random.Random(7)
    memory = MemoryTaskStore()
    ids = [f"{p}:{n}" for p in ("case", "reminder", "Journey", "z", "ä") for n in range(12)]
    batches = [[make_task(rnd.choice(ids), rnd.randint(1, 6),
                          tab=rnd.choice(["cases", "reminders", "journey"]),
                          status=rnd.choice(["waiting", "open", "done", "cancelled"]),
                          assignee=rnd.choice(["AB", "CD", None]), vpa_id=rnd.choice(["V-1", "V-2"]),
                          due_at=rnd.choice([None, "2026-11-26T09:00:00+01:00", "2026-11-26T08:00:00Z",
                                             f"2026-11-{rnd.randint(20, 30)}T12:00:00+01:00"]))
                for _ in range(rnd.randint(1, 30))] for _ in range(20)]
    for batch in batches:
        assert await pg_store.apply(batch) == await memory.apply(batch)
    assert await pg_store.all() == await memory.all()
    due = datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc)
    for f in ({}, {"tab": "cases"}, {"status": "open", "assignee": "AB"}, {"vpa_id": "V-2", "limit": 7, "offset": 3},
              {"due_before": due}, {"due_before": due + timedelta(days=3), "tab": "journey"}):
        assert await pg_store.list(**f) == await memory.list(**f), f


async def test_concurrent_writers_converge_without_deadlock(pg_store, database_url, pg_schema):
    other = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    try:
        ids = [f"t{n:03}" for n in range(200)]
        batches = [[make_task(i, v) for i in (ids if v % 2 else ids[::-1])] for v in range(1, 9)]
        await asyncio.gather(*(store.apply(b) for b in batches for store in (pg_store, other)))
        assert {t["version"] for t in await pg_store.all()} == {8}
    finally:
        await other.close()


async def test_open_store_without_url_starts_an_embedded_server(tmp_path):
    data_dir = tmp_path / "pg"
    store = await open_store(None, str(data_dir))
    try:
        assert store.migrations_applied == FILES
        await store.apply([make_task("t")])
        assert (await store.get("t"))["version"] == 1
    finally:
        await store.close()
        embedded_pg.stop(data_dir)


async def test_live_feed_survives_a_lost_listen_connection(pg_store, database_url):
    seen: list[dict] = []
    await pg_store.listen(seen.append)
    await pg_store.apply([make_task("t", 1)])
    await until(lambda: len(seen) == 1)
    lost_pid = pg_store._listener.get_server_pid()
    conn = await asyncpg.connect(database_url)
    try:  # as if the server restarted or a proxy dropped the connection
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", lost_pid)
    finally:
        await conn.close()
    for version in range(2, 40):  # the store reconnects in the background; keep writing until heard
        await pg_store.apply([make_task("t", version)])
        await asyncio.sleep(0.25)
        if len(seen) > 1:
            break
    assert seen[-1] == {"task_id": "t", "version": version}
    assert pg_store._listener.get_server_pid() != lost_pid


async def test_the_sql_reader_pages_sorts_and_counts_like_the_memory_reader(pg_store):
    """Issue 27: the page and its total in one round trip without reading every document; the
    same answers as the in-memory reader for every filter, sort and page."""
    import random
    from datetime import datetime, timedelta, timezone

    from services.dashlet.query import MemoryTaskReader, PostgresTaskReader, Selection, TaskSort
    from services.store.postgres import MemoryTaskStore

    rng = random.Random(7)
    start = datetime(2026, 11, 30, 8, tzinfo=timezone.utc)
    tasks = [make_task(f"t{n:03d}", tab=rng.choice(["cases", "reminders"]),
                       status=rng.choice(["waiting", "open", "done"]), priority=rng.choice(["high", "normal", "low"]),
                       assignee=rng.choice(["AB", "CD"]), vpa_id=f"V-{n % 7}",
                       due_at=None if n % 5 == 0 else (start + timedelta(hours=rng.randrange(48))).isoformat())
             for n in range(120)]
    await pg_store.apply(tasks)
    memory = MemoryTaskStore()
    await memory.apply(tasks)
    sql, mem = PostgresTaskReader(pg_store._pool), MemoryTaskReader(memory)  # noqa: SLF001
    selections = [Selection(), Selection(tab="cases", statuses=("waiting", "open"), limit=7, offset=3),
                  Selection(tab="reminders", sort=TaskSort.priority, limit=10),
                  Selection(assignee="CD", statuses=("open",), sort=TaskSort.priority, limit=5, offset=5),
                  Selection(vpa_id="V-3"), Selection(due_by=start + timedelta(hours=20), limit=4),
                  Selection(tab="cases", offset=500)]
    for sel in selections:
        got_items, got_total = await sql.page(sel)
        want_items, want_total = await mem.page(sel)
        assert got_total == want_total, sel
        assert [t["task_id"] for t in got_items] == [t["task_id"] for t in want_items], sel
    # Keyset: page by page from the cursor of the last item gives the whole list, in order, once.
    from dataclasses import replace

    from services.dashlet.query import Cursor

    for sel in (Selection(limit=9), Selection(tab="cases", statuses=("waiting", "open"), sort=TaskSort.priority, limit=4),
                Selection(assignee="AB", sort=TaskSort.priority, limit=11)):
        whole, _ = await mem.page(replace(sel, limit=500))
        for reader in (sql, mem):
            walked, cursor = [], None
            while True:
                items, _ = await reader.page(replace(sel, after=cursor))
                walked += [t["task_id"] for t in items]
                if len(items) < sel.limit:
                    break
                cursor = Cursor.decode(Cursor.of(items[-1], sel.sort).encode())
            assert walked == [t["task_id"] for t in whole], (reader, sel)
