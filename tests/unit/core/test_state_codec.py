"""A service's state is read through its versioned codec (issue 21): a state written before
versions existed is upgraded when read, one newer than the code is refused without being touched,
and a state is written in the current form the first time it changes."""
from __future__ import annotations

import copy
import json

import pytest

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.core.state import StateCodec, StateTooNew
from services.detector.state import CODEC as DETECTOR
from services.journey.state import CODEC as JOURNEY
from services.reminders.state import CODEC as REMINDERS
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders

CASE = "case:absence:V-1:a-1"


def test_the_upgrades_run_in_order_from_the_version_found():
    seen: list[int] = []
    codec: StateCodec = StateCodec("x", {1: lambda raw: seen.append(1), 2: lambda raw: seen.append(2)})
    assert codec.version == 3
    state = codec.read({"tasks": {}})
    assert seen == [1, 2] and state["v"] == 3
    seen.clear()
    codec.read({"v": 2, "tasks": {}})
    assert seen == [2]
    seen.clear()
    codec.read({"v": 3})
    assert seen == []


def test_an_empty_state_stays_empty():
    """A VPA a service keeps nothing of gets no state (the engine stores none)."""
    state = DETECTOR.read({})
    DETECTOR.mark(state)
    assert state == {}


def test_version_1_kept_the_history_in_each_task_and_version_2_does_not():
    raw = {"tasks": {CASE: {"task_id": CASE, "version": 3, "history": [{"change": "x"}] * 3}}}
    for codec in (DETECTOR, REMINDERS, JOURNEY):
        state = codec.read(copy.deepcopy(raw))
        assert state == {"v": 2, "tasks": {CASE: {"task_id": CASE, "version": 3}}}


def test_a_state_newer_than_the_code_is_refused_and_names_both_versions():
    with pytest.raises(StateTooNew, match="version 3, this detector reads up to 2"):
        DETECTOR.read({"v": 3, "tasks": {}})


def runner_with_an_open_case() -> EmbeddedRunner:
    runner = EmbeddedRunner(processors(), Settings(), StreamClock())
    runner.submit_raw(builders.line(**builders.as_kwargs(builders.registered(event_id="e-reg"))), "t")
    runner.submit_raw(builders.line(**builders.as_kwargs(
        builders.vpa_absence("a-1", "2026-12-01", "2026-12-30", event_id="e-abs"))), "t")
    runner.drain_tasks()
    return runner


def cancel() -> str:
    return builders.line("vpa.absence_cancelled", {"absence_id": "a-1"}, vpa_id="V-1", event_id="e-cancel",
                         at="2026-11-27T09:00:00+01:00")


def test_a_state_written_before_versions_gives_the_same_tasks_and_is_written_in_the_new_form():
    fresh, old = runner_with_an_open_case(), runner_with_an_open_case()
    stored = old.state_of("detector", "V-1")
    assert stored is not None and stored["v"] == 2
    del stored["v"]  # as the changelog holds it from before versions
    stored["tasks"][CASE]["history"] = [{"at": "2026-11-26T09:00:00+01:00", "change": "Fall eröffnet", "by": "detector"}]
    fresh.submit_raw(cancel(), "t")
    old.submit_raw(cancel(), "t")
    assert old.drain_tasks() == fresh.drain_tasks() != []
    assert old.state_of("detector", "V-1") == fresh.state_of("detector", "V-1")
    assert old.state_of("detector", "V-1")["v"] == 2


def test_a_newer_state_sends_the_input_to_the_dlq_and_stays_as_it_was():
    runner = runner_with_an_open_case()
    stored = runner.state_of("detector", "V-1")
    stored["v"] = 3
    before = copy.deepcopy(stored)
    runner.submit_raw(cancel(), "t")
    assert runner.state_of("detector", "V-1") == before
    [dead] = [d for d in runner.dlq if d.service == "detector"]
    assert dead.kind.value == "error" and "reads up to 2" in dead.detail


def test_a_state_keeps_no_key_that_reads_as_its_default():
    """Null, False and empty containers are left out, at the top and in the profile (issue 22:
    state per VPA); a value that means something, a 0 among them, stays."""
    state = DETECTOR.read({
        "v": 2, "offboarded": False, "episode": None, "timers": {}, "absences": {}, "inactivity": {},
        "rising_star": True, "complaints": {"B-1": "2026-11-02T09:00:00+01:00"},
        "profile": {"name": "Jana Hahn", "started_on": "2026-01-05", "part_time": False, "class": None,
                    "at_owner": "OS", "buddy": None, "uses_mobile_app": False},
    })
    DETECTOR.mark(state)
    assert state == {"v": 2, "rising_star": True, "complaints": {"B-1": "2026-11-02T09:00:00+01:00"},
                     "profile": {"name": "Jana Hahn", "started_on": "2026-01-05", "at_owner": "OS"}}
    kept = JOURNEY.read({"v": 2, "offboarded": True, "profile": {"part_time": True, "class": "A"}, "count": 0})
    JOURNEY.mark(kept)
    assert kept == {"v": 2, "offboarded": True, "profile": {"part_time": True, "class": "A"}, "count": 0}


