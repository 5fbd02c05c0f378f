"""A small fixed company for ``vpa demo``: a roster, a few VPAs and their absences.

Dates are relative to ``today`` so the demo always shows current cases. The full simulator
(``vpa simulate``) replaces this with realistic streams for N VPAs over D days.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def sample_stream(today: date, tz: ZoneInfo) -> list[dict]:
    def at(d: date, h: int = 9, m: int = 0) -> str:
        return datetime.combine(d, time(h, m), tzinfo=tz).isoformat()

    start = today - timedelta(days=20)
    out: list[dict] = []

    def ev(eid: str, type_: str, when: str, data: dict, vpa: str | None = None) -> None:
        out.append({"event_id": eid, "type": type_, "occurred_at": when, "vpa_id": vpa, "actor": None,
                    "schema_version": 1, "data": data})

    for ini, name, role, deputy in [("AB", "Anna Bauer", "at", "CD"), ("CD", "Carl Dietz", "at", "AB"),
                                    ("EF", "Eva Fuchs", "at", None), ("VM", "Vera Maier", "vpa_manager", None)]:
        ev(f"demo-roster-{ini}", "roster.member_upserted", at(start, 7),
           {"initials": ini, "name": name, "role": role, "deputy": deputy, "active": True})
    vpas = [("V-1001", "Lena Koch", "AB", "A", 400), ("V-1002", "Jonas Wolf", "CD", "C", 40),
            ("V-1003", "Mia Schulz", "AB", "B", 200), ("V-1004", "Paul Weber", "EF", "D", 20)]
    for vid, name, owner, cls, tenure in vpas:
        ev(f"demo-reg-{vid}", "vpa.registered", at(start, 8),
           {"name": name, "started_on": (today - timedelta(days=tenure)).isoformat(), "class": cls,
            "at_owner": owner, "part_time": vid == "V-1004"}, vid)
    # a long absence (31 days), registered well ahead
    ev("demo-abs-1", "vpa.absence_registered", at(today - timedelta(days=10), 10),
       {"absence_id": "A-1", "starts_on": (today + timedelta(days=14)).isoformat(),
        "ends_on": (today + timedelta(days=44)).isoformat(), "reason": "Elternzeit"}, "V-1001")
    # three short absences within 90 days: the third is "frequent"
    for i, offset in enumerate((-60, -25, 5), 1):
        ev(f"demo-abs-2-{i}", "vpa.absence_registered", at(today - timedelta(days=12 - i), 11),
           {"absence_id": f"B-{i}", "starts_on": (today + timedelta(days=offset)).isoformat(),
            "ends_on": (today + timedelta(days=offset + 2)).isoformat()}, "V-1002")
    # short notice: registered today, starts tomorrow
    ev("demo-abs-3", "vpa.absence_registered", at(today - timedelta(days=1), 16),
       {"absence_id": "C-1", "starts_on": today.isoformat(), "ends_on": (today + timedelta(days=2)).isoformat()},
       "V-1003")
    # registered and then cancelled
    ev("demo-abs-4", "vpa.absence_registered", at(today - timedelta(days=3), 9),
       {"absence_id": "D-1", "starts_on": (today - timedelta(days=2)).isoformat(),
        "ends_on": (today + timedelta(days=30)).isoformat()}, "V-1004")
    ev("demo-abs-4-cancel", "vpa.absence_cancelled", at(today - timedelta(days=2), 9), {"absence_id": "D-1"}, "V-1004")
    # a new VPA who stops taking orders right after onboarding
    ev("demo-sched-1", "vpa.schedule_changed", at(today - timedelta(days=2), 14),
       {"accepts_new_customers": True, "accepts_orders": False}, "V-1002")
    # a class improvement with the Rising Star flag: praise (the draft never names the class)
    ev("demo-class-1", "vpa.class_changed", at(today - timedelta(days=1), 8),
       {"class": "A", "previous": "B", "rising_star": True}, "V-1003")
    # inactive since yesterday morning: the follow-up falls due on the next working day
    ev("demo-inactive-1", "vpa.activity_status_changed", at(today - timedelta(days=1), 7),
       {"status": "inactive"}, "V-1001")
    # AB is on vacation from today: AB's open cases go to the deputy CD
    ev("demo-vacation-AB", "roster.absence_registered", at(today - timedelta(days=4), 12),
       {"absence_id": "U-AB-1", "initials": "AB", "kind": "vacation", "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=5)).isoformat()})
    # a reminder CD set for V-1002, due this afternoon
    out.append({"event_id": "demo-reminder-1", "type": "cmd.reminder.set", "occurred_at": at(today - timedelta(days=1), 15),
                "vpa_id": "V-1002", "actor": {"initials": "CD", "role": "at"}, "schema_version": 1,
                "data": {"reminder_id": "demo-1", "due_at": at(today, 15), "owner": "CD",
                         "note": "Nachfragen, ob die Aufträge wieder angenommen werden"}})
    return sorted(out, key=lambda e: e["occurred_at"])


def sample_lines(today: date, tz: ZoneInfo) -> list[str]:
    return [json.dumps(e) for e in sample_stream(today, tz)]
