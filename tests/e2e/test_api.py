"""The dashlet API over HTTP (DESIGN 4.8), with the embedded pipeline behind it and the in-memory
store (the same API over PostgreSQL: test_api_pg.py; hostile input: test_api_hostile.py)."""
from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from services.dashlet import api as dashlet_api
from services.dashlet.auth import Principal, hash_token, parse_tokens
from services.store.postgres import MemoryTaskStore
from tests.e2e.harness import company, start_dashlet

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)  # 10:00 in Berlin: the 08:00-14:00 shift


@pytest.fixture
async def dashlet():
    d = await start_dashlet(MemoryTaskStore(), company(), now=lambda: NOW)
    yield d
    await d.stop()


@pytest.fixture
async def api(dashlet):
    async with aiohttp.ClientSession(dashlet.url) as http:
        yield http


def auth(token="tok-at"):
    return {"Authorization": f"Bearer {token}"}


async def get(api, path, token="tok-at", **params):
    async with api.get(path, headers=auth(token), params=params) as r:
        return r.status, await r.json()


async def post(api, body, token="tok-at"):
    async with api.post("/api/commands", headers=auth(token), json=body) as r:
        return r.status, await r.json()


# ---- authentication ----------------------------------------------------------------------------

async def test_every_api_route_needs_a_known_token_and_says_how(api):
    for path in ("/api/tasks", "/api/tasks/x", "/api/stream", "/api/me"):
        for headers in ({}, auth("nope"), {"Authorization": "Basic dG9rLWF0"}):
            async with api.get(path, headers=headers) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await r.json())["code"] == "unauthorized"
    async with api.post("/api/commands", json={}) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_spec_parsing_and_hashes():
    digest = hashlib.sha256(b"s3cret").hexdigest()
    assert parse_tokens(f"a=AB:at, b=VM:vpa_manager, sha256:{digest}=CD:at") == {
        "a": Principal("AB", "at"), "b": Principal("VM", "vpa_manager"), f"sha256:{digest}": Principal("CD", "at")}
    assert hash_token("s3cret") == f"sha256:{digest}"
    assert parse_tokens("x==AB:at") == {"x=": Principal("AB", "at")}  # a token may end in "=" (base64)
    for bad in ("a=AB:boss", "a=ab:at", "=AB:at", "sha256:abc=AB:at", "a=AB:system"):
        with pytest.raises(ValueError):
            parse_tokens(bad)


async def test_a_token_configured_as_its_sha256_signs_in():
    store = MemoryTaskStore()
    d = await start_dashlet(store, [])
    try:
        app = dashlet_api.build_app(store, d.sink, parse_tokens(f"{hash_token('plain-secret')}=EF:at"))
        from aiohttp.test_utils import TestClient, TestServer
        async with TestClient(TestServer(app)) as client:
            r = await client.get("/api/me", headers=auth("plain-secret"))
            assert r.status == 200 and (await r.json())["initials"] == "EF"
            r = await client.get("/api/me", headers=auth(hash_token("plain-secret")))
            assert r.status == 401  # the digest itself is not a token
    finally:
        await d.stop()


async def test_me_tells_the_page_who_is_signed_in(api):
    status, body = await get(api, "/api/me", "tok-vm")
    assert status == 200 and body == {"initials": "VM", "role": "vpa_manager", "timezone": "Europe/Berlin",
                                      "shifts": [["08:00", "14:00"], ["14:00", "20:00"]]}


# ---- reading -----------------------------------------------------------------------------------

async def test_list_filters_sorts_pages_and_counts(api):
    status, body = await get(api, "/api/tasks", tab="cases", status="open")
    assert status == 200
    ids = [t["task_id"] for t in body["items"]]
    assert set(ids) == {"case:absence:V-1:L", "case:absence:V-1:S", "case:class_change:V-2:k1"}
    assert body["total"] == 3 and body["next_offset"] is None
    # sorted by priority (short notice is high) then due time
    status, body = await get(api, "/api/tasks", tab="cases", sort="priority")
    assert body["items"][0]["task_id"] == "case:absence:V-1:S"
    # two statuses at once (a repeated parameter), paging with totals
    async with api.get("/api/tasks?tab=reminders&status=waiting&status=open&limit=1", headers=auth()) as r:
        page = await r.json()
    assert [t["task_id"] for t in page["items"]] == ["reminder:R-due"]
    assert page["total"] == 2 and page["next_offset"] == 1
    status, body = await get(api, "/api/tasks", assignee="ZZ")
    assert body["items"] == [] and body["total"] == 0
    status, body = await get(api, "/api/tasks", tab="nonsense")
    assert status == 400 and body["code"] == "bad_query" and "tab" in body["error"]
    status, body = await get(api, "/api/tasks", due_before="2026-12-01T00:00:00")
    assert status == 400 and "UTC-Offset" in body["error"]
    status, body = await get(api, "/api/tasks", stauts="open")
    assert status == 400 and "kein bekannter Filter" in body["error"]


