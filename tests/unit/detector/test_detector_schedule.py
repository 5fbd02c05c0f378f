"""Schedule-change cases (DESIGN 2.1 ``schedule_change``; fine print 5.2, 5.6, 5.15, 5.16, 5.17)."""
from datetime import date

import pytest

from services.config.settings import Settings
from services.detector.schedule_rules import is_new_vpa, merge, schedule_reasons
from tests.unit.detector_helpers import VPA, Harness, envelope, registered

S = Settings()


# ---- pure rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("started_on, on, new", [
    (date(2026, 9, 1), date(2026, 11, 30), True),
    (date(2026, 9, 1), date(2026, 12, 1), False),    # exactly 3 months: no longer new
    (date(2026, 11, 30), date(2027, 2, 27), True),   # 30 Nov + 3 months = 28 Feb (clamped)
    (date(2026, 11, 30), date(2027, 2, 28), False),
    (date(2027, 11, 30), date(2028, 2, 28), True),   # leap year: 29 Feb
    (date(2027, 11, 30), date(2028, 2, 29), False),
    (date(2026, 12, 1), date(2026, 11, 30), True),   # starts in the future: still new
    (None, date(2026, 11, 30), False),
])
def test_new_vpa_by_calendar_months(started_on, on, new):
    assert is_new_vpa(started_on, on, S) is new


@pytest.mark.parametrize("customers, orders, started, cls, expected", [
    (True, False, date(2026, 10, 1), None, ["new_vpa_no_orders"]),
    (False, True, date(2026, 10, 1), "C", ["new_vpa_no_orders"]),
    (False, False, date(2026, 10, 1), "A", ["new_vpa_no_orders", "priority_check"]),
    (True, True, date(2026, 10, 1), None, ["review"]),        # new VPA accepting everything
    (False, False, date(2025, 1, 1), None, ["review"]),       # not new any more
    (True, False, date(2025, 1, 1), "B", ["priority_check"]),
    (True, True, date(2025, 1, 1), "A", ["priority_check"]),
    (True, True, date(2025, 1, 1), "D", ["review"]),
    (False, False, None, None, ["review"]),                   # profile unknown
])
def test_schedule_reasons(customers, orders, started, cls, expected):
    assert schedule_reasons(customers, orders, started, cls, date(2026, 11, 26), S) == expected


def test_merge_keeps_review_only_alone():
    assert merge(["review"], ["review"]) == ["review"]
    assert merge(["review"], ["priority_check"]) == ["priority_check"]
    assert merge(["priority_check"], ["new_vpa_no_orders"]) == ["new_vpa_no_orders", "priority_check"]


# ---- through the processor ---------------------------------------------------------------------

def changed(customers: bool, orders: bool, when: str = "2026-11-26T10:00:00+01:00", **kw):
    return envelope("vpa.schedule_changed", {"accepts_new_customers": customers, "accepts_orders": orders},
                    at=when, **kw)


def test_new_vpa_refusing_orders_opens_a_high_priority_case():
    h = Harness()
    h.send(registered(started_on="2026-10-01", vpa_class="B"))
    [task] = h.send(changed(True, False, event_id="sch-1")).tasks
    assert task["task_id"] == f"case:schedule_change:{VPA}:sch-1"
    assert (task["tab"], task["kind"], task["status"], task["due_at"]) == ("cases", "schedule_change", "open", None)
    assert task["reasons"] == ["new_vpa_no_orders", "priority_check"]
    assert task["priority"] == "high"
    assert (task["owner"], task["assignee"]) == ("AB", "AB")
    assert task["message_draft"] is None
    assert "Aufträge: nein" in task["title"]
    assert "Assistenten zugehen" in task["action"] and "VPA Manager" in task["action"]


def test_tenure_uses_the_events_local_date_not_now():
    # started 1 Sep; on 30 Nov (local) still new; the event arrives on 1 Dec (late): still new.
    h = Harness()
    h.send(registered(started_on="2026-09-01"))
    h.until("2026-12-01T10:00:00+01:00")
    [task] = h.send(changed(False, True, when="2026-11-30T23:30:00+01:00")).tasks
    assert task["reasons"] == ["new_vpa_no_orders"]
    # 23:30 UTC on 30 Nov is 1 Dec in Berlin: no longer new
    h2 = Harness()
    h2.send(registered(started_on="2026-09-01"))
    [task] = h2.send(changed(False, True, when="2026-11-30T23:30:00Z")).tasks
    assert task["reasons"] == ["review"]
    assert task["priority"] == "low"


