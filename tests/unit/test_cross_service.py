"""Rules that span services, through the embedded runner: a rejected command changes nothing."""
from __future__ import annotations

import json

from services.common.replay import final_tasks
from services.entrypoints import replay
from services.common.settings import Settings


def line(eid, type_, at, vpa, data, actor=None):
    return json.dumps({"event_id": eid, "type": type_, "occurred_at": at, "vpa_id": vpa, "actor": actor,
                       "schema_version": 1, "data": data})


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


def test_a_resolved_case_cancels_the_reminder_a_person_linked_to_it(tmp_path):
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join([
        line("m", "roster.member_upserted", "2026-11-02T08:00:00+01:00", None,
             {"initials": "AB", "name": "Anna Bauer", "role": "at", "deputy": None, "active": True}),
        line("abs", "vpa.absence_registered", "2026-11-02T08:30:00+01:00", "V-1",
             {"absence_id": "L", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}),
        line("set", "cmd.reminder.set", "2026-11-02T09:00:00+01:00", "V-1",
             {"reminder_id": "R1", "due_at": "2026-11-03T09:00:00+01:00", "owner": "AB",
              "case_task_id": "case:absence:V-1:L"}, AB),
        line("res", "cmd.case.resolve", "2026-11-02T09:10:00+01:00", "V-1", {"task_id": "case:absence:V-1:L"}, AB),
    ]) + "\n")
    tasks = {t["task_id"]: t for t in final_tasks(replay([str(stream)], Settings()).drain_tasks())}
    assert tasks["case:absence:V-1:L"]["status"] == "done"
    assert tasks["reminder:R1"]["status"] == "cancelled"

