"""A handler that raises must not stop the pipeline nor leave half-changed state (DESIGN 3)."""
from __future__ import annotations

import json

from services.common.embedded_runner import EmbeddedRunner
from services.common.processor import Result
from services.common.settings import Settings


class Fragile:
    name = "fragile"
    topics = frozenset({"vpa.events"})

    def handle(self, state, env, ctx):
        state["count"] = state.get("count", 0) + 1
        if env.data.absence_id == "boom":
            raise ValueError("kaputt")
        return Result()

    def on_timer(self, state, timer, ctx):
        return Result()

    def reassign(self, state, ctx):
        return Result()


def line(eid: str, absence_id: str) -> str:
    return json.dumps({"event_id": eid, "type": "vpa.absence_registered", "occurred_at": "2026-11-26T09:00:00+01:00",
                       "vpa_id": "V-1", "data": {"absence_id": absence_id, "starts_on": "2026-12-01",
                                                 "ends_on": "2026-12-02"}})


def test_failing_handler_goes_to_dlq_state_untouched_and_next_event_processed():
    runner = EmbeddedRunner([Fragile()], Settings())
    runner.submit_raw(line("e1", "ok"), "t:1")
    runner.submit_raw(line("e2", "boom"), "t:2")
    runner.submit_raw(line("e3", "ok2"), "t:3")
    assert runner.state_of("fragile", "V-1")["count"] == 2  # the failed call left no trace
    assert len(runner.dlq) == 1
    assert runner.dlq[0].reason == "error: fragile: ValueError: kaputt"
    assert json.loads(runner.dlq[0].value)["event_id"] == "e2"
