"""Inactivity cases in the detector's state (DESIGN 2.1 ``inactive``; fine print 5.2, 5.13, 5.22).

State: ``episode`` is the running inactivity episode (``{"case_id": ...}`` from ``inactive`` to
the next ``active``, else None); ``inactivity`` keeps, per inactive case, its follow-up time, the
activity processed since the inactivity, whether it is decided, whether its reminder was
requested and whether it closed itself; ``complaints`` maps complaint_id -> occurred_at.

The follow-up decision is a timer in the state. The automatic reminder is requested from the
reminders service with ``cmd.reminder.set`` and, when the case closes itself, cancelled with a
system ``cmd.case.resolve`` (the reminders service cancels reminders whose case_task_id matches).
"""
from __future__ import annotations

from typing import Any

from datetime import timedelta

from schemas.envelope import Envelope
from services.core.handover import FLAGS
from services.core.ids import follow_up_id, case_id, command_id
from services.core.processor import Context, Result, cancel_timer, set_timer, vpa_of
from services.core.roster import is_active_member
from services.core.tasks import get_task, max_priority, put_task
from services.core.timeutil import fmt, local_date, parse
from services.detector import evidence, inactivity_rules, texts
from services.detector.cases import SERVICE, assignment, base_reasons, draft_for, owner, profile, system_command
from services.detector.state import ComplaintFacts, DetectorState, InactivityTrack

FOLLOW_UP_TIMER = "inactive.follow_up"
OPENING_FACTS = ("inactive", "follow_up")  # evidence codes of the episode's start, kept by every update


def timer_id(task_id: str) -> str:
    return f"follow-up:{task_id}"


def _undecided(state: DetectorState) -> list[InactivityTrack]:
    return [t for t in state.get("inactivity", {}).values() if not t["decided"]]


def status_changed(state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
    if env.data.status.value == "active":
        for track in _undecided(state):
            track["status_active"] = True
            track.setdefault("active_event", env.event_id)  # for the evidence
        state["episode"] = None  # the episode ends at the next `active`
        return Result()
    if state.get("episode"):
        return Result()  # a repeated `inactive` inside the running episode is ignored
    task_id = case_id("inactive", vpa_of(env), env.event_id)
    if get_task(state, task_id) is not None:
        return Result()  # redelivery of the event that opened an episode already over
    s = ctx.settings
    follow_up = inactivity_rules.follow_up_at(env.occurred_at, s)  # the event's own date (5.2)
    reasons = ["follow_up"]
    fields = {
        "tab": "cases", "kind": "inactive", "vpa_id": env.vpa_id, "vpa_name": profile(state).get("name"),
        "status": "waiting", "priority": "normal",
        "title": texts.inactive_title(local_date(env.occurred_at, s.tz)),
        "action": texts.action_for(reasons), "due_at": fmt(follow_up, s.tz), "message_draft": None,
        **assignment(state, task_id, reasons, ctx,
                     evidence.inactivity_opened(env.occurred_at, follow_up, s, env.event_id)),
    }
    task = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY["follow_up_waiting"])
    state["episode"] = {"case_id": task_id}
    state.setdefault("inactivity", {})[task_id] = {
        "inactive_at": env.occurred_at.isoformat(), "follow_up": follow_up.isoformat(), "decided": False,
        "web": False, "mobile": False, "status_active": False, "reminder": False, "self_closed": False,
    }
    set_timer(state, timer_id(task_id), follow_up, FOLLOW_UP_TIMER, {"case_id": task_id})
    out = Result(tasks=[task] if task else [])
    request_reminder(state, task_id, ctx, True, out)
    return out


