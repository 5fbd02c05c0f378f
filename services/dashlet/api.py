"""Dashlet HTTP API (DESIGN 4.8) on aiohttp, over any TaskStore and a command sink.

The API never writes the store: commands go to ``vpa.commands`` (Kafka) or to the embedded
runner, and the resulting task versions come back through the notifier.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.task import Status, Tab
from services.common.decode import Decoded, Invalid, Unknown, decode
from services.common.settings import Settings
from services.reminders.shifts import current_shift, due_in_current_shift
from services.dashlet.auth import Principal, authenticate, tokens_from_env
from services.dashlet.openapi import openapi_spec
from services.dashlet.precheck import precheck

log = logging.getLogger("vpa.dashlet")
CommandSink = Callable[[bytes, str], Awaitable[Optional[str]]]  # (envelope bytes, vpa_id) -> rejection
PAGE = Path(__file__).with_name("page.html")
MAX_LIMIT = 500

STORE = web.AppKey("store", object)
SINK = web.AppKey("sink", object)
TOKENS = web.AppKey("tokens", dict)
SETTINGS = web.AppKey("settings", Settings)
PRINCIPAL = web.RequestKey("principal", Principal)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


@web.middleware
async def auth_middleware(request: web.Request, handler):  # noqa: ANN001
    if request.path.startswith("/api/"):
        who = authenticate(request.app[TOKENS], request.headers.get("Authorization"))
        if who is None:
            return _error(401, "missing or unknown bearer token")
        request[PRINCIPAL] = who
    return await handler(request)


def _parse_filters(q: Any) -> dict:
    f: dict[str, Any] = {}
    if "tab" in q:
        f["tab"] = Tab(q["tab"]).value
    if "status" in q:
        f["status"] = Status(q["status"]).value
    for name in ("assignee", "vpa_id"):
        if name in q:
            f[name] = q[name]
    if "due_before" in q:
        due = datetime.fromisoformat(q["due_before"].replace("Z", "+00:00"))
        if due.tzinfo is None:
            raise ValueError("due_before needs a UTC offset")
        f["due_before"] = due
    f["limit"] = min(int(q.get("limit", 100)), MAX_LIMIT)
    f["offset"] = int(q.get("offset", 0))
    if f["limit"] < 1 or f["offset"] < 0:
        raise ValueError("limit must be >= 1 and offset >= 0")
    return f


async def list_tasks(request: web.Request) -> web.Response:
    try:
        f = _parse_filters(request.query)
    except ValueError as exc:
        return _error(400, f"bad filter: {exc}")
    shift = request.query.get("shift")
    if shift not in (None, "current"):
        return _error(400, "bad filter: shift must be 'current'")
    if shift == "current":
        return await _due_this_shift(request, f)
    items = await request.app[STORE].list(**f)
    return web.json_response({"items": items, "limit": f["limit"], "offset": f["offset"],
                              "next_offset": f["offset"] + len(items) if len(items) == f["limit"] else None})


async def _due_this_shift(request: web.Request, f: dict) -> web.Response:
    """What the AT checks every shift: waiting or open tasks due by the shift's end (overdue too)."""
    settings = request.app[SETTINGS]
    now = datetime.now(timezone.utc)  # the API is a shell: "current" is the wall clock
    window = current_shift(now, settings)
    items: list[dict] = []
    if window is not None:
        f = {**f, "due_before": window[1] + timedelta(seconds=1)}
        items = [t for t in await request.app[STORE].list(**f) if due_in_current_shift(t, now, settings)]
    return web.json_response({"items": items, "limit": f["limit"], "offset": f["offset"],
                              "next_offset": f["offset"] + f["limit"] if len(items) == f["limit"] else None,
                              "shift": [w.isoformat() for w in window] if window else None})


async def get_task(request: web.Request) -> web.Response:
    task = await request.app[STORE].get(request.match_info["task_id"])
    return web.json_response(task) if task else _error(404, "no such task")


async def post_command(request: web.Request) -> web.Response:
    who: Principal = request[PRINCIPAL]
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return _error(400, "body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    if not str(body.get("type", "")).startswith("cmd."):
        return _error(400, "only cmd.* types may be posted")
    body["actor"] = {"initials": who.initials, "role": who.role}  # never trust a client's actor
    body.setdefault("schema_version", 1)
    body.setdefault("occurred_at", datetime.now(timezone.utc).isoformat())
    raw = json.dumps(body).encode()
    outcome = decode(raw)
    if isinstance(outcome, Invalid):
        return _error(400, outcome.reason)
    if isinstance(outcome, Unknown):
        return _error(400, f"unknown command type {outcome.type}")
    assert isinstance(outcome, Decoded)
    rejection = await precheck(outcome.envelope, request.app[STORE].get)
    if rejection is None:
        rejection = await request.app[SINK](raw, outcome.envelope.vpa_id)
    if rejection:
        return _error(422, rejection)
    return web.json_response({"event_id": outcome.envelope.event_id}, status=202)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``task`` event per task change seen by the store."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    queue: asyncio.Queue = await request.app[STORE].subscribe()
    try:
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), timeout=15)
                await resp.write(f"event: task\ndata: {json.dumps(change)}\n\n".encode())
            except asyncio.TimeoutError:
                await resp.write(b": keep-alive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe = getattr(request.app[STORE], "unsubscribe", None)
        if unsubscribe:
            await unsubscribe(queue)
    return resp


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())


async def page(request: web.Request) -> web.Response:
    return web.FileResponse(PAGE)


def build_app(store: Any, sink: CommandSink, tokens: dict[str, Principal],
              settings: Optional[Settings] = None) -> web.Application:
    app = web.Application(middlewares=[auth_middleware])
    app[STORE], app[SINK], app[TOKENS] = store, sink, tokens
    app[SETTINGS] = settings or Settings.from_env()
    app.router.add_get("/api/tasks", list_tasks)
    app.router.add_get("/api/tasks/{task_id}", get_task)
    app.router.add_post("/api/commands", post_command)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/", page)
    return app


def kafka_sink(bootstrap: str) -> tuple[CommandSink, Callable[[], Awaitable[None]]]:
    """Commands go to ``vpa.commands`` keyed by vpa_id; rule rejections come back on vpa.dlq."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    started = False

    async def send(raw: bytes, vpa_id: str) -> Optional[str]:
        nonlocal started
        if not started:
            await producer.start()
            started = True
        await producer.send_and_wait("vpa.commands", raw, key=vpa_id.encode())
        return None

    async def close() -> None:
        if started:
            await producer.stop()

    return send, close


def serve_forever() -> int:
    """``vpa run dashlet``: the API against Kafka and the PostgreSQL dashlet store."""
    from services.notifier.store import open_store

    async def main() -> None:
        store = await open_store(os.environ.get("DATABASE_URL"), os.environ.get("VPA_DATA_DIR", "var/pg"))
        sink, close = kafka_sink(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
        app = build_app(store, sink, tokens_from_env())
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        host, port = os.environ.get("VPA_HTTP_HOST", "0.0.0.0"), int(os.environ.get("VPA_HTTP_PORT", "8080"))
        await web.TCPSite(runner, host, port).start()
        log.info("dashlet API on http://%s:%s", host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            await close()
            await store.close()

    asyncio.run(main())
    return 0
