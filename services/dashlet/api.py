"""Dashlet HTTP API (DESIGN 4.8) and page on aiohttp, over any TaskStore and a command sink.

The API never writes the store: commands go to ``vpa.commands`` (Kafka) or to the embedded
runner, and the resulting task versions come back through the notifier. Every error is JSON
``{"error", "code"}`` with a 4xx (``errors.py``); bad input never yields a 5xx.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Mapping, Optional

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError

from schemas.topics import Topic
from services.config.settings import Settings
from services.dashlet import commands, views
from services.dashlet.auth import Principal, TokenTable
from services.dashlet.errors import MAX_BODY_BYTES, ApiError, ErrorCode, error_middleware, error_response
from services.dashlet.health import CommandPath, CommandPathError, CommandSink, store_problem
from services.dashlet.ledger import ledger_for
from services.dashlet.limits import CommandRate, FeedLimit
from services.dashlet.openapi import openapi_spec
from services.dashlet.page_files import PAGE, STATIC
from services.dashlet.precheck import precheck
from services.dashlet.query import Cursor, Selection, TaskId, TaskQuery, reader_for
from services.detector.drafts import draft_is_safe
from services.reminders.shifts import current_shift, next_shift

log = logging.getLogger("vpa.dashlet")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# The page is self-contained: scripts, styles and images from this origin only, no inline code.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
KEEP_ALIVE_SECONDS = 15.0

STORE = web.AppKey("store", object)
READER = web.AppKey("reader", object)
LEDGER = web.AppKey("ledger", object)
COMMAND_STORE = web.AppKey("command_store", object)  # the store over the command path's own connections
COMMANDS = web.AppKey("commands", CommandPath)
TOKENS = web.AppKey("tokens", TokenTable)
SETTINGS = web.AppKey("settings", Settings)
ENV = web.AppKey("env", dict)
NOW = web.AppKey("now", object)
CRM = web.AppKey("crm", object)
RATE = web.AppKey("rate", CommandRate)
FEEDS = web.AppKey("feeds", FeedLimit)
WHATIF = web.AppKey("whatif", object)  # a WhatIfJobs, or None where no what-if can run
PRINCIPAL = web.RequestKey("principal", Principal)
VPA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")
_TASK_ID = TypeAdapter(TaskId)

__all__ = ["build_app", "kafka_sink", "CommandSink"]


# ---- middleware ------------------------------------------------------------------------------

@web.middleware
async def auth_middleware(request: web.Request, handler):  # noqa: ANN001
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization")
        who = request.app[TOKENS].lookup(header)
        if who is None:
            challenge = 'Bearer realm="vpa-dashlet"' + (', error="invalid_token"' if header else "")
            raise ApiError(401, ErrorCode.unauthorized, "Anmeldung nötig: Authorization: Bearer <Token> fehlt oder "
                                                        "ist unbekannt", {"WWW-Authenticate": challenge})
        request[PRINCIPAL] = who
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")


# ---- reading ---------------------------------------------------------------------------------

_QUERY_WORDS = {
    "extra_forbidden": "ist kein bekannter Filter",
    "enum": "ist kein erlaubter Wert",
    "int_parsing": "ist keine ganze Zahl",
    "less_than_equal": "ist zu groß",
    "greater_than_equal": "ist zu klein",
    "string_pattern_mismatch": "hat nicht das erwartete Format",
    "string_too_long": "ist zu lang",
    "string_too_short": "ist leer",
    "timezone_aware": "braucht einen UTC-Offset",
}


def _query(request: web.Request) -> TaskQuery:
    raw: dict[str, Any] = {}
    for key in set(request.query.keys()):
        values = request.query.getall(key)
        if key == "status":
            raw[key] = values
        elif len(values) > 1:
            raise ApiError(400, ErrorCode.bad_query, f"Filter {key[:40]!r} ist mehrfach angegeben")
        else:
            raw[key] = values[0]
    try:
        return TaskQuery.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for e in exc.errors(include_url=False)[:5]:
            name = str(e["loc"][0])[:40] if e["loc"] else "Filter"
            word = _QUERY_WORDS.get(e["type"])
            if word is None:
                word = "ist kein Zeitpunkt im Format RFC 3339 mit UTC-Offset" if e["type"].startswith("datetime") \
                    else e["msg"].removeprefix("Value error, ")
            parts.append(f"{name}: {word}")
        raise ApiError(400, ErrorCode.bad_query, "Ungültiger Filter: " + "; ".join(parts)) from None


def _presentable(task: dict) -> dict:
    """The task as the API shows it: a draft that fails the drafts guard is never shown (DESIGN 2)."""
    draft = task.get("message_draft")
    if draft is not None and not draft_is_safe(draft):
        log.error("task %s carries a message draft that fails the guard; not shown", task.get("task_id"))
        task = {**task, "message_draft": None}
    return task


async def list_tasks(request: web.Request) -> web.Response:
    q = _query(request)
    statuses = tuple(s.value for s in q.status) if q.status else None
    shift_window = None
    due_by = None
    shift_next = False
    if q.shift is not None:
        # What the AT checks every shift: waiting or open tasks due by the shift's end (overdue too);
        # between shifts, what the next shift holds (so overdue work never hides).
        shift_window = current_shift(request.app[NOW](), request.app[SETTINGS])
        if shift_window is None:
            shift_window, shift_next = next_shift(request.app[NOW](), request.app[SETTINGS]), True
        live = ("waiting", "open")
        statuses = tuple(s for s in (statuses or live) if s in live)
        due_by = shift_window[1] if shift_window else None
    after = None
    if q.after is not None:
        if q.offset:
            raise ApiError(400, ErrorCode.bad_query, "Ungültige Abfrage: after und offset schließen sich aus")
        try:
            after = Cursor.decode(q.after)
        except ValueError as exc:
            raise ApiError(400, ErrorCode.bad_query, f"Ungültige Abfrage: {exc}") from None
    body: dict[str, Any] = {"items": [], "limit": q.limit, "offset": q.offset, "total": 0, "next_offset": None,
                            "next_after": None}
    if q.shift is not None:
        body["shift"] = [w.isoformat() for w in shift_window] if shift_window else None
        body["shift_next"] = shift_next
    if q.shift is None or (shift_window is not None and statuses):
        sel = Selection(tab=q.tab.value if q.tab else None, statuses=statuses, assignee=q.assignee, vpa_id=q.vpa_id,
                        due_before=q.due_before, due_by=due_by, sort=q.sort, limit=q.limit, offset=q.offset,
                        after=after)
        items, total = await request.app[READER].page(sel)
        more = bool(items) and len(items) == q.limit and (after is not None or q.offset + len(items) < total)
        body.update(items=[_presentable(t) for t in items], total=total,
                    next_offset=q.offset + len(items) if more and after is None else None,
                    next_after=Cursor.of(items[-1], q.sort).encode() if more else None)
    return web.json_response(body)


async def get_task(request: web.Request) -> web.Response:
    try:
        task_id = _TASK_ID.validate_python(request.match_info["task_id"])
    except ValidationError:
        raise ApiError(400, ErrorCode.bad_path, "Ungültige Aufgaben-ID (leer, zu lang oder mit Steuerzeichen)") from None
    task = await request.app[STORE].get(task_id)
    if task is None:
        raise ApiError(404, ErrorCode.not_found, f"Aufgabe {task_id[:80]} gibt es nicht")
    return web.json_response(_presentable(task))


async def me(request: web.Request) -> web.Response:
    who: Principal = request[PRINCIPAL]
    s: Settings = request.app[SETTINGS]
    return web.json_response({"initials": who.initials, "role": who.role, "timezone": s.timezone,
                              "shifts": [[a.strftime("%H:%M"), b.strftime("%H:%M")] for a, b in s.shifts]})


# ---- the views: a VPA, Heute, Team ---------------------------------------------------------------

async def search_vpas(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    if not 1 <= len(q.strip()) <= 80 or any(ord(c) < 32 or ord(c) == 127 for c in q):
        raise ApiError(400, ErrorCode.bad_query, "Suche: 1 bis 80 Zeichen Name oder VPA-ID, ohne Steuerzeichen")
    return web.json_response(await views.search(request.app[STORE], q.strip()))


async def get_vpa(request: web.Request) -> web.Response:
    vpa_id = request.match_info["vpa_id"]
    if not VPA_ID.match(vpa_id):
        raise ApiError(400, ErrorCode.bad_path, "Ungültige VPA-ID")
    page = await views.vpa_page(request.app[STORE], vpa_id, request.app[NOW](), request.app[SETTINGS],
                                request.app[CRM])
    if page is None:
        raise ApiError(404, ErrorCode.not_found, f"VPA {vpa_id} ist unbekannt")
    page["tasks"] = [_presentable(t) for t in page["tasks"]]
    return web.json_response(page)


async def get_today(request: web.Request) -> web.Response:
    who: Principal = request[PRINCIPAL]
    body = await views.today(request.app[READER], who.initials, request.app[NOW](), request.app[SETTINGS])
    for g in body["groups"]:
        for item in g["items"]:
            item["task"] = _presentable(item["task"])
    return web.json_response(body)


async def get_team(request: web.Request) -> web.Response:
    who: Principal = request[PRINCIPAL]
    if who.role != "vpa_manager":
        raise ApiError(403, ErrorCode.forbidden, "Die Team-Ansicht ist nur für VPA Manager")
    return web.json_response(await views.team(request.app[STORE], request.app[READER], request.app[NOW](),
                                              request.app[SETTINGS]))


# ---- "Was wäre wenn" (VPA Managers, issue 23) ------------------------------------------------

def _manager(request: web.Request, what: str) -> Principal:
    who: Principal = request[PRINCIPAL]
    if who.role != "vpa_manager":
        raise ApiError(403, ErrorCode.forbidden, f"{what} ist nur für VPA Manager")
    return who


def _whatif_status(request: web.Request) -> dict:
    from services.whatif.compare import RULE_SETTINGS

    jobs = request.app[WHATIF]
    current = request.app[SETTINGS]
    values = {name: _env_text(getattr(current, name.removeprefix("VPA_").lower())) for name in RULE_SETTINGS}
    body = jobs.status() if jobs is not None else {"state": "unavailable"}
    return {**body, "settings": [{"name": n, "label": label, "value": values[n]} for n, label in RULE_SETTINGS.items()]}


def _env_text(value: Any) -> str:
    """A setting's value as it is written in the environment (VPA_SHIFTS=08:00-14:00,...)."""
    if isinstance(value, tuple):
        return ",".join(_env_text(v) if not isinstance(v, tuple) else "-".join(_env_text(x) for x in v) for v in value)
    if hasattr(value, "strftime") and hasattr(value, "hour") and not hasattr(value, "year"):
        return value.strftime("%H:%M")
    return str(value.isoformat() if hasattr(value, "isoformat") else value)


