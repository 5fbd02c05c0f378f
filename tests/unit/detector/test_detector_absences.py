"""Absence cases through the detector processor (DESIGN 2.1, fine print 5.2, 5.6, 5.11, 5.15, 5.24, 5.25)."""
from datetime import datetime, timezone

import pytest

from services.config.settings import Settings
from services.core.processor import Context
from services.core.roster import apply_roster_event
from services.core.tasks import fold, get_task
from services.detector.service import Detector
from tests import builders

VPA = "V-1042"
CASE = f"case:absence:{VPA}:abs-1"
NOW = datetime(2026, 11, 26, 8, 15, 30, 123456, tzinfo=timezone.utc)  # 09:15:30 in Berlin
TASK_KEYS = {
    "task_id", "tab", "kind", "stage", "vpa_id", "vpa_name", "status", "priority", "reasons", "title",
    "action", "owner", "assignee", "due_at", "message_draft", "created_at", "updated_at", "version", "history",
    "evidence",
}

_counter = iter(range(1, 10_000))


def envelope(type_: str, data: dict | None = None, *, at: str = "2026-11-26T09:00:00+01:00",
             vpa_id: str | None = VPA, actor: dict | None = None, event_id: str | None = None):
    return builders.decoded(type_, data, at=at, vpa_id=vpa_id, actor=actor, event_id=event_id or f"e{next(_counter)}")


def registered(at_owner: str = "AB", name: str = "Anna Schmidt", **kw):
    return envelope("vpa.registered", {"name": name, "started_on": "2025-01-15", "at_owner": at_owner},
                    **kw)


def absence(absence_id: str, starts_on: str, ends_on: str, **kw):
    return envelope("vpa.absence_registered",
                    {"absence_id": absence_id, "starts_on": starts_on, "ends_on": ends_on}, **kw)


def cancel(absence_id: str, **kw):
    return envelope("vpa.absence_cancelled", {"absence_id": absence_id}, **kw)


def resolve(task_id: str, initials: str = "CD", **kw):
    return envelope("cmd.case.resolve", {"task_id": task_id, "note": "erledigt"},
                    actor={"initials": initials, "role": "at"}, **kw)


def ctx(now: datetime = NOW) -> Context:
    return Context(now=now, settings=Settings())


def run(state: dict, env, now: datetime = NOW):
    return Detector().handle(state, env, ctx(now))


def only_task(result) -> dict:
    assert len(result.tasks) == 1, result.tasks
    return result.tasks[0]


# Registered 26 Nov: 2026-12-01..2026-12-31 is long only; 2026-11-27..2026-11-28 is short notice only.
LONG = ("2026-12-01", "2026-12-31")
SHORT = ("2026-11-27", "2026-11-28")
NOTHING = ("2026-12-10", "2026-12-12")


@pytest.fixture
def state() -> dict:
    s: dict = {}
    run(s, registered())
    return s


# ---- opening -----------------------------------------------------------------------------

def test_long_absence_opens_a_normal_case(state):
    task = only_task(run(state, absence("abs-1", *LONG)))
    assert set(task) == TASK_KEYS
    assert task["task_id"] == CASE
    assert (task["tab"], task["kind"], task["vpa_id"]) == ("cases", "absence", VPA)
    assert task["status"] == "open"
    assert task["due_at"] is None
    assert task["stage"] is None
    assert task["message_draft"] is None
    assert task["reasons"] == ["long"]
    assert task["priority"] == "normal"
    assert task["version"] == 1
    assert task["title"] and task["action"]


def test_short_notice_opens_a_high_priority_case(state):
    task = only_task(run(state, absence("abs-1", *SHORT)))
    assert task["reasons"] == ["short_notice"]
    assert task["priority"] == "high"


def test_frequent_opens_a_normal_case(state):
    run(state, absence("abs-a", "2026-12-01", "2026-12-02"))
    run(state, absence("abs-b", "2026-12-10", "2026-12-11"))
    task = only_task(run(state, absence("abs-1", "2027-01-05", "2027-01-06")))
    assert task["reasons"] == ["frequent"]
    assert task["priority"] == "normal"