def activity_seen(state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
    web = env.data.channel.value == "web"
    for track in _undecided(state):
        # the first one of its channel, for the evidence
        if web:
            track["web"] = True
            track.setdefault("web_event", env.event_id)
        else:
            track["mobile"] = True
            track.setdefault("mobile_event", env.event_id)
    return Result()


def customer_complaint(state: DetectorState, env: Envelope[Any], ctx: Context) -> Result:
    complaints = state.setdefault("complaints", {})
    complaints[env.data.complaint_id] = env.occurred_at.isoformat()
    state.setdefault("complaint_facts", {})[env.data.complaint_id] = {"event_id": env.event_id,
                                                                      "summary": env.data.summary}
    _prune_complaints(state, ctx)
    episode = state.get("episode")
    if not episode:
        return Result()  # counted by a later decision, if inside its window
    task_id = episode["case_id"]
    task, track = get_task(state, task_id), state.get("inactivity", {}).get(task_id)
    if task is None or track is None:
        return Result()
    mobile = bool(profile(state).get("uses_mobile_app"))
    said = evidence.complaint(env.occurred_at, env.data.summary, ctx.settings, env.event_id)
    facts = _opening(task) + [said] + ([evidence.mobile_app()] if mobile else [])
    if task["status"] == "waiting":
        # DESIGN 5.22: a complaint during the running episode opens the case at once.
        track["decided"] = True
        cancel_timer(state, timer_id(task_id))
        reasons, change = inactivity_rules.contact_reasons(True, mobile), "complaint"
    elif task["status"] == "open":
        base = base_reasons(task)
        if "customer_complaint" in base:
            return Result()
        reasons = [r for r in inactivity_rules.REASON_ORDER if r in set(base) | {"customer_complaint"}]
        change = "complaint_added"
        facts = [e for e in task.get("evidence") or [] if e["code"] not in FLAGS] + [said]
    elif task["status"] == "done" and track["self_closed"]:
        # ... even one the decision closed as part_time_no_contact: reopened, and the "Warum" says so.
        track["self_closed"] = False
        reasons, change = inactivity_rules.contact_reasons(True, mobile), "complaint"
        facts = _opening(task) + [evidence.reopened(env.occurred_at, ctx.settings, env.event_id), said] + (
            [evidence.mobile_app()] if mobile else [])
    else:
        return Result()  # resolved by a person, or cancelled: left alone
    t = put_task(state, task_id, _fields(state, task, "open", reasons, ctx, facts), ctx, SERVICE,
                 texts.HISTORY[change])
    return Result(tasks=[t] if t else [])


def decide(state: DetectorState, task_id: str, ctx: Context) -> Result:
    """The follow-up time has come (timer): decide the waiting case (DESIGN 2.1, 5.22)."""
    task, track = get_task(state, task_id), state.get("inactivity", {}).get(task_id)
    if task is None or track is None or track["decided"] or task["status"] != "waiting":
        return Result()
    track["decided"] = True
    p = profile(state)
    follow_up = parse(track["follow_up"])
    decision = inactivity_rules.decide(
        track["web"], track["mobile"], track["status_active"], bool(p.get("part_time")),
        bool(p.get("uses_mobile_app")), [parse(t) for t in state.get("complaints", {}).values()],
        follow_up, ctx.settings,
    )
    # By time alone, in the order they came at the same instant: facts cannot be compared.
    counted = sorted(((parse(at), state.get("complaint_facts", {}).get(cid, ComplaintFacts()))
                      for cid, at in state.get("complaints", {}).items()
                      if inactivity_rules.complaint_counts(parse(at), follow_up, ctx.settings)),
                     key=lambda c: c[0])
    facts = _opening(task) + evidence.decision(track, decision.reasons, bool(p.get("part_time")), counted,
                                               ctx.settings)
    fields = _fields(state, task, decision.status, decision.reasons, ctx, facts)
    change = "decided_closed" if decision.closes else "decided_open"
    t = put_task(state, task_id, fields, ctx, SERVICE, texts.HISTORY[change])
    out = Result(tasks=[t] if t else [])
    if decision.closes:
        # DESIGN 5.22: only a part-timer closed without contact reopens on a complaint; a VPA shown
        # to be active (web or mobile) makes a later complaint no inactivity matter.
        track["self_closed"] = "part_time_no_contact" in decision.reasons
        out.commands += cancel_reminder(state, task_id, ctx, "decided")
    return out


def _opening(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in task.get("evidence") or [] if e["code"] in OPENING_FACTS]


def _fields(state: DetectorState, task: dict[str, Any], status: str, reasons: list[str], ctx: Context,
            facts: list[dict[str, Any]]) -> dict[str, Any]:
    priority = max_priority(task["priority"], inactivity_rules.priority_of(reasons))  # never falls (5.15)
    return {
        "status": status, "priority": priority, "action": texts.action_for(reasons),
        "message_draft": draft_for(state, "inactive", reasons) if status == "open" else None,
        **assignment(state, task["task_id"], reasons, ctx, facts),
    }


def _prune_complaints(state: DetectorState, ctx: Context) -> None:
    """Forget complaints too old to fall into the window of any decision still to come."""
    horizon = ctx.now - timedelta(days=ctx.settings.complaint_window_days + 31)
    complaints = state.get("complaints", {})
    for cid in [c for c, at in complaints.items() if parse(at) < horizon]:
        del complaints[cid]
        state.get("complaint_facts", {}).pop(cid, None)


def closed_by_hand(state: DetectorState, task_id: str) -> None:
    """Resolved by a person or cancelled: nothing left to decide, and it did not close itself."""
    track = state.get("inactivity", {}).get(task_id)
    if track is not None:
        track["decided"] = True
        cancel_timer(state, timer_id(task_id))


def offboarded(state: DetectorState, task_id: str, ctx: Context) -> list[Envelope[Any]]:
    """The case was cancelled by the offboarding: no decision, and its reminder goes too."""
    closed_by_hand(state, task_id)
    return cancel_reminder(state, task_id, ctx, "offboarded")


# ---- the automatic follow-up reminder (5.13) -------------------------------------------------

def request_reminder(state: DetectorState, task_id: str, ctx: Context, count_skip: bool, out: Result) -> None:
    """``cmd.reminder.set`` for the at_owner, while the case waits and the owner is an active member."""
    track, task = state["inactivity"][task_id], get_task(state, task_id)
    assert task is not None  # a tracked episode's case is kept (live or as its tombstone)
    if track["reminder"] or track["decided"] or task["status"] != "waiting":
        return
    who = owner(state)
    if not is_active_member(ctx.roster, who):
        if count_skip:
            out.counts["detector_followup_reminders_skipped"] += 1
        return
    track["reminder"] = True
    out.counts["detector_followup_reminders_requested"] += 1
    data = {"reminder_id": follow_up_id(task_id), "due_at": track["follow_up"], "owner": who,
            "note": texts.REMINDER_NOTE, "case_task_id": task_id}
    out.commands.append(system_command("cmd.reminder.set", task["vpa_id"],
                                       command_id(SERVICE, "reminder.set", task_id), ctx, data))


def pending_reminders(state: DetectorState, ctx: Context, out: Result) -> None:
    """Reminders skipped earlier (owner unknown or no active member), once the owner qualifies."""
    for task_id in state.get("inactivity", {}):
        request_reminder(state, task_id, ctx, False, out)


def cancel_reminder(state: DetectorState, task_id: str, ctx: Context, why: str) -> list[Envelope[Any]]:
    """The case closed by itself: a system ``cmd.case.resolve``, on which the reminder is cancelled."""
    track, task = state["inactivity"][task_id], get_task(state, task_id)
    assert task is not None  # a tracked episode's case is kept (live or as its tombstone)
    if not track["reminder"]:
        return []
    data = {"task_id": task_id, "note": texts.RESOLVE_NOTE[why]}
    event_id = command_id(SERVICE, "case.resolve", task_id, str(task["version"]))
    return [system_command("cmd.case.resolve", task["vpa_id"], event_id, ctx, data)]