async def get_whatif(request: web.Request) -> web.Response:
    _manager(request, "Was wäre wenn")
    return web.json_response(_whatif_status(request))


async def post_whatif(request: web.Request) -> web.Response:
    from services.config.loader import ConfigError
    from services.dashlet.whatif_job import Busy
    from services.whatif.compare import WhatIfError, rule_changes, settings_pair

    who = _manager(request, "Was wäre wenn")
    commands.check_media_type(request.content_type, request.charset)
    body = commands.parse_object(await request.read())
    changes = body.get("changes")
    if (set(body) != {"changes"} or not isinstance(changes, dict) or not changes
            or not all(isinstance(v, str) for v in changes.values())):
        raise ApiError(400, ErrorCode.bad_request, "Erwartet {\"changes\": {\"VPA_…\": \"Wert\"}}")
    try:
        wanted = rule_changes(f"{k}={v}" for k, v in changes.items())
        settings_pair(request.app[ENV], wanted)
    except (WhatIfError, ConfigError) as exc:
        raise ApiError(422, ErrorCode.rejected, str(exc)) from None
    jobs = request.app[WHATIF]
    if jobs is None:
        raise ApiError(503, ErrorCode.whatif_unavailable, "Hier kann kein Was-wäre-wenn laufen")
    try:
        jobs.start(wanted, who.initials)
    except Busy as exc:
        raise ApiError(409, ErrorCode.whatif_running, str(exc)) from None
    return web.json_response(_whatif_status(request), status=202)


