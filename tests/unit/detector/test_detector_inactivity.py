"""Inactivity cases (DESIGN 2.1 ``inactive``; fine print 5.2, 5.3, 5.6, 5.13, 5.15, 5.22, 5.24)."""
from datetime import date, datetime

import pytest

from services.config.settings import Settings
from services.core.timeutil import parse
from services.detector.drafts import draft_is_safe
from services.detector.inactivity_rules import complaint_counts, decide, follow_up_at
from tests.unit.detector_helpers import VPA, Harness, envelope, member, registered, roster_of

S = Settings()
# November 2026: Mon 23, Tue 24, Wed 25, Thu 26, Fri 27, Sat 28, Sun 29, Mon 30.


def at(s: str) -> datetime:
    return parse(s)


# ---- follow-up time (pure) -------------------------------------------------------------------

@pytest.mark.parametrize("inactive_at, follow_up", [
    ("2026-11-23T08:00:00+01:00", "2026-11-24T09:00:00+01:00"),  # Monday morning -> Tuesday 09:00
    ("2026-11-26T11:00:00+01:00", "2026-11-27T09:00:00+01:00"),  # Thursday -> Friday 09:00
    ("2026-11-27T15:30:00+01:00", "2026-11-30T12:00:00+01:00"),  # Friday afternoon -> Monday 12:00
    ("2026-11-28T10:00:00+01:00", "2026-11-30T12:00:00+01:00"),  # Saturday -> Monday 12:00
    ("2026-11-29T22:00:00+01:00", "2026-11-30T12:00:00+01:00"),  # Sunday night -> Monday 12:00
    ("2026-11-29T23:30:00Z", "2026-12-01T09:00:00+01:00"),       # already Monday 00:30 in Berlin
    ("2026-11-22T23:59:59+01:00", "2026-11-23T12:00:00+01:00"),  # last second of Sunday
])
def test_follow_up_time(inactive_at, follow_up):
    assert follow_up_at(at(inactive_at), S) == at(follow_up)


def test_follow_up_skips_holidays_and_a_tuesday_after_a_holiday_monday_is_at_nine():
    s = Settings(holidays=(date(2026, 11, 30),))
    assert follow_up_at(at("2026-11-27T15:00:00+01:00"), s) == at("2026-12-01T09:00:00+01:00")


def test_follow_up_times_are_settings():
    s = Settings(follow_up_time=datetime.strptime("10:30", "%H:%M").time(),
                 monday_follow_up_time=datetime.strptime("14:00", "%H:%M").time())
    assert follow_up_at(at("2026-11-24T08:00:00+01:00"), s) == at("2026-11-25T10:30:00+01:00")
    assert follow_up_at(at("2026-11-28T08:00:00+01:00"), s) == at("2026-11-30T14:00:00+01:00")


def test_follow_up_in_summer_time_carries_the_summer_offset():
    assert follow_up_at(at("2026-06-05T16:00:00+02:00"), S).isoformat() == "2026-06-08T12:00:00+02:00"


def test_complaint_window_includes_both_ends():
    fu = at("2026-11-30T12:00:00+01:00")
    assert complaint_counts(at("2026-11-16T12:00:00+01:00"), fu, S)
    assert not complaint_counts(at("2026-11-16T11:59:59+01:00"), fu, S)
    assert complaint_counts(fu, fu, S)
    assert not complaint_counts(at("2026-11-30T12:00:01+01:00"), fu, S)


def test_decide_precedence():
    fu = at("2026-11-30T12:00:00+01:00")
    assert decide(True, True, False, True, True, [fu], fu, S).reasons == ["active_again"]
    assert decide(False, False, True, False, False, [], fu, S).reasons == ["active_again"]
    assert decide(False, True, False, True, True, [fu], fu, S).reasons == ["active_on_mobile"]
    d = decide(False, False, False, True, True, [fu], fu, S)
    assert (d.status, d.reasons) == ("open", ["contact_needed", "customer_complaint", "verify_mobile_activity"])
    assert decide(False, False, False, True, False, [], fu, S).reasons == ["part_time_no_contact"]


