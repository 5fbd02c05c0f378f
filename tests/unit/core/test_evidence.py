"""Every task explains itself (issue 10 item 3): the evidence the rules fill, at the rules' boundaries.

Through the embedded runner, so the facts are the ones the services really record. Evidence never
makes a version by itself, and it stays out of message drafts.
"""
from __future__ import annotations

import json

import pytest

from schemas.task import Task
from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.detector.drafts import draft_is_safe
from services.runners.embedded.replay import final_tasks
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders

AB = {"initials": "AB", "role": "at"}
SYS = {"initials": "SYS", "role": "system"}


def line(eid, type_, at, vpa=None, data=None, actor=None) -> str:
    return builders.line(type_, data, at=at, vpa_id=vpa, actor=actor, event_id=eid)


def member(eid, initials, role="at", deputy=None, active=True, at="2026-11-01T08:00:00+01:00") -> str:
    return line(eid, "roster.member_upserted", at, None,
                {"initials": initials, "name": initials, "role": role, "deputy": deputy, "active": active})


def registered(eid="r1", vpa="V-1", started_on="2026-01-15", at="2026-11-01T08:00:00+01:00", **extra) -> str:
    return line(eid, "vpa.registered", at, vpa,
                {"name": "Anna Schmidt", "started_on": started_on, "at_owner": "AB", **extra})


def absence(eid, at, absence_id, starts_on, ends_on, vpa="V-1", reason=None) -> str:
    data = {"absence_id": absence_id, "starts_on": starts_on, "ends_on": ends_on}
    if reason:
        data["reason"] = reason
    return line(eid, "vpa.absence_registered", at, vpa, data)


def run(*lines: str, until: str | None = None) -> tuple[dict, EmbeddedRunner]:
    runner = EmbeddedRunner(processors(), Settings(), StreamClock())
    for n, text in enumerate(lines, 1):
        runner.submit_raw(text, f"test:{n}")
    if until:
        from services.core.timeutil import parse
        runner.advance_to(parse(until))
    return {t["task_id"]: t for t in final_tasks(runner.drain_tasks())}, runner


def facts(task: dict) -> dict[str, dict]:
    return {e["code"]: e for e in task["evidence"]}


def texts(task: dict) -> str:
    return " ".join(e["text"] for e in task["evidence"])


# ---- absences: dates, length against the threshold, count in 90 days, notice ---------------------

@pytest.mark.parametrize("ends_on, long_, days", [("2026-12-21", False, 21), ("2026-12-22", True, 22)])
def test_absence_length_against_the_21_day_threshold(ends_on, long_, days):
    tasks, _ = run(registered(), absence("a1", "2026-11-20T09:00:00+01:00", "L", "2026-12-01", ends_on),
                   absence("a0", "2026-11-20T08:00:00+01:00", "S", "2026-11-21", "2026-11-21"))
    if long_:
        f = facts(tasks["case:absence:V-1:L"])
        assert f["long"]["text"] == f"{days} Tage: länger als die Schwelle von 21 Tagen (lange Abwesenheit)."
        assert f["long"]["event_id"] == "a1"
        assert f["absence_dates"]["text"].startswith("Abwesenheit Di 01.12.2026 bis ")
    else:
        assert "case:absence:V-1:L" not in tasks  # 21 days is not long, and no other reason
        assert "absence_length" in facts(tasks["case:absence:V-1:S"])  # the short one says its length


def test_absence_count_in_the_window_and_notice_in_days():
    tasks, _ = run(
        registered(),
        absence("a1", "2026-09-01T09:00:00+02:00", "X1", "2026-09-10", "2026-09-11"),
        absence("a2", "2026-10-01T09:00:00+02:00", "X2", "2026-10-10", "2026-10-11"),
        absence("a3", "2026-11-20T09:00:00+01:00", "X3", "2026-12-08", "2026-12-09", reason="Arzttermin"),
    )
    f = facts(tasks["case:absence:V-1:X3"])
    assert tasks["case:absence:V-1:X3"]["reasons"] == ["frequent"]
    assert f["frequent"]["text"] == ("Das ist die 3. nicht stornierte Abwesenheit mit Beginn in den 90 Tagen "
                                     "bis Di 08.12.2026 (häufig ab der 3.).")
    assert f["absence_notice"]["text"] == "18 Tage Vorlauf: nicht kurzfristig (kurzfristig bei höchstens 1 Tag)."
    assert f["absence_length"]["text"] == "2 Tage: nicht länger als die Schwelle von 21 Tagen."
    assert "Grund: Arzttermin" in f["absence_dates"]["text"]
    assert "eingetragen am Fr 20.11.2026" in f["absence_dates"]["text"]