# ---- commands --------------------------------------------------------------------------------

async def post_command(request: web.Request) -> web.Response:
    who: Principal = request[PRINCIPAL]
    wait = request.app[RATE].take(who.initials)
    if wait:
        raise ApiError(429, ErrorCode.too_many_requests,
                       f"Zu viele Befehle: höchstens {request.app[RATE].per_second:g} je Sekunde; bitte gleich noch "
                       "einmal", {"Retry-After": CommandRate.retry_after(wait)})
    commands.check_media_type(request.content_type, request.charset)
    obj = commands.parse_body(await request.read())  # > MAX_BODY_BYTES: aiohttp's 413, as JSON
    s: Settings = request.app[SETTINGS]
    now = request.app[NOW]()
    env, raw = commands.stamp(obj, who, now, s.tz)
    ledger = request.app[LEDGER]
    # DESIGN 5.4a: the id is the principal's own (commands.scoped_event_id); a repeat of it is
    # answered like the first, without effect, so a client may retry after a timeout.
    repeated = web.json_response({"event_id": env.event_id, "repeated": True}, status=202)
    if await ledger.seen(env.event_id):
        return repeated
    due = getattr(env.data, "due_at", None)
    if due is not None and not now - timedelta(days=366) <= due <= now + timedelta(days=366):
        raise ApiError(422, ErrorCode.invalid_command, "Ungültiger Befehl: data.due_at liegt mehr als ein Jahr in der "
                                                       "Vergangenheit oder in der Zukunft")
    checks = request.app[COMMAND_STORE]  # never waits behind list reads (issue 27)
    if not await checks.known_vpa(env.vpa_id):
        raise ApiError(422, ErrorCode.unknown_vpa, f"VPA {env.vpa_id} ist unbekannt")
    rejection = await precheck(env, checks.get)
    if rejection is not None:
        raise ApiError(422, rejection.code, rejection.reason)
    if not await ledger.claim(env.event_id):  # taken meanwhile by a concurrent request of the same principal
        return repeated
    try:
        # A failure frees the id (the command did not go on), also when this request is gone by then.
        refused = await request.app[COMMANDS].send(raw, env.vpa_id, on_failure=lambda: ledger.release(env.event_id))
    except CommandPathError as exc:
        raise ApiError(503, ErrorCode.command_path_unavailable,
                       f"Der Befehl konnte nicht weitergegeben werden ({exc}); bitte erneut versuchen") from None
    if refused:
        raise ApiError(422, ErrorCode.rejected, refused.removeprefix("rejected:").strip())
    return web.json_response({"event_id": env.event_id, "repeated": False}, status=202)