# ---- the case through the processor ----------------------------------------------------------

FRI = "2026-11-27T15:30:00+01:00"
FOLLOW_UP = "2026-11-30T12:00:00+01:00"


def inactive(when: str = FRI, **kw):
    return envelope("vpa.activity_status_changed", {"status": "inactive"}, at=when, **kw)


def active(when: str):
    return envelope("vpa.activity_status_changed", {"status": "active"}, at=when)


def seen(channel: str, when: str):
    return envelope("vpa.activity_seen", {"channel": channel}, at=when)


def complaint(cid: str, when: str):
    return envelope("vpa.customer_complaint", {"complaint_id": cid, "summary": "keine Antwort"}, at=when)


def resolve(task_id: str, when: str, actor: dict | None = None, event_id: str | None = None):
    return envelope("cmd.case.resolve", {"task_id": task_id, "note": "ok"}, at=when,
                    actor=actor or {"initials": "AB", "role": "at"}, event_id=event_id)


def start(**profile) -> Harness:
    h = Harness()
    h.send(registered(**profile))
    return h


def open_episode(h: Harness, when: str = FRI, event_id: str = "inact-1") -> str:
    h.send(inactive(when, event_id=event_id))
    return f"case:inactive:{VPA}:{event_id}"


def test_inactive_opens_a_waiting_follow_up_case_and_requests_a_reminder():
    h = start()
    r = h.send(inactive(FRI, event_id="inact-1"))
    case = f"case:inactive:{VPA}:inact-1"
    [task] = r.tasks
    assert task["task_id"] == case
    assert (task["tab"], task["kind"], task["status"], task["priority"]) == ("cases", "inactive", "waiting", "normal")
    assert task["reasons"] == ["follow_up"]
    assert task["due_at"] == FOLLOW_UP
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("AB", "AB", "Anna Schmidt")
    assert task["title"] and task["action"] and task["message_draft"] is None
    [cmd] = r.commands
    assert cmd.type == "cmd.reminder.set"
    assert cmd.vpa_id == VPA
    assert (cmd.actor.initials, cmd.actor.role.value) == ("SYS", "system")
    assert cmd.occurred_at == at(FRI)  # the clock's now
    assert cmd.event_id == f"detector:reminder.set:{case}"
    d = cmd.data
    assert (d.reminder_id, d.owner, d.case_task_id) == (f"follow-up:{case}", "AB", case)
    assert d.due_at == at(FOLLOW_UP)
    assert d.note
    assert list(h.state["timers"]) == [f"follow-up:{case}"]


def test_no_activity_full_time_opens_contact_needed_with_a_contact_draft():
    h = start()
    case = open_episode(h)
    r = h.until(FOLLOW_UP)
    [task] = r.tasks
    assert task["status"] == "open"
    assert task["reasons"] == ["contact_needed"]
    assert task["priority"] == "normal"
    assert task["message_draft"].startswith("Hallo Anna,")
    assert draft_is_safe(task["message_draft"])
    assert task["updated_at"] == FOLLOW_UP
    assert r.commands == []  # the case stays open: the reminder stays
    assert h.task(case)["version"] == 2


def test_decision_waits_for_the_follow_up_time():
    h = start()
    case = open_episode(h)
    assert h.until("2026-11-30T11:59:59+01:00").tasks == []
    assert h.task(case)["status"] == "waiting"


def test_mobile_app_user_gets_verify_mobile_activity():
    h = start(uses_mobile_app=True)
    case = open_episode(h)
    h.until(FOLLOW_UP)
    assert h.task(case)["reasons"] == ["contact_needed", "verify_mobile_activity"]