@pytest.mark.parametrize("starts_on, expected", [
    ("2026-11-21", "1 Tag Vorlauf: kurzfristig (höchstens 1 Tag Vorlauf)."),
    ("2026-11-20", "0 Tage Vorlauf: kurzfristig (höchstens 1 Tag Vorlauf)."),
    ("2026-11-18", "Begann 2 Tage vor der Eintragung: kurzfristig (höchstens 1 Tag Vorlauf)."),
])
def test_short_notice_gives_the_notice_in_days(starts_on, expected):
    tasks, _ = run(registered(), absence("a1", "2026-11-20T09:00:00+01:00", "S", starts_on, "2026-11-23"))
    assert facts(tasks["case:absence:V-1:S"])["short_notice"]["text"] == expected


# ---- inactivity: follow-up time and why, activity seen, complaint ------------------------------

def test_inactivity_on_friday_follows_up_monday_afternoon_and_says_why():
    tasks, _ = run(registered(), line("i1", "vpa.activity_status_changed", "2026-11-27T18:00:00+01:00", "V-1",
                                      {"status": "inactive"}))
    f = facts(tasks["case:inactive:V-1:i1"])
    assert f["inactive"] == {"code": "inactive", "text": "Als inaktiv gemeldet am Fr 27.11.2026, 18:00 Uhr.",
                             "event_id": "i1"}
    assert f["follow_up"]["text"].startswith("Follow-up am Mo 30.11.2026, 12:00 Uhr: nächster Arbeitstag nach "
                                             "Fr 27.11.2026 (Wochenende oder Feiertag dazwischen); montags erst um "
                                             "12:00, weil viele Assistenten am Wochenende inaktiv sind")


def test_inactivity_midweek_follows_up_next_morning():
    tasks, _ = run(registered(), line("i1", "vpa.activity_status_changed", "2026-11-25T18:00:00+01:00", "V-1",
                                      {"status": "inactive"}))
    assert facts(tasks["case:inactive:V-1:i1"])["follow_up"]["text"] == (
        "Follow-up am Do 26.11.2026, 09:00 Uhr: nächster Arbeitstag nach Mi 25.11.2026, um 09:00.")


def test_decision_names_the_activity_seen_with_its_event():
    tasks, _ = run(registered(),
                   line("i1", "vpa.activity_status_changed", "2026-11-25T18:00:00+01:00", "V-1", {"status": "inactive"}),
                   line("w1", "vpa.activity_seen", "2026-11-25T20:00:00+01:00", "V-1", {"channel": "mobile"}),
                   until="2026-11-26T09:00:00+01:00")
    task = tasks["case:inactive:V-1:i1"]
    assert task["status"] == "done" and task["reasons"] == ["active_on_mobile"]
    assert facts(task)["active_on_mobile"]["event_id"] == "w1"
    assert set(facts(task)) == {"inactive", "follow_up", "active_on_mobile"}


def test_decision_without_activity_names_the_complaint_or_its_absence():
    base = [registered(uses_mobile_app=True),
            line("i1", "vpa.activity_status_changed", "2026-11-25T18:00:00+01:00", "V-1", {"status": "inactive"})]
    tasks, _ = run(*base, until="2026-11-26T09:00:00+01:00")
    f = facts(tasks["case:inactive:V-1:i1"])
    assert {"no_activity", "no_complaint", "verify_mobile_activity"} <= set(f)
    assert f["no_complaint"]["text"] == "Keine Kundenmeldung in den 14 Tagen bis zum Follow-up."
    # A complaint before the episode but inside the window counts, with its event and summary.
    tasks, _ = run(base[0], line("k1", "vpa.customer_complaint", "2026-11-20T10:00:00+01:00", "V-1",
                                 {"complaint_id": "K1", "summary": "keine Antwort"}), base[1],
                   until="2026-11-26T09:00:00+01:00")
    f = facts(tasks["case:inactive:V-1:i1"])
    assert f["customer_complaint"] == {"code": "customer_complaint", "event_id": "k1",
                                       "text": "Kundenmeldung am Fr 20.11.2026, 10:00 Uhr: „keine Antwort“."}


