"""The journey processor (DESIGN 2.3, fine print 5.5, 5.10, 5.11, 5.23, 5.24, 5.25)."""
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.config.settings import Settings
from services.core.ids import rendezvous_pick
from services.core.processor import Context, pop_timer, timers_of
from services.core.roster import apply_roster_event
from services.core.tasks import fold
from services.journey.service import TIMER_ID, Journey
from tests import builders

BERLIN = ZoneInfo("Europe/Berlin")
VPA = "V-J1"
_ids = iter(range(1, 100_000))
AT = {"initials": "AB", "role": "at"}
MANAGER = {"initials": "MA", "role": "vpa_manager"}
SYSTEM = {"initials": "SYS", "role": "system"}


def local(y, m, d, hh=9, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BERLIN)


def envelope(type_, data=None, *, at: datetime, vpa_id=VPA, actor=None):
    return builders.decoded(type_, data, at=at.isoformat(), vpa_id=vpa_id, actor=actor, event_id=f"j{next(_ids)}")


def registered(started_on: str, at: datetime, owner="AB", buddy=None, cls=None, name="Anna Schmidt"):
    return envelope("vpa.registered", {"name": name, "started_on": started_on, "at_owner": owner, "buddy": buddy,
                                       "class": cls}, at=at)


def clear(stage: str, actor: dict, at: datetime, note="erledigt"):
    return envelope("cmd.journey.clear", {"stage": stage, "note": note}, at=at, actor=actor)


def roster(*members, absences=()) -> dict:
    r: dict = {}
    for initials, role, active in members:
        env = envelope("roster.member_upserted", {"initials": initials, "name": initials, "role": role,
                                                  "deputy": None, "active": active}, at=local(2026, 1, 1), vpa_id=None)
        r[initials] = apply_roster_event(r.get(initials), env)
    for initials, starts_on, ends_on in absences:
        env = envelope("roster.absence_registered", {"absence_id": f"{initials}-{starts_on}", "initials": initials,
                                                     "kind": "vacation", "starts_on": starts_on, "ends_on": ends_on},
                       at=local(2026, 1, 1), vpa_id=None)
        r[initials] = apply_roster_event(r[initials], env)
    return r


class Driver:
    """One VPA's state under the processor, with the clock driven by the test."""

    def __init__(self, roster_: dict | None = None):
        self.proc = Journey()
        self.state: dict = {}
        self.roster = roster_ or {}
        self.rejections: list[str] = []
        self.published: dict[str, dict] = {}  # the store's view: versions folded with their history

    def _take(self, tasks: list[dict]) -> list[dict]:
        for t in tasks:
            self.published[t["task_id"]] = fold(self.published.get(t["task_id"]), t)
        return tasks

    def ctx(self, now: datetime) -> Context:
        return Context(now=now, settings=Settings(), roster=self.roster)

    def send(self, env, now: datetime | None = None) -> list[dict]:
        result = self.proc.handle(self.state, env, self.ctx(now or env.occurred_at))
        self.rejections += result.rejections
        return self._take(result.tasks)

    def timer_due(self) -> datetime | None:
        timers = timers_of(self.state)
        return timers[0].due_at if timers else None

    def fire(self) -> list[dict]:
        """Fire the VPA's pending sweep timer at its due time."""
        timer = pop_timer(self.state, TIMER_ID)
        assert timer is not None
        return self._take(self.proc.on_timer(self.state, timer, self.ctx(timer.due_at)).tasks)

    def reassign(self, now: datetime) -> list[dict]:
        return self._take(self.proc.reassign(self.state, self.ctx(now)).tasks)

    def task(self, stage: str) -> dict | None:
        """The stage's task as the store shows it (a closed one leaves the state as a tombstone)."""
        return self.published.get(f"journey:{VPA}:{stage}")


def only(tasks: list[dict]) -> dict:
    assert len(tasks) == 1, tasks
    return tasks[0]