@pytest.mark.parametrize("events, reason", [
    ([("web", "2026-11-28T10:00:00+01:00")], "active_again"),
    ([("mobile", "2026-11-28T10:00:00+01:00")], "active_on_mobile"),
    ([("mobile", "2026-11-28T10:00:00+01:00"), ("web", "2026-11-29T10:00:00+01:00")], "active_again"),
])
def test_activity_since_the_inactivity_closes_the_case_and_cancels_the_reminder(events, reason):
    h = start(part_time=True, uses_mobile_app=True)
    case = open_episode(h)
    for channel, when in events:
        assert h.send(seen(channel, when)).tasks == []
    r = h.until(FOLLOW_UP)
    [task] = r.tasks
    assert (task["status"], task["reasons"], task["message_draft"]) == ("done", [reason], None)
    [cmd] = r.commands
    assert cmd.type == "cmd.case.resolve"
    assert (cmd.actor.initials, cmd.actor.role.value) == ("SYS", "system")
    assert cmd.data.task_id == case
    assert cmd.occurred_at == at(FOLLOW_UP)
    assert cmd.event_id.startswith("detector:")


def test_status_active_before_the_follow_up_does_not_close_early():
    h = start()
    case = open_episode(h)
    assert h.send(active("2026-11-28T09:00:00+01:00")).tasks == []
    assert h.task(case)["status"] == "waiting"
    h.until(FOLLOW_UP)
    assert (h.task(case)["status"], h.task(case)["reasons"]) == ("done", ["active_again"])


def test_activity_processed_before_the_inactivity_does_not_count():
    h = start()
    h.send(seen("web", "2026-11-27T15:00:00+01:00"))
    case = open_episode(h)
    h.until(FOLLOW_UP)
    assert h.task(case)["reasons"] == ["contact_needed"]


def test_activity_processed_after_the_inactivity_counts_even_with_an_earlier_timestamp():
    # "since" means processed after the inactivity event (5.22), not a later occurred_at.
    h = start()
    case = open_episode(h)
    h.detector.handle(h.state, seen("mobile", "2026-11-27T15:00:00+01:00"), h.ctx(h.now))
    h.until(FOLLOW_UP)
    assert h.task(case)["reasons"] == ["active_on_mobile"]


def test_part_time_without_complaint_is_closed_without_contact():
    h = start(part_time=True)
    case = open_episode(h)
    r = h.until(FOLLOW_UP)
    assert (h.task(case)["status"], h.task(case)["reasons"]) == ("done", ["part_time_no_contact"])
    assert [c.type for c in r.commands] == ["cmd.case.resolve"]


@pytest.mark.parametrize("complained_at, counts", [
    ("2026-11-16T12:00:00+01:00", True),   # exactly follow-up - 14 days
    ("2026-11-20T09:00:00+01:00", True),   # 10 days before
    ("2026-11-16T11:59:59+01:00", False),  # one second too early
    ("2026-11-06T09:00:00+01:00", False),  # 24 days before
])
def test_part_time_with_a_complaint_before_the_inactivity(complained_at, counts):
    h = start(part_time=True)
    h.send(complaint("c-1", complained_at))
    case = open_episode(h)
    h.until(FOLLOW_UP)
    task = h.task(case)
    if counts:
        assert (task["status"], task["reasons"], task["priority"]) == (
            "open", ["contact_needed", "customer_complaint"], "high")
        assert "Kunde" in task["message_draft"]
    else:
        assert (task["status"], task["reasons"], task["priority"]) == ("done", ["part_time_no_contact"], "normal")


def test_complaint_during_the_episode_opens_the_case_at_once_for_a_part_timer():
    h = start(part_time=True)
    case = open_episode(h)
    r = h.send(complaint("c-1", "2026-11-28T10:00:00+01:00"))
    [task] = r.tasks
    assert task["task_id"] == case
    assert (task["status"], task["priority"]) == ("open", "high")
    assert task["reasons"] == ["contact_needed", "customer_complaint"]
    assert task["updated_at"] == "2026-11-28T10:00:00+01:00"
    assert task["message_draft"] and draft_is_safe(task["message_draft"])
    assert r.commands == []  # the reminder stays with the open case
    assert "timers" not in h.state or not h.state["timers"]
    assert h.until(FOLLOW_UP).tasks == []  # nothing left to decide


