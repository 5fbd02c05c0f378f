"""Rules that span services, through the embedded runner: a rejected command changes nothing."""
from __future__ import annotations

from services.app.entrypoints import replay
from services.config.settings import Settings
from services.runners.embedded.replay import final_tasks
from tests import builders


def line(eid, type_, at, vpa, data, actor=None):
    return builders.line(type_, data, at=at, vpa_id=vpa, actor=actor, event_id=eid)


AB = {"initials": "AB", "role": "at"}


def test_a_rejected_case_resolve_does_not_cancel_the_linked_reminder(tmp_path, capsys):
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join([
        line("m", "roster.member_upserted", "2026-11-02T08:00:00+01:00", None,
             {"initials": "AB", "name": "Anna Bauer", "role": "at", "deputy": None, "active": True}),
        line("set", "cmd.reminder.set", "2026-11-02T09:00:00+01:00", "V-1",
             {"reminder_id": "R1", "due_at": "2026-11-03T09:00:00+01:00", "owner": "AB",
              "case_task_id": "case:absence:V-1:NOPE"}, AB),
        line("res", "cmd.case.resolve", "2026-11-02T09:10:00+01:00", "V-1",
             {"task_id": "case:absence:V-1:NOPE"}, AB),
    ]) + "\n")
    runner = replay([str(stream)], Settings())
    tasks = {t["task_id"]: t for t in final_tasks(runner.drain_tasks())}
    assert tasks["reminder:R1"]["status"] == "waiting" and tasks["reminder:R1"]["version"] == 1
    assert [r.reason for r in runner.dlq] == ["rejected: Fall case:absence:V-1:NOPE von V-1 ist unbekannt"]


CD = {"initials": "CD", "role": "at"}
ROSTER = [line("m", "roster.member_upserted", "2026-11-02T08:00:00+01:00", None,
               {"initials": "AB", "name": "Anna Bauer", "role": "at", "deputy": None, "active": True}),
          line("m2", "roster.member_upserted", "2026-11-02T08:00:00+01:00", None,
               {"initials": "CD", "name": "Carl Dorn", "role": "at", "deputy": None, "active": True})]


def run(tmp_path, lines: list[str]) -> dict[str, dict]:
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join([*ROSTER, *lines]) + "\n")
    runner = replay([str(stream)], Settings())
    return {t["task_id"]: t for t in final_tasks(runner.drain_tasks())}


def absence_case_with_reminder(resolve_data: dict, resolver: dict = AB) -> list[str]:
    return [
        line("abs", "vpa.absence_registered", "2026-11-02T08:30:00+01:00", "V-1",
             {"absence_id": "L", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}),
        line("set", "cmd.reminder.set", "2026-11-02T09:00:00+01:00", "V-1",
             {"reminder_id": "R1", "due_at": "2026-11-03T09:00:00+01:00", "owner": "CD",
              "case_task_id": "case:absence:V-1:L"}, CD),
        line("free", "cmd.reminder.set", "2026-11-02T09:01:00+01:00", "V-1",
             {"reminder_id": "R2", "due_at": "2026-11-03T09:00:00+01:00", "owner": "AB"}, AB),
        line("res", "cmd.case.resolve", "2026-11-02T09:10:00+01:00", "V-1",
             {"task_id": "case:absence:V-1:L", "note": "geklärt", **resolve_data}, resolver),
    ]


def test_a_persons_resolve_without_the_file_maintained_leaves_the_linked_reminder_as_it_was(tmp_path):
    """DESIGN 5.13a: a person's resolve never cancels a reminder silently (here a colleague's)."""
    for data in ({}, {"file_updated": False}):
        tasks = run(tmp_path, absence_case_with_reminder(data))
        assert tasks["case:absence:V-1:L"]["status"] == "done"
        reminder = tasks["reminder:R1"]
        assert (reminder["status"], reminder["version"], reminder["assignee"]) == ("waiting", 1, "CD")


def test_a_persons_resolve_with_the_file_maintained_completes_the_linked_reminders_by_that_person(tmp_path):
    tasks = run(tmp_path, absence_case_with_reminder({"file_updated": True}))
    assert tasks["case:absence:V-1:L"]["status"] == "done"
    reminder = tasks["reminder:R1"]
    assert reminder["status"] == "done" and reminder["history"][-1]["by"] == "AB"
    assert "VPA-Akte gepflegt" in reminder["history"][-1]["change"]
    assert tasks["reminder:R2"]["status"] == "waiting", "a reminder not linked to the case is not touched"


def test_a_resolve_the_detector_rejects_changes_no_reminder_even_with_the_file_maintained(tmp_path):
    lines = absence_case_with_reminder({"file_updated": True})
    lines.append(line("again", "cmd.case.resolve", "2026-11-02T09:20:00+01:00", "V-1",
                      {"task_id": "case:absence:V-1:L", "file_updated": True}, AB))  # closed already: rejected
    lines.append(line("set3", "cmd.reminder.set", "2026-11-02T09:15:00+01:00", "V-1",
                      {"reminder_id": "R3", "due_at": "2026-11-03T09:00:00+01:00", "owner": "CD",
                       "case_task_id": "case:absence:V-1:L"}, CD))
    tasks = run(tmp_path, lines)
    assert tasks["reminder:R3"]["status"] == "waiting"


INACTIVE = [
    line("reg", "vpa.registered", "2026-11-02T08:10:00+01:00", "V-1",
         {"name": "Nora Kühn", "started_on": "2020-01-06", "at_owner": "AB"}),
    line("ina", "vpa.activity_status_changed", "2026-11-03T17:00:00+01:00", "V-1", {"status": "inactive"}),
    line("pset", "cmd.reminder.set", "2026-11-03T17:30:00+01:00", "V-1",
         {"reminder_id": "R9", "due_at": "2026-11-06T09:00:00+01:00", "owner": "CD",
          "case_task_id": "case:inactive:V-1:ina"}, CD),
]


def test_a_case_that_closes_by_itself_cancels_only_its_automatic_reminder(tmp_path):
    """The follow-up finds the VPA active again: the automatic reminder goes with the case, the
    reminder a person set for the case stays."""
    tasks = run(tmp_path, [*INACTIVE,
                           line("back", "vpa.activity_seen", "2026-11-04T08:00:00+01:00", "V-1", {"channel": "web"}),
                           line("tick", "clock.tick", "2026-11-04T10:00:00+01:00", None, {})])
    assert tasks["case:inactive:V-1:ina"]["reasons"] == ["active_again"]
    assert tasks["reminder:follow-up:case:inactive:V-1:ina"]["status"] == "cancelled"
    assert tasks["reminder:R9"]["status"] == "waiting"


def test_resolving_an_inactivity_case_by_hand_and_its_automatic_reminder(tmp_path):
    """By a person: without the file maintained the automatic reminder stays; with it, it is done."""
    resolve = line("res", "cmd.case.resolve", "2026-11-03T18:00:00+01:00", "V-1",
                   {"task_id": "case:inactive:V-1:ina", "note": "angerufen"}, AB)
    tasks = run(tmp_path, [*INACTIVE, resolve])
    assert tasks["case:inactive:V-1:ina"]["status"] == "done"
    assert tasks["reminder:follow-up:case:inactive:V-1:ina"]["status"] == "waiting"
    filed = resolve.replace('"note": "angerufen"', '"note": "angerufen", "file_updated": true')
    tasks = run(tmp_path, [*INACTIVE, filed])
    assert tasks["reminder:follow-up:case:inactive:V-1:ina"]["status"] == "done"
    assert tasks["reminder:R9"]["status"] == "done"
