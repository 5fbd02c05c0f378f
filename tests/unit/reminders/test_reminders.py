"""The reminders processor (DESIGN 2.2, 4.5, fine print 5.8, 5.9, 5.11 to 5.14, 5.24, 5.25)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from schemas.task import Task
from services.config.settings import Settings
from services.core.processor import Context, timers_of
from services.core.tasks import fold
from services.reminders.service import Reminders
from tests.builders import SYS
from tests.unit.reminder_helpers import absence, absence_ended, apply, envelope, member, roster_of

VPA = "V-7"
TID = "reminder:r-1"
AT_AB = {"initials": "AB", "role": "at"}
T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)  # Thu 26 Nov 2026, 09:00 Berlin
DUE = "2026-11-27T10:00:00+01:00"  # Fri 10:00 Berlin
DUE_DT = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


class Harness:
    """One VPA's state, the roster and a clock: what a runner hands the processor."""

    def __init__(self, roster: dict | None = None, now: datetime = T0):
        self.proc = Reminders()
        self.state: dict = {}
        self.roster = roster if roster is not None else team()
        self.now = now
        self.published: dict[str, dict] = {}  # the store's view: versions folded with their history

    def _take(self, result):
        for t in result.tasks:
            self.published[t["task_id"]] = fold(self.published.get(t["task_id"]), t)
        return result

    def ctx(self) -> Context:
        return Context(now=self.now, settings=Settings(), roster=self.roster)

    def send(self, env):
        return self._take(self.proc.handle(self.state, env, self.ctx()))

    def roster_change(self, *envs):
        apply(self.roster, *envs)
        return self._take(self.proc.reassign(self.state, self.ctx()))

    def advance(self, to: datetime):
        """Fire due timers in order up to ``to`` (as a runner would), then set the clock."""
        results = []
        while True:
            due = sorted((t for t in timers_of(self.state) if t.due_at <= to), key=lambda t: t.due_at)
            if not due:
                break
            t = due[0]
            self.state["timers"].pop(t.timer_id)
            self.now = max(self.now, t.due_at)
            results.append(self._take(self.proc.on_timer(self.state, t, self.ctx())))
        self.now = max(self.now, to)
        return results

    def midnight(self, day: datetime):
        self.advance(day)
        return self._take(self.proc.reassign(self.state, self.ctx()))

    def task(self, task_id: str = TID) -> dict:
        """The reminder as the store shows it (a closed one leaves the state as a tombstone)."""
        return self.published[task_id]


def team():
    return roster_of(member("AB", deputy="CD"), member("CD"), member("EF"), member("VM", role="vpa_manager"))


def cmd(type_: str, data: dict, actor: dict = AT_AB, vpa_id: str = VPA, **kw):
    return envelope(type_, data, actor=actor, vpa_id=vpa_id, **kw)


def set_cmd(reminder_id: str = "r-1", due_at: str = DUE, owner: str = "AB", **extra):
    return cmd("cmd.reminder.set", {"reminder_id": reminder_id, "due_at": due_at, "owner": owner, **extra})


def complete(reminder_id: str = "r-1", vpa_id: str = VPA, **extra):
    return cmd("cmd.reminder.complete", {"reminder_id": reminder_id, **extra}, vpa_id=vpa_id)


def reschedule(due_at: str, reminder_id: str = "r-1", **kw):
    return cmd("cmd.reminder.reschedule", {"reminder_id": reminder_id, "due_at": due_at}, **kw)


_confirmations = itertools.count(1)


AB_ACTOR = {"initials": "AB", "role": "at"}


def resolve(task_id: str, note: str = "erledigt", file_updated=None, **kw):  # noqa: ANN001
    data = {"task_id": task_id, "note": note}
    if file_updated is not None:
        data["file_updated"] = file_updated
    return cmd("cmd.case.resolve", data, **kw)