def test_part_time_without_complaint_says_why_no_contact():
    tasks, _ = run(registered(part_time=True),
                   line("i1", "vpa.activity_status_changed", "2026-11-25T18:00:00+01:00", "V-1", {"status": "inactive"}),
                   until="2026-11-26T09:00:00+01:00")
    task = tasks["case:inactive:V-1:i1"]
    assert task["reasons"] == ["part_time_no_contact"] and "part_time_no_contact" in facts(task)


# ---- handover: who is away, and why this assignee ------------------------------------------------

ROSTER = [member("m1", "AB", deputy="CD"), member("m2", "CD"), member("m3", "EF"), member("m4", "GH")]


def away(eid, initials, kind="vacation", ends_on="2026-12-05", at="2026-11-19T10:00:00+01:00") -> str:
    return line(eid, "roster.absence_registered", at, None,
                {"absence_id": eid, "initials": initials, "kind": kind, "starts_on": "2026-11-19", "ends_on": ends_on})


def test_handover_to_the_deputy_says_who_is_away_and_why():
    tasks, _ = run(*ROSTER, registered(), away("u1", "AB"),
                   absence("a1", "2026-11-20T09:00:00+01:00", "S", "2026-11-21", "2026-11-21"))
    task = tasks["case:absence:V-1:S"]
    assert task["assignee"] == "CD"
    assert facts(task)["handover"]["text"] == ("AB ist abwesend (Urlaub seit Do 19.11.2026, bis Sa 05.12.2026): "
                                               "übernommen von der Vertretung CD.")


def test_handover_by_rendezvous_when_the_deputy_is_away_too():
    tasks, _ = run(*ROSTER, registered(), away("u1", "AB"), away("u2", "CD", kind="sick", ends_on=None),
                   absence("a1", "2026-11-20T09:00:00+01:00", "S", "2026-11-21", "2026-11-21"))
    task = tasks["case:absence:V-1:S"]
    text = facts(task)["handover"]["text"]
    assert task["assignee"] in ("EF", "GH")
    assert "die Vertretung CD ist selbst nicht verfügbar (krank seit Do 19.11.2026, ohne Enddatum)" in text
    assert f"{task['assignee']} übernimmt (solche Aufgaben werden gleichmäßig auf die anwesenden AT-Mitglieder" in text


def test_nobody_available_and_back_again():
    roster = [member("m1", "AB", deputy="CD"), member("m2", "CD")]
    tasks, _ = run(*roster, registered(), away("u1", "AB"), away("u2", "CD"),
                   absence("a1", "2026-11-20T09:00:00+01:00", "S", "2026-11-21", "2026-11-21"))
    task = tasks["case:absence:V-1:S"]
    assert "handover_unavailable" in task["reasons"]
    assert "niemand ist verfügbar: die Aufgabe bleibt bei AB" in facts(task)["handover_unavailable"]["text"]
    tasks, _ = run(*roster, registered(), away("u1", "AB"), away("u2", "CD"),
                   absence("a1", "2026-11-20T09:00:00+01:00", "S", "2026-11-21", "2026-11-21"),
                   line("b1", "roster.absence_ended", "2026-11-20T10:00:00+01:00", None,
                        {"absence_id": "u1", "initials": "AB"}))
    task = tasks["case:absence:V-1:S"]
    assert task["assignee"] == "AB" and set(facts(task)) == {"absence_dates", "absence_length", "absence_count",
                                                             "short_notice"}


# ---- class and schedule changes --------------------------------------------------------------------

def test_class_change_names_both_classes_and_the_rising_star():
    tasks, _ = run(registered(**{"class": "C"}),
                   line("k1", "vpa.class_changed", "2026-11-20T10:00:00+01:00", "V-1",
                        {"class": "B", "previous": None, "rising_star": True}))
    [task] = [t for t in tasks.values() if t["kind"] == "class_change"]
    f = facts(task)
    assert f["class_change"]["text"] == "Klasse C → B (vorher: die zuletzt bekannte Klasse)."
    assert f["positive"]["text"] == "Verbessert von C auf B." and "rising_star" in f
    assert task["message_draft"] and draft_is_safe(task["message_draft"])  # evidence never leaks into drafts


