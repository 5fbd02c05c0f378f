"""What the AT team and the VPA Managers do: reminders, resolving cases, clearing journey flags.

People act on working days while present (not on vacation, sick or at the team day): cases in the
afternoon, reminders in the shifts. Task ids follow DESIGN 5.6, so every command names a task that
exists when it arrives; a few commands are wrong on purpose (``stream.WRONG``) and are rejected.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from services.simulator import config as C
from services.simulator.company import Member, Vpa
from services.simulator.names import CLEAR_NOTES, REMINDER_NOTES, RESOLVE_NOTES
from services.simulator.timeline import add_working_days, hm, stamp
from services.simulator.world import World

AFTERNOON = (hm(13, 30), hm(17, 45))  # the AT works the dashlet once a day, in the afternoon
SHIFTS = (hm(8, 15), hm(19, 45))      # due reminders are checked every shift


def _deputy(w: World, initials: str) -> Optional[str]:
    m = w.members.get(initials)
    return m.deputy if m else None


def _due_time(w: World, day) -> datetime:
    quarter = w.rng.randint(hm(8) // 900, hm(19, 30) // 900)
    return w.at(day, quarter * 900)


def set_reminder(w: World, v: Vpa, owner: Member, when: datetime, case_task_id: Optional[str] = None,
                 max_days: int = 5) -> Optional[int]:
    """Plan a reminder from ``when`` on: set, maybe rescheduled, usually completed.

    Returns the instant it is completed (None when it stays open in the run)."""
    rng = w.rng
    reminder_id = w.ids.next("R")
    set_day = w.local(when)
    if case_task_id is None and rng.random() < 0.12 and when.astimezone(w.tz).hour < 16:
        due = when + timedelta(minutes=rng.randint(60, 180))  # later the same shift
    else:
        due = _due_time(w, add_working_days(set_day, rng.randint(1, max_days)))
    data = {"reminder_id": reminder_id, "due_at": due.isoformat(timespec="seconds"), "owner": owner.initials,
            "note": rng.choice(REMINDER_NOTES)}
    if case_task_id:
        data["case_task_id"] = case_task_id
    w.stream.add(when, "cmd.reminder.set", data, v.vpa_id, owner.actor())
    if rng.random() < 0.2:  # rescheduled, before or just after it fell due
        span = max(1800, int((due - when).total_seconds()) + 3 * 3600)
        moment = when + timedelta(seconds=rng.randint(1800, span))
        day = w.local(moment)
        if owner.present(day) and SHIFTS[0] <= moment.astimezone(w.tz).hour * 3600 < SHIFTS[1]:
            due = _due_time(w, add_working_days(max(day, w.local(due)), rng.randint(1, 3)))
            w.stream.add(moment, "cmd.reminder.reschedule",
                         {"reminder_id": reminder_id, "due_at": due.isoformat(timespec="seconds")},
                         v.vpa_id, owner.actor())
    # Most are completed in the shift they fall due or the next working day; a few linger in the
    # AT's backlog for one to two weeks (never for months: a demo opens on a day's work).
    late = rng.random() < C.REMINDER_BACKLOG
    delay = rng.randint(4, 10) if late else rng.choice((0, 0, 0, 1))
    slot = w.slot([owner.initials, owner.deputy], due, delay, SHIFTS, reminder_id)
    if slot is None:
        return None
    moment, who = slot
    flaw = rng.random()
    if flaw < 0.08:  # ticked "done" without confirming the VPA file: rejected, then done right
        w.stream.add(moment, "cmd.reminder.complete", {"reminder_id": reminder_id, "file_updated": False},
                     v.vpa_id, who.actor(), wrong=True)
        moment += timedelta(seconds=rng.randint(60, 600))
    elif flaw < 0.11:  # an old client that does not send the flag at all: rejected too
        w.stream.add(moment, "cmd.reminder.complete", {"reminder_id": reminder_id}, v.vpa_id, who.actor(), wrong=True)
        moment += timedelta(seconds=rng.randint(60, 600))
    w.stream.add(moment, "cmd.reminder.complete", {"reminder_id": reminder_id, "file_updated": True},
                 v.vpa_id, who.actor())
    return stamp(moment)


def work_case(w: World, v: Vpa, case_task_id: str, opened: datetime, closes_ts: Optional[int] = None,
              follow_up_reminder: bool = False) -> Optional[int]:
    """The owner (or whoever stands in) works an open case: resolves it, sometimes after a
    reminder linked to it. Returns the instant of the resolve, None if it stays open.

    ``closes_ts``: the case closes another way then (absence cancelled), so no resolve after it.
    ``follow_up_reminder``: the case has the detector's automatic follow-up reminder, which the
    AT often completes (file maintained) before resolving the case."""
    rng = w.rng
    late = rng.random()
    if late < C.CASE_NEVER:
        return None
    delay = rng.randint(8, 25) if late < C.CASE_NEVER + C.CASE_LATE else rng.choice((0, 0, 1, 1, 1, 2, 3))
    slot = w.slot([v.at_owner, _deputy(w, v.at_owner)], opened, delay, AFTERNOON, case_task_id)
    if slot is None:
        return None
    moment, who = slot
    if rng.random() < 0.25:  # "I'll call again on Thursday": a reminder linked to the case
        done = set_reminder(w, v, who, moment, case_task_id, max_days=3)
        if done is None:
            return None
        resolved = datetime.fromtimestamp(done, w.tz) + timedelta(seconds=rng.randint(20, 90))
        actor = who
    else:
        if follow_up_reminder and rng.random() < 0.5:
            w.stream.add(moment, "cmd.reminder.complete",
                         {"reminder_id": f"follow-up:{case_task_id}", "file_updated": True}, v.vpa_id, who.actor())
            moment += timedelta(seconds=rng.randint(30, 120))
            follow_up_reminder = False  # done already
        resolved, actor = moment, who
    if closes_ts is not None and stamp(resolved) >= closes_ts:
        return None
    # DESIGN 5.13a: mostly resolved with "VPA-Akte gepflegt" ticked, which completes the automatic
    # reminder with the case; otherwise the file is maintained later and that reminder completed then.
    filed = rng.random() < C.RESOLVE_WITH_FILE
    data = {"task_id": case_task_id, "note": rng.choice(RESOLVE_NOTES)}
    if filed:
        data["file_updated"] = True
    w.stream.add(resolved, "cmd.case.resolve", data, v.vpa_id, actor.actor())
    if follow_up_reminder and not filed:
        later = w.slot([actor.initials, _deputy(w, actor.initials)], resolved, rng.choice((0, 1, 1, 2)), SHIFTS,
                       f"follow-up:{case_task_id}")
        if later is not None and later[0] > resolved:
            w.stream.add(later[0], "cmd.reminder.complete",
                         {"reminder_id": f"follow-up:{case_task_id}", "file_updated": True}, v.vpa_id,
                         later[1].actor())
    return stamp(resolved)


def daily_reminders(w: World, d, active: list[Vpa]) -> None:
    """Reminders people set for themselves on a working day, besides those for cases."""
    rng = w.rng
    by_owner: dict[str, list[Vpa]] = {}
    for v in active:
        by_owner.setdefault(v.at_owner, []).append(v)
    for m in w.at_members:
        owned = by_owner.get(m.initials, [])
        if not owned or not m.present(d):
            continue
        for _ in range(w.poisson(len(owned) * C.REMINDERS_PER_OWNED_VPA)):
            set_reminder(w, rng.choice(owned), m, w.uniform_time(d, *AFTERNOON))
    for m in w.managers:
        if active and m.present(d):
            for _ in range(w.poisson(C.REMINDERS_PER_MANAGER)):
                set_reminder(w, rng.choice(active), m, w.uniform_time(d, hm(9), hm(17)))


def clear_journey(w: World, v: Vpa, stage: str, opened: datetime) -> None:
    """``cmd.journey.clear`` for a stage no platform event clears (DESIGN 2.3)."""
    rng = w.rng
    if rng.random() < 0.1:
        return  # still open at the end of the run
    key = f"journey:{v.vpa_id}:{stage}"
    note = CLEAR_NOTES[stage]
    if stage != "NEW_GT_12":
        slot = w.slot([v.at_owner, _deputy(w, v.at_owner)], opened, rng.randint(1, 8), AFTERNOON, key)
        if slot:
            w.stream.add(slot[0], "cmd.journey.clear", {"stage": stage, "note": note}, v.vpa_id, slot[1].actor())
        return
    after = opened
    owner = w.members.get(v.at_owner)
    if owner is not None and rng.random() < 0.2:  # the AT member tries first: only a VPA Manager may
        slot = w.slot([owner.initials], opened, rng.randint(1, 5), AFTERNOON, key)
        if slot and slot[1].role == "at":
            w.stream.add(slot[0], "cmd.journey.clear", {"stage": stage, "note": "Assistent kontaktiert"},
                         v.vpa_id, slot[1].actor(), wrong=True)
            after = slot[0]
    managers = [m.initials for m in w.managers]
    for _ in range(10):
        slot = w.slot(managers, after, rng.randint(1, 8), AFTERNOON, key)
        if slot is None:
            return
        if slot[1].role == "vpa_manager":  # only a present VPA Manager clears it
            w.stream.add(slot[0], "cmd.journey.clear", {"stage": stage, "note": note}, v.vpa_id, slot[1].actor())
            return
        after = slot[0]