def test_complaint_adds_to_a_case_already_open():
    h = start(uses_mobile_app=True)
    case = open_episode(h)
    h.until(FOLLOW_UP)
    [task] = h.send(complaint("c-1", "2026-12-01T10:00:00+01:00")).tasks
    assert task["task_id"] == case
    assert task["reasons"] == ["contact_needed", "customer_complaint", "verify_mobile_activity"]
    assert task["priority"] == "high"
    assert task["version"] == 3
    assert h.send(complaint("c-2", "2026-12-01T11:00:00+01:00")).tasks == []


def test_complaint_reopens_a_part_time_case_closed_without_contact_while_the_episode_runs():
    h = start(part_time=True)
    case = open_episode(h)
    h.until(FOLLOW_UP)
    assert h.task(case)["status"] == "done"
    [task] = h.send(complaint("c-1", "2026-12-02T10:00:00+01:00")).tasks
    assert task["task_id"] == case
    assert (task["status"], task["priority"]) == ("open", "high")
    assert task["reasons"] == ["contact_needed", "customer_complaint"]


def test_complaint_after_the_episode_ended_opens_nothing():
    h = start(part_time=True)
    case = open_episode(h)
    h.send(active("2026-11-28T09:00:00+01:00"))
    h.until(FOLLOW_UP)
    assert h.send(complaint("c-1", "2026-12-01T10:00:00+01:00")).tasks == []
    assert (h.task(case)["status"], h.task(case)["reasons"]) == ("done", ["active_again"])


def test_complaint_without_any_inactivity_opens_nothing():
    h = start()
    assert h.send(complaint("c-1", "2026-11-25T10:00:00+01:00")).tasks == []
    assert h.cases("inactive") == []


def test_activity_after_the_decision_changes_nothing():
    h = start()
    case = open_episode(h)
    h.until(FOLLOW_UP)
    assert h.send(seen("web", "2026-12-01T10:00:00+01:00")).tasks == []
    assert h.send(active("2026-12-01T11:00:00+01:00")).tasks == []
    assert (h.task(case)["status"], h.task(case)["reasons"]) == ("open", ["contact_needed"])


def test_repeated_inactive_inside_the_episode_is_ignored():
    h = start()
    case = open_episode(h)
    assert h.send(inactive("2026-11-28T10:00:00+01:00", event_id="inact-2")).tasks == []
    h.until(FOLLOW_UP)
    assert [t["task_id"] for t in h.cases("inactive")] == [case]
    # still the same episode after the decision
    assert h.send(inactive("2026-12-01T10:00:00+01:00", event_id="inact-3")).tasks == []


def test_a_new_episode_after_active_opens_a_new_case():
    h = start()
    first = open_episode(h)
    h.send(active("2026-11-28T09:00:00+01:00"))
    second = open_episode(h, "2026-11-29T09:00:00+01:00", event_id="inact-2")
    assert first != second
    h.until(FOLLOW_UP)
    assert h.task(first)["reasons"] == ["active_again"]
    assert h.task(second)["reasons"] == ["contact_needed"]


def test_redelivered_inactive_event_of_a_finished_episode_is_ignored():
    h = start()
    case = open_episode(h)
    h.send(active("2026-11-28T09:00:00+01:00"))
    h.until(FOLLOW_UP)
    r = h.send(inactive("2026-11-27T15:30:00+01:00", event_id="inact-1"))
    assert r.tasks == [] and r.commands == []
    assert h.task(case)["version"] == 2


def test_late_inactive_event_is_decided_right_after_it():
    # Delivered after its follow-up time: the timer is in the past and fires right away (5.3).
    h = start()
    h.until("2026-12-02T10:00:00+01:00")
    r = h.send(inactive(FRI, event_id="late-1"))
    statuses = [t["status"] for t in r.tasks]
    assert statuses == ["waiting", "open"]
    assert r.tasks[0]["due_at"] == FOLLOW_UP  # from the event's own date (5.2)
    assert r.tasks[0]["created_at"] == "2026-12-02T10:00:00+01:00"


