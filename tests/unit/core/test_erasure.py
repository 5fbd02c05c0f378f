"""Erasure of a VPA's data (issue 13): on request (cmd.vpa.erase) and VPA_ERASE_AFTER_DAYS after an
offboarding; every service drops its state of the VPA and each of its tasks leaves the store. The
same in both drivers."""
from __future__ import annotations

import json

import pytest

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.runners.embedded.replay import final_tasks
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders
from tests.unit.runner_drivers import WorkerRunner

AT = "2026-11-02T09:00:00+01:00"


def env(eid: str, type_: str, vpa: str | None, data: dict, at: str = AT, actor: dict | None = None) -> str:
    return builders.line(type_, data, at=at, vpa_id=vpa, actor=actor, event_id=eid)


def company(runner) -> None:  # noqa: ANN001
    runner.submit_raw(env("m", "roster.member_upserted", None,
                          {"initials": "EE", "name": "Eva Ernst", "role": "at", "deputy": None, "active": True}), "t")
    for vpa in ("V-GONE", "V-STAY"):
        runner.submit_raw(env(f"r-{vpa}", "vpa.registered", vpa,
                              {"name": "Nina Neu", "started_on": "2026-10-20", "at_owner": "EE"}), "t")
        runner.submit_raw(env(f"a-{vpa}", "vpa.absence_registered", vpa,
                              {"absence_id": "L", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}), "t")
        runner.submit_raw(env(f"s-{vpa}", "cmd.reminder.set", vpa,
                              {"reminder_id": f"rem-{vpa}", "due_at": "2026-11-20T10:00:00+01:00", "owner": "EE"},
                              at="2026-11-02T09:05:00+01:00", actor={"initials": "EE", "role": "at"}), "t")


def erase_command(vpa: str, at: str = "2026-11-03T09:00:00+01:00") -> str:
    return env(f"erase-{vpa}", "cmd.vpa.erase", vpa, {"reason": "Löschantrag"}, at=at,
               actor={"initials": "SYS", "role": "system"})


def embedded(settings: Settings = Settings()) -> EmbeddedRunner:
    return EmbeddedRunner(processors(), settings, StreamClock())


def test_an_erase_command_removes_every_task_and_all_state_of_the_vpa():
    runner = embedded()
    company(runner)
    runner.submit_raw(erase_command("V-GONE"), "t")
    tasks = final_tasks(runner.drain_tasks())
    assert {t["vpa_id"] for t in tasks} == {"V-STAY"}
    assert sorted(runner.drain_erased()) == ["case:absence:V-GONE:L", "journey:V-GONE:NEW_0_3", "reminder:rem-V-GONE"]
    assert "V-GONE" not in runner.engine.slots  # state, timers and recent event ids alike
    assert not [ref for ref in runner.engine.timers._live if ref[0] == "V-GONE"]


def test_an_offboarded_vpa_is_erased_after_the_retention_and_not_a_day_earlier():
    runner = embedded(Settings(erase_after_days=180))
    company(runner)
    runner.submit_raw(env("off", "vpa.offboarded", "V-GONE", {}, at="2026-11-05T09:00:00+01:00"), "t")
    runner.submit_raw(env("t1", "clock.tick", None, {}, at="2027-05-04T09:00:00+02:00"), "t")  # 180 days - 1
    assert runner.drain_erased() == [] and "V-GONE" in runner.engine.slots
    runner.submit_raw(env("t2", "clock.tick", None, {}, at="2027-05-04T10:00:00+02:00"), "t")  # 180 days
    assert len(runner.drain_erased()) == 3 and "V-GONE" not in runner.engine.slots
    assert {t["vpa_id"] for t in final_tasks(runner.drain_tasks())} == {"V-STAY"}


def test_a_new_registration_after_offboarding_keeps_the_data():
    runner = embedded(Settings(erase_after_days=30))
    company(runner)
    runner.submit_raw(env("off", "vpa.offboarded", "V-GONE", {}, at="2026-11-05T09:00:00+01:00"), "t")
    runner.submit_raw(env("back", "vpa.registered", "V-GONE", {"name": "Nina Neu", "started_on": "2026-10-20",
                                                               "at_owner": "EE"}, at="2026-11-10T09:00:00+01:00"), "t")
    runner.submit_raw(env("later", "clock.tick", None, {}, at="2027-01-10T09:00:00+01:00"), "t")
    assert runner.drain_erased() == []
    assert "V-GONE" in {t["vpa_id"] for t in final_tasks(runner.drain_tasks())}


@pytest.mark.parametrize("service", ["detector", "reminders", "journey"])
def test_a_kafka_worker_sends_a_tombstone_for_each_task_and_forgets_the_slot(service):
    proc = next(p for p in processors() if p.name == service)
    runner = WorkerRunner(proc)
    company(runner)
    before = {json.loads(v)["task_id"] for t, k, v, _, _ in runner.d.producer.records
              if t == "dashlet.tasks" and v is not None and json.loads(v)["vpa_id"] == "V-GONE"}
    runner.submit_raw(erase_command("V-GONE"), "t")
    tombstones = {k.decode() for t, k, v, _, _ in runner.d.producer.records if t == "dashlet.tasks" and v is None}
    assert tombstones == before and before
    assert "V-GONE" not in runner.d.table  # deleted from the table: a tombstone in its changelog
    assert "V-STAY" in runner.d.table
