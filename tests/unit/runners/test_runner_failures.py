"""A rule that raises must not stop the pipeline nor leave half-changed state (DESIGN 3), in either
driver: handle, on_timer and reassign are each copied-and-caught; the input (or a description of
the timer) goes to the DLQ as ``error:``, and the partition goes on. And no number of timers due at
one instant makes the engine recurse (issue 9: constant stack depth)."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone

import pytest

from services.core.processor import ProcessorDefaults, Result, set_timer
from tests import builders
from tests.unit.runner_drivers import DRIVERS, make


class Fragile(ProcessorDefaults):
    name = "fragile"
    topics = frozenset({"vpa.events"})

    def handle(self, state, env, ctx):
        state["count"] = state.get("count", 0) + 1
        if env.type == "vpa.absence_registered" and env.data.absence_id == "boom":
            raise ValueError("kaputt")
        if env.type == "vpa.absence_registered" and env.data.absence_id == "timer":
            set_timer(state, "t", ctx.now + timedelta(hours=1), "t")
        return Result()

    def on_timer(self, state, timer, ctx):
        state["fired"] = True
        raise RuntimeError("timer kaputt")

    def reassign(self, state, ctx):
        state["reassigned"] = True
        raise KeyError("roster kaputt")


def line(eid: str, absence_id: str, at: str = "2026-11-26T09:00:00+01:00", vpa: str = "V-1") -> str:
    return json.dumps(builders.vpa_absence(absence_id, "2026-12-01", "2026-12-02", vpa, at=at, event_id=eid))


def tick(at: str) -> str:
    return json.dumps({"event_id": f"tick-{at}", "type": "clock.tick", "occurred_at": at, "data": {}})


@pytest.fixture(params=DRIVERS)
def driver(request):
    return request.param


def test_failing_handler_goes_to_dlq_state_untouched_and_next_event_processed(driver):
    runner = make(driver, Fragile())
    runner.submit_raw(line("e1", "ok"), "t:1")
    runner.submit_raw(line("e2", "boom"), "t:2")
    runner.submit_raw(line("e3", "ok2"), "t:3")
    assert runner.state_of("fragile", "V-1")["count"] == 2  # the failed call left no trace
    assert [r.reason for r in runner.dlq] == ["error: fragile: ValueError: kaputt"]
    assert json.loads(runner.dlq[0].value)["event_id"] == "e2"
    assert runner.dlq[0].key == "V-1"


def test_failing_timer_goes_to_dlq_is_dropped_and_leaves_the_state_as_it_was(driver):
    runner = make(driver, Fragile())
    runner.submit_raw(line("e1", "timer"), "t:1")
    runner.submit_raw(tick("2026-11-26T11:00:00+01:00"), "t:2")
    runner.submit_raw(tick("2026-11-26T13:00:00+01:00"), "t:3")
    state = runner.state_of("fragile", "V-1")
    assert "fired" not in state and not state.get("timers")  # untouched, and the timer does not fire again
    assert [r.reason for r in runner.dlq] == ["error: fragile: RuntimeError: timer kaputt"]
    assert json.loads(runner.dlq[0].value)["timer_id"] == "t"


def test_failing_reassign_goes_to_dlq_and_the_roster_change_still_applies(driver):
    runner = make(driver, Fragile())
    runner.submit_raw(line("e1", "ok"), "t:1")
    runner.submit_raw(json.dumps({"event_id": "r1", "type": "roster.member_upserted",
                                  "occurred_at": "2026-11-26T10:00:00+01:00", "data": {
                                      "initials": "AB", "name": "Anna", "role": "at", "deputy": None,
                                      "active": True}}), "t:2")
    runner.submit_raw(line("e3", "ok2", at="2026-11-26T11:00:00+01:00"), "t:3")
    assert [r.reason for r in runner.dlq] == ["error: fragile: KeyError: 'roster kaputt'"]
    state = runner.state_of("fragile", "V-1")
    assert state["count"] == 2 and "reassigned" not in state


class Many(ProcessorDefaults):
    """Sets one timer per VPA for the same instant; each timer emits a command when it fires."""

    name = "many"
    topics = frozenset({"vpa.events", "vpa.commands"})
    due = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)

    def __init__(self) -> None:
        self.depths: list[int] = []
        self.commands = 0

    def handle(self, state, env, ctx):
        if env.type == "cmd.case.resolve":
            self.commands += 1
            return Result()
        set_timer(state, "t", self.due, "t")
        return Result()

    def on_timer(self, state, timer, ctx):
        frame, depth = sys._getframe(), 0
        while frame is not None:
            depth, frame = depth + 1, frame.f_back
        self.depths.append(depth)
        from tests.unit.runners.test_embedded_runner import command

        cmd = command(f"cmd-{timer.timer_id}-{len(self.depths)}", ctx.now)
        return Result(commands=[cmd.model_copy(update={"vpa_id": state["vpa"]})])

    def reassign(self, state, ctx):
        return Result()


@pytest.mark.parametrize("driver, n", [("embedded", 50_000), ("kafka-local", 2_000)])
def test_timers_due_at_one_instant_fire_without_recursion(driver, n):
    proc = Many()
    original = proc.handle

    def handle(state, env, ctx):
        state["vpa"] = env.vpa_id
        return original(state, env, ctx)
    proc.handle = handle
    runner = make(driver, proc)
    for i in range(n):
        runner.submit_raw(json.dumps({"event_id": f"e{i}", "type": "vpa.activity_seen",
                                      "occurred_at": "2026-11-26T09:00:00+00:00", "vpa_id": f"V-{i}",
                                      "data": {"channel": "web"}}), f"t:{i}")
    runner.submit_raw(tick("2026-11-27T10:00:00+00:00"), "t:end")
    assert len(proc.depths) == n
    assert max(proc.depths) == min(proc.depths)  # the same stack depth for the first and the last
    assert proc.commands == n  # every command handled, right after its timer
