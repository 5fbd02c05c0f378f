"""The OpenAPI document is generated, typed, and true (issue 10 item 6).

* the routes of the app and the paths of the document are the same (a new route without a
  document entry, or a documented one that is gone, fails here);
* parameters are typed (enums, integers with bounds), the command body is the discriminated union;
* schemathesis against a real dashlet over PostgreSQL with a valid token: generated requests,
  valid and invalid, never get a 5xx and every answer matches the document. Examples are bounded
  so the whole run stays well under a minute.
"""
from __future__ import annotations

import asyncio
import os
import threading

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

from services.dashlet.api import ROUTES, build_app
from services.dashlet.openapi import openapi_spec
from services.store.postgres import PostgresTaskStore
from tests.e2e.harness import company, start_dashlet

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# The live feed never ends: an HTTP client waiting for the whole response would wait forever.
# Valid and invalid requests alike ("all"): invalid ones must get a documented 4xx, never a 5xx.
SCHEMA = schemathesis.openapi.from_dict(
    openapi_spec(), config=SchemathesisConfig.from_dict({"generation": {"mode": "all"}}),
).exclude(path="/api/stream")


def test_routes_and_document_agree():
    app = build_app(object(), None, {})  # routes only; nothing is served
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    documented = {(method.upper(), path) for path, ops in openapi_spec()["paths"].items() for method in ops}
    assert served == documented
    assert {(m, p) for m, p, _ in ROUTES} == documented


def test_parameters_are_typed_and_the_body_is_the_union_of_the_commands():
    spec = openapi_spec()
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/tasks"]["get"]["parameters"]}
    defs = spec["components"]["schemas"]
    assert defs[params["tab"]["$ref"].rsplit("/", 1)[1]]["enum"] == ["cases", "reminders", "journey"]
    assert params["status"]["type"] == "array"
    assert defs[params["status"]["items"]["$ref"].rsplit("/", 1)[1]]["enum"] == ["waiting", "open", "done", "cancelled"]
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}
    assert params["due_before"]["format"] == "date-time"
    body = defs["CommandRequest"]
    assert body["discriminator"]["propertyName"] == "type"
    assert set(body["discriminator"]["mapping"]) == {"cmd.reminder.set", "cmd.reminder.complete",
                                                     "cmd.reminder.reschedule", "cmd.case.resolve", "cmd.journey.clear"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                assert response.get("content"), f"{method} {path} {status} has no schema"


# ---- schemathesis against a live dashlet ---------------------------------------------------------

class Server(threading.Thread):
    """The dashlet in a thread of its own (schemathesis calls it synchronously)."""

    def __init__(self, database_url: str, schema: str) -> None:
        super().__init__(daemon=True)
        self.database_url, self.schema = database_url, schema
        self.ready = threading.Event()
        self.url = None
        self.error: BaseException | None = None

    def run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - reported by the fixture
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.store = await PostgresTaskStore.connect(self.database_url, schema=self.schema)
        self.dashlet = await start_dashlet(self.store, company())
        self.url = self.dashlet.url

    def stop(self) -> None:
        async def close() -> None:
            await self.dashlet.stop()
            await self.store.close()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(10)


@pytest.fixture(scope="module")
def live_dashlet(database_url):
    import asyncpg  # noqa: F401 - the server thread needs it; fail here, clearly, if it is missing

    schema = f"test_st_{os.getpid()}"
    server = Server(database_url, schema)
    server.start()
    server.ready.wait(60)
    if server.error:
        raise server.error
    assert server.url, "the dashlet did not start"
    session = requests.Session()
    yield server.url, session
    session.close()
    server.stop()

    async def drop() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()
    asyncio.run(drop())


@pytest.mark.integration
@SCHEMA.parametrize()
@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schemathesis_no_5xx_and_answers_match_the_document(case, live_dashlet):
    url, session = live_dashlet
    case.call_and_validate(base_url=url, session=session, headers={"Authorization": "Bearer tok-vm"},
                           checks=CHECKS, timeout=10)
