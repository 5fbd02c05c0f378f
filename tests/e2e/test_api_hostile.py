"""A hostile client against the dashlet over PostgreSQL (issue 10): every input that once answered
500, and the other ways to break a parser, each with the 4xx it must get. Afterwards the server
is still healthy and still accepts a good command."""
from __future__ import annotations

import pytest
import aiohttp

from services.dashlet.errors import MAX_BODY_BYTES
from services.store.postgres import PostgresTaskStore
from tests.e2e.harness import company, start_dashlet

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer tok-at"}
JSON = {**AUTH, "Content-Type": "application/json"}
RESOLVE = b'{"type":"cmd.case.resolve","vpa_id":"V-1","data":{"task_id":"case:absence:V-1:L"}}'


@pytest.fixture
async def http(database_url, pg_schema):
    store = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    d = await start_dashlet(store, company())
    async with aiohttp.ClientSession(d.url) as session:
        yield session
    await d.stop()
    await store.close()


async def answer(resp: aiohttp.ClientResponse) -> tuple[int, str]:
    body = await resp.json()  # always JSON
    assert set(body) >= {"error", "code"}, body
    return resp.status, body["code"]


QUERIES = [
    ("vpa_id=V%00-1", 400, "bad_query"),                       # U+0000 in a query
    ("assignee=A%00B", 400, "bad_query"),
    ("tab=cases%00", 400, "bad_query"),
    ("offset=9223372036854775808", 400, "bad_query"),          # above 2^63
    ("offset=99999999999999999999999999", 400, "bad_query"),
    ("limit=0", 400, "bad_query"),
    ("limit=-1", 400, "bad_query"),
    ("limit=abc", 400, "bad_query"),
    ("limit=1&limit=2", 400, "bad_query"),
    ("due_before=0001-01-01T00:00:00%2B01:00", 400, "bad_query"),  # near year 1
    ("due_before=9999-12-31T23:59:59-01:00", 400, "bad_query"),    # near year 9999
    ("due_before=not-a-date", 400, "bad_query"),
    ("status=open&status=nope", 400, "bad_query"),
    ("vpa_id=" + "x" * 300, 400, "bad_query"),
    ("sort=%F0%9F%92%A5", 400, "bad_query"),
    ("after=bm9wZQ", 400, "bad_query"),  # keyset cursor: not a cursor
    ("after=WzAsIG51bGwsICJ0Il0=&offset=5", 400, "bad_query"),  # keyset cursor: a cursor and an offset
    ("after=Wzk5OTk5OTk5OTk5OTk5OTk5OTk5LCBudWxsLCAidCJd", 400, "bad_query"),  # keyset cursor: rank out of range
    ("after=WzAsIG51bGwsICJ0XHUwMDAwIl0=", 400, "bad_query"),  # keyset cursor: U+0000 in the task id
    ("after=WzAsICIwMDAxLTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgInQiXQ==", 400, "bad_query"),  # keyset cursor: year 1
    ("after=WzAsICIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgInQiXQ==", 400, "bad_query"),  # keyset cursor: a time without offset
    ("after=eyJhIjogMX0=", 400, "bad_query"),  # keyset cursor: not a list
]


@pytest.mark.parametrize("query, status, code", QUERIES, ids=[q[:40] for q, _, _ in QUERIES])
async def test_hostile_queries(http, query, status, code):
    async with http.get(f"/api/tasks?{query}", headers=AUTH) as r:
        assert await answer(r) == (status, code)


@pytest.mark.parametrize("path, status, code", [
    ("/api/tasks/a%00b", 400, "bad_path"),                     # U+0000 in a path
    ("/api/tasks/" + "x" * 400, 400, "bad_path"),
    ("/api/tasks/%F0%9F%92%A5", 404, "not_found"),
    ("/api/tasks%00", 404, "not_found"),
])
async def test_hostile_paths(http, path, status, code):
    async with http.get(path, headers=AUTH) as r:
        assert await answer(r) == (status, code)


def nested(depth: int) -> bytes:
    return b'{"type":"cmd.case.resolve","vpa_id":"V-1","data":' + b"[" * depth + b"]" * depth + b"}"


