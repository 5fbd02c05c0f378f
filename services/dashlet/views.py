"""What the page's views read beyond one list (issue 20): a VPA's page, a member's "Heute", the
VPA Managers' team view. Each is one function over the store's reads and ``now``; the models are
the answers' shapes (in the OpenAPI document).

* VPA page: the profile the AT may see, every open task of all three tabs and those closed in the
  last ``RECENT_DAYS``, each case with its linked reminders, the VPA's recent events, the link to
  the VPA's file in the CRM (``VPA_CRM_URL_TEMPLATE``).
* Heute: everything the signed-in member should work in today's pass: own reminders overdue or due
  today, own open cases and journey flags (undated ones included), grouped by VPA, the oldest first,
  each with how long it has been waiting; and how much of today's pass is done.
* Team: per member open, due-this-shift and overdue work and the oldest open item; the absences of
  the next ``TEAM_DAYS`` days with what moves to whom on which day, by the same HandoverPolicy the
  services apply (``services.core.handover.assign``), members without an available deputy marked.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from schemas.task import Task
from services.config.settings import Settings
from services.core.handover import HANDOVER, UNAVAILABLE, assign
from services.core.roster import is_present
from services.core.timeutil import months_between
from services.reminders.shifts import current_shift

RECENT_DAYS = 30
TEAM_DAYS = 14
LIVE = ("waiting", "open")


class Profile(BaseModel):
    model_config = ConfigDict(title="VpaProfile", extra="forbid")
    started_on: Optional[str] = None
    tenure_months: Optional[int] = None
    new_vpa: bool = False
    part_time: Optional[bool] = None
    uses_mobile_app: Optional[bool] = None
    at_owner: Optional[str] = None
    buddy: Optional[str] = None
    vpa_class: Optional[str] = None  # internal: the dashlet may show it, never a text for the assistant
    rising_star: bool = False
    offboarded_at: Optional[str] = None


class VpaEvent(BaseModel):
    model_config = ConfigDict(title="VpaEvent", extra="forbid")
    event_id: str
    occurred_at: str
    type: str
    text: str


class VpaPage(BaseModel):
    """A VPA with everything the AT works on it."""

    model_config = ConfigDict(title="VpaPage", extra="forbid")
    vpa_id: str
    name: Optional[str]
    profile: Optional[Profile]
    tasks: list[Task]
    linked: dict[str, list[Task]]  # case task_id -> its reminders
    events: list[VpaEvent]
    crm_url: Optional[str]


class VpaHit(BaseModel):
    model_config = ConfigDict(title="VpaHit", extra="forbid")
    vpa_id: str
    name: Optional[str]
    at_owner: Optional[str]
    offboarded: bool


class VpaHits(BaseModel):
    model_config = ConfigDict(title="VpaHits", extra="forbid")
    items: list[VpaHit]


class TodayItem(BaseModel):
    model_config = ConfigDict(title="TodayItem", extra="forbid")
    task: Task
    since: str  # when it became actionable (RFC 3339)
    days: int  # whole days since then
    overdue: bool


class TodayGroup(BaseModel):
    model_config = ConfigDict(title="TodayGroup", extra="forbid")
    vpa_id: str
    vpa_name: Optional[str]
    items: list[TodayItem]


class Today(BaseModel):
    """A member's afternoon pass."""

    model_config = ConfigDict(title="Today", extra="forbid")
    day: str
    groups: list[TodayGroup]
    open: int
    done_today: int


class MemberLoad(BaseModel):
    model_config = ConfigDict(title="MemberLoad", extra="forbid")
    initials: str
    name: Optional[str]
    role: Optional[str]
    deputy: Optional[str]
    present_today: bool
    open: int
    due_this_shift: int
    overdue: int
    oldest: Optional[Task] = None
    oldest_since: Optional[str] = None


class Move(BaseModel):
    model_config = ConfigDict(title="HandoverMove", extra="forbid")
    day: str
    task_id: str
    title: str
    tab: str
    vpa_id: str
    vpa_name: Optional[str]
    to: Optional[str]  # null: nobody is available, it stays with the owner
    why: str  # "Vertretung", "verteilt", "niemand verfügbar"


class TeamAbsence(BaseModel):
    model_config = ConfigDict(title="TeamAbsence", extra="forbid")
    initials: str
    name: Optional[str]
    kind: str
    starts_on: str
    ends_on: Optional[str]
    deputy: Optional[str]
    deputy_available: bool
    moves: list[Move]


