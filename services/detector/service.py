"""The detector's service layer: applies the case rules to one VPA's state.

State per VPA: ``profile`` (from vpa.registered / vpa.profile_updated, plus the current class),
``absences`` known so far, ``tasks`` (the cases this service owns, full task dicts),
``offboarded``, ``rising_star`` (the flag of the last class change), ``complaints``
(complaint_id -> occurred_at), ``episode`` (the running inactivity episode: its case id, or None),
``inactivity`` (per inactive case: follow-up time, activity seen since, decision and reminder
bookkeeping) and ``timers`` (the follow-up timers, see services.core.processor).

The rules themselves are pure functions in ``*_rules.py``; drafts for the assistant in ``drafts.py``;
the inactivity cases (episode, follow-up timer, reminder requests) in ``inactivity.py``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from datetime import date, timedelta

from schemas.envelope import Envelope
from schemas.topics import Topic
from services.core import erasure
from services.core.dispatch import Handler, RuleService
from services.core import evidence as facts_of
from services.core import labels
from services.core import profile as vpa_profile
from services.core.handover import FLAGS, assign, describe, handover_dependencies, with_flag
from services.core.ids import issued_by, case_id, command_id
from services.core.processor import Context, Result, Timer, vpa_of
from services.core.tasks import get_task, is_active, max_priority, put_task, retire
from services.core.timeutil import local_date
from services.detector import cases
from services.detector import class_rules, evidence, inactivity, schedule_rules, texts
from services.detector.absence_rules import PRIORITY, REASON_ORDER, AbsenceFacts, absence_reasons, absences_in_window
from services.detector.cases import SERVICE, assignment, base_reasons, draft_for, open_case_of_kind
from services.detector.state import CODEC, AbsenceRecord, DetectorState

__all__ = ["Detector", "SERVICE"]


ABSENCE_CASE = "case:absence:"  # the only cases a rule reopens (an absence registered again, 5.6)
# An absence is remembered for the `frequent` count of later ones while it started within the
# window plus this many days: an absence registered up to a month after it began still counts
# every earlier one (issue 11; README "State and retention").
LATE_ABSENCE_DAYS = 31


def _facts(absence_id: str, a: AbsenceRecord) -> AbsenceFacts:
    """A remembered absence: only its start and whether it was cancelled count for later ones."""
    start = date.fromisoformat(a["starts_on"])
    return AbsenceFacts(absence_id, start, start, a.get("cancelled", False))


def _vpa_case(state: DetectorState, kind: str, env: Envelope[Any], reasons: list[str], rules: Any,
              title: Callable[[list[str]], str], ctx: Context,
              facts: list[dict[str, Any]]) -> Result:
    """Schedule and class changes: one open case per VPA (DESIGN 5.15). A later event updates
    the open case (reasons merged by the rule module, priority never falls); else a new case
    named after the event opens. ``rules`` gives ``merge`` and ``PRIORITY``; ``title(reasons)``;
    ``facts``: this event's evidence."""
    existing = open_case_of_kind(state, kind)
    if existing is not None:
        task_id, change = existing["task_id"], "updated"
        reasons = rules.merge(base_reasons(existing), reasons)
    else:
        task_id, change = case_id(kind, vpa_of(env), env.event_id), "opened"
        if get_task(state, task_id) is not None:
            return Result()  # a redelivery of the event that opened a case since closed
    priority = max_priority(*(rules.PRIORITY[r] for r in reasons), *([existing["priority"]] if existing else []))
    merged = facts_of.merge(existing.get("evidence") if existing else None, facts, reasons)
    fields = {
        "tab": "cases", "kind": kind, "vpa_id": env.vpa_id, "vpa_name": cases.name(state),
        "status": "open", "priority": priority, "title": title(reasons), "action": texts.action_for(reasons),
        "due_at": None, "message_draft": draft_for(state, kind, reasons),
        **assignment(state, task_id, reasons, ctx, merged),
    }
    task = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY[change])
    return Result(tasks=[task] if task else [])


def tidy(state: DetectorState, ctx: Context) -> None:
    """What the rules no longer need leaves the state (issue 11): closed cases become tombstones
    (the running inactivity episode's case stays whole: a complaint may still reopen it), their
    inactivity bookkeeping goes with them, and absences starting before the `frequent` window of
    any absence still likely to be registered (the window plus ``LATE_ABSENCE_DAYS``) are forgotten."""
    episode = state.get("episode")
    keep = [episode["case_id"]] if episode else ()
    for task_id in retire(state, ctx, keep, reopens=lambda task_id: task_id.startswith(ABSENCE_CASE)):
        tracks = state.get("inactivity")
        if tracks and tracks.pop(task_id, None) is not None and not tracks:
            del state["inactivity"]
    absences = state.get("absences")
    if absences:
        s = ctx.settings
        horizon = (local_date(ctx.now, s.tz) - timedelta(days=s.frequent_absence_window_days
                                                          + LATE_ABSENCE_DAYS)).isoformat()
        for absence_id in [a for a, facts in absences.items() if facts["starts_on"] < horizon]:
            del absences[absence_id]


