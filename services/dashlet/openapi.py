"""The OpenAPI 3.1 document of the dashlet API, generated from the pydantic models.

Query parameters come from ``query.TaskQuery`` (typed, with enums), the command body is the
discriminated union of the ``cmd.*`` request models (``commands.CommandRequest``), and every
response names its schema. ``tests/e2e/test_openapi.py`` fails when routes and document differ;
schemathesis checks the answers against it.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import models_json_schema

from schemas.base import Initials
from schemas.task import Task
from services.dashlet.errors import ErrorCode
from services.dashlet.query import TaskId, TaskPage, TaskQuery

REF = "#/components/schemas/{model}"


class Error(BaseModel):
    """Every error: a German reason for people and a machine code."""

    model_config = ConfigDict(title="Error")
    error: str
    code: ErrorCode


class Me(BaseModel):
    """Who the token belongs to, and what the page needs to show times and shifts."""

    model_config = ConfigDict(title="Me", extra="forbid")
    initials: Initials
    role: str = Field(pattern="^(at|vpa_manager)$")
    timezone: str
    shifts: list[list[str]]


class HealthChecks(BaseModel):
    model_config = ConfigDict(title="HealthChecks")
    store: str
    commands: str


class Health(BaseModel):
    """``/healthz`` when healthy; unhealthy is a 503 ``Error`` with ``status`` and ``checks``."""

    model_config = ConfigDict(title="Health", extra="forbid")
    status: str = Field(pattern="^ok$")
    checks: HealthChecks


class Unhealthy(Error):
    model_config = ConfigDict(title="Unhealthy")
    status: str = Field(pattern="^unhealthy$")
    checks: HealthChecks


def _json(ref: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _text(media: str, description: str) -> dict:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def _no_null(schema: dict) -> dict:
    """A query parameter is absent or has a value: drop the ``null`` branch of an Optional."""
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            out = {k: v for k, v in schema.items() if k != "anyOf"}
            out.update(rest[0])
            if out.get("default", 0) is None:
                del out["default"]  # "absent" is the default, not null
            return out
    return schema


def _parameters(defs: dict) -> list[dict]:
    schema = TaskQuery.model_json_schema(ref_template=REF, mode="validation")
    defs.update(schema.pop("$defs", {}))
    out = []
    for name, prop in schema["properties"].items():
        prop = _no_null(copy.deepcopy(prop))
        param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        prop.pop("title", None)
        if prop.get("type") == "array":
            param.update(style="form", explode=True)
        out.append(param)
    return out


def _errors(ref: dict, *statuses: int) -> dict:
    words = {400: "ungültige Anfrage", 401: "kein oder unbekanntes Token", 403: "nicht für diese Rolle",
             404: "nicht gefunden",
             409: "läuft schon", 413: "zu groß", 415: "kein JSON in UTF-8",
             422: "von einer Regel abgelehnt (der Grund steht in error)", 429: "zu viele Befehle (Retry-After)",
             503: "Befehlsweg nicht verfügbar"}
    out = {}
    for status in statuses:
        out[str(status)] = _json(ref, words[status])
        if status == 401:
            out["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
        if status == 429:
            out["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
    return out


WHATIF_REQUEST = {"type": "object", "required": ["changes"], "additionalProperties": False, "properties": {
    "changes": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"},
                "description": "Geschäftsregeln und ihre neuen Werte, z. B. {\"VPA_LONG_ABSENCE_DAYS\": \"28\"}"}}}
WHATIF_STATUS = {"type": "object", "required": ["state", "settings"], "properties": {
    "state": {"type": "string", "enum": ["idle", "running", "done", "failed", "unavailable"]},
    "progress": {"type": "number", "minimum": 0, "maximum": 1},
    "phase": {"type": "string"}, "changes": {"type": "object", "additionalProperties": {"type": "string"}},
    "by": {"type": "string"}, "started_at": {"type": "string"}, "finished_at": {"type": "string"},
    "elapsed_s": {"type": "number"}, "error": {"type": "string"},
    "report": {"type": "object", "description": "wie bei vpa whatif --json"},
    "settings": {"type": "array", "items": {"type": "object", "required": ["name", "label", "value"], "properties": {
        "name": {"type": "string"}, "label": {"type": "string"}, "value": {"type": "string"}}}}}}


@lru_cache(maxsize=1)
def openapi_spec() -> dict:
    from services.dashlet.commands import COMMAND_REQUEST, Accepted

    from services.dashlet.views import Team, Today, VpaHits, VpaPage

    _, top = models_json_schema(
        [(Task, "serialization"), (TaskPage, "serialization"), (Error, "serialization"), (Me, "serialization"),
         (Health, "serialization"), (Unhealthy, "serialization"), (Accepted, "serialization"),
         (VpaPage, "serialization"), (VpaHits, "serialization"), (Today, "serialization"), (Team, "serialization")],
        ref_template=REF)
    defs: dict = top.get("$defs", {})
    body = COMMAND_REQUEST.json_schema(ref_template=REF, mode="validation")
    defs.update(body.pop("$defs", {}))
    defs["CommandRequest"] = {"title": "CommandRequest", **body}
    task_id = TypeAdapter(TaskId).json_schema()

    def ref(name: str) -> dict:
        assert name in defs, name
        return {"$ref": REF.format(model=name)}

    err = ref("Error")
    bearer = [{"bearer": []}]
    from services.dashlet.page_files import STATIC  # the files the page is made of

    paths = {
        "/api/tasks": {"get": {
            "operationId": "listTasks", "summary": "Aufgaben lesen: gefiltert, sortiert und seitenweise",
            "security": bearer, "parameters": _parameters(defs),
            "responses": {"200": _json(ref("TaskPage"), "eine Seite Aufgaben"), **_errors(err, 400, 401)}}},
        "/api/tasks/{task_id}": {"get": {
            "operationId": "getTask", "summary": "Eine Aufgabe mit Verlauf und Begründung", "security": bearer,
            "parameters": [{"name": "task_id", "in": "path", "required": True, "schema": task_id}],
            "responses": {"200": _json(ref("Task"), "die Aufgabe"), **_errors(err, 400, 401, 404)}}},
        "/api/commands": {"post": {
            "operationId": "postCommand",
            "summary": "Einen Befehl senden (Umschlag ohne actor; actor, occurred_at und fehlende event_id setzt "
                       "der Server)",
            "security": bearer,
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("CommandRequest")}}},
            "responses": {"202": _json(ref("Accepted"), "angenommen"),
                          **_errors(err, 400, 401, 413, 415, 422, 429, 503)}}},
        "/api/me": {"get": {
            "operationId": "me", "summary": "Wer angemeldet ist", "security": bearer,
            "responses": {"200": _json(ref("Me"), "Kürzel, Rolle, Zeitzone, Schichten"), **_errors(err, 401)}}},
        "/api/vpas": {"get": {
            "operationId": "searchVpas", "summary": "VPA suchen: nach Name oder VPA-ID", "security": bearer,
            "parameters": [{"name": "q", "in": "query", "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 80}}],
            "responses": {"200": _json(ref("VpaHits"), "bis zu 20 Treffer"), **_errors(err, 400, 401)}}},
        "/api/vpas/{vpa_id}": {"get": {
            "operationId": "getVpa", "summary": "Ein VPA: Profil, Aufgaben aller Tabs, Ereignisse, Link zur Akte",
            "security": bearer,
            "parameters": [{"name": "vpa_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$"}}],
            "responses": {"200": _json(ref("VpaPage"), "der VPA"), **_errors(err, 400, 401, 404)}}},
        "/api/today": {"get": {
            "operationId": "today", "summary": "Heute: was das angemeldete Mitglied heute bearbeitet, nach VPA",
            "security": bearer, "responses": {"200": _json(ref("Today"), "der Tagesdurchgang"), **_errors(err, 401)}}},
        "/api/team": {"get": {
            "operationId": "team", "summary": "Team (nur VPA Manager): Arbeit je Mitglied, Abwesenheiten und Übergaben",
            "security": bearer,
            "responses": {"200": _json(ref("Team"), "das Team"), **_errors(err, 401, 403)}}},
        "/api/whatif": {
            "get": {"operationId": "whatifStatus", "summary": "Was wäre wenn (nur VPA Manager): die Regeln mit "
                     "ihren Werten und die laufende oder letzte Berechnung", "security": bearer,
                     "responses": {"200": _json(WHATIF_STATUS, "Stand"), **_errors(err, 401, 403)}},
            "post": {"operationId": "whatifStart", "summary": "Was wäre wenn (nur VPA Manager): den Verlauf mit "
                     "geänderten Regeln durchrechnen (im Hintergrund, eine Berechnung zur Zeit)", "security": bearer,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": WHATIF_REQUEST}}},
                     "responses": {"202": _json(WHATIF_STATUS, "gestartet"),
                                   **_errors(err, 400, 401, 403, 409, 413, 415, 422, 503)}}},
        "/api/stream": {"get": {
            "operationId": "stream", "summary": "Server-Sent Events: ready, dann je geänderter Aufgabe ein task-Ereignis",
            "security": bearer,
            "responses": {"200": _text("text/event-stream", "Ereignisstrom"), **_errors(err, 401)}}},
        "/healthz": {"get": {
            "operationId": "healthz", "summary": "Bereitschaft: Speicher antwortet, Befehlsweg hängt nicht",
            "responses": {"200": _json(ref("Health"), "bereit"), "503": _json(ref("Unhealthy"), "nicht bereit")}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus-Metriken",
                             "responses": {"200": _text("text/plain", "Metriken im Textformat")}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "Dieses Dokument",
                                  "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        "/": {"get": {"operationId": "page", "summary": "Die Dashlet-Seite",
                      "responses": {"200": _text("text/html", "HTML")}}},
        "/static/{name}": {"get": {
            "operationId": "static", "summary": "Skript, Stil und Symbol der Seite",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": sorted(STATIC)}}],
            "responses": {"200": {"description": "die Datei", "content": {
                m: {"schema": {"type": "string"}} for m in ("text/javascript", "text/css", "image/svg+xml")}},
                **_errors(err, 404)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "VPA Manager Dashlet API", "version": "2",
                 "description": "Fehler sind immer JSON {error, code} mit einem 4xx-Status (503 nur, wenn der "
                                "Speicher oder der Befehlsweg nicht verfügbar ist)."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": defs},
        "paths": paths,
    }

