"""The runner contract: stream-clock semantics (DESIGN 3 "Clock", fine print 5.3 and 5.4) that both
drivers of the engine keep, the embedded runner and the Kafka runner's partition worker
(``runner_drivers``: the same tests, run against each).

A tiny processor defined here records what it sees; what it does on each event is a plan the test
writes as plain functions over the state (setting, moving or cancelling timers, emitting commands).
"""
import json
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from services.config.settings import Settings
from services.core.clock import StreamClock
from services.core.processor import Context, ProcessorDefaults, Result, Timer, cancel_timer, set_timer
from services.engine.decode import Decoded, decode
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders
from tests.unit.runner_drivers import DRIVERS, make

VPA = "V-1"
BASE = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


def t(minutes: int) -> datetime:
    """BASE + minutes: every instant in these tests."""
    return BASE + timedelta(minutes=minutes)


def envelope_dict(event_id: str, at: datetime, type_: str = "vpa.activity_seen", data: dict | None = None,
                  vpa_id: str | None = VPA, actor: dict | None = None) -> dict:
    return builders.record(type_, {"channel": "web"} if data is None else data, at=at.isoformat(), vpa_id=vpa_id,
                           actor=actor, event_id=event_id)


def line(event_id: str, at: datetime, **kw) -> str:
    return json.dumps(envelope_dict(event_id, at, **kw))


def command(event_id: str, at: datetime):
    outcome = decode(json.dumps(envelope_dict(
        event_id, at, type_="cmd.case.resolve", data={"task_id": "case:x"},
        actor={"initials": "SYS", "role": "system"})))
    assert isinstance(outcome, Decoded), outcome
    return outcome.envelope


Plan = Callable[[dict], object]


class Recorder(ProcessorDefaults):
    """Logs ("event", event_id, now) and ("timer", timer_id, now); runs the test's plan per event_id."""

    def __init__(self, name: str = "rec", topics=frozenset({"vpa.events"}), log: list | None = None):
        self.name = name
        self.topics = frozenset(topics)
        self.log = [] if log is None else log
        self.plan: dict[str, Plan] = {}

    def handle(self, state: dict, env, ctx: Context) -> Result:
        self.log.append((self.name, "event", env.event_id, ctx.now))
        out = self.plan.get(env.event_id, lambda s: None)(state)
        return out if isinstance(out, Result) else Result()

    def on_timer(self, state: dict, timer: Timer, ctx: Context) -> Result:
        self.log.append((self.name, "timer", timer.timer_id, ctx.now))
        return Result()


@pytest.fixture(params=DRIVERS)
def make_runner(request):
    """A runner of the driver under test for the given processors."""
    return lambda *processors: make(request.param, *processors)


def embedded_runner(*processors) -> EmbeddedRunner:
    """For what only one process with several services can show (commands between services)."""
    return EmbeddedRunner(list(processors), Settings(), StreamClock())


def entries(proc: Recorder) -> list[tuple]:
    """The log without the processor name: (kind, id, now)."""
    return [e[1:] for e in proc.log]


# ---- timers and the clock ----------------------------------------------------------------

def test_timer_fires_before_the_event_that_moves_the_clock_past_it_with_now_its_due_time(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "follow-up", t(30), "follow_up")
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(60)), "test")
    assert entries(rec) == [
        ("event", "e1", t(0)),
        ("timer", "follow-up", t(30)),
        ("event", "e2", t(60)),
    ]
    assert runner.clock.now() == t(60)


def test_timer_due_exactly_at_the_new_clock_fires_before_that_event(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "x", t(30), "x")
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(30)), "test")
    assert entries(rec) == [("event", "e1", t(0)), ("timer", "x", t(30)), ("event", "e2", t(30))]


def test_timer_not_yet_due_does_not_fire(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "x", t(30), "x")
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(29)), "test")
    assert [e[0] for e in entries(rec)] == ["event", "event"]


def test_timers_fire_in_time_order(make_runner):
    rec = Recorder()
    runner = make_runner(rec)

    def plan(s):
        set_timer(s, "late", t(50), "n")
        set_timer(s, "early", t(20), "n")
    rec.plan["e1"] = plan
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(60)), "test")
    assert entries(rec)[1:] == [("timer", "early", t(20)), ("timer", "late", t(50)), ("event", "e2", t(60))]


def test_same_instant_timers_fire_in_the_order_set(make_runner):
    rec = Recorder()
    runner = make_runner(rec)

    def plan(s):
        set_timer(s, "b-first", t(30), "n")
        set_timer(s, "a-second", t(30), "n")
    rec.plan["e1"] = plan
    rec.plan["e2"] = lambda s: set_timer(s, "0-third", t(30), "n")
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(10)), "test")
    runner.submit_raw(line("e3", t(40)), "test")
    assert [e[1] for e in entries(rec) if e[0] == "timer"] == ["b-first", "a-second", "0-third"]