# ---- opening --------------------------------------------------------------------------------

def test_registration_on_the_first_day_opens_new_0_3_and_sets_the_next_sweep_timer():
    d = Driver()
    t = only(d.send(registered("2026-01-31", local(2026, 1, 31, 9, 30), cls="B")))
    assert t["task_id"] == f"journey:{VPA}:NEW_0_3"
    assert (t["tab"], t["kind"], t["stage"], t["status"], t["priority"]) == ("journey", "journey", "NEW_0_3", "open", "normal")
    assert (t["owner"], t["assignee"], t["reasons"], t["vpa_name"]) == ("AB", "AB", [], "Anna Schmidt")
    assert "Onboarding-Call" in t["action"] and t["title"].startswith("NEU in 0-3 Monate")
    assert t["created_at"] == "2026-01-31T09:30:00+01:00"
    assert t["history"] == [{"at": "2026-01-31T09:30:00+01:00", "change": "Journey-Schritt eröffnet", "by": "journey"}]
    assert d.timer_due() == local(2026, 4, 30, 6, 0)  # clamped: 31 Jan + 3 months


@pytest.mark.parametrize("day, opens", [(28, True), (29, True), (30, False), (31, False)])
def test_registration_mid_stage_opens_only_within_days_0_to_29(day, opens):
    # NEW_6_9 of a VPA started 2025-11-15 begins 2026-05-15; day 29 is 13 June, day 30 is 14 June.
    d = Driver()
    tasks = d.send(registered("2025-11-15", local(2026, 5, 15) + timedelta(days=day), cls="C"))
    assert [t["stage"] for t in tasks] == (["NEW_6_9"] if opens else [])
    assert d.timer_due() == local(2026, 8, 15, 6, 0)  # NEW_9_12 still opens on its first day


def test_registration_day_is_the_events_local_date():
    # 23:30 UTC on 13 June is 01:30 on 14 June in Berlin: day 30 of NEW_6_9, nothing opens.
    d = Driver()
    env = registered("2025-11-15", datetime.fromisoformat("2026-06-13T23:30:00+00:00"))
    assert d.send(env) == []


def test_future_started_on_opens_nothing_until_0600_on_that_day():
    d = Driver()
    assert d.send(registered("2026-03-02", local(2026, 2, 20))) == []
    assert d.timer_due() == local(2026, 3, 2, 6, 0)
    t = only(d.fire())
    assert (t["stage"], t["created_at"]) == ("NEW_0_3", "2026-03-02T06:00:00+01:00")
    assert d.timer_due() == local(2026, 6, 2, 6, 0)


def test_the_sweep_timers_open_every_stage_on_its_first_day_and_earlier_ones_stay_open():
    d = Driver(roster(("MA", "vpa_manager", True)))
    d.send(registered("2026-01-31", local(2026, 1, 31, 5, 0), buddy="BU", cls="D"))
    opened = []
    while d.timer_due() is not None:
        opened += d.fire()
    assert [(t["stage"], t["created_at"]) for t in opened] == [
        ("NEW_3_6", "2026-04-30T06:00:00+02:00"), ("NEW_6_9", "2026-07-31T06:00:00+02:00"),
        ("NEW_9_12", "2026-10-31T06:00:00+01:00"), ("NEW_GT_12", "2027-01-31T06:00:00+01:00")]
    assert all(d.task(s)["status"] == "open" for s in ("NEW_0_3", "NEW_3_6", "NEW_6_9", "NEW_9_12", "NEW_GT_12"))
    assert d.task("NEW_6_9")["reasons"] == ["measures_needed"] == d.task("NEW_9_12")["reasons"]


def test_repeated_registration_changes_nothing_and_a_cleared_stage_stays_cleared():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31)))
    assert d.send(registered("2026-01-31", local(2026, 2, 1))) == []
    d.send(envelope("vpa.onboarding_call_completed", at=local(2026, 2, 2)))
    assert d.send(registered("2026-01-31", local(2026, 2, 3))) == []
    assert d.task("NEW_0_3")["status"] == "done"


