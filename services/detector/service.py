"""The detector's service layer: applies the case rules to one VPA's state.

State per VPA: ``profile`` (from vpa.registered / vpa.profile_updated), ``absences`` known so
far, ``tasks`` (the cases this service owns, full task dicts), ``offboarded``.
"""
from __future__ import annotations

from datetime import date
from typing import Optional

from schemas.envelope import Envelope
from services.common.handover import FLAGS, assign, describe, with_flag
from services.common.ids import case_id
from services.common.processor import Context, Result, Timer
from services.common.tasks import get_task, is_active, max_priority, put_task
from services.common.timeutil import local_date
from services.detector import texts
from services.detector.absence_rules import PRIORITY, REASON_ORDER, AbsenceFacts, absence_reasons

SERVICE = "detector"


def _facts(absence_id: str, a: dict) -> AbsenceFacts:
    return AbsenceFacts(absence_id, date.fromisoformat(a["starts_on"]), date.fromisoformat(a["ends_on"]),
                        a.get("cancelled", False))


def _owner(state: dict) -> Optional[str]:
    return (state.get("profile") or {}).get("at_owner")


def _name(state: dict) -> Optional[str]:
    return (state.get("profile") or {}).get("name")


def _assignment(state: dict, task_id: str, reasons: list[str], ctx: Context) -> dict:
    """owner, assignee and reasons of a case under the handover policy (DESIGN 2.2)."""
    owner = _owner(state)
    a = assign(owner, task_id, ctx.roster, local_date(ctx.now, ctx.settings.tz))
    return {"owner": owner, "assignee": a.assignee, "reasons": with_flag(reasons, a.flag)}


class Detector:
    name = SERVICE
    topics = frozenset({"vpa.events", "vpa.commands"})

    def handle(self, state: dict, env: Envelope, ctx: Context) -> Result:
        if env.type == "vpa.registered":
            return self._registered(state, env, ctx)
        if state.get("offboarded") and env.type.startswith("vpa."):
            # DESIGN 5.24: after offboarding only a new registration counts.
            return Result()
        handler = {
            "vpa.profile_updated": self._profile_updated,
            "vpa.absence_registered": self._absence_registered,
            "vpa.absence_cancelled": self._absence_cancelled,
            "vpa.offboarded": self._offboarded,
            "cmd.case.resolve": self._resolve,
        }.get(env.type)
        return handler(state, env, ctx) if handler else Result()

    def on_timer(self, state: dict, timer: Timer, ctx: Context) -> Result:
        return Result()

    def reassign(self, state: dict, ctx: Context) -> Result:
        """Roster changed or a new day began: apply the handover policy to every open case."""
        out = Result()
        owner = _owner(state)
        for task_id, task in list(state.get("tasks", {}).items()):
            if not is_active(task):
                continue
            a = assign(owner, task_id, ctx.roster, local_date(ctx.now, ctx.settings.tz))
            fields = {"owner": owner, "assignee": a.assignee, "reasons": with_flag(task["reasons"], a.flag)}
            t = put_task(state, task_id, fields, ctx, SERVICE, describe(a, owner))
            if t:
                out.tasks.append(t)
        return out

    # ---- profile -------------------------------------------------------------------------

    def _registered(self, state: dict, env: Envelope, ctx: Context) -> Result:
        d = env.data
        state["offboarded"] = False
        state["profile"] = {
            "name": d.name, "started_on": d.started_on.isoformat(), "part_time": d.part_time,
            "class": d.vpa_class.value if d.vpa_class else None, "at_owner": d.at_owner,
            "buddy": d.buddy, "uses_mobile_app": d.uses_mobile_app,
        }
        return self._sync_profile_to_cases(state, ctx)

    def _profile_updated(self, state: dict, env: Envelope, ctx: Context) -> Result:
        profile = state.setdefault("profile", {})
        for name in env.data.model_fields_set:
            profile[name] = getattr(env.data, name)
        return self._sync_profile_to_cases(state, ctx)

    def _sync_profile_to_cases(self, state: dict, ctx: Context) -> Result:
        """DESIGN 5.11: a changed owner or name moves onto the open cases."""
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if not is_active(task):
                continue
            fields = {"vpa_name": _name(state), **_assignment(state, task_id, task["reasons"], ctx)}
            t = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY["profile"])
            if t:
                out.tasks.append(t)
        return out

    # ---- absences ------------------------------------------------------------------------

    def _absence_registered(self, state: dict, env: Envelope, ctx: Context) -> Result:
        d, s = env.data, ctx.settings
        absences = state.setdefault("absences", {})
        facts = AbsenceFacts(d.absence_id, d.starts_on, d.ends_on)
        known = [_facts(aid, a) for aid, a in absences.items()]
        # DESIGN 5.2: the registration date is the event's own local date, not the clock's.
        reasons = absence_reasons(facts, known, local_date(env.occurred_at, s.tz), s)
        absences[d.absence_id] = {"starts_on": d.starts_on.isoformat(), "ends_on": d.ends_on.isoformat(),
                                  "cancelled": False}

        task_id = case_id("absence", env.vpa_id, d.absence_id)
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
        fields = {
            "tab": "cases", "kind": "absence", "vpa_id": env.vpa_id, "vpa_name": _name(state),
            "status": "open", "priority": priority,
            "title": texts.absence_title(d.starts_on.isoformat(), d.ends_on.isoformat(), facts.days),
            "action": texts.action_for(merged), "due_at": None, "message_draft": None,
            **_assignment(state, task_id, merged, ctx),
        }
        task = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY[change])
        return Result(tasks=[task] if task else [])

    def _absence_cancelled(self, state: dict, env: Envelope, ctx: Context) -> Result:
        absence = state.get("absences", {}).get(env.data.absence_id)
        if absence is not None:
            absence["cancelled"] = True
        task_id = case_id("absence", env.vpa_id, env.data.absence_id)
        if not is_active(get_task(state, task_id)):
            return Result()
        task = put_task(state, task_id, {"status": "cancelled"}, ctx, SERVICE, texts.HISTORY["cancelled"])
        return Result(tasks=[task] if task else [])

    # ---- closing ---------------------------------------------------------------------------

    def _offboarded(self, state: dict, env: Envelope, ctx: Context) -> Result:
        state["offboarded"] = True
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if is_active(task):
                t = put_task(state, task_id, {"status": "cancelled"}, ctx, SERVICE, texts.HISTORY["offboarded"])
                if t:
                    out.tasks.append(t)
        return out

    def _resolve(self, state: dict, env: Envelope, ctx: Context) -> Result:
        task_id = env.data.task_id
        if not task_id.startswith("case:"):
            return Result()  # not a case: another service owns it
        task = get_task(state, task_id)
        if task is None:
            return Result(rejections=[f"rejected: unknown case {task_id} for {env.vpa_id}"])
        if not is_active(task):
            return Result(rejections=[f"rejected: case {task_id} is already {task['status']}"])
        by = env.actor.initials if env.actor else SERVICE
        t = put_task(state, task_id, {"status": "done"}, ctx, by, texts.HISTORY["resolved"])
        return Result(tasks=[t] if t else [])