async def test_one_task_with_history_and_evidence(api):
    status, task = await get(api, "/api/tasks/case:absence:V-1:L")
    assert status == 200 and task["reasons"] == ["long"]
    assert task["history"][0]["change"] == "Fall eröffnet"
    assert any(e["code"] == "long" and e["event_id"] == "a1" for e in task["evidence"])
    status, body = await get(api, "/api/tasks/none")
    assert status == 404 and body["code"] == "not_found"


async def test_current_shift_filters_before_it_pages(api, dashlet):
    # Three reminders due in the shift; the first is completed: limit=2 must still give both live ones.
    at = {"initials": "AB", "role": "at"}
    extra = []
    for n, due in enumerate(("09:00", "09:40", "09:50")):
        extra.append(json.dumps({"event_id": f"s{n}", "type": "cmd.reminder.set", "occurred_at": "2026-11-26T08:00:00+01:00",
                                 "vpa_id": "V-3", "actor": at, "data": {"reminder_id": f"S{n}", "owner": "AB",
                                                                        "due_at": f"2026-11-26T{due}:00+01:00"}}))
    extra.append(json.dumps({"event_id": "s-done", "type": "cmd.reminder.complete", "occurred_at": "2026-11-26T10:00:00+01:00",
                             "vpa_id": "V-3", "actor": at, "data": {"reminder_id": "S0", "file_updated": True}}))
    await dashlet.sink.feed(extra)
    status, body = await get(api, "/api/tasks", tab="reminders", shift="current", limit="2")
    assert status == 200
    assert [t["task_id"] for t in body["items"]] == ["reminder:R-due", "reminder:S1"]
    assert body["total"] == 3 and body["next_offset"] == 2
    assert body["shift"] == ["2026-11-26T08:00:00+01:00", "2026-11-26T14:00:00+01:00"]
    status, body = await get(api, "/api/tasks", tab="reminders", shift="current", status="done")
    assert body["items"] == []  # the shift view is about live tasks only
    status, body = await get(api, "/api/tasks", shift="tomorrow")
    assert status == 400


# ---- commands ----------------------------------------------------------------------------------

async def test_the_server_stamps_actor_time_and_event_id(api, dashlet):
    status, body = await post(api, {"type": "cmd.case.resolve", "vpa_id": "V-1",
                                    "actor": {"initials": "VM", "role": "vpa_manager"},
                                    "occurred_at": "2027-11-26T09:00:00+01:00",
                                    "data": {"task_id": "case:absence:V-1:L", "note": "mit Anna gesprochen"}})
    assert status == 202 and body["event_id"].startswith("dashlet:")
    sent = dashlet.sink.received[-1]
    assert sent["actor"] == {"initials": "AB", "role": "at"}  # from the token, not the body
    assert sent["occurred_at"] == "2026-11-26T10:00:00+01:00"  # the server's clock, not the client's
    assert sent["event_id"] == body["event_id"]
    status, task = await get(api, "/api/tasks/case:absence:V-1:L")
    assert task["status"] == "done"
    assert task["history"][-1] == {"at": "2026-11-26T10:00:00+01:00", "change": "Fall gelöst: mit Anna gesprochen",
                                   "by": "AB"}