def confirmed(task_id: str, actor=None, **data):  # noqa: ANN001
    """The detector's confirmation that the case closed (detector: event id), under the actor of the
    resolve it confirms (the system for a case that closed by itself)."""
    return resolve(task_id, actor=actor or SYS, event_id=f"detector:case.resolve:{task_id}:{next(_confirmations)}",
                   **data)


def registered(name: str = "Lena Berg", **kw):
    return envelope("vpa.registered", {"name": name, "started_on": "2026-01-10", "at_owner": "AB"},
                    vpa_id=VPA, **kw)


def only(result) -> dict:
    assert not result.rejections, result.rejections
    assert len(result.tasks) == 1, result.tasks
    return result.tasks[0]


def rejected(result, needle: str) -> str:
    assert not result.tasks and len(result.rejections) == 1, result
    reason = result.rejections[0]
    assert not reason.startswith("rejected") and needle in reason, reason  # the engine adds the kind
    return reason


# ---- set ---------------------------------------------------------------------------------

def test_set_creates_a_waiting_reminder_with_all_fields():
    h = Harness()
    h.send(registered())
    t = only(h.send(set_cmd(note="Rückruf wegen Kundenwechsel")))
    Task.model_validate(t)  # the contract's shape (4.6)
    assert t["task_id"] == TID and t["tab"] == "reminders" and t["kind"] == "reminder"
    assert t["status"] == "waiting" and t["due_at"] == "2026-11-27T10:00:00+01:00"
    assert t["owner"] == t["assignee"] == "AB" and t["reasons"] == []
    assert t["vpa_id"] == VPA and t["vpa_name"] == "Lena Berg" and t["priority"] == "normal"
    assert t["title"] == "Reminder: Rückruf wegen Kundenwechsel"
    assert "VPA-Akte gepflegt" in t["action"] and t["message_draft"] is None and t["stage"] is None
    assert t["version"] == 1 and t["created_at"] == "2026-11-26T09:00:00+01:00"
    assert t["history"] == [{"at": "2026-11-26T09:00:00+01:00", "by": "AB",
                             "change": "Reminder für AB gesetzt, fällig am Fr 27.11.2026, 10:00 Uhr"}]
    assert [(x.timer_id, x.due_at) for x in timers_of(h.state)] == [("due:r-1", DUE_DT)]


@pytest.mark.parametrize("owner, needle", [
    ("ZZ", "ZZ ist nicht im AT-Dienstplan"),
    ("GH", "GH ist kein aktives Mitglied des AT-Dienstplans"),
])
def test_set_for_unknown_or_inactive_owner_is_rejected(owner, needle):
    h = Harness(roster_of(member("AB"), member("GH", active=False)))
    rejected(h.send(set_cmd(owner=owner)), needle)
    assert h.state.get("tasks", {}) == {} and not timers_of(h.state)


def test_owner_known_only_through_an_absence_is_not_in_the_roster():
    h = Harness(roster_of(absence("x", "ZZ", "2026-11-01", None)))
    rejected(h.send(set_cmd(owner="ZZ")), "nicht im AT-Dienstplan")


def test_a_rejected_set_does_not_use_up_the_reminder_id():
    h = Harness()
    rejected(h.send(set_cmd(owner="ZZ")), "ZZ")
    assert only(h.send(set_cmd(owner="AB")))["owner"] == "AB"


def test_owner_may_be_a_vpa_manager():
    h = Harness()
    t = only(h.send(set_cmd(owner="VM")))
    assert t["owner"] == t["assignee"] == "VM"


def test_repeated_reminder_id_is_rejected_even_after_completion():
    h = Harness()
    h.send(set_cmd())
    rejected(h.send(set_cmd(due_at="2026-12-01T10:00:00+01:00")), "Reminder r-1 für V-7 gibt es bereits")
    assert h.task()["due_at"] == DUE and h.task()["version"] == 1
    h.send(complete(file_updated=True))
    rejected(h.send(set_cmd()), "gibt es bereits")


