"""The demo's restart safety without processes: the live pipeline (wall ticks, simulated events as
the clock passes them, commands from the page) and a rebuild from the simulation plus the input
log end in the same tasks, so a restarted demo and its store never disagree (issue 8, item 4)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.app.bootstrap import processors
from services.app.demo import DemoParams, LiveDemo, company_feed, first_tokens, rebuild
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.dashlet.auth import Principal
from services.runners.embedded.replay import final_tasks
from services.runners.embedded.runner import EmbeddedRunner
from services.store.postgres import MemoryTaskStore
from tests import builders

TZ = ZoneInfo("Europe/Berlin")


class InputLog:
    """The ``demo_inputs`` table in memory."""

    def __init__(self) -> None:
        self.rows: list[tuple[datetime, bytes]] = []

    async def append(self, occurred_at: datetime, raw: bytes) -> None:
        self.rows.append((occurred_at, raw))


class Wall:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def params(live: datetime) -> DemoParams:
    return DemoParams(vpas=60, seed=3, start=date(2026, 3, 2), days=21, live_since=live, tokens={})


def command(type_: str, vpa_id: str, data: dict, n: int) -> bytes:
    # as the API hands it on: its own occurred_at, which the demo replaces with the server's instant
    return builders.raw(type_, data, at="2020-01-01T00:00:00+00:00", vpa_id=vpa_id,
                        actor={"initials": "XX", "role": "at"}, event_id=f"page-{n}")


async def test_a_rebuild_from_simulation_and_input_log_is_the_live_pipeline():
    live = datetime(2026, 3, 16, 14, 30, tzinfo=TZ)
    feed = company_feed(params(live), "Europe/Berlin")
    owner = next(m for m in feed.members if m.role == "at").initials
    history = [x for x in feed.lines if x[0] <= live.timestamp()]
    upcoming = [x for x in feed.lines if x[0] > live.timestamp()]
    assert upcoming and all(b'"cmd.' not in line for _, line in upcoming), "people stop acting at going live"

    settings, store, log, wall = Settings(), MemoryTaskStore(), InputLog(), Wall(live)
    runner = EmbeddedRunner(processors(), settings, StreamClock())
    rebuild(runner, history, [])
    runner.advance_to(live)
    demo = LiveDemo(runner, store, log, upcoming, TZ, live, wall=wall)
    await demo._flush()
    vpa = next(json.loads(line)["vpa_id"] for _, line in history if b'"vpa.registered"' in line)

    n = 0
    for minutes in range(0, 3 * 24 * 60, 7):  # three days of ticks, commands in between
        wall.t = live + timedelta(minutes=minutes, seconds=0.4)
        await demo.follow()
        if minutes % 700 == 0:
            n += 1
            due = (wall.t + timedelta(hours=5)).isoformat()
            rejection = await demo.command(command("cmd.reminder.set", vpa, {
                "reminder_id": f"page-{n}", "due_at": due, "owner": owner, "note": "von der Seite"}, n * 10), vpa)
            assert rejection is None
            if n % 2 == 0:  # complete the previous one; a repeat is refused, not applied twice
                done = command("cmd.reminder.complete", vpa, {"reminder_id": f"page-{n - 1}", "file_updated": True},
                               n * 10 + 1)
                assert await demo.command(done, vpa) is None
                assert "handled before" in await demo.command(done, vpa)
    assert len(log.rows) >= 6
    assert [t for t, _ in log.rows] == sorted(t for t, _ in log.rows)
    assert all(t.microsecond == 0 for t, _ in log.rows), "instants are whole seconds"
    live_tasks = await store.all()

    # restart: the same simulation, the logged commands, up to the same instant
    mark = demo.mark
    again = EmbeddedRunner(processors(), settings, StreamClock())
    rebuild(again, [x for x in feed.lines if x[0] <= mark.timestamp()], log.rows)
    again.advance_to(mark)
    rebuilt = final_tasks(again.drain_tasks())
    assert rebuilt == live_tasks
    assert await store.apply(rebuilt) == [], "the store already has every version"
    assert {t["task_id"] for t in live_tasks} >= {f"reminder:page-{i}" for i in range(1, n + 1)}


def test_tokens_for_the_busiest_at_member_and_vpa_manager():
    members = [Principal("AB", "at"), Principal("CD", "at"), Principal("VM", "vpa_manager")]
    tokens = first_tokens(members)
    assert sorted((p.initials, p.role) for p in tokens.values()) == [("AB", "at"), ("VM", "vpa_manager")]
    assert all(len(t) >= 20 for t in tokens)
    tasks = [{"status": "open", "assignee": "CD"}, {"status": "waiting", "assignee": "CD"},
             {"status": "open", "assignee": "AB"}, {"status": "done", "assignee": "AB"},
             {"status": "done", "assignee": "AB"}]
    assert sorted(p.initials for p in first_tokens(members, tasks).values()) == ["CD", "VM"]


def test_parameters_survive_their_json_form():
    p = DemoParams(300, 1, date(2026, 10, 2), 75, datetime(2026, 12, 1, 11, 25, tzinfo=TZ),
                   {"tok": Principal("AB", "at")})
    assert DemoParams.from_json(json.loads(json.dumps(p.to_json()))) == p
