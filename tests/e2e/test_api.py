"""The dashlet API over HTTP, with the embedded pipeline and the in-memory store behind it."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from services.bootstrap import processors
from services.common.clock import StreamClock
from services.common.embedded_runner import EmbeddedRunner
from services.common.settings import Settings
from services.dashlet.api import build_app
from services.dashlet.auth import Principal, parse_tokens
from services.dashlet.demo import EmbeddedPipeline
from services.notifier.store import MemoryTaskStore

TOKENS = {"tok-at": Principal("AB", "at"), "tok-vm": Principal("VM", "vpa_manager")}


def env(eid, type_, at, vpa, data):
    return json.dumps({"event_id": eid, "type": type_, "occurred_at": at, "vpa_id": vpa, "data": data})


@pytest.fixture
async def api():
    store = MemoryTaskStore()
    pipeline = EmbeddedPipeline(EmbeddedRunner(processors(), Settings(), StreamClock()), store)
    await pipeline.feed([
        env("r1", "vpa.registered", "2026-11-01T08:00:00+01:00", "V-1",
            {"name": "Anna Schmidt", "started_on": "2026-01-15", "at_owner": "AB"}),
        env("a1", "vpa.absence_registered", "2026-11-26T09:00:00+01:00", "V-1",
            {"absence_id": "L", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}),
        env("a2", "vpa.absence_registered", "2026-11-26T09:05:00+01:00", "V-1",
            {"absence_id": "S", "starts_on": "2026-11-27", "ends_on": "2026-11-27"}),
    ], "fixture")
    runner = web.AppRunner(build_app(store, pipeline.command, TOKENS), shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        yield http
    await runner.cleanup()


def auth(token="tok-at"):
    return {"Authorization": f"Bearer {token}"}


async def test_every_api_route_needs_a_known_token(api):
    for path in ("/api/tasks", "/api/tasks/x", "/api/stream"):
        async with api.get(path) as r:
            assert r.status == 401
        async with api.get(path, headers=auth("nope")) as r:
            assert r.status == 401
    async with api.post("/api/commands", json={}) as r:
        assert r.status == 401


async def test_list_filters_and_pages(api):
    async with api.get("/api/tasks", headers=auth(), params={"tab": "cases", "status": "open"}) as r:
        body = await r.json()
    assert [t["task_id"] for t in body["items"]] == ["case:absence:V-1:L", "case:absence:V-1:S"]
    async with api.get("/api/tasks", headers=auth(), params={"limit": "1"}) as r:
        page = await r.json()
    assert len(page["items"]) == 1 and page["next_offset"] == 1
    async with api.get("/api/tasks", headers=auth(), params={"assignee": "ZZ"}) as r:
        assert (await r.json())["items"] == []
    async with api.get("/api/tasks", headers=auth(), params={"tab": "nonsense"}) as r:
        assert r.status == 400 and "bad filter" in (await r.json())["error"]
    async with api.get("/api/tasks", headers=auth(), params={"due_before": "2026-12-01T00:00:00"}) as r:
        assert r.status == 400
    async with api.get("/api/tasks/case:absence:V-1:L", headers=auth()) as r:
        assert (await r.json())["reasons"] == ["long"]
    async with api.get("/api/tasks/none", headers=auth()) as r:
        assert r.status == 404


async def test_commands_are_validated_attributed_and_applied(api):
    cmd = {"event_id": "c1", "type": "cmd.case.resolve", "vpa_id": "V-1",
           "data": {"task_id": "case:absence:V-1:L", "note": "erledigt"}}
    async with api.post("/api/commands", headers=auth(), json=cmd) as r:
        assert r.status == 202 and (await r.json()) == {"event_id": "c1"}
    async with api.get("/api/tasks/case:absence:V-1:L", headers=auth()) as r:
        task = await r.json()
    assert task["status"] == "done" and task["history"][-1]["by"] == "AB"
    # resolving it again is a rule rejection: 422 with the reason
    async with api.post("/api/commands", headers=auth(), json=dict(cmd, event_id="c2")) as r:
        assert r.status == 422 and (await r.json())["error"].startswith("rejected:")
    # invalid: missing data field, not a command, not JSON
    async with api.post("/api/commands", headers=auth(), json={"event_id": "c3", "type": "cmd.case.resolve",
                                                                "vpa_id": "V-1", "data": {}}) as r:
        assert r.status == 400 and "task_id" in (await r.json())["error"]
    async with api.post("/api/commands", headers=auth(), json={"event_id": "c4", "type": "vpa.offboarded",
                                                                "vpa_id": "V-1", "data": {}}) as r:
        assert r.status == 400
    async with api.post("/api/commands", headers=auth(), data=b"{no") as r:
        assert r.status == 400


async def test_stream_announces_task_changes(api):
    async with api.get("/api/stream", headers=auth()) as stream:
        assert stream.status == 200
        cmd = {"event_id": "c9", "type": "cmd.case.resolve", "vpa_id": "V-1",
               "data": {"task_id": "case:absence:V-1:S"}}
        async with api.post("/api/commands", headers=auth(), json=cmd) as r:
            assert r.status == 202
        line = ""
        while not line.startswith("data:"):
            line = (await asyncio.wait_for(stream.content.readline(), 5)).decode()
        assert json.loads(line[5:])["task_id"] == "case:absence:V-1:S"


def test_token_spec_parsing():
    assert parse_tokens("a=AB:at, b=VM:vpa_manager") == {"a": Principal("AB", "at"), "b": Principal("VM", "vpa_manager")}
    with pytest.raises(ValueError):
        parse_tokens("a=AB:boss")


async def test_shift_filter_is_validated_and_answers(api):
    async with api.get("/api/tasks", headers=auth(), params={"shift": "tomorrow"}) as r:
        assert r.status == 400
    async with api.get("/api/tasks", headers=auth(), params={"shift": "current"}) as r:
        body = await r.json()
    # Cases here have no due_at, so nothing is due in a shift; outside shifts "shift" is null.
    assert r.status == 200 and body["items"] == []
    assert body["shift"] is None or len(body["shift"]) == 2


async def test_rules_decidable_from_the_store_answer_at_once(api):
    async def post(body):
        async with api.post("/api/commands", headers=auth(), json=body) as r:
            return r.status, await r.json()

    status, body = await post({"event_id": "p1", "type": "cmd.reminder.complete", "vpa_id": "V-1",
                               "data": {"reminder_id": "nope"}})
    assert status == 422 and "file_updated" in body["error"]
    status, body = await post({"event_id": "p2", "type": "cmd.reminder.complete", "vpa_id": "V-1",
                               "data": {"reminder_id": "nope", "file_updated": True}})
    assert status == 422 and "unknown reminder" in body["error"]
    status, body = await post({"event_id": "p3", "type": "cmd.case.resolve", "vpa_id": "V-2",
                               "data": {"task_id": "case:absence:V-1:L"}})
    assert status == 422 and "unknown case" in body["error"]  # another VPA's case
    status, body = await post({"event_id": "p4", "type": "cmd.journey.clear", "vpa_id": "V-1",
                               "data": {"stage": "NEW_GT_12"}})
    assert status == 422 and "VPA Manager" in body["error"]