def test_set_due_now_or_in_the_past_is_open_at_once_without_timer():
    h = Harness()
    assert only(h.send(set_cmd("r-now", due_at="2026-11-26T09:00:00+01:00")))["status"] == "open"
    assert only(h.send(set_cmd("r-past", due_at="2026-11-20T09:00:00+01:00")))["status"] == "open"
    assert not timers_of(h.state)


def test_set_one_second_ahead_waits():
    h = Harness()
    assert only(h.send(set_cmd(due_at="2026-11-26T09:00:01+01:00")))["status"] == "waiting"


def test_set_before_registration_gets_the_name_later():
    h = Harness()
    assert only(h.send(set_cmd()))["vpa_name"] is None
    t = only(h.send(registered("Lena Berg")))
    assert t["vpa_name"] == "Lena Berg" and t["history"][-1]["change"] == "Profil aktualisiert"
    t = only(h.send(envelope("vpa.profile_updated", {"name": "Lena Sommer"}, vpa_id=VPA)))
    assert t["vpa_name"] == "Lena Sommer"


def test_profile_update_of_at_owner_keeps_the_reminder_owner():
    h = Harness()
    h.send(registered())
    h.send(set_cmd())
    r = h.send(envelope("vpa.profile_updated", {"at_owner": "EF"}, vpa_id=VPA))
    assert r.tasks == [] and h.task()["owner"] == "AB"


# ---- due -----------------------------------------------------------------------------------

def test_waiting_until_due_then_open():
    h = Harness()
    h.send(set_cmd())
    assert h.advance(DUE_DT - timedelta(seconds=1)) == [] and h.task()["status"] == "waiting"
    (r,) = h.advance(DUE_DT)
    t = only(r)
    assert t["status"] == "open" and t["version"] == 2
    assert t["history"][-1] == {"at": "2026-11-27T10:00:00+01:00", "change": "Reminder fällig", "by": "reminders"}


def test_due_timer_re_evaluates_handover():
    """An absence registered in advance for the due day: nobody called reassign yet, the due does."""
    h = Harness()
    h.send(set_cmd())
    apply(h.roster, absence("v1", "AB", "2026-11-27", "2026-11-27"))  # roster changed, no reassign call
    (r,) = h.advance(DUE_DT)
    t = only(r)
    assert (t["status"], t["assignee"], t["reasons"]) == ("open", "CD", ["handover"])
    assert t["history"][-1]["change"] == "Reminder fällig; Übergabe an CD: AB ist abwesend"


def test_stale_timer_after_completion_does_nothing():
    h = Harness()
    h.send(set_cmd())
    timer = timers_of(h.state)[0]
    h.send(complete(file_updated=True))
    assert not timers_of(h.state)
    h.now = DUE_DT
    assert h.proc.on_timer(h.state, timer, h.ctx()).tasks == []
    assert h.task()["status"] == "done"


# ---- reschedule ----------------------------------------------------------------------------

def test_reschedule_to_the_future_waits_again_and_moves_the_timer():
    h = Harness()
    h.send(set_cmd())
    h.advance(DUE_DT)
    assert h.task()["status"] == "open"
    t = only(h.send(reschedule("2026-11-30T12:00:00+01:00")))
    assert (t["status"], t["due_at"]) == ("waiting", "2026-11-30T12:00:00+01:00")
    assert t["history"][-1]["by"] == "AB"
    assert t["history"][-1]["change"] == "Reminder neu terminiert auf Mo 30.11.2026, 12:00 Uhr"
    assert [x.due_at for x in timers_of(h.state)] == [datetime(2026, 11, 30, 11, 0, tzinfo=timezone.utc)]


def test_reschedule_to_the_past_opens_at_once():
    h = Harness()
    h.send(set_cmd())
    t = only(h.send(reschedule("2026-11-26T08:00:00+01:00")))
    assert t["status"] == "open" and not timers_of(h.state)
    h.advance(DUE_DT + timedelta(days=1))  # the old timer is gone: nothing fires
    assert h.task()["version"] == 2


