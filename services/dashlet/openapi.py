"""OpenAPI document for the dashlet API, built from the contract models."""
from __future__ import annotations

from functools import lru_cache

from schemas.task import Task


@lru_cache(maxsize=1)
def openapi_spec() -> dict:
    task = Task.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    defs = task.pop("$defs", {})
    bearer = [{"bearer": []}]
    q = lambda name, desc: {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": desc}  # noqa: E731
    err = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "VPA Manager Dashlet API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**defs, "Task": task,
                        "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}},
        },
        "paths": {
            "/api/tasks": {"get": {
                "summary": "List tasks", "security": bearer,
                "parameters": [q("tab", "cases | reminders | journey"), q("status", "waiting | open | done | cancelled"),
                               q("assignee", "initials"), q("vpa_id", "VPA id"),
                               q("due_before", "RFC 3339 datetime with offset"), q("limit", "page size (max 500)"),
                               q("offset", "page start"),
                               q("shift", "'current': only waiting/open tasks due by the end of the current shift")],
                "responses": {"200": {"description": "a page of tasks", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                        "limit": {"type": "integer"}, "offset": {"type": "integer"},
                        "next_offset": {"type": ["integer", "null"]}}}}}},
                              "400": err, "401": err}}},
            "/api/tasks/{task_id}": {"get": {
                "summary": "One task", "security": bearer,
                "parameters": [{"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the task", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Task"}}}}, "401": err, "404": err}}},
            "/api/commands": {"post": {
                "summary": "Send a command (envelope without actor; the actor comes from the token)",
                "security": bearer,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"202": {"description": "accepted", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"event_id": {"type": "string"}}}}}},
                              "400": err, "401": err, "422": err}}},
            "/api/stream": {"get": {"summary": "Server-sent events of task changes", "security": bearer,
                                    "responses": {"200": {"description": "text/event-stream"}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        },
    }