# ---- reasons --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, reason", [("A", "class_ok"), ("B", "class_ok"), ("C", "measures_needed"),
                                         ("D", "measures_needed"), (None, "class_unknown")])
def test_class_check_stages_carry_the_class_reason(cls, reason):
    d = Driver()
    t = only(d.send(registered("2025-11-15", local(2026, 5, 20), cls=cls)))
    assert t["reasons"] == [reason]


@pytest.mark.parametrize("stage_start, stage", [("2026-01-10", "NEW_0_3"), ("2025-10-10", "NEW_3_6"),
                                                ("2025-01-10", "NEW_GT_12")])
def test_other_stages_carry_no_reason_even_with_a_class(stage_start, stage):
    d = Driver()
    t = only(d.send(registered(stage_start, local(2026, 1, 20), cls="D")))
    assert (t["stage"], t["reasons"]) == (stage, [])


def test_class_change_updates_the_reason_of_an_open_class_check_task():
    d = Driver()
    d.send(registered("2025-11-15", local(2026, 5, 20), cls="B"))
    t = only(d.send(envelope("vpa.class_changed", {"class": "C", "previous": "B"}, at=local(2026, 5, 21))))
    assert (t["reasons"], t["version"]) == (["measures_needed"], 2)
    assert "Maßnahmen" in t["action"]
    assert t["history"][-1]["change"] == "Klasse geändert: measures_needed"
    t = only(d.send(envelope("vpa.class_changed", {"class": "A", "previous": "C"}, at=local(2026, 5, 22))))
    assert t["reasons"] == ["class_ok"]
    d.send(clear("NEW_6_9", AT, local(2026, 5, 23)))
    assert d.send(envelope("vpa.class_changed", {"class": "D", "previous": "A"}, at=local(2026, 5, 24))) == []
    assert d.task("NEW_6_9")["reasons"] == ["class_ok"]


def test_a_class_change_before_the_stage_opens_is_used_when_it_opens():
    d = Driver()
    d.send(registered("2026-01-10", local(2026, 1, 10), cls="A"))
    d.send(envelope("vpa.class_changed", {"class": "D", "previous": "A"}, at=local(2026, 5, 1)))
    d.fire()  # NEW_3_6 on 10 April
    t = only(d.fire())  # NEW_6_9 on 10 July
    assert (t["stage"], t["reasons"]) == ("NEW_6_9", ["measures_needed"])


# ---- clearing -------------------------------------------------------------------------------

def test_onboarding_call_clears_new_0_3_only_while_open():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31)))
    t = only(d.send(envelope("vpa.onboarding_call_completed", at=local(2026, 2, 10))))
    assert (t["status"], t["version"], t["history"][-1]["by"]) == ("done", 2, "journey")
    assert d.send(envelope("vpa.onboarding_call_completed", at=local(2026, 2, 11))) == []
    assert d.rejections == []


def test_checkin_call_clears_new_3_6_and_does_nothing_before_it_opens():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31), buddy="BU"))
    checkin = {"scheduled_for": "2026-05-05T10:00:00+02:00", "buddy": "BU"}
    assert d.send(envelope("vpa.checkin_call_scheduled", checkin, at=local(2026, 3, 1))) == []
    d.fire()
    t = only(d.send(envelope("vpa.checkin_call_scheduled", checkin, at=local(2026, 5, 2))))
    assert (t["stage"], t["status"]) == ("NEW_3_6", "done")
    assert "Di 05.05.2026, 10:00 Uhr" in t["history"][-1]["change"]
    assert d.task("NEW_0_3")["status"] == "open"  # not cleared by the check-in call


def test_clearing_events_do_not_clear_other_stages():
    d = Driver()
    d.send(registered("2025-10-10", local(2026, 1, 20)))  # NEW_3_6 opens
    assert d.send(envelope("vpa.onboarding_call_completed", at=local(2026, 1, 21))) == []
    assert d.task("NEW_3_6")["status"] == "open"