def test_same_instant_timers_of_different_keys_fire_in_the_order_set(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "of-V-9", t(30), "n")
    rec.plan["e2"] = lambda s: set_timer(s, "of-V-1", t(30), "n")
    runner.submit_raw(line("e1", t(0), vpa_id="V-9"), "test")
    runner.submit_raw(line("e2", t(1), vpa_id="V-1"), "test")
    runner.submit_raw(line("e3", t(40)), "test")
    assert [e[1] for e in entries(rec) if e[0] == "timer"] == ["of-V-9", "of-V-1"]


def test_same_instant_order_counts_a_moved_timer_as_set_when_moved(make_runner):
    # "x" is first set for t(90); later "y" is set for t(30) and after it "x" is moved to t(30).
    # "x" was set (moved) after "y", so at t(30) "y" fires first (DESIGN 5.3).
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "x", t(90), "n")

    def plan(s):
        set_timer(s, "y", t(30), "n")
        set_timer(s, "x", t(30), "n")
    rec.plan["e2"] = plan
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(10)), "test")
    runner.submit_raw(line("e3", t(40)), "test")
    assert [e[1] for e in entries(rec) if e[0] == "timer"] == ["y", "x"]


def test_timer_set_in_the_past_by_a_late_event_fires_right_after_it(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["late"] = lambda s: set_timer(s, "past", t(15), "n")
    runner.submit_raw(line("e1", t(60)), "test")
    runner.submit_raw(line("late", t(10)), "test")  # late: the clock stays at t(60)
    assert runner.clock.now() == t(60)
    assert entries(rec) == [
        ("event", "e1", t(60)),
        ("event", "late", t(60)),  # a late event is handled at the clock's now
        ("timer", "past", t(60)),  # fires right after, and the clock never goes back
    ]
    runner.submit_raw(line("e3", t(70)), "test")
    assert entries(rec)[-1] == ("event", "e3", t(70))


def test_a_timer_set_by_a_timer_fires_in_the_same_advance(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "first", t(10), "n")
    original = rec.on_timer

    def on_timer(state, timer, ctx):
        if timer.timer_id == "first":
            set_timer(state, "second", t(20), "n")
        return original(state, timer, ctx)
    rec.on_timer = on_timer
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(30)), "test")
    assert entries(rec)[1:] == [("timer", "first", t(10)), ("timer", "second", t(20)), ("event", "e2", t(30))]


def test_timers_are_per_key(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "x", t(30), "n")
    rec.plan["e2"] = lambda s: set_timer(s, "x", t(20), "n")
    runner.submit_raw(line("e1", t(0), vpa_id="V-1"), "test")
    runner.submit_raw(line("e2", t(1), vpa_id="V-2"), "test")
    runner.submit_raw(line("e3", t(40)), "test")
    assert [(e[1], e[2]) for e in entries(rec) if e[0] == "timer"] == [("x", t(20)), ("x", t(30))]


def test_clock_tick_moves_the_clock_and_fires_timers(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "x", t(30), "n")
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("tick", t(45), type_="clock.tick", data={}, vpa_id=None), "test")
    assert runner.clock.now() == t(45)
    assert entries(rec) == [("event", "e1", t(0)), ("timer", "x", t(30))]  # the tick itself is not handled


# ---- what does not move the clock (5.4) --------------------------------------------------------

