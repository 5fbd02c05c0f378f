"""Errors of the dashlet API (DESIGN 4.8): every one is JSON ``{"error": reason, "code": machine_code}``.

Handlers raise ``ApiError``; the middleware turns it, and aiohttp's own 404/405/413 (raised as
``HTTPException`` before or around a handler), into that shape. Reasons are German, for people.
"""
from __future__ import annotations

import logging
from enum import Enum
from typing import Optional

import asyncpg
from aiohttp import web

log = logging.getLogger("vpa.dashlet")
MAX_BODY_BYTES = 64 * 1024  # a command is a few hundred bytes; anything near this is not one


class ErrorCode(str, Enum):
    """Machine codes of API errors (the ``code`` field); the OpenAPI document lists them."""

    bad_request = "bad_request"
    bad_query = "bad_query"
    bad_path = "bad_path"
    bad_json = "bad_json"
    bad_encoding = "bad_encoding"
    unsupported_media_type = "unsupported_media_type"
    invalid_command = "invalid_command"
    unknown_command_type = "unknown_command_type"
    unauthorized = "unauthorized"
    forbidden = "forbidden"
    not_found = "not_found"
    method_not_allowed = "method_not_allowed"
    payload_too_large = "payload_too_large"
    too_many_requests = "too_many_requests"
    duplicate_event = "duplicate_event"
    rejected = "rejected"
    not_a_case = "not_a_case"
    unknown_task = "unknown_task"
    unknown_vpa = "unknown_vpa"
    task_closed = "task_closed"
    reminder_exists = "reminder_exists"
    file_not_updated = "file_not_updated"
    manager_only = "manager_only"
    command_path_unavailable = "command_path_unavailable"
    store_unavailable = "store_unavailable"
    unhealthy = "unhealthy"
    whatif_running = "whatif_running"
    whatif_unavailable = "whatif_unavailable"
    internal = "internal"


class ApiError(Exception):
    def __init__(self, status: int, code: ErrorCode, reason: str, headers: Optional[dict] = None) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.headers = status, code, reason, headers or {}


def error_response(http_status: int, code: ErrorCode, reason: str, headers: Optional[dict] = None,
                   **extra) -> web.Response:
    return web.json_response({"error": reason, "code": code.value, **extra}, status=http_status, headers=headers)


# aiohttp's own answers, in the API's shape and language.
_HTTP = {
    400: (ErrorCode.bad_request, "Ungültige Anfrage"),
    404: (ErrorCode.not_found, "Diese Adresse gibt es nicht"),
    405: (ErrorCode.method_not_allowed, "Diese Methode ist hier nicht erlaubt"),
    413: (ErrorCode.payload_too_large, "Die Anfrage ist zu groß"),
}
_KEEP_HEADERS = ("Allow",)


@web.middleware
async def error_middleware(request: web.Request, handler):  # noqa: ANN001
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.reason, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        code, reason = _HTTP.get(exc.status, (ErrorCode.bad_request, exc.reason or "Fehler"))
        if exc.status == 413:
            reason = f"{reason} (höchstens {MAX_BODY_BYTES // 1024} KiB)"
        headers = {k: v for k, v in exc.headers.items() if k in _KEEP_HEADERS}
        return error_response(exc.status, code, reason, headers)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The store (or another backend) is down: not the client's fault, and it says so.
        log.warning("backend unavailable for %s %s: %s", request.method, request.path, exc)
        return error_response(503, ErrorCode.store_unavailable, "Der Aufgabenspeicher ist gerade nicht erreichbar")
    except Exception:  # noqa: BLE001 - a bug: logged with its trace, answered in the API's shape
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, ErrorCode.internal, "Interner Fehler (im Log des Servers beschrieben)")