@pytest.mark.parametrize("actor", [AT, MANAGER, SYSTEM])
def test_cmd_clear_clears_a_stage_for_any_role_except_new_gt_12(actor):
    d = Driver()
    d.send(registered("2025-11-15", local(2026, 5, 20), cls="C"))
    t = only(d.send(clear("NEW_6_9", actor, local(2026, 5, 21), note="Maßnahmen besprochen")))
    assert t["status"] == "done"
    assert t["history"][-1] == {"at": "2026-05-21T09:00:00+02:00", "change": "Flag entfernt: Maßnahmen besprochen",
                                "by": actor["initials"]}


@pytest.mark.parametrize("actor", [AT, SYSTEM])
def test_new_gt_12_cannot_be_cleared_by_at_or_system(actor):
    d = Driver(roster(("MA", "vpa_manager", True)))
    d.send(registered("2025-01-10", local(2026, 1, 20)))
    before = json.dumps(d.state, sort_keys=True)
    assert d.send(clear("NEW_GT_12", actor, local(2026, 1, 21))) == []
    assert len(d.rejections) == 1
    assert d.rejections[0].startswith("nur ein VPA Manager darf")
    assert "nur ein VPA Manager darf NEW_GT_12" in d.rejections[0]
    assert json.dumps(d.state, sort_keys=True) == before


def test_new_gt_12_is_cleared_by_a_vpa_manager():
    d = Driver(roster(("MA", "vpa_manager", True)))
    d.send(registered("2025-01-10", local(2026, 1, 20)))
    t = only(d.send(clear("NEW_GT_12", MANAGER, local(2026, 1, 21))))
    assert (t["status"], t["history"][-1]["by"]) == ("done", "MA")


def test_cmd_clear_without_an_open_task_is_rejected():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31)))
    assert d.send(clear("NEW_3_6", AT, local(2026, 2, 1))) == []
    assert d.rejections == [f"kein offener Journey-Schritt NEW_3_6 für {VPA}"]
    d.send(clear("NEW_0_3", AT, local(2026, 2, 2)))
    assert d.send(clear("NEW_0_3", AT, local(2026, 2, 3))) == []
    assert d.rejections[-1] == f"kein offener Journey-Schritt NEW_0_3 für {VPA} (er ist erledigt)"


def test_cmd_clear_for_an_unknown_vpa_is_rejected():
    d = Driver()
    assert d.send(clear("NEW_0_3", AT, local(2026, 2, 1))) == []
    assert d.rejections[0].startswith("kein offener Journey-Schritt NEW_0_3")


# ---- assignees ------------------------------------------------------------------------------

def test_new_3_6_goes_to_the_buddy_else_the_at_owner():
    d = Driver()
    t = only(d.send(registered("2025-10-10", local(2026, 1, 20), buddy="BU")))
    assert (t["owner"], t["assignee"]) == ("AB", "BU")
    t = only(d.send(envelope("vpa.profile_updated", {"buddy": None}, at=local(2026, 1, 21))))
    assert (t["owner"], t["assignee"], t["version"]) == ("AB", "AB", 2)
    t = only(d.send(envelope("vpa.profile_updated", {"buddy": "BV"}, at=local(2026, 1, 22))))
    assert t["assignee"] == "BV"
    assert t["history"][-1]["change"] == "Zugewiesen an BV (vorher AB)"