def _runner_with_pending_timer(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: set_timer(s, "x", t(30), "n")
    runner.submit_raw(line("e1", t(0)), "test")
    return rec, runner


def test_invalid_line_does_not_move_the_clock(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    runner.submit_raw(line("bad", t(60), vpa_id=None), "file.jsonl:2")  # vpa_id missing
    runner.submit_raw("{not json", "file.jsonl:3")
    assert runner.clock.now() == t(0)
    assert entries(rec) == [("event", "e1", t(0))]
    assert runner.stats["invalid"] == 2
    assert [r.origin.label for r in runner.dlq] == ["file.jsonl:2", "file.jsonl:3"]


def test_unknown_type_does_not_move_the_clock(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    runner.submit_raw(line("u1", t(60), type_="vpa.teleported", data={}), "test")
    assert runner.clock.now() == t(0)
    assert entries(rec) == [("event", "e1", t(0))]
    assert runner.stats["unknown_types"] == 1
    assert runner.dlq == []


def test_repeated_event_id_does_not_move_the_clock_and_is_counted(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    runner.submit_raw(line("e1", t(60)), "test")  # same event_id, later time
    runner.submit_raw(line("e1", t(0)), "test")
    assert runner.clock.now() == t(0)
    assert entries(rec) == [("event", "e1", t(0))]
    assert runner.stats["duplicates"] == 2
    assert runner.stats["processed"] == 1


def test_advance_to_earlier_than_the_clock_changes_nothing(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    runner.submit_raw(line("e2", t(20)), "test")
    runner.advance_to(t(5))
    assert runner.clock.now() == t(20)
    assert [e[0] for e in entries(rec)] == ["event", "event"]


def test_advance_to_later_fires_due_timers_and_moves_the_clock(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    runner.advance_to(t(45))
    assert runner.clock.now() == t(45)
    assert entries(rec)[-1] == ("timer", "x", t(30))


# ---- cancelled and moved timers ------------------------------------------------------------

def test_cancelled_timer_does_not_fire(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    rec.plan["e2"] = lambda s: cancel_timer(s, "x")
    runner.submit_raw(line("e2", t(10)), "test")
    runner.submit_raw(line("e3", t(60)), "test")
    assert [e for e in entries(rec) if e[0] == "timer"] == []


def test_timer_moved_later_fires_once_at_its_new_time(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    rec.plan["e2"] = lambda s: set_timer(s, "x", t(50), "n")
    runner.submit_raw(line("e2", t(10)), "test")
    runner.submit_raw(line("e3", t(40)), "test")
    runner.submit_raw(line("e4", t(60)), "test")
    assert entries(rec)[1:] == [
        ("event", "e2", t(10)), ("event", "e3", t(40)), ("timer", "x", t(50)), ("event", "e4", t(60)),
    ]


def test_timer_moved_earlier_fires_once_at_its_new_time(make_runner):
    rec, runner = _runner_with_pending_timer(make_runner)
    rec.plan["e2"] = lambda s: set_timer(s, "x", t(20), "n")
    runner.submit_raw(line("e2", t(10)), "test")
    runner.submit_raw(line("e3", t(60)), "test")
    assert [(e[1], e[2]) for e in entries(rec) if e[0] == "timer"] == [("x", t(20))]


# ---- commands emitted by processors --------------------------------------------------------

def test_commands_are_handled_after_the_causing_event():
    log: list = []
    emitter = Recorder("emitter", {"vpa.events", "vpa.commands"}, log)
    other = Recorder("other", {"vpa.events", "vpa.commands"}, log)
    runner = embedded_runner(emitter, other)
    emitter.plan["e1"] = lambda s: Result(commands=[command("cmd-1", t(0))])
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(5)), "test")
    assert [(name, ev_id) for name, _, ev_id, _ in log] == [
        ("emitter", "e1"), ("other", "e1"),  # every processor handles the event first
        ("emitter", "cmd-1"), ("other", "cmd-1"),  # then the command
        ("emitter", "e2"), ("other", "e2"),
    ]


def test_commands_go_only_to_processors_of_the_commands_topic():
    events_only = Recorder("events_only", {"vpa.events"})
    both = Recorder("both", {"vpa.events", "vpa.commands"})
    runner = embedded_runner(events_only, both)
    events_only.plan["e1"] = lambda s: Result(commands=[command("cmd-1", t(0))])
    runner.submit_raw(line("e1", t(0)), "test")
    assert [e[1] for e in entries(events_only)] == ["e1"]
    assert [e[1] for e in entries(both)] == ["e1", "cmd-1"]


def test_repeated_command_ids_are_duplicates(make_runner):
    rec = Recorder("rec", {"vpa.events", "vpa.commands"})
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: Result(commands=[command("cmd-1", t(0))])
    rec.plan["e2"] = lambda s: Result(commands=[command("cmd-1", t(0))])  # same id again: redelivery
    runner.submit_raw(line("e1", t(0)), "test")
    runner.submit_raw(line("e2", t(1)), "test")
    assert [e[1] for e in entries(rec)] == ["e1", "cmd-1", "e2"]
    assert runner.stats["duplicates"] == 1


def test_rejections_go_to_the_dlq_with_the_service_as_origin(make_runner):
    rec = Recorder()
    runner = make_runner(rec)
    rec.plan["e1"] = lambda s: Result(rejections=["not today"])
    runner.submit_raw(line("e1", t(0)), "test")
    assert [(r.reason, r.service, r.origin.label, r.key) for r in runner.dlq] == [
        ("rejected: not today", "rec", "test", VPA)]
    assert runner.stats["rejected"] == 1
    assert runner.stats["invalid"] == 0