async def test_commands_that_would_change_nothing_are_not_accepted(api):
    cmd = {"event_id": "x1", "type": "cmd.case.resolve", "vpa_id": "V-1",
           "data": {"task_id": "case:absence:V-1:S", "note": "geklärt"}}
    status, first = await post(api, cmd)
    assert status == 202 and first == {"event_id": "dashlet:AB:x1", "repeated": False}
    # the same event_id again (a retry after a timeout): answered like the first, without effect
    status, body = await post(api, {**cmd, "data": {"task_id": "case:absence:V-1:L", "note": "geklärt"}})
    assert status == 202 and body == {"event_id": "dashlet:AB:x1", "repeated": True}
    assert (await get(api, "/api/tasks/case:absence:V-1:L"))[1]["status"] == "open"
    # resolving it again (new id): already done
    status, body = await post(api, {**cmd, "event_id": "x2"})
    assert status == 422 and body["code"] == "task_closed" and "bereits erledigt" in body["error"]
    # a resolve of something that is not a case
    status, body = await post(api, {**cmd, "event_id": "x3", "data": {"task_id": "reminder:R-due", "note": "x"}})
    assert status == 422 and body["code"] == "not_a_case"
    status, body = await post(api, {**cmd, "event_id": "x4", "data": {"task_id": "journey:V-1:NEW_9_12", "note": "x"}})
    assert status == 422 and body["code"] == "not_a_case"


async def test_invalid_commands_get_a_german_4xx(api):
    status, body = await post(api, {"type": "cmd.case.resolve", "vpa_id": "V-1", "data": {}})
    assert status == 422 and body["code"] == "invalid_command" and "data.task_id: fehlt" in body["error"]
    status, body = await post(api, {"type": "vpa.offboarded", "vpa_id": "V-1", "data": {}})
    assert status == 400 and body["code"] == "unknown_command_type"
    status, body = await post(api, {"type": "cmd.reminder.set", "vpa_id": "V-1",
                                    "data": {"reminder_id": "x", "owner": "AB", "due_at": "2026-12-01T09:00:00"}})
    assert status == 422 and "UTC-Offset" in body["error"]
    status, body = await post(api, {"type": "cmd.case.resolve", "data": {"task_id": "x"}})
    assert status == 400 and "vpa_id: fehlt" in body["error"]  # the envelope itself: 400
    async with api.post("/api/commands", headers=auth(), data=b"{no",
                        skip_auto_headers=["Content-Type"]) as r:
        assert r.status == 415  # not sent as JSON
    async with api.post("/api/commands", headers={**auth(), "Content-Type": "application/json"}, data=b"{no") as r:
        assert r.status == 400 and (await r.json())["code"] == "bad_json"


async def test_rules_decidable_from_the_store_answer_at_once_in_german(api):
    status, body = await post(api, {"type": "cmd.reminder.complete", "vpa_id": "V-1", "data": {"reminder_id": "R-due"}})
    assert status == 422 and body["code"] == "file_not_updated" and "VPA-Akte gepflegt" in body["error"]
    status, body = await post(api, {"type": "cmd.reminder.complete", "vpa_id": "V-1",
                                    "data": {"reminder_id": "nope", "file_updated": True}})
    assert status == 422 and body["error"] == "Reminder nope von V-1 ist unbekannt"
    status, body = await post(api, {"type": "cmd.case.resolve", "vpa_id": "V-2", "data": {"task_id": "case:absence:V-1:L"}})
    assert status == 422 and "unbekannt" in body["error"]  # another VPA's case
    status, body = await post(api, {"type": "cmd.journey.clear", "vpa_id": "V-2", "data": {"stage": "NEW_GT_12"}})
    assert status == 422 and body["code"] == "manager_only" and "VPA Manager" in body["error"]
    status, body = await post(api, {"type": "cmd.journey.clear", "vpa_id": "V-2", "data": {"stage": "NEW_GT_12"}}, "tok-vm")
    assert status == 202
    # a rejection only the service can decide (owner not in the roster) comes back as 422 too
    status, body = await post(api, {"type": "cmd.reminder.set", "vpa_id": "V-1",
                                    "data": {"reminder_id": "R-x", "owner": "ZZ", "due_at": "2026-12-01T09:00:00+01:00"}})
    assert status == 422 and body == {"error": "ZZ ist nicht im AT-Dienstplan", "code": "rejected"}


async def test_complete_a_reminder_only_with_the_file_updated(api):
    status, _ = await post(api, {"type": "cmd.reminder.complete", "vpa_id": "V-1",
                                 "data": {"reminder_id": "R-due", "file_updated": False}})
    assert status == 422
    status, _ = await post(api, {"type": "cmd.reminder.complete", "vpa_id": "V-1",
                                 "data": {"reminder_id": "R-due", "file_updated": True}})
    assert status == 202
    status, task = await get(api, "/api/tasks/reminder:R-due")
    assert task["status"] == "done" and task["history"][-1]["by"] == "AB"