def test_owner_change_moves_open_journey_tasks_and_name_change_updates_vpa_name():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31), buddy="BU"))
    d.fire()  # NEW_3_6 for the buddy
    d.send(envelope("vpa.onboarding_call_completed", at=local(2026, 5, 1)))  # NEW_0_3 done
    t = only(d.send(envelope("vpa.profile_updated", {"at_owner": "CD", "name": "Anna Weber"}, at=local(2026, 5, 2))))
    assert (t["stage"], t["owner"], t["assignee"], t["vpa_name"]) == ("NEW_3_6", "CD", "BU", "Anna Weber")
    assert (d.task("NEW_0_3")["owner"], d.task("NEW_0_3")["vpa_name"]) == ("AB", "Anna Schmidt")  # done: untouched
    d.send(envelope("vpa.checkin_call_scheduled", {"scheduled_for": "2026-05-10T10:00:00+02:00"}, at=local(2026, 5, 3)))
    t = only(d.fire())  # NEW_6_9 opens for the new owner
    assert (t["owner"], t["assignee"], t["vpa_name"]) == ("CD", "CD", "Anna Weber")


def test_journey_tasks_are_not_handed_over_when_the_owner_is_absent():
    d = Driver(roster(("AB", "at", True), ("CD", "at", True), absences=[("AB", "2026-01-01", None)]))
    t = only(d.send(registered("2026-01-31", local(2026, 1, 31))))
    assert (t["assignee"], t["reasons"]) == ("AB", [])
    assert d.reassign(local(2026, 2, 1, 0, 0)) == []


MANAGERS = ("MA", "MB", "MC")


def test_new_gt_12_goes_to_a_present_vpa_manager_picked_by_rendezvous_hashing():
    d = Driver(roster(("AB", "at", True), ("CD", "at", True), *[(m, "vpa_manager", True) for m in MANAGERS],
                      ("MX", "vpa_manager", False)))
    t = only(d.send(registered("2025-01-10", local(2026, 1, 20))))
    assert t["stage"] == "NEW_GT_12"
    assert (t["owner"], t["assignee"], t["reasons"]) == ("AB", rendezvous_pick(VPA, list(MANAGERS)), [])


def test_new_gt_12_is_re_picked_on_roster_changes_and_falls_back_to_the_at_owner():
    d = Driver(roster(*[(m, "vpa_manager", True) for m in MANAGERS]))
    first = only(d.send(registered("2025-01-10", local(2026, 1, 20))))["assignee"]
    others = [m for m in MANAGERS if m != first]
    # The picked manager goes on vacation: the next best of the others takes over.
    d.roster = roster(*[(m, "vpa_manager", True) for m in MANAGERS], absences=[(first, "2026-02-01", "2026-02-10")])
    assert d.reassign(local(2026, 1, 25)) == []  # absence not started yet
    t = only(d.reassign(local(2026, 2, 1, 0, 0)))
    assert t["assignee"] == rendezvous_pick(VPA, others)
    assert t["history"][-1] == {"at": "2026-02-01T00:00:00+01:00",
                                "change": f"VPA Manager neu zugeteilt: {t['assignee']}", "by": "journey"}
    # Nobody available: back to the at_owner, without any handover reason.
    d.roster = roster(*[(m, "vpa_manager", False) for m in MANAGERS])
    t = only(d.reassign(local(2026, 2, 2)))
    assert (t["assignee"], t["reasons"]) == ("AB", [])
    assert t["history"][-1]["change"] == "Kein VPA Manager verfügbar: zugewiesen an AB"
    # Managers back: the original pick again (rendezvous hashing is a pure function of the roster).
    d.roster = roster(*[(m, "vpa_manager", True) for m in MANAGERS])
    assert only(d.reassign(local(2026, 2, 20)))["assignee"] == first


def test_new_gt_12_without_any_vpa_manager_goes_to_the_at_owner():
    d = Driver(roster(("AB", "at", True), ("CD", "at", True)))
    t = only(d.send(registered("2025-01-10", local(2026, 1, 20))))
    assert t["assignee"] == "AB"


def test_reassign_leaves_a_cleared_new_gt_12_alone():
    d = Driver(roster(("MA", "vpa_manager", True)))
    d.send(registered("2025-01-10", local(2026, 1, 20)))
    d.send(clear("NEW_GT_12", MANAGER, local(2026, 1, 21)))
    d.roster = {}
    assert d.reassign(local(2026, 1, 22)) == []