# ---- live feed -------------------------------------------------------------------------------

async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``ready`` once, then one ``task`` event per changed task (full document).

    Ids count per connection; changes missed while disconnected are not replayed, so a client
    that reconnects re-reads its lists (the page does) instead of resuming at ``Last-Event-ID``."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    store = request.app[STORE]
    who: Principal = request[PRINCIPAL]
    stop = asyncio.Event()  # set when this principal opened too many feeds: the oldest closes
    request.app[FEEDS].add(who.initials, stop)
    queue: asyncio.Queue = await store.subscribe()
    loop = asyncio.get_running_loop()
    getter: Optional[asyncio.Future] = None
    try:
        await resp.prepare(request)
        await resp.write(b'retry: 2000\nevent: ready\ndata: {"replayed": false}\n\n')
        seq, written = 0, loop.time()
        while not stop.is_set():
            getter = getter or asyncio.ensure_future(queue.get())
            # Every second: has the client gone, or this principal opened too many feeds? So a
            # page that leaves leaves nothing behind within a second (issue 27).
            done, _ = await asyncio.wait((getter,), timeout=1.0)
            if not done:
                if request.transport is None or request.transport.is_closing():
                    break
                if loop.time() - written >= KEEP_ALIVE_SECONDS:
                    await resp.write(b": keep-alive\n\n")
                    written = loop.time()
                continue
            change, getter = getter.result(), None
            seq += 1
            if change.get("erased"):  # `vpa erase`: the pages drop the task
                data = json.dumps({"task_id": change["task_id"]}, ensure_ascii=False)
                await resp.write(f"id: {seq}\nevent: erased\ndata: {data}\n\n".encode("utf-8"))
            else:
                data = json.dumps(_presentable(change), ensure_ascii=False)
                await resp.write(f"id: {seq}\nevent: task\ndata: {data}\n\n".encode("utf-8"))
            written = loop.time()
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        if getter is not None:
            getter.cancel()
        request.app[FEEDS].remove(who.initials, stop)
        await store.unsubscribe(queue)
    return resp