def test_a_state_holding_only_defaults_is_left_empty():
    state = REMINDERS.read({"v": 2, "offboarded": False, "timers": {}, "links": {}})
    REMINDERS.mark(state)
    assert state == {}


def with_defaults_written_out(runner: EmbeddedRunner) -> None:
    """Each service's state as a service before issue 22 stored it: every default written out."""
    for service in ("detector", "reminders", "journey"):
        stored = runner.state_of(service, "V-1")
        if stored is None:
            continue
        stored.update(offboarded=False, timers=stored.get("timers", {}))
        if service == "detector":
            stored.setdefault("episode", None)
            stored.setdefault("absences", {})
        profile = stored.setdefault("profile", {})
        for name, default in (("buddy", None), ("part_time", False), ("uses_mobile_app", False), ("class", None)):
            profile.setdefault(name, default)


def test_a_state_with_its_defaults_written_out_gives_the_same_tasks_and_is_written_without_them():
    fresh, old = runner_with_an_open_case(), runner_with_an_open_case()
    with_defaults_written_out(old)
    assert old.state_of("detector", "V-1") != fresh.state_of("detector", "V-1")
    for line in (cancel(), builders.line("vpa.profile_updated", {"name": "Jana Hahn-Berg"}, vpa_id="V-1",
                                         event_id="e-name", at="2026-11-28T09:00:00+01:00")):
        fresh.submit_raw(line, "t")
        old.submit_raw(line, "t")
        assert old.drain_tasks() == fresh.drain_tasks()
    for service in ("detector", "reminders", "journey"):
        assert old.state_of(service, "V-1") == fresh.state_of(service, "V-1"), service


# Every key a service state may hold with the value it reads as when missing (the TypedDicts of
# core/state.py and each package's state.py).
DEFAULTS = {"offboarded": False, "tasks": {}, "closed": {}, "timers": {}, "episode": None, "absences": {},
            "inactivity": {}, "complaints": {}, "complaint_facts": {}, "rising_star": False, "links": {},
            "registered_event": None}
PROFILE_DEFAULTS = {"buddy": None, "part_time": False, "uses_mobile_app": False, "class": None}


def test_every_rule_reads_a_left_out_key_as_its_default_over_a_simulated_company():
    """A differential run: one runner as it is, one whose every state gets each default written
    out again before every line (as stored before issue 22). The tasks after every line are the
    same, and so are the states once both compact them."""
    from datetime import date

    from services.simulator import SimConfig, simulate

    lines = [e for e in simulate(SimConfig(vpas=150, days=90, seed=5, start=date(2026, 2, 2))) if isinstance(e, dict)]
    compact, written_out = EmbeddedRunner(processors(), Settings(), StreamClock()), \
        EmbeddedRunner(processors(), Settings(), StreamClock())
    expanded = 0
    for n, e in enumerate(lines):
        for key, slot in written_out.engine.slots.items():
            if key.startswith("__"):
                continue
            for state in slot.get("states", {}).values():
                for name, default in DEFAULTS.items():
                    if name not in state:
                        state[name] = copy.deepcopy(default)
                        expanded += 1
                profile = state.get("profile")
                if profile is not None:
                    for name, default in PROFILE_DEFAULTS.items():
                        profile.setdefault(name, default)
        line = json.dumps(e)
        compact.submit_raw(line, f"sim:{n}")
        written_out.submit_raw(line, f"sim:{n}")
        assert written_out.drain_tasks() == compact.drain_tasks(), f"line {n}: {e['type']}"
    assert expanded > 30_000 and len(lines) > 3_000, (expanded, len(lines))
    codecs = {"detector": DETECTOR, "reminders": REMINDERS, "journey": JOURNEY}
    final = [(k, slot) for k, slot in compact.engine.slots.items() if not k.startswith("__")]
    assert len(final) >= 150
    for key, slot in final:
        for service, state in slot.get("states", {}).items():
            other = copy.deepcopy(written_out.state_of(service, key))
            codecs[service].mark(other)
            assert other == state, (service, key)