# ---- offboarding ----------------------------------------------------------------------------

def test_offboarding_cancels_open_journey_tasks_and_ignores_later_vpa_events():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31), buddy="BU"))
    d.fire()  # NEW_3_6
    d.send(envelope("vpa.checkin_call_scheduled", {"scheduled_for": "2026-05-05T10:00:00+02:00"}, at=local(2026, 5, 1)))
    tasks = d.send(envelope("vpa.offboarded", at=local(2026, 5, 2)))
    assert [(t["stage"], t["status"]) for t in tasks] == [("NEW_0_3", "cancelled")]
    assert d.task("NEW_3_6")["status"] == "done"
    # no sweep timer any more; what is left is the erasure VPA_ERASE_AFTER_DAYS after offboarding
    assert [t.timer_id for t in timers_of(d.state)] == ["erase:after-offboarding"]
    assert d.send(envelope("vpa.onboarding_call_completed", at=local(2026, 5, 3))) == []
    assert d.send(envelope("vpa.profile_updated", {"at_owner": "CD"}, at=local(2026, 5, 3))) == []
    assert d.send(envelope("vpa.class_changed", {"class": "D"}, at=local(2026, 5, 3))) == []
    assert d.send(clear("NEW_0_3", AT, local(2026, 5, 4))) == []
    assert d.rejections == [f"kein offener Journey-Schritt NEW_0_3 für {VPA} (er ist abgebrochen)"]


def test_a_new_registration_after_offboarding_counts_again():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31)))
    d.send(envelope("vpa.offboarded", at=local(2026, 2, 1)))
    t = only(d.send(registered("2026-02-10", local(2026, 2, 10), owner="CD")))
    assert (t["stage"], t["status"], t["owner"], t["version"]) == ("NEW_0_3", "open", "CD", 3)
    assert t["history"][-1]["change"] == "Journey-Schritt erneut eröffnet"
    assert d.timer_due() == local(2026, 5, 10, 6, 0)


# ---- timers firing late (wall clock after an outage) ------------------------------------------

def test_a_late_sweep_timer_still_opens_its_stage_and_the_next_one_follows_from_the_stage():
    d = Driver()
    d.send(registered("2026-01-31", local(2026, 1, 31)))
    timer = pop_timer(d.state, TIMER_ID)
    late = local(2026, 8, 5, 10, 0)  # NEW_3_6 was due 30 April; NEW_6_9 began 31 July
    t = only(d.proc.on_timer(d.state, timer, d.ctx(late)).tasks)
    assert (t["stage"], t["created_at"]) == ("NEW_3_6", "2026-08-05T10:00:00+02:00")
    assert d.timer_due() == local(2026, 7, 31, 6, 0)  # already due: the runner fires it right after
    t = only(d.proc.on_timer(d.state, pop_timer(d.state, TIMER_ID), d.ctx(late)).tasks)
    assert t["stage"] == "NEW_6_9"


def test_a_registration_that_arrives_late_schedules_a_timer_in_the_past():
    # Event time 29 April (day 88 of NEW_0_3: nothing), handled with the clock already on 2 May.
    d = Driver()
    assert d.send(registered("2026-01-31", local(2026, 4, 29)), now=local(2026, 5, 2)) == []
    assert d.timer_due() == local(2026, 4, 30, 6, 0)


def test_the_last_stage_leaves_no_timer_and_nothing_happens_for_unknown_vpas():
    d = Driver()
    d.send(registered("2025-01-10", local(2026, 1, 20)))
    assert d.timer_due() is None
    assert Journey().reassign({}, d.ctx(local(2026, 1, 20))).tasks == []
    empty: dict = {}
    assert Journey().handle(empty, envelope("vpa.onboarding_call_completed", at=local(2026, 1, 20)),
                            d.ctx(local(2026, 1, 20))).tasks == []
