"""The journey service's processor: the Journey tab (DESIGN 2.3, fine print 5.10, 5.11, 5.17, 5.23, 5.24).

State per VPA (keyed by vpa_id): ``vpa_id``, ``profile`` (name, started_on, class, at_owner, buddy),
``tasks`` (the journey tasks this service owns), ``offboarded`` and at most one timer.

The daily 06:00 sweep is kept per VPA: the only timer a VPA has is due at the sweep time on the
date its next stage begins, so the sweep touches exactly the VPAs whose stage changes that day and
never scans the others. When it fires it opens that stage's task and sets the timer for the stage
after. Registration checks too: it opens the current stage's task when the registration's local
date lies within the stage's first ``journey_grace_days`` days (5.23), and sets the timer (for a
``started_on`` in the future: at the sweep time on ``started_on``).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Optional

from schemas.envelope import Envelope
from schemas.topics import Topic
from services.core import erasure
from services.core.dispatch import Handler, RuleService
from services.core import evidence, labels
from services.core import german
from services.core import profile as vpa_profile
from services.core.handover import pick_among, present_managers
from services.core.ids import journey_task_id
from services.core.processor import Context, Result, Timer, cancel_timer, pick_token, role_token, set_timer, vpa_of
from services.core.tasks import get_task, is_active, put_task, retire
from services.core.timeutil import at_local, local_date
from services.journey import texts
from services.journey.stages import (
    NEW_0_3, NEW_3_6, NEW_6_9, NEW_9_12, NEW_GT_12, STAGE_NAMES, STAGES, next_boundary, stage_on, stage_start,
    within_first_days,
)
from services.core.state import Profile
from services.journey.state import CODEC, JourneyState

SERVICE = "journey"
TIMER_ID = "journey:next-stage"
TIMER_NAME = "journey_sweep"
CLASS_STAGES = (NEW_6_9, NEW_9_12)
# Only a VPA Manager may clear NEW_GT_12 (DESIGN 2.3; 5.5: not even the system actor).
MANAGER_ONLY = {NEW_GT_12: "vpa_manager"}


def class_reasons(stage: str, vpa_class: Optional[str]) -> list[str]:
    """Reasons of a journey task (5.23): only the class-check stages carry one."""
    if stage not in CLASS_STAGES:
        return []
    if vpa_class in ("C", "D"):
        return ["measures_needed"]
    if vpa_class in ("A", "B"):
        return ["class_ok"]
    return ["class_unknown"]


def manager_pick(vpa_id: str, roster: Mapping[str, dict[str, Any]], on: date) -> Optional[str]:
    """An available VPA Manager for ``vpa_id``: rendezvous hashing over the present managers (5.7)."""
    return pick_among(vpa_id, present_managers(roster, on))


def assignee_for(stage: str, vpa_id: str, profile: Profile, ctx: Context) -> tuple[Optional[str], bool]:
    """Who works ``stage`` (DESIGN 2.3, 5.10), and whether that is a fallback to the at_owner."""
    owner = profile.get("at_owner")
    if stage == NEW_3_6:
        return (profile["buddy"], False) if profile.get("buddy") else (owner, True)
    if stage == NEW_GT_12:
        pick = manager_pick(vpa_id, ctx.roster, local_date(ctx.now, ctx.settings.tz))
        return (pick, False) if pick else (owner, True)
    return owner, False


def _facts(state: JourneyState, stage: str, reasons: list[str], assignee: Optional[str],
           fallback: bool) -> list[dict[str, Any]]:
    """Why the stage's task exists and who works it: tenure and stage, class, assignee."""
    profile = state.get("profile") or {}
    out = []
    if profile.get("started_on"):
        started = date.fromisoformat(profile["started_on"])
        out.append(texts.tenure_fact(stage, started, stage_start(started, stage), dict(STAGES)[stage],
                                     state.get("registered_event")))
    out += [texts.class_fact(r) for r in reasons]
    who = texts.assignee_fact(stage, assignee, fallback, state["vpa_id"])
    return out + ([who] if who else [])


def _derived(state: JourneyState, stage: str, ctx: Context) -> dict[str, Any]:
    """The fields of a stage's task that follow from the profile and the roster."""
    profile = state.get("profile") or {}
    reasons = class_reasons(stage, profile.get("class"))
    assignee, fallback = assignee_for(stage, state["vpa_id"], profile, ctx)
    held = get_task(state, journey_task_id(state["vpa_id"], stage))
    facts = evidence.merge(held.get("evidence") if held else None, _facts(state, stage, reasons, assignee, fallback))
    return {"vpa_name": profile.get("name"), "owner": profile.get("at_owner"), "assignee": assignee,
            "reasons": reasons, "title": texts.title(stage), "action": texts.action(stage, reasons),
            "evidence": facts}