def test_reasons_come_in_canonical_order(state):
    run(state, absence("abs-a", "2026-10-01", "2026-10-02"))
    run(state, absence("abs-b", "2026-11-01", "2026-11-02"))
    task = only_task(run(state, absence("abs-1", "2026-11-27", "2026-12-31")))
    assert task["reasons"] == ["short_notice", "long", "frequent"]
    assert task["priority"] == "high"


def test_no_reason_no_case(state):
    result = run(state, absence("abs-1", *NOTHING))
    assert result.tasks == []
    assert result.rejections == []


def test_registration_date_is_the_events_local_date_not_now(state):
    # 23:30 UTC on 26 Nov is 27 Nov in Berlin, so 28 Nov is one day's notice. The clock's now
    # (a late delivery on 5 Dec, when the absence is already over) must not matter (5.2).
    late_now = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
    env = absence("abs-1", "2026-11-28", "2026-11-30", at="2026-11-26T23:30:00Z")
    task = only_task(run(state, env, now=late_now))
    assert task["reasons"] == ["short_notice"]
    assert task["created_at"] == "2026-12-05T11:00:00+01:00"


def test_created_and_updated_at_are_now_in_berlin_to_the_second(state):
    env = absence("abs-1", *LONG, at="2026-11-20T10:00:00+01:00")
    task = only_task(run(state, env))
    assert task["created_at"] == "2026-11-26T09:15:30+01:00"
    assert task["updated_at"] == "2026-11-26T09:15:30+01:00"
    assert task["history"] == [{"at": "2026-11-26T09:15:30+01:00", "change": task["history"][0]["change"],
                                "by": "detector"}]
    assert task["history"][0]["change"]


def test_summer_time_offset(state):
    summer = datetime(2026, 6, 1, 7, 0, 5, 999999, tzinfo=timezone.utc)
    task = only_task(run(state, absence("abs-1", "2026-07-01", "2026-07-31", at="2026-06-01T09:00:00+02:00"),
                         now=summer))
    assert task["created_at"] == "2026-06-01T09:00:05+02:00"


# ---- re-registering the same absence -----------------------------------------------------

def test_re_registering_while_open_merges_reasons_and_raises_priority(state):
    first = only_task(run(state, absence("abs-1", *LONG, at="2026-11-01T09:00:00+01:00")))
    assert (first["reasons"], first["priority"]) == (["long"], "normal")
    later = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    # moved to start tomorrow: now also short notice
    second = only_task(run(state, absence("abs-1", "2026-12-01", "2026-12-03", at="2026-11-30T10:00:00+01:00"),
                           now=later))
    assert second["task_id"] == CASE
    assert second["reasons"] == ["short_notice", "long"]
    assert second["priority"] == "high"
    assert second["version"] == 2
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] == "2026-11-30T10:00:00+01:00"
    # A version carries the history entry of its own change; the store puts them together.
    assert second["history"] == [{"at": "2026-11-30T10:00:00+01:00", "change": second["history"][0]["change"],
                                  "by": "detector"}]
    assert fold(first, second)["history"] == first["history"] + second["history"]


def test_re_registering_while_open_never_lowers_priority(state):
    first = only_task(run(state, absence("abs-1", *SHORT)))
    assert first["priority"] == "high"
    # moved into the future, now long and not short notice any more
    second = only_task(run(state, absence("abs-1", "2027-01-01", "2027-01-31")))
    assert second["priority"] == "high"
    assert second["reasons"] == ["short_notice", "long"]
    assert second["status"] == "open"


def test_re_registering_unchanged_emits_no_new_version(state):
    run(state, absence("abs-1", *LONG))
    result = run(state, absence("abs-1", *LONG))
    assert result.tasks == []
    assert state["tasks"][CASE]["version"] == 1


def test_re_registering_without_reasons_keeps_the_open_case(state):
    run(state, absence("abs-1", *LONG))
    result = run(state, absence("abs-1", *NOTHING))
    for task in result.tasks:
        assert task["status"] == "open"
        assert task["reasons"] == ["long"]
    assert state["tasks"][CASE]["status"] == "open"


# ---- cancelling and reopening ------------------------------------------------------------

def test_cancel_cancels_the_open_case(state):
    run(state, absence("abs-1", *LONG))
    task = only_task(run(state, cancel("abs-1")))
    assert task["status"] == "cancelled"
    assert task["version"] == 2
    assert len(task["history"]) == 1  # the entry of this change
    assert CASE not in state.get("tasks", {})  # closed: only its tombstone stays
    assert get_task(state, CASE)["status"] == "cancelled"