def test_reschedule_earlier_fires_at_the_new_time_only():
    h = Harness()
    h.send(set_cmd())
    h.send(reschedule("2026-11-26T15:00:00+01:00"))
    results = h.advance(DUE_DT + timedelta(days=1))
    assert len(results) == 1 and only(results[0])["updated_at"] == "2026-11-26T15:00:00+01:00"


def test_reschedule_unknown_or_closed_reminder_is_rejected():
    h = Harness()
    rejected(h.send(reschedule(DUE)), "Reminder r-1 von V-7 ist unbekannt")
    h.send(set_cmd())
    h.send(complete(file_updated=True))
    rejected(h.send(reschedule(DUE)), "Reminder r-1 ist bereits erledigt")


def test_command_for_another_vpa_is_rejected():
    h = Harness()
    h.send(set_cmd())
    # State is per VPA: the same reminder_id under another vpa_id is unknown there.
    other = Harness(h.roster)
    rejected(other.send(reschedule(DUE, vpa_id="V-8")), "Reminder r-1 von V-8 ist unbekannt")
    rejected(other.send(complete(file_updated=True, vpa_id="V-8")), "Reminder r-1 von V-8 ist unbekannt")


# ---- complete ------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [{}, {"file_updated": False}, {"file_updated": None}])
def test_complete_without_file_updated_true_is_rejected_and_leaves_it(extra):
    h = Harness()
    h.send(set_cmd())
    h.advance(DUE_DT)
    before = dict(h.task())
    rejected(h.send(complete(**extra)), "file_updated: true")
    assert h.task() == before and h.task()["status"] == "open"


def test_complete_with_file_updated_is_done_and_does_not_resolve_the_case():
    h = Harness()
    h.send(set_cmd(case_task_id="case:absence:V-7:a1"))
    r = h.send(complete(file_updated=True))
    t = only(r)
    assert t["status"] == "done" and t["history"][-1]["by"] == "AB"
    assert r.commands == []  # 5.14: no cmd.case.resolve
    rejected(h.send(complete(file_updated=True)), "bereits erledigt")


def test_complete_unknown_is_rejected():
    rejected(Harness().send(complete(file_updated=True)), "Reminder r-1 von")


# ---- linked cases --------------------------------------------------------------------------

FOLLOW = "case:inactive:V-7:e-inact"


def system_follow_up():
    return cmd("cmd.reminder.set", {"reminder_id": f"follow-up:{FOLLOW}", "due_at": DUE, "owner": "AB",
                                    "case_task_id": FOLLOW}, actor=SYS)


def test_system_follow_up_reminder_behaves_like_any_other():
    h = Harness()
    t = only(h.send(system_follow_up()))
    assert t["task_id"] == f"reminder:follow-up:{FOLLOW}" and t["status"] == "waiting"
    assert t["history"][0]["by"] == "SYS" and "wieder aktiv" in t["title"]


def test_a_case_closed_by_itself_cancels_only_its_automatic_reminder():
    """DESIGN 5.13/5.13a: the detector's system confirmation (the case decided itself) cancels the
    automatic inactivity reminder; a reminder a person linked to the case stays."""
    h = Harness()
    h.send(system_follow_up())
    h.send(set_cmd("r-open", due_at="2026-11-25T09:00:00+01:00", case_task_id=FOLLOW))
    h.send(set_cmd("r-other", case_task_id="case:absence:V-7:a1"))
    h.send(set_cmd("r-free"))
    # A person's resolve, or a system one not from the detector, is not the detector's word.
    assert h.send(resolve(FOLLOW)).tasks == [] and h.send(resolve(FOLLOW, actor=SYS)).tasks == []
    r = h.send(confirmed(FOLLOW, note="Fall hat sich von selbst erledigt"))
    assert [(t["task_id"], t["status"]) for t in r.tasks] == [(f"reminder:follow-up:{FOLLOW}", "cancelled")]
    assert r.tasks[0]["history"][-1]["by"] == "SYS"
    assert r.tasks[0]["history"][-1]["change"] == "Fall hat sich von selbst erledigt"
    for other in ("r-open", "r-other", "r-free"):
        assert h.task(f"reminder:{other}")["status"] in ("waiting", "open")
    # Resolving again or an unknown case is not rejected here (the detector owns cases).
    assert h.send(resolve(FOLLOW)).rejections == []
    assert h.send(resolve("case:absence:V-7:nope")).rejections == []