class Team(BaseModel):
    model_config = ConfigDict(title="Team", extra="forbid")
    day: str
    shift: Optional[list[str]]
    members: list[MemberLoad]
    absences: list[TeamAbsence]


# ---- helpers -------------------------------------------------------------------------------------

def _instant(value: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(value) if value else None


def actionable_since(task: dict) -> datetime:
    """Since when a task asks for work: its creation, or its due time when that came later."""
    created = _instant(task["created_at"])
    due = _instant(task.get("due_at"))
    return max(created, due) if due is not None else created


def _live_sort_key(task: dict) -> tuple:
    rank = {"high": 0, "normal": 1, "low": 2}
    due = task.get("due_at") or "9999"
    return (task["status"] not in LIVE, rank.get(task["priority"], 3), due, task["task_id"])


# ---- the VPA page ----------------------------------------------------------------------------------

async def vpa_page(store: Any, vpa_id: str, now: datetime, settings: Settings,
                   crm_template: Optional[str]) -> Optional[dict]:
    profile = await store.vpa_profile(vpa_id)
    tasks = await store.tasks_of_vpa(vpa_id)
    if profile is None and not tasks:
        return None
    recent = (now - timedelta(days=RECENT_DAYS)).isoformat()
    shown = [t for t in tasks if t["status"] in LIVE or t["updated_at"] >= recent]
    shown.sort(key=_live_sort_key)
    cases = [t["task_id"] for t in shown if t["tab"] == "cases"]
    linked: dict[str, list[dict]] = {}
    for r in await store.reminders_of_cases(cases):
        linked.setdefault(r["case_task_id"], []).append(r)
    name = (profile or {}).get("name") or next((t.get("vpa_name") for t in tasks if t.get("vpa_name")), None)
    return {"vpa_id": vpa_id, "name": name, "profile": _profile(profile, now, settings) if profile else None,
            "tasks": shown, "linked": linked, "events": await store.vpa_events(vpa_id, 20),
            "crm_url": crm_template.replace("{vpa_id}", vpa_id) if crm_template else None}


def _profile(p: dict, now: datetime, settings: Settings) -> dict:
    started = date.fromisoformat(p["started_on"]) if p.get("started_on") else None
    today = now.astimezone(settings.tz).date()
    months = max(months_between(started, today), 0) if started else None
    return {"started_on": p.get("started_on"), "tenure_months": months,
            "new_vpa": months is not None and months < settings.new_vpa_months,
            "part_time": p.get("part_time"), "uses_mobile_app": p.get("uses_mobile_app"),
            "at_owner": p.get("at_owner"), "buddy": p.get("buddy"), "vpa_class": p.get("class"),
            "rising_star": bool(p.get("rising_star")), "offboarded_at": p.get("offboarded_at")}


async def search(store: Any, q: str, limit: int = 20) -> dict:
    hits = await store.search_vpas(q, limit)
    return {"items": [{"vpa_id": p["vpa_id"], "name": p.get("name"), "at_owner": p.get("at_owner"),
                       "offboarded": bool(p.get("offboarded_at"))} for p in hits]}


# ---- Heute -------------------------------------------------------------------------------------

async def today(reader: Any, initials: str, now: datetime, settings: Settings) -> dict:
    tz = settings.tz
    local = now.astimezone(tz)
    day_start = datetime.combine(local.date(), time(0), tz)
    day_end = day_start + timedelta(days=1)
    mine = await reader.assigned(initials)  # live tasks assigned to the member
    wanted = []
    for t in mine:
        due = _instant(t.get("due_at"))
        if t["tab"] == "reminders" and (due is None or due >= day_end):
            continue  # a reminder belongs to the day it is due (and to every day after, overdue)
        if t["tab"] == "cases" and t["status"] == "waiting" and (due is None or due >= day_end):
            continue  # an inactivity case waits for its follow-up time
        wanted.append(t)
    groups: dict[str, dict] = {}
    for t in wanted:
        since = actionable_since(t)
        due = _instant(t.get("due_at"))
        item = {"task": t, "since": since.isoformat(), "days": max(0, (local.date() - since.astimezone(tz).date()).days),
                "overdue": due is not None and due < now}
        g = groups.setdefault(t["vpa_id"], {"vpa_id": t["vpa_id"], "vpa_name": t.get("vpa_name"), "items": []})
        g["items"].append(item)
    for g in groups.values():
        g["items"].sort(key=lambda i: (i["since"], i["task"]["task_id"]))
    ordered = sorted(groups.values(), key=lambda g: (g["items"][0]["since"], g["vpa_id"]))
    done = await reader.done_by(initials, day_start)
    return {"day": local.date().isoformat(), "groups": ordered, "open": len(wanted), "done_today": done}


# ---- Team ----------------------------------------------------------------------------------------

async def team(store: Any, reader: Any, now: datetime, settings: Settings) -> dict:
    tz = settings.tz
    local = now.astimezone(tz)
    today_ = local.date()
    roster = await store.roster_members()
    shift = current_shift(now, settings)
    shift_end = shift[1] if shift else None
    longest = max(((datetime.combine(today_, b) - datetime.combine(today_, a)) for a, b in settings.shifts),
                  default=timedelta(hours=6))
    live = await reader.live_assigned()  # every live task with an assignee
    loads: dict[str, dict] = {}
    for initials, m in roster.items():
        if not m.get("known") or not m.get("active"):
            continue
        loads[initials] = {"initials": initials, "name": m.get("name"), "role": m.get("role"),
                           "deputy": m.get("deputy"), "present_today": is_present(m, today_), "open": 0,
                           "due_this_shift": 0, "overdue": 0, "oldest": None, "oldest_since": None}
    for t in live:
        load = loads.get(t.get("assignee") or "")
        if load is None:
            continue
        due = _instant(t.get("due_at"))
        if t["status"] == "open" or (due is not None and due <= now):
            load["open"] += 1
        if shift_end is not None and due is not None and due <= shift_end:
            load["due_this_shift"] += 1
        if due is not None and now - due > longest:
            load["overdue"] += 1
        since = actionable_since(t)
        if (t["status"] == "open" or (due is not None and due <= now)) and (
                load["oldest_since"] is None or since.isoformat() < load["oldest_since"]):
            load["oldest"], load["oldest_since"] = t, since.isoformat()
    absences = _absences(roster, live, today_, settings)
    members = sorted(loads.values(), key=lambda m: (m["role"] != "at", m["initials"]))
    return {"day": today_.isoformat(), "shift": [w.isoformat() for w in shift] if shift else None,
            "members": members, "absences": absences}


def _absences(roster: dict[str, dict], live: list[dict], today_: date, settings: Settings) -> list[dict]:
    """Absences touching the next TEAM_DAYS days and what moves to whom on their first day in it."""
    horizon = today_ + timedelta(days=TEAM_DAYS)
    out = []
    for initials, m in sorted(roster.items()):
        for absence_id, a in sorted(m.get("absences", {}).items(), key=lambda kv: kv[1]["starts_on"]):
            if a.get("ended"):
                continue
            starts = date.fromisoformat(a["starts_on"])
            ends = date.fromisoformat(a["ends_on"]) if a.get("ends_on") else None
            if starts > horizon or (ends is not None and ends < today_):
                continue
            first = max(starts, today_)
            deputy = m.get("deputy")
            deputy_ok = bool(deputy and deputy != initials and is_present(roster.get(deputy), first))
            moves = []
            for t in live:
                if t.get("owner") != initials or t["tab"] not in ("cases", "reminders"):
                    continue
                key = t["task_id"].removeprefix("reminder:") if t["tab"] == "reminders" else t["task_id"]
                a_ = assign(initials, key, roster, first)
                why = ("Vertretung" if a_.assignee == deputy else "verteilt") if a_.flag == HANDOVER else (
                    "niemand verfügbar" if a_.flag == UNAVAILABLE else "bleibt")
                moves.append({"day": first.isoformat(), "task_id": t["task_id"], "title": t["title"], "tab": t["tab"],
                              "vpa_id": t["vpa_id"], "vpa_name": t.get("vpa_name"),
                              "to": a_.assignee if a_.flag == HANDOVER else None, "why": why})
            out.append({"initials": initials, "name": m.get("name"), "kind": a["kind"], "starts_on": a["starts_on"],
                        "ends_on": a.get("ends_on"), "deputy": deputy, "deputy_available": deputy_ok, "moves": moves})
    out.sort(key=lambda a: (a["starts_on"], a["initials"]))
    return out