def test_cancel_of_unknown_absence_changes_nothing(state):
    result = run(state, cancel("abs-x"))
    assert result.tasks == [] and result.rejections == []


def test_cancelled_absence_no_longer_counts_as_frequent(state):
    run(state, absence("abs-a", "2026-12-01", "2026-12-02"))
    run(state, absence("abs-b", "2026-12-10", "2026-12-11"))
    run(state, cancel("abs-b"))
    assert run(state, absence("abs-1", "2027-01-05", "2027-01-06")).tasks == []


def test_re_registered_absence_counts_once_for_frequent(state):
    run(state, absence("abs-a", "2026-12-01", "2026-12-02"))
    run(state, absence("abs-a", "2026-12-03", "2026-12-04"))
    assert run(state, absence("abs-1", "2027-01-05", "2027-01-06")).tasks == []


def test_re_registering_after_cancel_reopens_the_same_case(state):
    run(state, absence("abs-1", *LONG))
    run(state, cancel("abs-1"))
    task = only_task(run(state, absence("abs-1", *LONG)))
    assert task["task_id"] == CASE
    assert task["status"] == "open"
    assert task["reasons"] == ["long"]
    assert task["version"] == 3  # the tombstone kept the versions going
    assert task["created_at"] == "2026-11-26T09:15:30+01:00"
    assert len(task["history"]) == 1


def test_re_registering_after_resolve_reopens_the_same_case(state):
    run(state, absence("abs-1", *LONG))
    run(state, resolve(CASE))
    task = only_task(run(state, absence("abs-1", *SHORT)))
    assert task["task_id"] == CASE
    assert task["status"] == "open"
    assert task["reasons"] == ["short_notice"]
    assert task["priority"] == "high"


# ---- owner, assignee and name (5.11) -------------------------------------------------------

def test_owner_and_assignee_are_the_at_owner(state):
    task = only_task(run(state, absence("abs-1", *LONG)))
    assert task["owner"] == "AB"
    assert task["assignee"] == "AB"
    assert task["vpa_name"] == "Anna Schmidt"


def test_case_before_registration_is_filled_in_when_the_profile_arrives():
    state: dict = {}
    task = only_task(run(state, absence("abs-1", *LONG)))
    assert (task["owner"], task["assignee"], task["vpa_name"]) == (None, None, None)
    task = only_task(run(state, registered(at_owner="EF", name="Bernd Maier")))
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("EF", "EF", "Bernd Maier")
    assert task["version"] == 2
    assert task["status"] == "open"


def test_profile_update_moves_open_cases_to_the_new_owner_and_name(state):
    run(state, absence("abs-1", *LONG))
    task = only_task(run(state, envelope("vpa.profile_updated", {"at_owner": "GH", "name": "Anna Weber"})))
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("GH", "GH", "Anna Weber")
    assert task["version"] == 2


def test_profile_update_of_other_fields_emits_nothing(state):
    run(state, absence("abs-1", *LONG))
    assert run(state, envelope("vpa.profile_updated", {"part_time": True})).tasks == []


def test_profile_update_leaves_closed_cases_alone(state):
    run(state, absence("abs-1", *LONG))
    run(state, cancel("abs-1"))
    assert run(state, envelope("vpa.profile_updated", {"at_owner": "GH"})).tasks == []
    assert get_task(state, CASE)["status"] == "cancelled"


def roster_of(*events) -> dict:
    roster: dict = {}
    for e in events:
        roster[e.data.initials] = apply_roster_event(roster.get(e.data.initials), e)
    return roster


def member(initials: str, deputy: str | None = None):
    return envelope("roster.member_upserted", {"initials": initials, "name": f"Member {initials}", "role": "at",
                                               "deputy": deputy, "active": True}, vpa_id=None)


