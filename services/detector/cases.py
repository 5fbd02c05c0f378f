"""Helpers every case kind of the detector shares: profile look-ups, assignment, drafts, commands."""
from __future__ import annotations

import json
from typing import Any, Optional

from schemas.envelope import ENVELOPE_TYPES, Envelope
from services.core import evidence
from services.core.handover import FLAGS, assign, with_flag
from services.core.ids import issued_by
from services.core.processor import Context
from services.core.tasks import is_active
from services.core.timeutil import local_date
from services.detector import class_rules, drafts
from services.core.state import Profile
from services.detector.state import DetectorState

SERVICE = "detector"
SYSTEM_ACTOR = {"initials": "SYS", "role": "system"}


def profile(state: DetectorState) -> Profile:
    return state.get("profile") or {}


def owner(state: DetectorState) -> Optional[str]:
    return profile(state).get("at_owner")


def name(state: DetectorState) -> Optional[str]:
    return profile(state).get("name")


def assignment(state: DetectorState, task_id: str, reasons: list[str], ctx: Context,
               facts: Optional[list[dict[str, Any]]]) -> dict[str, Any]:
    """owner, assignee and reasons of a case under the handover policy (DESIGN 2.2), and its
    evidence: ``facts`` (the case's own) followed by why it is handed over, if it is."""
    who = owner(state)
    on = local_date(ctx.now, ctx.settings.tz)
    a = assign(who, task_id, ctx.roster, on)
    return {"owner": who, "assignee": a.assignee, "reasons": with_flag(reasons, a.flag),
            "evidence": evidence.with_handover(facts, evidence.handover(a, who, task_id, ctx.roster, on))}


def base_reasons(task: dict[str, Any]) -> list[str]:
    """A case's reason codes without the handover flags."""
    return [r for r in task["reasons"] if r not in FLAGS]


def open_case_of_kind(state: DetectorState, kind: str) -> Optional[dict[str, Any]]:
    """The open case of a per-VPA identity (schedule change, class change): at most one (5.15)."""
    tasks: dict[str, dict[str, Any]] = state.get("tasks", {})
    for task in tasks.values():
        if task["kind"] == kind and is_active(task):
            return task
    return None


def draft_for(state: DetectorState, kind: str, reasons: list[str]) -> Optional[str]:
    """The message draft a case carries, built from its reasons and the VPA's current name."""
    if kind == "class_change" and class_rules.wants_praise(reasons):
        return drafts.praise_draft(name(state))
    if kind == "inactive" and "contact_needed" in reasons:
        return drafts.contact_draft(name(state), complaint="customer_complaint" in reasons)
    return None


def system_command(type_: str, vpa_id: str, event_id: str, ctx: Context, data: dict[str, Any]) -> Envelope[Any]:
    """A command of the system actor on vpa.commands, at the clock's now (DESIGN 4.2, 5.2)."""
    raw = {"event_id": event_id, "type": type_, "occurred_at": ctx.now.isoformat(), "vpa_id": vpa_id,
           "actor": SYSTEM_ACTOR, "schema_version": 1, "data": data}
    return ENVELOPE_TYPES[type_].model_validate_json(json.dumps(raw))


def confirmation(cause: Envelope[Any], event_id: str, ctx: Context, data: dict[str, Any]) -> Envelope[Any]:
    """The detector's confirmation of a resolve, to the reminders service: under the actor of the
    resolve it confirms (a person, or the system for a case that closed by itself)."""
    actor = cause.actor.model_dump(mode="json") if cause.actor is not None else SYSTEM_ACTOR
    raw = {"event_id": event_id, "type": "cmd.case.resolve", "occurred_at": ctx.now.isoformat(),
           "vpa_id": cause.vpa_id, "actor": actor, "schema_version": 1, "data": data}
    return ENVELOPE_TYPES["cmd.case.resolve"].model_validate_json(json.dumps(raw))


def is_own_command(env: Envelope[Any]) -> bool:
    """A command this service emitted (its event_id comes from ids.command_id(SERVICE, ...))."""
    return env.actor is not None and env.actor.role.value == "system" and issued_by(env.event_id, SERVICE)