def test_schedule_change_of_a_new_vpa():
    tasks, _ = run(registered(started_on="2026-10-01", **{"class": "A"}),
                   line("s1", "vpa.schedule_changed", "2026-11-20T10:00:00+01:00", "V-1",
                        {"accepts_new_customers": False, "accepts_orders": False}))
    [task] = [t for t in tasks.values() if t["kind"] == "schedule_change"]
    f = facts(task)
    assert f["new_vpa_no_orders"]["text"] == ("Dabei seit Do 01.10.2026 (seit 1 Monat): neuer VPA (die ersten 3 "
                                              "Monate), nimmt keine Neukunden und Aufträge mehr an.")
    assert f["priority_check"]["text"].startswith("Klasse A:")


# ---- journey: tenure and stage; reminders: who set it, due ---------------------------------------

def test_journey_task_gives_tenure_stage_and_the_manager_pick():
    tasks, _ = run(member("m1", "VM", role="vpa_manager"), registered(started_on="2025-11-10"),
                   until="2026-11-10T06:00:00+01:00")
    task = tasks["journey:V-1:NEW_GT_12"]
    f = facts(task)
    assert f["tenure"] == {"code": "tenure", "event_id": "r1", "text": "Dabei seit Mo 10.11.2025: die Stufe "
                           "NEU > 12 Monate beginnt nach 12 Monaten, am Di 10.11.2026."}
    assert f["assignee"]["text"].startswith("VPA Manager VM ist zuständig")


def test_journey_class_stage_gives_the_class_reason():
    tasks, _ = run(registered(started_on="2026-05-01", **{"class": "D"}), until="2026-11-01T06:00:00+01:00")
    assert facts(tasks["journey:V-1:NEW_6_9"])["measures_needed"]["text"].startswith("Klasse C oder D")


def test_reminder_says_who_set_it_for_whom_and_when_it_is_due():
    tasks, _ = run(member("m1", "AB"), registered(),
                   line("c1", "cmd.reminder.set", "2026-11-20T10:00:00+01:00", "V-1",
                        {"reminder_id": "R1", "due_at": "2026-11-23T09:00:00+01:00", "owner": "AB",
                         "case_task_id": "case:absence:V-1:X"}, AB),
                   line("c2", "cmd.reminder.reschedule", "2026-11-20T11:00:00+01:00", "V-1",
                        {"reminder_id": "R1", "due_at": "2026-11-24T12:00:00+01:00"}, AB))
    f = facts(tasks["reminder:R1"])
    assert f["set"] == {"code": "set", "event_id": "c1", "text": "Gesetzt von AB am Fr 20.11.2026, 10:00 Uhr für AB."}
    assert f["case"]["text"] == "Gehört zu einem Fall dieses VPA (Abwesenheit)."
    assert f["due"] == {"code": "due", "event_id": "c2",
                        "text": "Fällig am Di 24.11.2026, 12:00 Uhr (verschoben von AB am Fr 20.11.2026, 11:00 Uhr)."}


def test_automatic_follow_up_reminder_says_it_was_set_by_the_system():
    tasks, _ = run(member("m1", "AB"), registered(),
                   line("i1", "vpa.activity_status_changed", "2026-11-25T18:00:00+01:00", "V-1", {"status": "inactive"}))
    f = facts(tasks["reminder:follow-up:case:inactive:V-1:i1"])
    assert f["set"]["text"].startswith("Automatisch gesetzt am Mi 25.11.2026, 18:00 Uhr für AB (Follow-up")


# ---- evidence follows the other fields -------------------------------------------------------------

def test_evidence_alone_makes_no_new_version():
    # The same absence registered again by a new event: nothing but the event id differs.
    tasks, _ = run(registered(), absence("a1", "2026-11-20T09:00:00+01:00", "S", "2026-11-21", "2026-11-21"),
                   absence("a2", "2026-11-20T09:05:00+01:00", "S", "2026-11-21", "2026-11-21"))
    task = tasks["case:absence:V-1:S"]
    assert task["version"] == 1 and {e["event_id"] for e in task["evidence"]} == {"a1"}


def test_every_task_with_evidence_is_a_valid_task():
    tasks, _ = run(*ROSTER, registered(), away("u1", "AB"),
                   absence("a1", "2026-11-20T09:00:00+01:00", "S", "2026-11-21", "2026-12-31"),
                   line("i1", "vpa.activity_status_changed", "2026-11-25T18:00:00+01:00", "V-1", {"status": "inactive"}),
                   until="2026-11-27T09:00:00+01:00")
    assert tasks
    for task in tasks.values():
        Task.model_validate_json(json.dumps(task), strict=True)
        assert task["evidence"], task["task_id"]