class Detector(RuleService[DetectorState]):
    name = SERVICE
    rank = 0
    topics = frozenset({Topic.events, Topic.commands})
    codec = CODEC

    def handlers(self) -> Mapping[str, Handler[DetectorState]]:
        return {
            "vpa.profile_updated": self._profile_updated,
            "vpa.schedule_changed": self._schedule_changed,
            "vpa.absence_registered": self._absence_registered,
            "vpa.absence_cancelled": self._absence_cancelled,
            "vpa.class_changed": self._class_changed,
            "vpa.activity_status_changed": inactivity.status_changed,
            "vpa.activity_seen": inactivity.activity_seen,
            "vpa.customer_complaint": inactivity.customer_complaint,
            "vpa.offboarded": self._offboarded,
            "cmd.case.resolve": self._resolve,
        }

    def due(self, state: DetectorState, timer: Timer, ctx: Context) -> Result:
        if timer.name == inactivity.FOLLOW_UP_TIMER:
            return inactivity.decide(state, timer.payload["case_id"], ctx)
        return Result()

    def tidy(self, state: DetectorState, ctx: Context) -> None:
        tidy(state, ctx)

    def roster_facts(self, state: DetectorState) -> set[str]:
        """Open cases depend on their owner's record (and through it on the deputy's); a case
        handed over or flagged depends on which AT members are present (a rendezvous pick)."""
        return handover_dependencies(cases.owner(state), state.get("tasks", {}).values())

    def reevaluate(self, state: DetectorState, ctx: Context) -> Result:
        """Roster changed or a new day began: apply the handover policy to every open case, and
        request the follow-up reminders that had to be skipped while the owner was no active member."""
        out = Result()
        owner = cases.owner(state)
        for task_id, task in list(state.get("tasks", {}).items()):
            if not is_active(task):
                continue
            on = local_date(ctx.now, ctx.settings.tz)
            a = assign(owner, task_id, ctx.roster, on)
            fields = {"owner": owner, "assignee": a.assignee, "reasons": with_flag(task["reasons"], a.flag),
                      "evidence": facts_of.with_handover(task.get("evidence"),
                                                         facts_of.handover(a, owner, task_id, ctx.roster, on))}
            t = put_task(state, task_id, fields, ctx, SERVICE, describe(a, owner))
            if t:
                out.tasks.append(t)
        inactivity.pending_reminders(state, ctx, out)
        tidy(state, ctx)
        return out

    # ---- profile -------------------------------------------------------------------------

    def registered(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        state["offboarded"] = False
        erasure.cancel(state)
        # A class seen in a class change before the registration is kept.
        state["profile"] = vpa_profile.from_registration(d, cases.profile(state))
        return self._sync_profile_to_cases(state, ctx)

    def _profile_updated(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        vpa_profile.apply_update(state.setdefault("profile", {}), env.data)
        return self._sync_profile_to_cases(state, ctx)

    def _sync_profile_to_cases(self, state: DetectorState, ctx: Context) -> Result:
        """DESIGN 5.11: a changed owner or name moves onto the open cases (and into their drafts)."""
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if not is_active(task):
                continue
            fields = {"vpa_name": cases.name(state),
                      **assignment(state, task_id, task["reasons"], ctx, task.get("evidence"))}
            if task.get("message_draft") is not None:
                fields["message_draft"] = draft_for(state, task["kind"], base_reasons(task))
            t = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY["profile"])
            if t:
                out.tasks.append(t)
        inactivity.pending_reminders(state, ctx, out)
        return out

    # ---- schedule changes (5.16, 5.17) -------------------------------------------------------

    def _schedule_changed(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        d, s, profile = env.data, ctx.settings, cases.profile(state)
        started_on = date.fromisoformat(profile["started_on"]) if profile.get("started_on") else None
        # DESIGN 5.2/5.17: tenure on the event's own local date.
        reasons = schedule_rules.schedule_reasons(d.accepts_new_customers, d.accepts_orders, started_on,
                                                  profile.get("class"), local_date(env.occurred_at, s.tz), s)
        title = texts.schedule_title(d.accepts_new_customers, d.accepts_orders)
        facts = evidence.schedule(d.accepts_new_customers, d.accepts_orders, started_on, profile.get("class"),
                                  local_date(env.occurred_at, s.tz), reasons, s, env.event_id)
        return _vpa_case(state, "schedule_change", env, reasons, schedule_rules, lambda _: title, ctx, facts)

    # ---- absences ------------------------------------------------------------------------

    def _absence_registered(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        d, s = env.data, ctx.settings
        absences = state.setdefault("absences", {})
        facts = AbsenceFacts(d.absence_id, d.starts_on, d.ends_on)
        known = [_facts(aid, a) for aid, a in absences.items()]
        # DESIGN 5.2: the registration date is the event's own local date, not the clock's.
        registered_on = local_date(env.occurred_at, s.tz)
        reasons = absence_reasons(facts, known, registered_on, s)
        found = evidence.absence(facts, absences_in_window(facts, known, s), registered_on, d.reason, reasons, s,
                                 env.event_id)
        absences[d.absence_id] = {"starts_on": d.starts_on.isoformat()}  # "cancelled": True once cancelled

        task_id = case_id("absence", vpa_of(env), d.absence_id)
        existing = get_task(state, task_id)
        if is_active(existing):
            merged = [r for r in REASON_ORDER if r in set(existing["reasons"]) - set(FLAGS) | set(reasons)]
            change = "updated"
        elif reasons:
            merged = reasons
            change = "reopened" if existing else "opened"
        else:
            return Result()
        priority = max_priority(*(PRIORITY[r] for r in merged))
        if is_active(existing):
            priority = max_priority(priority, existing["priority"])  # never falls (5.15)
        found = facts_of.merge(existing.get("evidence") if is_active(existing) else None, found, merged)
        fields = {
            "tab": "cases", "kind": "absence", "vpa_id": env.vpa_id, "vpa_name": cases.name(state),
            "status": "open", "priority": priority,
            "title": texts.absence_title(d.starts_on, d.ends_on, facts.days),
            "action": texts.action_for(merged), "due_at": None, "message_draft": None,
            **assignment(state, task_id, merged, ctx, found),
        }
        task = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY[change])
        return Result(tasks=[task] if task else [])

    def _absence_cancelled(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        absence = state.get("absences", {}).get(env.data.absence_id)
        if absence is not None:
            absence["cancelled"] = True
        task_id = case_id("absence", vpa_of(env), env.data.absence_id)
        if not is_active(get_task(state, task_id)):
            return Result()
        task = put_task(state, task_id, {"status": "cancelled"}, ctx, SERVICE, texts.HISTORY["cancelled"])
        return Result(tasks=[task] if task else [])

    # ---- class changes (5.20, 5.21) ----------------------------------------------------------

    def _class_changed(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        profile = state.setdefault("profile", {})
        new = d.vpa_class.value
        previous = d.previous.value if d.previous else profile.get("class")
        reasons = class_rules.class_reasons(new, previous, d.rising_star, state.get("rising_star", False))
        facts = evidence.class_change(new, previous, d.previous is not None, reasons, env.event_id)
        profile["class"] = new
        state["rising_star"] = d.rising_star
        if not reasons:
            return Result()
        return _vpa_case(state, "class_change", env, reasons, class_rules,
                         lambda merged: texts.class_title(new, previous, "rising_star" in merged), ctx, facts)

    # ---- closing ---------------------------------------------------------------------------

    def _offboarded(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        state["offboarded"] = True
        erasure.schedule(state, env.occurred_at, ctx)
        state["episode"] = None  # a new registration starts without a running inactivity episode
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if not is_active(task):
                continue
            t = put_task(state, task_id, {"status": "cancelled"}, ctx, SERVICE, texts.HISTORY["offboarded"])
            if t:
                out.tasks.append(t)
            if task["kind"] == "inactive":
                out.commands += inactivity.offboarded(state, task_id, ctx)
        return out

    def _resolve(self, state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
        task_id = env.data.task_id
        if not task_id.startswith("case:"):
            return Result()  # not a case: another service owns it
        if issued_by(env.event_id, SERVICE):
            return Result()  # our own confirmation to the reminders service: the case closed already
        system = env.actor is not None and env.actor.role.value == "system"
        task = get_task(state, task_id)
        if task is None:
            return Result(rejections=[f"Fall {task_id} von {env.vpa_id} ist unbekannt"])
        if not is_active(task):
            if system:
                return Result()  # a system resolve of a closed case is a no-op, not a rejection
            return Result(rejections=[f"Fall {task_id} ist bereits {labels.status(task['status'])}"])
        by = env.actor.initials if env.actor else SERVICE
        t = put_task(state, task_id, {"status": "done"}, ctx, by, texts.resolved(env.data.note))
        assert t is not None  # an open case set to done always changes
        if task["kind"] == "inactive":
            inactivity.closed_by_hand(state, task_id)
        # Confirm the resolve to the reminders service, which acts on the reminders linked to the
        # case only on the detector's word (a resolve the detector rejects changes nothing), under
        # the actor who resolved it: with file_updated those reminders are completed by that person
        # (DESIGN 5.13a); a system resolve (a case closed by itself) touches only its automatic one.
        confirm = cases.confirmation(env, command_id(SERVICE, "case.resolve", task_id, str(t["version"])), ctx,
                                     {"task_id": task_id, "note": env.data.note,
                                      "file_updated": bool(env.data.file_updated)})
        return Result(tasks=[t] if t else [], commands=[confirm])