BODIES = [
    (nested(30_000), JSON, 400, "bad_json"),                   # deep nesting: RecursionError in json
    (nested(40), JSON, 400, "bad_json"),                       # deeper than any command
    (b'{"type":"cmd.case.resolve","vpa_id":"V-\xff\xfe"}', JSON, 400, "bad_encoding"),  # invalid UTF-8
    (RESOLVE, {**AUTH, "Content-Type": "application/json; charset=x-unknown"}, 415, "unsupported_media_type"),
    (RESOLVE, {**AUTH, "Content-Type": "application/json; charset=latin-1"}, 415, "unsupported_media_type"),
    (RESOLVE, {**AUTH, "Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    (RESOLVE.replace(b"V-1", b"V-\\u0000", 1), JSON, 400, "bad_encoding"),       # U+0000 in the body
    (RESOLVE.replace(b"V-1", b"V-\\ud800", 1), JSON, 400, "bad_encoding"),       # a lone surrogate
    (b'{"type":"cmd.case.resolve","vpa_id":"V-1","data":{"task_id":"case:\\u0000"}}', JSON, 400, "bad_encoding"),
    (b"[1,2]", JSON, 400, "bad_json"),
    (b'"cmd.case.resolve"', JSON, 400, "bad_json"),
    (b"1" * 5000, JSON, 400, "bad_json"),                      # an integer too long to convert
    (b"1e999999", JSON, 400, "bad_json"),
    (b"", JSON, 400, "bad_json"),
    (b'{"type": 5}', JSON, 400, "unknown_command_type"),
    (b'{"type":"cmd.reminder.set","vpa_id":"V-1","data":{"reminder_id":"r","owner":"AB",'
     b'"due_at":"9999-12-31T23:59:59-01:00"}}', JSON, 422, "invalid_command"),
    (b'{"type":"cmd.reminder.set","vpa_id":"V-1","data":{"reminder_id":"r","owner":"AB",'
     b'"due_at":"0001-01-01T00:00:00+01:00"}}', JSON, 422, "invalid_command"),
    (b'{"type":"cmd.case.resolve","vpa_id":"' + b"v" * 300 + b'","data":{"task_id":"case:x"}}', JSON, 400,
     "invalid_command"),
    (b'{"type":"cmd.case.resolve","vpa_id":"V-1","event_id":"","data":{"task_id":"case:x"}}', JSON, 400,
     "invalid_command"),
    (b" " * (MAX_BODY_BYTES + 1), JSON, 413, "payload_too_large"),
]


@pytest.mark.parametrize("body, headers, status, code", BODIES, ids=[f"{b[:30]!r}" for b, *_ in BODIES])
async def test_hostile_bodies(http, body, headers, status, code):
    async with http.post("/api/commands", data=body, headers=headers) as r:
        assert await answer(r) == (status, code)


@pytest.mark.parametrize("header", ["Bearer tök-at", "Bearer " + "x" * 4000, "Bearer", "bearer  ", "tok-at"])
async def test_hostile_authorization_headers(http, header):
    async with http.get("/api/tasks", headers={"Authorization": header}) as r:
        assert await answer(r) == (401, "unauthorized")


@pytest.mark.parametrize("occurred_at", ["2027-11-26T09:00:00+01:00", "9999-12-31T23:59:59+00:00", "not a time"])
async def test_a_clients_occurred_at_is_ignored_and_moves_no_clock(http, occurred_at):
    body = {"type": "cmd.case.resolve", "vpa_id": "V-1", "occurred_at": occurred_at,
            "data": {"task_id": "case:absence:V-1:S"}}
    async with http.post("/api/commands", json=body, headers=AUTH) as r:
        assert r.status == 202
    # The next command is handled at once and normally (the clock was not moved to the client's time).
    async with http.post("/api/commands", data=RESOLVE, headers=JSON) as r:
        assert r.status == 202
    async with http.get("/api/tasks/case:absence:V-1:L", headers=AUTH) as r:
        task = await r.json()
    assert task["status"] == "done" and task["updated_at"].startswith("2026-")
    async with http.get("/api/tasks", params={"tab": "journey", "status": "open"}, headers=AUTH) as r:
        # no journey stage of the year ahead opened: the clock stayed where the events put it
        assert {t["stage"] for t in (await r.json())["items"]} <= {"NEW_0_3", "NEW_9_12", "NEW_GT_12"}


async def test_commands_that_change_nothing_and_the_server_stays_healthy(http):
    first = {"event_id": "once", "type": "cmd.case.resolve", "vpa_id": "V-1", "data": {"task_id": "case:absence:V-1:S"}}
    async with http.post("/api/commands", json=first, headers=AUTH) as r:
        assert r.status == 202
    async with http.post("/api/commands", json=first, headers=AUTH) as r:  # the ledger in PostgreSQL
        assert r.status == 202 and await r.json() == {"event_id": "dashlet:AB:once", "repeated": True}
    not_a_case = {"type": "cmd.case.resolve", "vpa_id": "V-1", "data": {"task_id": "reminder:R-due"}}
    async with http.post("/api/commands", json=not_a_case, headers=AUTH) as r:
        assert await answer(r) == (422, "not_a_case")
    async with http.put("/api/commands", json=first, headers=AUTH) as r:
        assert await answer(r) == (405, "method_not_allowed")
    async with http.get("/healthz") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"