# ---- operations ------------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    """Ready or not. The reasons (which may name hosts and errors) only for a known token: an
    anonymous caller (a load balancer) gets the status alone."""
    checks = {"store": await store_problem(request.app[STORE]), "commands": request.app[COMMANDS].problem()}
    known = request.app[TOKENS].lookup(request.headers.get("Authorization")) is not None
    if any(checks.values()):
        if not known:
            return error_response(503, ErrorCode.unhealthy, "nicht bereit", status="unhealthy",
                                  checks={k: ("failing" if v else "ok") for k, v in checks.items()})
        summary = "; ".join(f"{k}: {v}" for k, v in checks.items() if v)
        return error_response(503, ErrorCode.unhealthy, f"nicht bereit: {summary}", status="unhealthy",
                              checks={k: v or "ok" for k, v in checks.items()})
    return web.json_response({"status": "ok", "checks": {k: "ok" for k in checks}})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())


async def page(request: web.Request) -> web.Response:
    return web.FileResponse(PAGE, headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})


async def static(request: web.Request) -> web.Response:
    path = STATIC.get(request.match_info["name"])
    if path is None:
        raise ApiError(404, ErrorCode.not_found, "Diese Datei gibt es nicht")
    return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[path.suffix] + "; charset=utf-8",
                                           "Cache-Control": "no-cache"})


ROUTES: tuple[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]], ...] = (
    ("GET", "/api/tasks", list_tasks),
    ("GET", "/api/tasks/{task_id}", get_task),
    ("POST", "/api/commands", post_command),
    ("GET", "/api/me", me),
    ("GET", "/api/vpas", search_vpas),
    ("GET", "/api/vpas/{vpa_id}", get_vpa),
    ("GET", "/api/today", get_today),
    ("GET", "/api/team", get_team),
    ("GET", "/api/whatif", get_whatif),
    ("POST", "/api/whatif", post_whatif),
    ("GET", "/api/stream", stream),
    ("GET", "/healthz", healthz),
    ("GET", "/metrics", metrics),
    ("GET", "/openapi.json", openapi),
    ("GET", "/", page),
    ("GET", "/static/{name}", static),
)


def build_app(store: Any, sink: CommandSink, tokens: dict[str, Principal], settings: Optional[Settings] = None, *,
              reader: Any = None, ledger: Any = None, now: Optional[Callable[[], datetime]] = None,
              stuck_after: float = 5.0, crm_url_template: Optional[str] = None,
              commands_per_second: float = 5.0, command_burst: int = 20, feeds_per_token: int = 5,
              metrics_on_api: bool = True, whatif: Any = None, env: Mapping[str, str] = {}) -> web.Application:
    """The dashlet app. ``reader`` and ``ledger`` default to ones over the same store; ``now``
    (the wall clock by default) decides the current shift and stamps commands; ``settings`` are the
    business rules it shows (defaults without), ``env`` the environment a what-if's changes are
    checked against (the composition root passes its own; nothing here reads the process's)."""
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[STORE], app[TOKENS] = store, TokenTable(tokens)
    app[READER] = reader or reader_for(store)
    app[COMMAND_STORE], app[LEDGER] = store, ledger
    app[COMMANDS] = CommandPath(sink, stuck_after=stuck_after)

    async def open_command_side(app: web.Application) -> None:
        app[COMMAND_STORE] = await store.command_side() if hasattr(store, "command_side") else store
        if app[LEDGER] is None:
            app[LEDGER] = ledger_for(app[COMMAND_STORE])
    app.on_startup.append(open_command_side)
    app[SETTINGS] = settings or Settings()
    app[ENV] = dict(env)
    app[NOW] = now or (lambda: datetime.now(timezone.utc))  # the API is a shell: it may read the clock
    app[CRM] = crm_url_template
    app[RATE] = CommandRate(commands_per_second, command_burst)
    app[FEEDS] = FeedLimit(feeds_per_token)
    app[WHATIF] = whatif

    async def stop_whatif(app: web.Application) -> None:
        if app[WHATIF] is not None:
            await app[WHATIF].close()
    app.on_cleanup.append(stop_whatif)
    for method, path, handler in ROUTES:
        if path == "/metrics" and not metrics_on_api:
            continue  # served on a port of its own (VPA_DASHLET_METRICS_PORT)
        app.router.add_route(method, path, handler)
    app.on_response_prepare.append(_security_headers)
    return app


def kafka_sink(cfg: Any) -> tuple[CommandSink, Callable[[], Awaitable[None]]]:
    """Commands go to ``vpa.commands`` keyed by vpa_id; rule rejections come back on vpa.dlq.
    ``cfg`` is a KafkaConfig (its connection and security settings)."""
    from services.broker.client import Producer

    producer = Producer(cfg)
    started = False

    async def send(raw: bytes, vpa_id: str) -> Optional[str]:
        nonlocal started
        if not started:
            await producer.start()
            started = True
        await producer.send_and_wait(Topic.commands, vpa_id.encode(), raw)
        return None

    async def close() -> None:
        if started:
            await producer.stop()

    return send, close
