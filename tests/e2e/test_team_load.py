"""The dashlet for a whole team (issue 27), over PostgreSQL with the embedded pipeline behind it:
commands do not wait for the connections list reads hold and are never cut off half way, every
version reaches the store with its history entry, and the live feed has one listener and one
reader however many pages subscribe, each getting each change once."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from services.store.postgres import PostgresTaskStore
from tests.e2e.harness import company, start_dashlet

pytestmark = pytest.mark.integration
AT = {"Authorization": "Bearer tok-at"}
TOKENS = ({"Authorization": "Bearer tok-at"}, {"Authorization": "Bearer tok-cd"}, {"Authorization": "Bearer tok-vm"})


@pytest.fixture
async def dashlet(database_url, pg_schema):
    store = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    d = await start_dashlet(store, company(), feeds_per_token=100, command_burst=1000, commands_per_second=1000)
    yield d
    await d.stop()
    await store.close()


async def test_a_command_goes_through_while_list_reads_hold_every_read_connection(dashlet):
    pool = dashlet.store._pool  # noqa: SLF001 - the list readers' pool, taken whole
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        async with aiohttp.ClientSession(dashlet.url) as http:
            body = {"type": "cmd.reminder.set", "vpa_id": "V-2",
                    "data": {"reminder_id": "R-load", "due_at": "2026-12-10T09:00:00+01:00", "owner": "AB"}}
            # Before, the ledger and the checks queued for a read connection: this never returned.
            async with http.post("/api/commands", json=body, headers=AT, timeout=aiohttp.ClientTimeout(60)) as r:
                assert r.status == 202, await r.text()
    finally:
        for conn in held:
            await pool.release(conn)
    task = await dashlet.store.get("reminder:R-load")
    assert task["version"] == 1 and len(task["history"]) == 1


async def test_concurrent_commands_on_one_task_keep_every_history_entry(dashlet):
    async with aiohttp.ClientSession(dashlet.url) as http:
        body = {"type": "cmd.reminder.set", "vpa_id": "V-2",
                "data": {"reminder_id": "R-busy", "due_at": "2026-12-10T09:00:00+01:00", "owner": "AB"}}
        async with http.post("/api/commands", json=body, headers=AT) as r:
            assert r.status == 202

        async def reschedule(n: int) -> int:
            body = {"type": "cmd.reminder.reschedule", "vpa_id": "V-2",
                    "data": {"reminder_id": "R-busy", "due_at": f"2026-12-{11 + n % 15:02d}T09:{n % 60:02d}:00+01:00"}}
            async with http.post("/api/commands", json=body, headers=TOKENS[n % 2]) as r:
                return r.status

        statuses = await asyncio.gather(*(reschedule(n) for n in range(60)))
    assert set(statuses) <= {202, 422}, statuses
    task = await dashlet.store.get("reminder:R-busy")
    assert len(task["history"]) == task["version"] > 1
    versions = await dashlet.store.versions("reminder:R-busy")
    assert [v["version"] for v in versions] == list(range(1, task["version"] + 1))


async def test_many_subscribers_one_listener_one_reader_each_change_once(dashlet):
    store: PostgresTaskStore = dashlet.store
    n = 40
    async with aiohttp.ClientSession(dashlet.url) as http:
        async def connect(i: int) -> aiohttp.ClientResponse:
            resp = await http.get("/api/stream", headers=TOKENS[i % 3])
            assert resp.status == 200
            assert b"event: ready" in await resp.content.readuntil(b"\n\n")
            return resp

        feeds = await asyncio.gather(*(connect(i) for i in range(n)))  # all at once
        assert store.feed_stats() == {"listeners": 1, "readers": 1, "subscribers": n}
        body = {"type": "cmd.case.resolve", "vpa_id": "V-1", "data": {"task_id": "case:absence:V-1:S"}}
        async with http.post("/api/commands", json=body, headers=AT) as r:
            assert r.status == 202

        async def changes_until_quiet(resp: aiohttp.ClientResponse) -> list[dict]:
            got = []
            while True:
                try:
                    chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
                except asyncio.TimeoutError:
                    return got
                fields = dict(line.split(": ", 1) for line in chunk.decode().strip().split("\n")
                              if not line.startswith(":"))
                if fields.get("event") == "task":
                    got.append(json.loads(fields["data"]))

        seen = await asyncio.gather(*(changes_until_quiet(f) for f in feeds))
        for got in seen:
            ids = [(t["task_id"], t["version"]) for t in got]
            assert len(ids) == len(set(ids)), ids  # nothing twice
            assert ("case:absence:V-1:S", 2) in ids
        for resp in feeds:
            resp.close()

    for _ in range(200):  # the server notices the closed connections
        if store.feed_stats()["subscribers"] == 0:
            break
        await asyncio.sleep(0.05)
    assert store.feed_stats() == {"listeners": 1, "readers": 1, "subscribers": 0}
