"""No one on the team can break what the others see (issue 28): each probe of a careful attacker
with an AT member's token, against the real dashlet over PostgreSQL with the embedded pipeline
behind it. The probes that passed before the issue live beside their features: 401s, roles and
the actor from the token in test_api.py, hashed demo tokens and the demo's erasure in
test_demo.py, no script from stored text in Chromium in tests/browser/test_page.py."""
from __future__ import annotations

import asyncio
import io
import json
import logging

import aiohttp
import asyncpg
import pytest

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.ops.logs import configure_logging
from services.runners.embedded.runner import EmbeddedRunner
from services.store.postgres import PostgresTaskStore, erasure_hash
from tests.e2e.harness import company, envelope, start_dashlet

pytestmark = pytest.mark.integration
AT, OTHER = {"Authorization": "Bearer tok-at"}, {"Authorization": "Bearer tok-cd"}
REMINDER = {"type": "cmd.reminder.set", "vpa_id": "V-2",
            "data": {"reminder_id": "R-sec", "due_at": "2026-12-10T09:00:00+01:00", "owner": "AB", "note": "Rückruf"}}


@pytest.fixture
async def dashlet(database_url, pg_schema):
    store = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    d = await start_dashlet(store, company(), command_burst=20, commands_per_second=5, feeds_per_token=2)
    yield d
    await d.stop()
    await store.close()


@pytest.fixture
async def http(dashlet):
    async with aiohttp.ClientSession(dashlet.url) as session:
        yield session