# ---- live feed ---------------------------------------------------------------------------------

async def test_stream_says_ready_then_announces_each_change(api):
    async with api.get("/api/stream", headers=auth()) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")

        async def next_event() -> dict:
            fields: dict = {}
            while True:
                line = (await asyncio.wait_for(stream.content.readline(), 5)).decode().rstrip("\n")
                if not line:
                    if fields:
                        return fields
                    continue
                if not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    fields[key] = value
        assert (await next_event())["event"] == "ready"
        status, _ = await post(api, {"type": "cmd.case.resolve", "vpa_id": "V-1", "data": {"task_id": "case:absence:V-1:S"}})
        assert status == 202
        event = await next_event()
        assert event["event"] == "task" and event["id"] == "1"
        assert json.loads(event["data"])["task_id"] == "case:absence:V-1:S"


# ---- errors from aiohttp itself, health, page --------------------------------------------------

async def test_aiohttp_errors_are_json_too(api):
    async with api.get("/nowhere") as r:
        assert r.status == 404 and (await r.json())["code"] == "not_found"
    async with api.delete("/api/tasks", headers=auth()) as r:
        assert r.status == 405 and (await r.json())["code"] == "method_not_allowed" and "GET" in r.headers["Allow"]
    async with api.post("/api/commands", headers={**auth(), "Content-Type": "application/json"},
                        data=b" " * (dashlet_api.MAX_BODY_BYTES + 1)) as r:
        assert r.status == 413 and (await r.json())["code"] == "payload_too_large"


async def test_healthz_reports_a_stuck_command_path_and_a_stuck_store(dashlet):
    gate = asyncio.Event()

    async def stuck_sink(raw, vpa_id):
        await gate.wait()

    class StuckStore(MemoryTaskStore):
        async def get(self, task_id):
            await gate.wait()

    app = dashlet_api.build_app(dashlet.store, stuck_sink, {"t": Principal("AB", "at")}, stuck_after=0.3)
    from aiohttp.test_utils import TestClient, TestServer
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/healthz")
        assert r.status == 200 and (await r.json())["status"] == "ok"
        # A command that hangs is waited for, not cut off (cut off, it may have been applied
        # anyway): /healthz reports it meanwhile, and it is answered once it went through.
        posting = asyncio.ensure_future(client.post(
            "/api/commands", headers=auth("t"),
            json={"type": "cmd.case.resolve", "vpa_id": "V-1", "data": {"task_id": "case:absence:V-1:L"}}))
        for _ in range(200):
            r = await client.get("/healthz", headers=auth("t"))
            body = await r.json()
            if r.status == 503:
                break
            await asyncio.sleep(0.05)
        assert r.status == 503 and body["code"] == "unhealthy" and body["checks"]["commands"].startswith("ein Befehl")
        assert not posting.done()
        gate.set()
        r = await posting
        assert r.status == 202
        r = await client.get("/healthz")
        assert r.status == 200
    gate.clear()
    app = dashlet_api.build_app(StuckStore(), stuck_sink, {"t": Principal("AB", "at")})
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/healthz")
        body = await r.json()  # anonymous (a load balancer): which check, not why
        assert r.status == 503 and body["checks"] == {"store": "failing", "commands": "ok"}
        r = await client.get("/healthz", headers=auth("t"))
        body = await r.json()
        assert r.status == 503 and body["checks"]["store"].startswith("keine Antwort")
    gate.set()


async def test_page_has_a_csp_and_no_inline_script(api):
    async with api.get("/") as r:
        html = await r.text()
        csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script src=" in html and "<script>" not in html and " style=" not in html and " on" not in \
        "".join(part.split(">")[0] for part in html.split("<"))
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"), ("icon.svg", "image/svg+xml")):
        async with api.get(f"/static/{name}") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith(kind)
    async with api.get("/static/../api.py") as r:
        assert r.status == 404


def test_static_files_are_the_ones_shipped():
    here = Path(dashlet_api.__file__).parent / "static"
    assert set(dashlet_api.STATIC) == {p.name for p in here.iterdir()}