def test_a_persons_confirmed_resolve_completes_the_linked_reminders_only_with_the_file_maintained():
    h = Harness()
    h.send(system_follow_up())
    h.send(set_cmd("r-open", due_at="2026-11-25T09:00:00+01:00", case_task_id=FOLLOW))
    h.send(set_cmd("r-free"))
    assert h.send(confirmed(FOLLOW, actor=AB_ACTOR)).tasks == []  # without file_updated: left as they are
    r = h.send(confirmed(FOLLOW, actor=AB_ACTOR, file_updated=True))
    assert sorted((t["task_id"], t["status"], t["history"][-1]["by"]) for t in r.tasks) == [
        (f"reminder:follow-up:{FOLLOW}", "done", "AB"), ("reminder:r-open", "done", "AB")]
    assert h.task("reminder:r-free")["status"] == "waiting"
    assert [t.timer_id for t in timers_of(h.state)] == ["due:r-free"]


def test_case_resolve_does_not_touch_a_completed_reminder():
    h = Harness()
    h.send(set_cmd(case_task_id=FOLLOW))
    h.send(complete(file_updated=True))
    assert h.send(confirmed(FOLLOW)).tasks == [] and h.task()["status"] == "done"


def test_resolve_before_the_reminder_is_set_does_not_cancel_it_later():
    """Out of order: a resolve that arrives before the set finds nothing to cancel."""
    h = Harness()
    assert h.send(confirmed(FOLLOW)).tasks == []
    assert only(h.send(system_follow_up()))["status"] == "waiting"


# ---- offboarding ---------------------------------------------------------------------------

def test_offboarding_cancels_reminders_and_blocks_new_ones_until_registered_again():
    h = Harness()
    h.send(registered())
    h.send(set_cmd())
    h.send(set_cmd("r-2", due_at="2026-11-20T09:00:00+01:00"))
    h.send(complete("r-2", file_updated=True))
    r = h.send(envelope("vpa.offboarded", vpa_id=VPA))
    t = only(r)
    assert (t["task_id"], t["status"]) == (TID, "cancelled")
    assert t["history"][-1] == {"at": "2026-11-26T09:00:00+01:00", "by": "reminders",
                                "change": "VPA ausgeschieden, Reminder abgebrochen"}
    assert [t.timer_id for t in timers_of(h.state)] == ["erase:after-offboarding"]  # due timers gone
    assert h.advance(DUE_DT) == []
    rejected(h.send(set_cmd("r-3")), "VPA V-7 ist ausgeschieden")
    rejected(h.send(complete(file_updated=True)), "bereits abgebrochen")
    assert h.send(envelope("vpa.profile_updated", {"name": "X"}, vpa_id=VPA)).tasks == []
    h.send(registered("Lena Neu"))
    t = only(h.send(set_cmd("r-3", due_at="2026-12-01T09:00:00+01:00")))
    assert t["status"] == "waiting" and t["vpa_name"] == "Lena Neu"
    assert h.task()["status"] == "cancelled"  # registration does not revive old reminders


# ---- handover ------------------------------------------------------------------------------

def test_set_while_owner_is_on_vacation_goes_to_the_deputy():
    h = Harness(team())
    apply(h.roster, absence("v1", "AB", "2026-11-23", "2026-11-27"))
    t = only(h.send(set_cmd()))
    assert (t["owner"], t["assignee"], t["reasons"]) == ("AB", "CD", ["handover"])
    assert t["version"] == 1 and len(t["history"]) == 1  # the first assignment is part of creation
    assert t["history"][0]["change"].endswith("; Übergabe an CD: AB ist abwesend")


