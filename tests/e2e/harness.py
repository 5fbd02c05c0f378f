"""A real dashlet for tests: ``build_app`` over a store and a command sink that runs the embedded
pipeline (every service in process, in stream time) and writes its task versions to the store,
as the notifier would. Nothing here is mocked: the HTTP server, the store and the services are
the real ones.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from services.app.bootstrap import processors
from services.app.demo import EmbeddedPipeline
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.dashlet.api import build_app
from services.dashlet.auth import Principal
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders

TOKENS = {"tok-at": Principal("AB", "at"), "tok-vm": Principal("VM", "vpa_manager"),
          "tok-cd": Principal("CD", "at")}


def envelope(eid: str, type_: str, at: str, vpa: Optional[str], data: dict, actor: Optional[dict] = None) -> str:
    return builders.line(type_, data, at=at, vpa_id=vpa, actor=actor, event_id=eid)


class EmbeddedSink(EmbeddedPipeline):
    """The command sink of the tests: the demo's embedded pipeline (the runner, then the store,
    behind one lock), which also keeps every command the API passed on."""

    def __init__(self, store: Any, settings: Optional[Settings] = None) -> None:
        self.settings = settings or Settings()
        super().__init__(EmbeddedRunner(processors(), self.settings, StreamClock(), keep_upstream=True), store)
        self.received: list[dict] = []  # every command as the API passed it on

    async def feed(self, lines: list[str], origin: str = "fixture") -> None:
        await super().feed(lines, origin)

    async def __call__(self, raw: bytes, vpa_id: str) -> Optional[str]:
        self.received.append(json.loads(raw))
        return await self.command(raw, vpa_id)


@dataclass
class Dashlet:
    url: str
    sink: EmbeddedSink
    store: Any
    stop: Callable[[], Awaitable[None]]


async def start_dashlet(store: Any, lines: list[str], settings: Optional[Settings] = None, **app_kwargs) -> Dashlet:
    settings = settings or Settings()
    # The pipeline writes like the demo's: over the command path's own connections (issue 27).
    sink = EmbeddedSink(await store.command_side(), settings)
    await sink.feed(lines)
    runner = web.AppRunner(build_app(store, sink, TOKENS, settings, **app_kwargs), shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return Dashlet(f"http://127.0.0.1:{port}", sink, store, runner.cleanup)


# ---- a small company: every tab has something to do ----------------------------------------------

def company(prefix: str = "") -> list[str]:
    """Roster, three VPAs, cases of several kinds, a waiting and an open reminder, journey stages."""
    p = prefix
    at = {"initials": "AB", "role": "at"}
    m = lambda eid, ini, role="at", deputy=None: envelope(  # noqa: E731
        f"{p}{eid}", "roster.member_upserted", "2026-11-01T08:00:00+01:00", None,
        {"initials": ini, "name": ini, "role": role, "deputy": deputy, "active": True})
    return [
        m("m1", "AB", deputy="CD"), m("m2", "CD"), m("m3", "VM", role="vpa_manager"),
        envelope(f"{p}r1", "vpa.registered", "2026-11-01T08:00:00+01:00", "V-1",
                 {"name": "Anna Schmidt", "started_on": "2026-01-15", "at_owner": "AB", "class": "C"}),
        envelope(f"{p}r2", "vpa.registered", "2026-11-01T08:00:00+01:00", "V-2",
                 {"name": "Ben Meyer", "started_on": "2025-11-10", "at_owner": "AB", "class": "B"}),
        envelope(f"{p}r3", "vpa.registered", "2026-11-01T08:00:00+01:00", "V-3",
                 {"name": "Cleo Wagner", "started_on": "2026-10-20", "at_owner": "AB"}),
        envelope(f"{p}a1", "vpa.absence_registered", "2026-11-26T09:00:00+01:00", "V-1",
                 {"absence_id": "L", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}),
        envelope(f"{p}a2", "vpa.absence_registered", "2026-11-26T09:05:00+01:00", "V-1",
                 {"absence_id": "S", "starts_on": "2026-11-27", "ends_on": "2026-11-27"}),
        envelope(f"{p}k1", "vpa.class_changed", "2026-11-26T09:10:00+01:00", "V-2",
                 {"class": "A", "previous": "B", "rising_star": True}),
        envelope(f"{p}c1", "cmd.reminder.set", "2026-11-26T09:20:00+01:00", "V-1",
                 {"reminder_id": f"{p}R-due", "due_at": "2026-11-26T09:30:00+01:00", "owner": "AB",
                  "note": "Rückruf Anna"}, at),
        envelope(f"{p}c2", "cmd.reminder.set", "2026-11-26T09:21:00+01:00", "V-1",
                 {"reminder_id": f"{p}R-later", "due_at": "2026-12-03T09:00:00+01:00", "owner": "AB",
                  "note": "Urlaub vorbereiten", "case_task_id": "case:absence:V-1:L"}, at),
        envelope(f"{p}t1", "clock.tick", "2026-11-26T10:00:00+01:00", None, {}),
    ]