async def post(http, body, headers=AT):
    async with http.post("/api/commands", json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers


def with_data(**data):
    return {**REMINDER, "data": {**REMINDER["data"], **data}}


# ---- 1. ids per source (DESIGN 5.4a) -------------------------------------------------------------

def test_a_command_with_an_upstream_events_id_suppresses_nothing():
    """A command carrying the id the platform gives a later absence registration: the absence
    case opens all the same (commands and upstream events are deduplicated apart)."""
    def run(with_command: bool) -> dict:
        runner = EmbeddedRunner(processors(), Settings(), StreamClock())
        lines = company()
        if with_command:
            lines.append(envelope("s1-0004244", "cmd.reminder.set", "2026-11-26T10:00:00+01:00", "V-3",
                                  {"reminder_id": "R-x", "due_at": "2026-11-27T09:00:00+01:00", "owner": "AB"},
                                  {"initials": "AB", "role": "at"}))
        lines.append(envelope("s1-0004244", "vpa.absence_registered", "2026-11-26T11:00:00+01:00", "V-3",
                              {"absence_id": "ABW-1", "starts_on": "2026-11-27", "ends_on": "2026-12-30"}))
        for n, line in enumerate(lines):
            runner.submit_raw(line, f"t:{n}")
        return {t["task_id"]: t for t in runner.drain_tasks()}

    without, with_ = run(False), run(True)
    assert "case:absence:V-3:ABW-1" in without
    assert "case:absence:V-3:ABW-1" in with_


async def test_a_clients_event_id_is_scoped_to_its_person_and_a_repeat_is_answered_alike(http, dashlet):
    body = {**REMINDER, "event_id": "s1-0004244"}
    status, first, _ = await post(http, body)
    assert status == 202 and first == {"event_id": "dashlet:AB:s1-0004244", "repeated": False}
    status, again, _ = await post(http, body)  # a retry after a timeout
    assert status == 202 and again == {"event_id": "dashlet:AB:s1-0004244", "repeated": True}
    task = await dashlet.store.get("reminder:R-sec")
    assert task["version"] == 1 and len(task["history"]) == 1  # applied once
    # Another person with the same id: their own command, not a repeat, nothing revealed.
    status, other, _ = await post(http, {**body, "data": {**body["data"], "reminder_id": "R-sec2", "owner": "CD"}},
                                  OTHER)
    assert status == 202 and other == {"event_id": "dashlet:CD:s1-0004244", "repeated": False}


# ---- 2. strict command bodies (DESIGN 4.8) -------------------------------------------------------

@pytest.mark.parametrize("data, field", [
    ({"x": "a" * 60_000}, "x"),                                # a field the command does not have
    ({"note": "Ruf\x07 an"}, "note"),                          # BEL
    ({"note": "\x1b[31mrot"}, "note"),                         # ESC
    ({"note": "a\x7fb"}, "note"),                              # DEL
    ({"note": "\u202egnuthca"}, "note"),                       # right-to-left override
    ({"note": "   "}, "note"),                                 # only spaces
    ({"note": "x" * 2001}, "note"),                            # over its limit
    ({"reminder_id": "R-1\nX"}, "reminder_id"),                # an id with a line break
    ({"reminder_id": "../../etc"}, "reminder_id"),
    ({"due_at": "2030-01-01T09:00:00+01:00"}, "due_at"),       # years away
])
async def test_a_body_outside_its_model_is_refused_in_german_naming_the_field(http, dashlet, data, field):
    before = len(dashlet.sink.received)
    status, body, _ = await post(http, with_data(**data))
    assert status == 422 and body["code"] == "invalid_command", body
    assert field in body["error"]
    assert len(dashlet.sink.received) == before  # nothing passed on


async def test_line_breaks_in_a_note_are_fine_and_only_the_model_is_passed_on(http, dashlet):
    status, _, _ = await post(http, {**with_data(note="Zeile 1\nZeile 2"), "actor": {"initials": "VM"},
                                     "occurred_at": "2020-01-01T00:00:00Z"})
    assert status == 202
    sent = dashlet.sink.received[-1]
    assert sent["data"] == {"reminder_id": "R-sec", "due_at": "2026-12-10T09:00:00+01:00", "owner": "AB",
                            "note": "Zeile 1\nZeile 2"}
    assert sent["actor"] == {"initials": "AB", "role": "at"}


async def test_a_command_for_a_vpa_the_store_does_not_know_is_refused(http, dashlet):
    status, body, _ = await post(http, {**REMINDER, "vpa_id": "V-404"})
    assert status == 422 and body["code"] == "unknown_vpa"
    async with http.get("/api/tasks", params={"vpa_id": "V-404"}, headers=OTHER) as r:
        assert (await r.json())["total"] == 0


# ---- 3. limits per person ------------------------------------------------------------------------

async def test_a_flood_from_one_token_gets_429_and_the_others_are_not_held_up(http, dashlet):
    answers = []
    for n in range(40):
        status, body, headers = await post(http, with_data(reminder_id=f"R-f{n}"))
        answers.append((status, body.get("code"), headers.get("Retry-After")))
    accepted = [a for a in answers if a[0] == 202]
    refused = [a for a in answers if a[0] == 429]
    assert 20 <= len(accepted) <= 25 and len(accepted) + len(refused) == 40, answers
    assert all(code == "too_many_requests" and int(after) >= 1 for _, code, after in refused)
    status, _, _ = await post(http, with_data(reminder_id="R-other", owner="CD"), OTHER)
    assert status == 202  # another person's bucket
    async with http.get("/healthz") as r:
        assert r.status == 200
    # every accepted command applied once, every refused one not at all
    for n, (status, _, _) in enumerate(answers):
        task = await dashlet.store.get(f"reminder:R-f{n}")
        assert (task is not None) == (status == 202)


async def test_one_person_holds_at_most_the_allowed_live_feeds_the_oldest_closes(http, dashlet):
    async def open_feed():
        resp = await http.get("/api/stream", headers=AT)
        assert resp.status == 200
        assert b"event: ready" in await resp.content.readuntil(b"\n\n")
        return resp

    first = await open_feed()
    second = await open_feed()
    third = await open_feed()  # beyond feeds_per_token=2: the first one ends
    assert await asyncio.wait_for(first.content.read(), 10) == b""
    other = await http.get("/api/stream", headers=OTHER)  # another person's feeds are not counted
    assert other.status == 200
    for resp in (second, third, other):
        resp.close()


async def test_healthz_tells_an_anonymous_caller_no_reasons(http):
    async with http.get("/healthz") as r:
        assert r.status == 200 and await r.json() == {"status": "ok", "checks": {"store": "ok", "commands": "ok"}}


# ---- 4. an erasure that erases ---------------------------------------------------------------------

async def test_after_an_erasure_no_table_holds_the_vpas_id_or_name(http, dashlet, database_url, pg_schema):
    assert (await post(http, with_data(note="Anna Schmidt zurückrufen")))[0] == 202  # V-2: Ben Meyer
    for vpa, name in (("V-1", "Anna Schmidt"), ("V-2", "Ben Meyer")):
        assert await dashlet.store.erase_vpa(vpa) >= 1
    conn = await asyncpg.connect(database_url, server_settings={"search_path": pg_schema})
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", pg_schema)]
        assert {"tasks", "task_versions", "vpa_profiles", "vpa_events", "erasures"} <= set(tables)
        for table in tables:
            text = " ".join(json.dumps(dict(r), default=str) for r in await conn.fetch(f'SELECT * FROM "{table}"'))
            for needle in ("V-1", "Anna Schmidt", "V-2", "Ben Meyer"):
                assert needle not in text, f"{table} still holds {needle}"
        hashes = {r["vpa_hash"] for r in await conn.fetch("SELECT vpa_hash FROM erasures")}
        assert hashes == {erasure_hash("V-1"), erasure_hash("V-2")}
    finally:
        await conn.close()
    assert await dashlet.store.get("case:absence:V-1:L") is None


# ---- 5. secrets ------------------------------------------------------------------------------------

async def test_no_part_of_a_token_reaches_a_log_line(dashlet):
    out = io.StringIO()
    handler = configure_logging(stream=out)
    try:
        token = "GEHEIM" + "x" * 9000  # over aiohttp's 8 KiB header line
        host, port = dashlet.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        await writer.drain()
        assert (await reader.read(12)).startswith(b"HTTP/1.")
        writer.close()
        for _ in range(100):  # until aiohttp logged the refusal
            if "Bad" in out.getvalue() or "Error handling request" in out.getvalue():
                break
            await asyncio.sleep(0.02)
    finally:
        logging.getLogger().removeHandler(handler)
    assert "Error handling request" in out.getvalue()
    assert "GEHEIM" not in out.getvalue() and "xxxxxxxx" not in out.getvalue()
    assert "[redacted]" in out.getvalue()


async def test_an_erasure_reaches_the_live_feed(http, dashlet):
    async with http.get("/api/stream", headers=AT) as feed:
        assert b"event: ready" in await feed.content.readuntil(b"\n\n")
        await dashlet.store.erase_vpa("V-1")
        seen = set()
        while not {"case:absence:V-1:L", "case:absence:V-1:S"} <= seen:
            block = (await asyncio.wait_for(feed.content.readuntil(b"\n\n"), 10)).decode()
            if "event: erased" in block:
                seen.add(json.loads(block.split("data: ", 1)[1])["task_id"])