def test_roster_change_hands_over_and_back_with_history():
    h = Harness()
    h.send(set_cmd())
    t = only(h.roster_change(absence("s1", "AB", "2026-11-26", None, "sick")))
    assert (t["assignee"], t["reasons"]) == ("CD", ["handover"])
    assert t["history"][-1] == {"at": "2026-11-26T09:00:00+01:00", "by": "reminders",
                                "change": "Übergabe an CD: AB ist abwesend (Dienstplan geändert)"}
    h.now += timedelta(hours=3)
    t = only(h.roster_change(absence_ended("s1", "AB")))
    assert (t["assignee"], t["reasons"]) == ("AB", [])
    assert t["history"][-1]["change"] == "Zurück bei AB (Dienstplan geändert)" and t["version"] == 3
    assert h.roster_change(member("EF")).tasks == []  # no change, no version


def test_deputy_absent_too_then_rendezvous_then_nobody():
    h = Harness()
    h.send(set_cmd())
    h.roster_change(absence("v1", "AB", "2026-11-26", "2026-11-30"))
    t = only(h.roster_change(absence("v2", "CD", "2026-11-26", "2026-11-30")))
    assert (t["assignee"], t["reasons"]) == ("EF", ["handover"])  # only present role-at member left
    t = only(h.roster_change(member("EF", active=False)))
    assert (t["assignee"], t["reasons"]) == ("AB", ["handover_unavailable"])
    assert t["history"][-1]["change"] == "AB ist abwesend, niemand verfügbar: bleibt bei AB (Dienstplan geändert)"


def test_absence_registered_in_advance_takes_effect_at_midnight_of_its_start():
    h = Harness()
    h.send(set_cmd(due_at="2026-12-03T10:00:00+01:00"))
    assert h.roster_change(absence("v1", "AB", "2026-11-28", "2026-11-29")).tasks == []
    assert h.task()["assignee"] == "AB"
    assert h.midnight(datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc) - timedelta(seconds=1)).tasks == []
    t = only(h.midnight(datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc)))  # 28 Nov 00:00 Berlin
    assert (t["assignee"], t["updated_at"]) == ("CD", "2026-11-28T00:00:00+01:00")
    t = only(h.midnight(datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc)))  # 30 Nov: back
    assert (t["assignee"], t["reasons"]) == ("AB", [])
    assert [e["change"] for e in h.task()["history"]] == [
        "Reminder für AB gesetzt, fällig am Do 03.12.2026, 10:00 Uhr",
        "Übergabe an CD: AB ist abwesend (Tageswechsel)", "Zurück bei AB (Tageswechsel)"]


def test_reassign_leaves_done_and_cancelled_reminders_alone():
    h = Harness()
    h.send(set_cmd())
    h.send(complete(file_updated=True))
    assert h.roster_change(absence("v1", "AB", "2026-11-26", None)).tasks == []
    assert h.task()["assignee"] == "AB"


def test_inactive_owner_after_set_is_handed_over():
    h = Harness()
    h.send(set_cmd())
    t = only(h.roster_change(member("AB", deputy="CD", active=False)))
    assert t["assignee"] == "CD" and t["owner"] == "AB"


def test_reschedule_re_evaluates_handover_in_one_history_entry():
    h = Harness()
    h.send(set_cmd())
    apply(h.roster, absence("v1", "AB", "2026-11-26", "2026-11-26"))
    t = only(h.send(reschedule("2026-11-26T09:30:00+01:00")))
    assert (t["assignee"], t["status"]) == ("CD", "waiting")
    assert t["history"][-1] == {"at": "2026-11-26T09:00:00+01:00", "by": "AB",
                                "change": "Reminder neu terminiert auf Do 26.11.2026, 09:30 Uhr; "
                                          "Übergabe an CD: AB ist abwesend"}


def test_state_is_json_serialisable():
    import json
    h = Harness()
    h.send(registered())
    h.send(set_cmd(case_task_id=FOLLOW))
    assert json.loads(json.dumps(h.state)) == h.state