def test_case_of_an_absent_owner_goes_to_the_deputy_with_reason_handover(state):
    # DESIGN 2.2 "Cases use the same handover policy", 5.9: assignee is the present deputy and
    # reason handover is present exactly while the assignee differs from the owner.
    roster = roster_of(
        member("AB", deputy="CD"), member("CD"),
        envelope("roster.absence_registered", {"absence_id": "u-1", "initials": "AB", "kind": "vacation",
                                               "starts_on": "2026-11-20", "ends_on": "2026-12-04"}, vpa_id=None),
    )
    task = only_task(Detector().handle(state, absence("abs-1", *LONG), Context(NOW, Settings(), roster)))
    assert task["owner"] == "AB"
    assert task["assignee"] == "CD"
    assert "handover" in task["reasons"]


def test_owner_not_in_the_roster_is_never_handed_over(state):
    roster = roster_of(member("CD"))
    task = only_task(Detector().handle(state, absence("abs-1", *LONG), Context(NOW, Settings(), roster)))
    assert (task["owner"], task["assignee"]) == ("AB", "AB")
    assert "handover" not in task["reasons"]


# ---- offboarding (5.24) --------------------------------------------------------------------

def test_offboarding_cancels_open_cases(state):
    run(state, absence("abs-1", *LONG))
    run(state, absence("abs-2", *SHORT))
    result = run(state, envelope("vpa.offboarded"))
    assert sorted(t["task_id"] for t in result.tasks) == [CASE, f"case:absence:{VPA}:abs-2"]
    assert all(t["status"] == "cancelled" for t in result.tasks)


def test_offboarding_leaves_done_cases_alone(state):
    run(state, absence("abs-1", *LONG))
    run(state, resolve(CASE))
    assert run(state, envelope("vpa.offboarded")).tasks == []
    assert get_task(state, CASE)["status"] == "done"


def test_after_offboarding_vpa_events_are_ignored(state):
    run(state, absence("abs-1", *LONG))
    run(state, envelope("vpa.offboarded"))
    assert run(state, absence("abs-2", *SHORT)).tasks == []
    assert run(state, absence("abs-1", *SHORT)).tasks == []
    assert run(state, envelope("vpa.profile_updated", {"at_owner": "GH"})).tasks == []
    assert get_task(state, CASE)["status"] == "cancelled"


def test_new_registration_after_offboarding_counts_again(state):
    run(state, envelope("vpa.offboarded"))
    run(state, registered(at_owner="IJ"))
    task = only_task(run(state, absence("abs-9", *LONG)))
    assert task["status"] == "open"
    assert task["owner"] == "IJ"


def test_resolve_after_offboarding_is_rejected_with_a_reason(state):
    # The case was closed by the offboarding: resolving it is a rejection with a visible reason
    # (DESIGN 4.5), not silently dropped.
    run(state, absence("abs-1", *LONG))
    run(state, envelope("vpa.offboarded"))
    result = run(state, resolve(CASE))
    assert result.tasks == []
    assert len(result.rejections) == 1
    assert result.rejections[0].startswith("Fall ")


# ---- resolving (cmd.case.resolve) ----------------------------------------------------------

def test_resolve_marks_the_case_done_by_the_actor(state):
    run(state, absence("abs-1", *LONG))
    task = only_task(run(state, resolve(CASE, initials="CD")))
    assert task["status"] == "done"
    assert task["version"] == 2
    assert task["history"][-1]["by"] == "CD"
    assert task["history"][-1]["at"] == "2026-11-26T09:15:30+01:00"


def test_resolve_unknown_case_is_rejected(state):
    result = run(state, resolve(f"case:absence:{VPA}:nope"))
    assert result.tasks == []
    assert len(result.rejections) == 1
    assert result.rejections[0].startswith("Fall ")
    assert f"case:absence:{VPA}:nope" in result.rejections[0]


@pytest.mark.parametrize("close", ["resolve", "cancel"])
def test_resolve_closed_case_is_rejected(state, close):
    run(state, absence("abs-1", *LONG))
    run(state, resolve(CASE) if close == "resolve" else cancel("abs-1"))
    result = run(state, resolve(CASE))
    assert result.tasks == []
    assert len(result.rejections) == 1
    assert result.rejections[0].startswith("Fall ")
    assert CASE in result.rejections[0]
    assert get_task(state, CASE)["status"] == ("done" if close == "resolve" else "cancelled")


def test_resolve_of_a_non_case_task_is_left_to_its_owner(state):
    result = run(state, resolve("reminder:r-1"))
    assert result.tasks == [] and result.rejections == []