def test_resolving_a_waiting_case_by_hand_stops_the_decision():
    h = start()
    case = open_episode(h)
    [task] = h.send(resolve(case, "2026-11-28T10:00:00+01:00")).tasks
    assert (task["status"], task["history"][-1]["by"]) == ("done", "AB")
    assert h.until(FOLLOW_UP).tasks == []
    assert h.send(complaint("c-1", "2026-12-01T10:00:00+01:00")).tasks == []  # a person closed it


def test_system_resolve_of_a_closed_case_is_a_no_op_but_a_persons_is_rejected():
    h = start(part_time=True)
    case = open_episode(h)
    r = h.until(FOLLOW_UP)
    own = r.commands[0]
    assert h.detector.handle(h.state, own, h.ctx(h.now)).rejections == []  # our own request
    sys = resolve(case, "2026-11-30T13:00:00+01:00", actor={"initials": "SYS", "role": "system"})
    assert h.send(sys).rejections == [] and h.task(case)["status"] == "done"
    person = h.send(resolve(case, "2026-11-30T14:00:00+01:00"))
    assert len(person.rejections) == 1 and person.rejections[0].startswith("Fall ")


def test_a_system_resolve_of_an_open_case_closes_it():
    h = start()
    case = open_episode(h)
    sys = resolve(case, "2026-11-28T10:00:00+01:00", actor={"initials": "SYS", "role": "system"})
    [task] = h.send(sys).tasks
    assert (task["status"], task["history"][-1]["by"]) == ("done", "SYS")


def test_offboarding_cancels_the_waiting_case_its_timer_and_its_reminder():
    h = start()
    case = open_episode(h)
    r = h.send(envelope("vpa.offboarded", at="2026-11-28T10:00:00+01:00"))
    [task] = r.tasks
    assert task["status"] == "cancelled"
    [cmd] = r.commands
    assert (cmd.type, cmd.data.task_id) == ("cmd.case.resolve", case)
    assert list(h.state.get("timers", {})) == ["erase:after-offboarding"]  # the follow-up is gone
    assert h.until(FOLLOW_UP).tasks == []


# ---- the reminder needs an active roster member (5.13) ----------------------------------------

@pytest.mark.parametrize("roster", [roster_of(), roster_of(member("AB", active=False)), roster_of(member("CD"))])
def test_reminder_is_skipped_and_counted_without_an_active_owner(roster):
    h = Harness(roster=roster)
    h.send(registered())
    r = h.send(inactive(FRI))
    assert r.commands == []
    assert r.tasks[0]["status"] == "waiting"
    assert r.counts["detector_followup_reminders_skipped"] == 1


def test_skipped_reminder_is_requested_once_the_owner_becomes_an_active_member():
    h = Harness(roster=roster_of())
    h.send(registered())
    h.send(inactive(FRI, event_id="inact-1"))
    h.roster.update(roster_of(member("AB")))
    r = h.detector.reassign(h.state, h.ctx(h.now))
    [cmd] = r.commands
    assert cmd.type == "cmd.reminder.set" and cmd.data.owner == "AB"
    assert h.detector.reassign(h.state, h.ctx(h.now)).commands == []  # only once


def test_unregistered_vpa_gets_a_case_and_its_reminder_when_the_profile_arrives():
    h = Harness()
    r = h.send(inactive(FRI, event_id="inact-1"))
    assert (r.tasks[0]["owner"], r.tasks[0]["assignee"], r.tasks[0]["vpa_name"]) == (None, None, None)
    assert r.commands == []
    r = h.send(registered("2026-11-28T09:00:00+01:00", name="Bernd Maier"))
    [task] = r.tasks
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("AB", "AB", "Bernd Maier")
    [cmd] = r.commands
    assert cmd.data.owner == "AB"
    assert cmd.data.due_at == at(FOLLOW_UP)
    h.until(FOLLOW_UP)
    assert h.task(f"case:inactive:{VPA}:inact-1")["message_draft"].startswith("Hallo Bernd,")


