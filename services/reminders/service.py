"""The reminders service's processor (DESIGN 2.2, 4.5, fine print 5.7 to 5.14, 5.24, 5.25).

State per VPA (key of ``vpa.commands`` and ``vpa.events``):

* ``profile``: ``{"name": ...}`` from ``vpa.registered`` / ``vpa.profile_updated`` (for ``vpa_name``);
* ``offboarded``: set by ``vpa.offboarded``, lifted by a new ``vpa.registered``;
* ``tasks``: the reminder tasks this service owns (``reminder:{reminder_id}``), full task dicts;
* ``links``: reminder_id -> ``{"case_task_id": ...}`` (kept out of the task: not a task field);
* ``timers``: one ``due:{reminder_id}`` timer per waiting reminder.

A reminder is ``waiting`` until ``due_at``, then ``open``; its ``assignee`` follows the shared
HandoverPolicy keyed on the reminder_id, re-evaluated on every change of the reminder, when it falls
due, and whenever the runner calls ``reassign`` (roster changes and absence boundaries at midnight).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from schemas.envelope import Envelope
from schemas.topics import Topic
from services.core import erasure
from services.core.dispatch import Handler, RuleService
from services.core import evidence, labels
from services.core import german
from services.core.handover import FLAGS, Assignment, assign, describe, handover_dependencies, with_flag
from services.core.ids import follow_up_id, issued_by, reminder_task_id
from services.core.processor import Context, Result, Timer, cancel_timer, set_timer
from services.core.roster import is_active_member
from services.core.tasks import get_task, is_active, put_task, retire
from services.core.timeutil import fmt, local_date, parse
from services.reminders import texts
from services.reminders.state import CODEC, RemindersState

SERVICE = "reminders"
DUE_TIMER = "reminder_due"


def _timer_id(reminder_id: str) -> str:
    return f"due:{reminder_id}"


def _reminder_id(task_id: str) -> str:
    return task_id.removeprefix("reminder:")


def _name(state: RemindersState) -> Optional[str]:
    return (state.get("profile") or {}).get("name")


def _by(env: Envelope[Any]) -> str:
    return env.actor.initials if env.actor else SERVICE


def _handover(task: Optional[dict[str, Any]], owner: str, reminder_id: str, ctx: Context,
              facts: Optional[list[dict[str, Any]]] = None) -> tuple[dict[str, Any], Optional[str]]:
    """Assignee, reasons and evidence under the HandoverPolicy, plus the history text when they change.

    On creation (``task`` None) the first assignment is part of the creation (5.9): the text is
    only given when the reminder starts handed over or flagged, so the history says why.
    ``facts``: the reminder's own evidence, when it changes (else the task's is kept)."""
    on = local_date(ctx.now, ctx.settings.tz)
    a: Assignment = assign(owner, reminder_id, ctx.roster, on)
    reasons = with_flag(task["reasons"] if task else [], a.flag)
    base = facts if facts is not None else (task.get("evidence") if task else None)
    fields = {"owner": owner, "assignee": a.assignee, "reasons": reasons,
              "evidence": evidence.with_handover(base, evidence.handover(a, owner, reminder_id, ctx.roster, on))}
    if task is None:
        return fields, describe(a, owner) if a.flag else None
    if task.get("assignee") != a.assignee or task["reasons"] != reasons:
        return fields, describe(a, owner)
    return fields, None


def _publish(out: Result, task: Optional[dict[str, Any]]) -> None:
    if task:
        out.tasks.append(task)


def _live_reminder(state: RemindersState, env: Envelope[Any]) -> tuple[Optional[dict[str, Any]], Optional[Result]]:
    """The waiting/open reminder a command is about, or the rejection (reschedule, complete)."""
    reminder_id = env.data.reminder_id
    task = get_task(state, reminder_task_id(reminder_id))
    if task is None:
        return None, _reject(f"Reminder {reminder_id} von {env.vpa_id} ist unbekannt")
    if not is_active(task):
        return None, _reject(f"Reminder {reminder_id} ist bereits {labels.status(task['status'])}")
    return task, None


def tidy(state: RemindersState, ctx: Context) -> None:
    """Closed reminders become tombstones (issue 11); the link to a case is kept only while the
    reminder is live (a resolved case cancels live reminders only)."""
    retire(state, ctx, reopens=lambda task_id: False)  # a reminder_id is never set twice
    links = state.get("links")
    if links:
        live = state.get("tasks", {})
        for reminder_id in [r for r, link in links.items()
                            if not link.get("case_task_id") or reminder_task_id(r) not in live]:
            del links[reminder_id]
        if not links:
            del state["links"]


class Reminders(RuleService[RemindersState]):
    name = SERVICE
    rank = 1
    topics = frozenset({Topic.events, Topic.commands})
    codec = CODEC

    # ---- processor protocol ----------------------------------------------------------------

    def handlers(self) -> Mapping[str, Handler[RemindersState]]:
        return {
            "vpa.profile_updated": self._profile_updated,
            "vpa.offboarded": self._offboarded,
            "cmd.reminder.set": self._set,
            "cmd.reminder.complete": self._complete,
            "cmd.reminder.reschedule": self._reschedule,
            "cmd.case.resolve": self._case_resolved,
        }

    def tidy(self, state: RemindersState, ctx: Context) -> None:
        tidy(state, ctx)

    def due(self, state: RemindersState, timer: Timer, ctx: Context) -> Result:
        if timer.name != DUE_TIMER:
            return Result()
        reminder_id = timer.payload["reminder_id"]
        task_id = reminder_task_id(reminder_id)
        task = get_task(state, task_id)
        if task is None or task["status"] != "waiting" or parse(task["due_at"]) > ctx.now:
            return Result()  # completed, cancelled or moved since the timer was set
        # Handover is re-evaluated whenever a reminder falls due (DESIGN 2.2, 5.8).
        fields, moved = _handover(task, task["owner"], reminder_id, ctx)
        fields["status"] = "open"
        out = Result()
        _publish(out, put_task(state, task_id, fields, ctx, SERVICE, texts.with_assignment(texts.DUE, moved)))
        return out

    def roster_facts(self, state: RemindersState) -> set[str]:
        """Each live reminder depends on its owner (who set it), handed-over ones on who is present."""
        deps: set[str] = set()
        for task in state.get("tasks", {}).values():
            deps |= handover_dependencies(task["owner"], [task], lambda t: _reminder_id(t["task_id"]))
        return deps

    def reevaluate(self, state: RemindersState, ctx: Context) -> Result:
        """Roster changed or an absence boundary passed: re-apply the policy to every live reminder."""
        out = Result()
        cause = texts.reassign_cause(ctx.now.astimezone(ctx.settings.tz).time())
        for task_id, task in list(state.get("tasks", {}).items()):
            if not is_active(task):
                continue
            fields, moved = _handover(task, task["owner"], _reminder_id(task_id), ctx)
            if moved:
                _publish(out, put_task(state, task_id, fields, ctx, SERVICE, f"{moved} ({cause})"))
        tidy(state, ctx)
        return out

    # ---- profile ---------------------------------------------------------------------------

    def registered(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        state["offboarded"] = False
        erasure.cancel(state)
        state["profile"] = {"name": env.data.name}
        return self._sync_name(state, ctx)

    def _profile_updated(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        if "name" not in env.data.model_fields_set or env.data.name is None:
            return Result()  # reminders keep the owner who set them (5.11): only the name matters
        state.setdefault("profile", {})["name"] = env.data.name
        return self._sync_name(state, ctx)

    def _sync_name(self, state: RemindersState, ctx: Context) -> Result:
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if is_active(task):
                _publish(out, put_task(state, task_id, {"vpa_name": _name(state)}, ctx, SERVICE, texts.PROFILE))
        return out

    def _offboarded(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        state["offboarded"] = True
        erasure.schedule(state, env.occurred_at, ctx)
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if is_active(task):
                cancel_timer(state, _timer_id(_reminder_id(task_id)))
                _publish(out, put_task(state, task_id, {"status": "cancelled"}, ctx, SERVICE, texts.OFFBOARDED))
        return out

    # ---- commands --------------------------------------------------------------------------

    def _set(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        task_id = reminder_task_id(d.reminder_id)
        if state.get("offboarded"):
            return _reject(f"VPA {env.vpa_id} ist ausgeschieden: keine neuen Reminder für ihn")
        if get_task(state, task_id) is not None:
            return _reject(f"Reminder {d.reminder_id} für {env.vpa_id} gibt es bereits")
        member = ctx.roster.get(d.owner)
        if not member or not member.get("known"):  # known only through an absence is not a member
            return _reject(f"{d.owner} ist nicht im AT-Dienstplan")
        if not is_active_member(ctx.roster, d.owner):
            return _reject(f"{d.owner} ist kein aktives Mitglied des AT-Dienstplans")
        state.setdefault("links", {})[d.reminder_id] = {"case_task_id": d.case_task_id}
        due = fmt(d.due_at, ctx.settings.tz)
        status = self._schedule(state, d.reminder_id, d.due_at, ctx)
        facts = texts.set_facts(env, d.owner, d.due_at, d.case_task_id, ctx.settings.tz)
        assignment, handed = _handover(None, d.owner, d.reminder_id, ctx, facts)
        fields = {
            "tab": "reminders", "kind": "reminder", "vpa_id": env.vpa_id, "vpa_name": _name(state),
            "status": status, "priority": "normal", "title": texts.title(d.note, d.case_task_id),
            "action": texts.action(d.case_task_id), "due_at": due, "message_draft": None, **assignment,
            **({"case_task_id": d.case_task_id} if d.case_task_id else {}),
        }
        change = texts.with_assignment(texts.set_(d.owner, german.moment(d.due_at, ctx.settings.tz)), handed)
        out = Result()
        _publish(out, put_task(state, task_id, fields, ctx, _by(env), change))
        return out

    def _reschedule(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        task_id = reminder_task_id(d.reminder_id)
        task, rejection = _live_reminder(state, env)
        if rejection:
            return rejection
        assert task is not None  # no rejection: the live reminder
        due = fmt(d.due_at, ctx.settings.tz)
        status = self._schedule(state, d.reminder_id, d.due_at, ctx)
        # The due fact moves with the due time; the others (who set it, the case) stay.
        facts = [e for e in task.get("evidence") or [] if e["code"] not in ("due", *FLAGS)]
        facts.append(texts.rescheduled_fact(env, d.due_at, ctx.settings.tz))
        fields, moved = _handover(task, task["owner"], d.reminder_id, ctx, facts)
        fields.update(status=status, due_at=due)
        out = Result()
        _publish(out, put_task(state, task_id, fields, ctx, _by(env),
                               texts.with_assignment(texts.rescheduled(german.moment(d.due_at, ctx.settings.tz)),
                                                     moved)))
        return out

    def _complete(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        task_id = reminder_task_id(d.reminder_id)
        task, rejection = _live_reminder(state, env)
        if rejection:
            return rejection
        if d.file_updated is not True:
            return _reject(f"Reminder {d.reminder_id} kann erst erledigt werden, wenn der Fall gelöst und die "
                           "VPA-Akte gepflegt ist (file_updated: true)")
        cancel_timer(state, _timer_id(d.reminder_id))
        # DESIGN 5.14: completion does not resolve a linked case.
        out = Result()
        _publish(out, put_task(state, task_id, {"status": "done"}, ctx, _by(env), texts.COMPLETED))
        return out

    def _case_resolved(self, state: RemindersState, env: Envelope[Any], ctx: Context) -> Result:
        """DESIGN 5.13 and 5.13a: what a closed case does to the reminders linked to it.

        Only the detector's confirmation counts (its event id; it sends one when a case really
        closed, so a resolve the detector rejects changes nothing here). A case that closed by
        itself (system actor) cancels only its automatic inactivity reminder, never one a person
        set. A person's resolve with ``file_updated`` completes every live linked reminder, by that
        person; without it they stay as they are. Never rejected here: the detector owns cases."""
        if not issued_by(env.event_id, "detector"):
            return Result()
        case_task_id = env.data.task_id
        by_itself = env.actor is None or env.actor.role.value == "system"
        if not by_itself and env.data.file_updated is not True:
            return Result()
        out = Result()
        for reminder_id, link in state.get("links", {}).items():
            if link.get("case_task_id") != case_task_id:
                continue
            if by_itself and reminder_id != follow_up_id(case_task_id):
                continue  # a reminder a person set outlives a case that closed by itself
            task_id = reminder_task_id(reminder_id)
            if not is_active(get_task(state, task_id)):
                continue
            cancel_timer(state, _timer_id(reminder_id))
            if by_itself:
                _publish(out, put_task(state, task_id, {"status": "cancelled"}, ctx, _by(env),
                                       texts.closed_by_itself(env.data.note)))
            else:
                _publish(out, put_task(state, task_id, {"status": "done"}, ctx, _by(env), texts.DONE_WITH_CASE))
        return out

    # ---- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _schedule(state: RemindersState, reminder_id: str, due_at: datetime, ctx: Context) -> str:
        """``waiting`` with a due timer when ``due_at`` is ahead of the clock, else ``open`` at once."""
        if due_at > ctx.now:
            set_timer(state, _timer_id(reminder_id), due_at, DUE_TIMER, {"reminder_id": reminder_id})
            return "waiting"
        cancel_timer(state, _timer_id(reminder_id))
        return "open"


def _reject(reason: str) -> Result:
    return Result(rejections=[reason])