def test_priority_check_is_normal_and_review_low():
    h = Harness()
    h.send(registered(vpa_class="A"))
    assert h.send(changed(True, True)).tasks[0]["priority"] == "normal"
    h2 = Harness()
    h2.send(registered(vpa_class="C"))
    [task] = h2.send(changed(True, False)).tasks
    assert (task["reasons"], task["priority"]) == (["review"], "low")


def test_class_known_from_a_class_change_counts():
    h = Harness()
    h.send(registered(vpa_class="C"))
    h.send(envelope("vpa.class_changed", {"class": "B", "previous": "C"}, at="2026-11-20T10:00:00+01:00"))
    [task] = h.send(changed(True, True)).tasks
    assert task["reasons"] == ["priority_check"]


def test_a_later_change_updates_the_open_case_and_never_lowers_priority():
    h = Harness()
    h.send(registered(started_on="2026-10-01"))
    first = h.send(changed(False, False, event_id="sch-1")).tasks[0]
    assert first["priority"] == "high"
    [second] = h.send(changed(True, True, when="2026-11-27T10:00:00+01:00", event_id="sch-2")).tasks
    assert second["task_id"] == first["task_id"] == f"case:schedule_change:{VPA}:sch-1"
    assert second["reasons"] == ["new_vpa_no_orders"]  # review does not join another reason
    assert second["priority"] == "high"
    assert second["version"] == 2 and len(second["history"]) == 1  # its own change's entry
    assert len(h.cases("schedule_change")) == 1 and len(h.task(second["task_id"])["history"]) == 2


def test_review_case_is_raised_by_a_later_reason():
    h = Harness()
    h.send(registered(started_on="2025-01-01", vpa_class="C"))
    h.send(changed(True, False, event_id="sch-1"))
    h.send(envelope("vpa.class_changed", {"class": "B", "previous": "C"}, at="2026-11-26T11:00:00+01:00"))
    [task] = h.send(changed(True, True, when="2026-11-26T12:00:00+01:00")).tasks
    assert (task["reasons"], task["priority"]) == (["priority_check"], "normal")


def test_after_the_case_is_done_the_next_change_opens_a_new_case():
    h = Harness()
    h.send(registered())
    case = h.send(changed(True, False, event_id="sch-1")).tasks[0]["task_id"]
    h.send(envelope("cmd.case.resolve", {"task_id": case}, at="2026-11-26T11:00:00+01:00",
                    actor={"initials": "AB", "role": "at"}))
    [task] = h.send(changed(False, False, when="2026-11-26T12:00:00+01:00", event_id="sch-2")).tasks
    assert task["task_id"] == f"case:schedule_change:{VPA}:sch-2"
    assert task["version"] == 1
    # a redelivery of the first event, when no case is open, reopens nothing (runners drop
    # repeated event_ids anyway; this is the processor's own guard)
    h.send(envelope("cmd.case.resolve", {"task_id": task["task_id"]}, at="2026-11-26T13:00:00+01:00",
                    actor={"initials": "AB", "role": "at"}))
    assert h.send(changed(True, False, event_id="sch-1")).tasks == []


def test_duplicate_event_emits_no_new_version():
    h = Harness()
    h.send(registered())
    h.send(changed(True, False, event_id="sch-1"))
    assert h.send(changed(True, False, event_id="sch-1")).tasks == []


def test_unregistered_vpa_gets_a_review_case_filled_in_later():
    h = Harness()
    [task] = h.send(changed(False, False)).tasks
    assert (task["reasons"], task["owner"], task["vpa_name"]) == (["review"], None, None)
    [task] = h.send(registered("2026-11-27T09:00:00+01:00")).tasks
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("AB", "AB", "Anna Schmidt")


def test_offboarded_vpa_opens_nothing():
    h = Harness()
    h.send(registered())
    h.send(envelope("vpa.offboarded", at="2026-11-20T10:00:00+01:00"))
    assert h.send(changed(False, False)).tasks == []