def test_no_reminder_for_a_case_already_decided():
    h = Harness(roster=roster_of())
    h.send(registered())
    h.send(inactive(FRI))
    h.until(FOLLOW_UP)
    h.roster.update(roster_of(member("AB")))
    assert h.detector.reassign(h.state, h.ctx(h.now)).commands == []


def test_absent_owner_hands_the_case_over_but_the_reminder_keeps_the_owner():
    roster = roster_of(member("AB", deputy="CD"), member("CD"))
    roster["AB"]["absences"] = {"u1": {"kind": "sick", "starts_on": "2026-11-27", "ends_on": None, "ended": False}}
    h = Harness(roster=roster)
    h.send(registered())
    r = h.send(inactive(FRI))
    assert (r.tasks[0]["owner"], r.tasks[0]["assignee"]) == ("AB", "CD")
    assert r.tasks[0]["reasons"] == ["follow_up", "handover"]
    assert r.commands[0].data.owner == "AB"
    h.until(FOLLOW_UP)
    [task] = h.cases("inactive")
    assert task["reasons"] == ["contact_needed", "handover"]


def test_after_offboarding_and_a_new_registration_an_old_episode_is_over():
    h = start(part_time=True, uses_mobile_app=True)
    case = open_episode(h)
    h.send(seen("mobile", "2026-11-28T10:00:00+01:00"))
    h.until(FOLLOW_UP)
    assert h.task(case)["reasons"] == ["active_on_mobile"]
    h.send(envelope("vpa.offboarded", at="2026-12-01T10:00:00+01:00"))
    h.send(registered("2026-12-02T10:00:00+01:00"))
    assert h.send(complaint("c-9", "2026-12-03T10:00:00+01:00")).tasks == []
    assert h.task(case)["status"] == "done"
    # a new inactivity opens a new case
    [task] = h.send(inactive("2026-12-04T10:00:00+01:00", event_id="inact-new")).tasks
    assert task["task_id"] == f"case:inactive:{VPA}:inact-new"


@pytest.mark.parametrize("channel, closed_as", [("mobile", "active_on_mobile"), ("web", "active_again")])
def test_a_complaint_leaves_a_case_closed_as_active_closed(channel, closed_as):
    # DESIGN 5.22: the VPA was shown to be active, so a later complaint is no inactivity matter,
    # even while the platform's status stays inactive (mobile use does not change it).
    h = start(uses_mobile_app=True)
    case = open_episode(h)
    h.send(seen(channel, "2026-11-28T10:00:00+01:00"))
    h.until(FOLLOW_UP)
    assert (h.task(case)["status"], h.task(case)["reasons"]) == ("done", [closed_as])
    assert h.send(complaint("c-1", "2026-12-01T10:00:00+01:00")).tasks == []
    assert (h.task(case)["status"], h.task(case)["reasons"]) == ("done", [closed_as])


def test_two_complaints_at_the_same_instant_both_count_in_the_order_they_came():
    """Two complaints of one moment: the decision lists both (sorting their facts by time alone;
    the facts themselves cannot be ordered, and comparing them ended the decision with an error)."""
    h = start()
    h.send(complaint("c-2", "2026-11-20T09:00:00+01:00"))
    h.send(envelope("vpa.customer_complaint", {"complaint_id": "c-1", "summary": "nicht erreichbar"},
                    at="2026-11-20T09:00:00+01:00"))
    case = open_episode(h)
    h.until(FOLLOW_UP)
    task = h.task(case)
    assert (task["status"], task["reasons"]) == ("open", ["contact_needed", "customer_complaint"])
    said = [f["text"] for f in task["evidence"] if f["code"] == "customer_complaint"]
    assert len(said) == 2 and "keine Antwort" in said[0] and "nicht erreichbar" in said[1]