def _one(task: Optional[dict[str, Any]]) -> Result:
    return Result(tasks=[task] if task else [])


class Journey(RuleService[JourneyState]):
    name = SERVICE
    rank = 2
    topics = frozenset({Topic.events, Topic.commands})
    codec = CODEC

    def handlers(self) -> Mapping[str, Handler[JourneyState]]:
        return {
            "vpa.profile_updated": self._profile_updated,
            "vpa.class_changed": self._class_changed,
            "vpa.onboarding_call_completed": self._onboarding_done,
            "vpa.checkin_call_scheduled": self._checkin_scheduled,
            "vpa.offboarded": self._offboarded,
            "cmd.journey.clear": self._clear_command,
        }

    def tidy(self, state: JourneyState, ctx: Context) -> None:
        retire(state, ctx)

    def due(self, state: JourneyState, timer: Timer, ctx: Context) -> Result:
        """The 06:00 sweep for this VPA on the first day of its next stage."""
        if timer.name != TIMER_NAME or state.get("offboarded") or not state.get("profile"):
            return Result()
        started = date.fromisoformat(state["profile"]["started_on"])
        stage = timer.payload["stage"]
        # A VPA known before the boundary gets the stage's task even if the timer fires late
        # (wall clock after an outage); the next boundary follows from this stage, not from now,
        # so a skipped stage opens right after (its timer is then already due).
        out = self._open(state, stage, ctx, reopen=False)
        self._schedule(state, started, stage_start(started, stage), ctx)
        return out

    def roster_facts(self, state: JourneyState) -> set[str]:
        """Only an open NEW_GT_12 reads the roster, the present VPA Managers: a task with a picked
        manager changes when that manager leaves or one scoring higher arrives (the pick); one
        that fell back to the at_owner, when any manager arrives (or leaves: the owner may be one)."""
        vpa_id = state.get("vpa_id")
        task = get_task(state, journey_task_id(vpa_id, NEW_GT_12)) if vpa_id else None
        if not is_active(task):
            return set()
        assert vpa_id is not None  # an active task was found under it
        assignee = task.get("assignee")
        if not assignee or assignee == (state.get("profile") or {}).get("at_owner"):
            return {role_token("vpa_manager")}
        return {pick_token(assignee, vpa_id, role="vpa_manager")}

    def reevaluate(self, state: JourneyState, ctx: Context) -> Result:
        """Roster changed (or an absence boundary): re-pick the VPA Manager of an open NEW_GT_12."""
        vpa_id = state.get("vpa_id")
        if vpa_id is None:
            return Result()
        task_id = journey_task_id(vpa_id, NEW_GT_12)
        task = get_task(state, task_id)
        if not is_active(task):
            return Result()
        assignee, fallback = assignee_for(NEW_GT_12, vpa_id, state.get("profile") or {}, ctx)
        if assignee == task.get("assignee"):
            return Result()
        fields = {"assignee": assignee, "evidence": _derived(state, NEW_GT_12, ctx)["evidence"]}
        return _one(put_task(state, task_id, fields, ctx, SERVICE, texts.manager_repicked(assignee, fallback)))

    # ---- registration and the sweep timer ----------------------------------------------------

    def registered(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        state["vpa_id"] = vpa_of(env)
        state["offboarded"] = False
        erasure.cancel(state)
        state["registered_event"] = env.event_id  # the source of the tenure fact
        state["profile"] = vpa_profile.from_registration(d, state.get("profile"))
        out = self._sync_open_tasks(state, ctx)
        # The registration check uses the event's own local date (5.2, 5.17).
        on = local_date(env.occurred_at, ctx.settings.tz)
        stage = stage_on(d.started_on, on)
        if stage is not None and within_first_days(d.started_on, on, ctx.settings.journey_grace_days):
            out.extend(self._open(state, stage, ctx, reopen=True))
        self._schedule(state, d.started_on, on, ctx)
        return out

    def _schedule(self, state: JourneyState, started: date, after: date, ctx: Context) -> None:
        """Set the VPA's one timer: sweep time on the first day of the next stage after ``after``."""
        nxt = next_boundary(started, after)
        if nxt is None:
            cancel_timer(state, TIMER_ID)
            return
        stage, first_day = nxt
        due = at_local(first_day, ctx.settings.journey_sweep_time, ctx.settings.tz)
        set_timer(state, TIMER_ID, due, TIMER_NAME, {"stage": stage})

    def _open(self, state: JourneyState, stage: str, ctx: Context, reopen: bool) -> Result:
        """Open ``stage``'s task. An existing task is left alone (cleared stays cleared), except that
        a re-registration (``reopen``) reopens one cancelled by an earlier offboarding."""
        task_id = journey_task_id(state["vpa_id"], stage)
        existing = get_task(state, task_id)
        if existing is not None and not (reopen and existing["status"] == "cancelled"):
            return Result()
        fields = {"tab": "journey", "kind": "journey", "stage": stage, "vpa_id": state["vpa_id"],
                  "status": "open", "priority": "normal", "due_at": None, "message_draft": None,
                  **_derived(state, stage, ctx)}
        change = texts.HISTORY["reopened" if existing else "opened"]
        return _one(put_task(state, task_id, fields, ctx, SERVICE, change))

    # ---- profile and class -------------------------------------------------------------------

    def _profile_updated(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        vpa_profile.apply_update(state.setdefault("profile", {}), env.data)
        return self._sync_open_tasks(state, ctx)

    def _class_changed(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        state.setdefault("profile", {})["class"] = env.data.vpa_class.value
        return self._sync_open_tasks(state, ctx)

    def _sync_open_tasks(self, state: JourneyState, ctx: Context) -> Result:
        """DESIGN 5.11 and 5.23: owner, assignee, name and class reasons follow the profile."""
        out = Result()
        if "vpa_id" not in state:
            return out
        for stage in STAGE_NAMES:
            task_id = journey_task_id(state["vpa_id"], stage)
            task = get_task(state, task_id)
            if not is_active(task):
                continue
            fields = _derived(state, stage, ctx)
            t = put_task(state, task_id, fields, ctx, SERVICE, texts.changes(task, fields))
            if t:
                out.tasks.append(t)
        return out

    # ---- clearing ----------------------------------------------------------------------------

    def _clear(self, state: JourneyState, stage: str, ctx: Context, by: str, change: str) -> Result:
        """Mark an open task of ``stage`` done; without one nothing changes (5.23)."""
        if "vpa_id" not in state:
            return Result()
        task_id = journey_task_id(state["vpa_id"], stage)
        if not is_active(get_task(state, task_id)):
            return Result()
        return _one(put_task(state, task_id, {"status": "done"}, ctx, by, change))

    def _onboarding_done(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        return self._clear(state, NEW_0_3, ctx, SERVICE, texts.HISTORY["onboarding"])

    def _checkin_scheduled(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        d = env.data
        when = german.moment(d.scheduled_for, ctx.settings.tz)
        return self._clear(state, NEW_3_6, ctx, SERVICE, texts.checkin_cleared(when, d.buddy))

    def _clear_command(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        stage = env.data.stage.value
        actor = env.actor
        role = actor.role.value if actor else None
        needed = MANAGER_ONLY.get(stage)
        if needed and role != needed:
            return Result(rejections=[
                f"nur ein VPA Manager darf {stage} von {env.vpa_id} entfernen; "
                f"{actor.initials if actor else 'unbekannt'} ist {labels.role(role)}"])
        task_id = journey_task_id(vpa_of(env), stage)
        task = get_task(state, task_id)
        if not is_active(task):
            status = f" (er ist {labels.status(task['status'])})" if task else ""
            return Result(rejections=[f"kein offener Journey-Schritt {stage} für {env.vpa_id}{status}"])
        by = actor.initials if actor else SERVICE
        return _one(put_task(state, task_id, {"status": "done"}, ctx, by, texts.cleared(env.data.note)))

    # ---- offboarding -------------------------------------------------------------------------

    def _offboarded(self, state: JourneyState, env: Envelope[Any], ctx: Context) -> Result:
        state["offboarded"] = True
        erasure.schedule(state, env.occurred_at, ctx)
        cancel_timer(state, TIMER_ID)
        out = Result()
        for task_id, task in list(state.get("tasks", {}).items()):
            if is_active(task):
                t = put_task(state, task_id, {"status": "cancelled"}, ctx, SERVICE, texts.HISTORY["offboarded"])
                if t:
                    out.tasks.append(t)
        return out
