"""What the upstream platform and HR write: registrations, activity, inactivity, schedules,
absences, classes, complaints, profile changes, onboarding and check-in calls, offboardings, and
the roster. Each generator also plans what people will do about the case it opens (people.py).

The simulation predicts the cases the detector opens with DESIGN's default thresholds. Where it
cannot know (a later event it has not planned yet), it only ever under-estimates, so a command it
plans never names a case that is not open; at worst a case stays open.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Optional

from services.simulator import config as C
from services.simulator import people
from services.simulator.company import AbsenceTrack, Member, RosterAbsence, Vpa, new_vpa
from services.simulator.names import ABSENCE_REASONS, COMPLAINT_SUMMARIES, LAST_NAMES
from services.simulator.timeline import (
    add_months, add_working_days, follow_up_at, hm, is_working_day, stage_on, stage_starts, stamp,
)
from services.simulator.world import World

CLASS_RANK = {"A": 0, "B": 1, "C": 2, "D": 3}


def case_id(kind: str, vpa_id: str, subject: str) -> str:
    return f"case:{kind}:{vpa_id}:{subject}"  # DESIGN 5.6


# ---- roster ------------------------------------------------------------------------------------

def member_upserted(m: Member) -> dict:
    return {"initials": m.initials, "name": m.name, "role": m.role, "deputy": m.deputy, "active": True}


def plan_roster(w: World, snapshot: datetime) -> None:
    """The roster as HR exports it at the start (members, absences already booked), then every
    later booking, sick note and return in its own time."""
    for i, m in enumerate(w.members.values()):
        w.stream.add(snapshot + timedelta(seconds=i), "roster.member_upserted", member_upserted(m))
    start = stamp(snapshot)
    for m in w.members.values():
        for a in sorted(m.absences, key=lambda a: (a.registered_at, a.absence_id)):
            back = stamp(w.at(a.back_on, 0))
            if back <= start:
                continue  # over before the run
            when = a.registered_at if stamp(a.registered_at) > start else snapshot + timedelta(minutes=1)
            w.stream.add(when, "roster.absence_registered", _absence_data(a))
            if a.ended_at is not None:
                w.stream.add(max(a.ended_at, when + timedelta(seconds=1)), "roster.absence_ended",
                             {"absence_id": a.absence_id, "initials": a.initials})


def _absence_data(a: RosterAbsence) -> dict:
    return {"absence_id": a.absence_id, "initials": a.initials, "kind": a.kind, "starts_on": a.starts_on.isoformat(),
            "ends_on": a.ends_on.isoformat() if a.ends_on else None}


def deputy_changes(w: World, d: date) -> None:
    """Now and then a member's deputy changes (re-evaluates every handover)."""
    ats = w.at_members
    for m in ats:
        if len(ats) > 2 and w.rng.random() < 0.002:
            m.deputy = w.rng.choice([o.initials for o in ats if o.initials not in (m.initials, m.deputy)])
            w.stream.add(w.uniform_time(d, hm(9), hm(16)), "roster.member_upserted", member_upserted(m))


# ---- registrations and journey -------------------------------------------------------------------

def registered_data(v: Vpa) -> dict:
    return {"name": v.name, "started_on": v.started_on.isoformat(), "part_time": v.part_time, "class": v.vpa_class,
            "at_owner": v.at_owner, "buddy": v.buddy, "uses_mobile_app": v.uses_mobile_app}


def register(w: World, v: Vpa, when: datetime) -> None:
    v.registered_ts = stamp(when)
    w.vpas[v.vpa_id] = v
    w.stream.add(when, "vpa.registered", registered_data(v), v.vpa_id)
    plan_journey(w, v, when)


def plan_journey(w: World, v: Vpa, registered: datetime) -> None:
    """When each stage's task opens (DESIGN 2.3, 5.23) and what clears it."""
    rng = w.rng
    reg_day = w.local(registered)
    current = stage_on(v.started_on, reg_day)
    for stage, begins in stage_starts(v.started_on):
        if begins <= reg_day:
            if stage != current or (reg_day - begins).days >= 30:
                continue
            opened = registered
        else:
            opened = w.at(begins, hm(6))  # the daily sweep
        if stamp(opened) >= stamp(w.end):
            break
        if stage == "NEW_0_3":
            if rng.random() < 0.92:
                day = add_working_days(max(w.local(opened), v.started_on), rng.randint(3, 15))
                w.stream.add(w.uniform_time(day, hm(9), hm(16)), "vpa.onboarding_call_completed", {}, v.vpa_id)
        elif stage == "NEW_3_6":
            if rng.random() < 0.92:
                day = add_working_days(w.local(opened), rng.randint(2, 12))
                when = w.uniform_time(day, hm(9), hm(17))
                data = {"scheduled_for": w.at(add_working_days(day, rng.randint(2, 8)),
                                              rng.choice((hm(10), hm(14), hm(16)))).isoformat(timespec="seconds")}
                if v.buddy:
                    data["buddy"] = v.buddy
                w.stream.add(when, "vpa.checkin_call_scheduled", data, v.vpa_id)
        else:
            people.clear_journey(w, v, stage, opened)


def snapshot_vpas(w: World, start: date) -> None:
    """The platform's initial export: every VPA of the company, with a realistic tenure mix."""
    rng = w.rng
    ats = [m.initials for m in w.at_members]
    for i in range(w.cfg.vpas):
        if rng.random() < C.FIRST_YEAR:
            tenure = rng.randint(0, 364)
        else:
            tenure = rng.randint(365, 2900)
        v = new_vpa(rng, f"V-{w.next_vpa_number}", start - timedelta(days=tenure), ats[i % len(ats)], ats, tenure)
        w.next_vpa_number += 1
        register(w, v, w.at(start, hm(5, 30) + i * 1800 // w.cfg.vpas))


def hire(w: World, d: date, active: list[Vpa]) -> None:
    """New hires, registered on Tuesdays, starting the next Monday (some the same day)."""
    if d.weekday() != 1:
        return
    rng = w.rng
    count = max(1, w.poisson(w.cfg.vpas * C.HIRES_PER_WEEK_PER_VPA))
    load = {m.initials: 0 for m in w.at_members}
    for v in active:
        if v.at_owner in load:
            load[v.at_owner] += 1
    for _ in range(count):
        owner = min(load, key=lambda i: (load[i], i))  # the least loaded AT member
        load[owner] += 1
        starts = d if rng.random() < 0.2 else d + timedelta(days=6)
        v = new_vpa(rng, f"V-{w.next_vpa_number}", starts, owner, list(load), 0)
        w.next_vpa_number += 1
        register(w, v, w.uniform_time(d, hm(10), hm(15)))


# ---- daily events of one VPA ---------------------------------------------------------------------

def vpa_day(w: World, v: Vpa, d: date, day_ts: int) -> None:
    """At most one spontaneous event kind per VPA and day (one draw), chosen by its rates."""
    rng = w.rng
    busy = v.busy_until_ts > day_ts
    new = add_months(v.started_on, 3) > d
    table: list[tuple[float, object]] = []
    if not busy:
        table.append((C.ACTIVITY_WEB, _activity_web))
        if v.uses_mobile_app:
            table.append((C.ACTIVITY_MOBILE, _activity_mobile))
        if not v.away_on(d, day_ts) and d >= v.started_on:
            table.append((C.INACTIVITY_PART_TIME if v.part_time else C.INACTIVITY, _inactivity))
        table.append((C.COMPLAINT, _complaint))
    table.append((C.SCHEDULE_CHANGE_NEW if new else C.SCHEDULE_CHANGE, _schedule_change))
    if v.vpa_class is None:
        if (d - v.started_on).days >= 45:
            table.append((C.FIRST_RATING, _class_change))
    else:
        table.append((C.CLASS_CHANGE, _class_change))
    table.append((C.ABSENCE_OFTEN_AWAY if v.often_away else C.ABSENCE, _absence))
    if not busy:  # a part-time change mid-episode would change the follow-up decision
        table.append((C.PROFILE_UPDATE, _profile_update))
    if is_working_day(d) and (d - v.started_on).days > 30:
        table.append((C.OFFBOARDING, _offboard))
    r = rng.random()
    for rate, handler in table:
        if r < rate:
            handler(w, v, d)
            return
        r -= rate


def _activity_web(w: World, v: Vpa, d: date) -> None:
    w.stream.add(w.uniform_time(d, hm(7), hm(21)), "vpa.activity_seen", {"channel": "web"}, v.vpa_id)


def _activity_mobile(w: World, v: Vpa, d: date) -> None:
    w.stream.add(w.uniform_time(d, hm(7), hm(22)), "vpa.activity_seen", {"channel": "mobile"}, v.vpa_id)


def _complaint(w: World, v: Vpa, d: date) -> None:
    when = w.uniform_time(d, hm(8), hm(18))
    _add_complaint(w, v, when)


def _add_complaint(w: World, v: Vpa, when: datetime) -> None:
    w.stream.add(when, "vpa.customer_complaint",
                 {"complaint_id": w.ids.next("B"), "summary": w.rng.choice(COMPLAINT_SUMMARIES)}, v.vpa_id)
    v.complaints.append(stamp(when))


def _inactivity(w: World, v: Vpa, d: date) -> None:
    """An inactivity episode: the platform flags the VPA inactive, later active again (DESIGN 2.1)."""
    rng, tz = w.rng, w.tz
    start = w.uniform_time(d, hm(16), hm(22, 59))
    follow_up = follow_up_at(start, tz)
    event_id = w.stream.add(start, "vpa.activity_status_changed", {"status": "inactive"}, v.vpa_id)
    task_id = case_id("inactive", v.vpa_id, event_id)
    shape = rng.random()
    if d.weekday() >= 4 and rng.random() < 0.6:
        shape_name = "weekend"  # gone for the weekend, back on Monday morning
    elif v.uses_mobile_app and shape < 0.35:
        shape_name = "mobile"  # the status stays inactive while the VPA works in the app
    elif shape >= 0.7:
        shape_name = "long"
    else:
        shape_name = "next_day"
    if shape_name in ("next_day", "weekend"):
        day = d + timedelta(days=1) if shape_name == "next_day" else d + timedelta(days=7 - d.weekday())
        seen = w.uniform_time(day, hm(7), hm(8, 50) if shape_name == "next_day" else hm(11, 30))
        w.stream.add(seen, "vpa.activity_seen", {"channel": "web"}, v.vpa_id)
        back = seen + timedelta(seconds=rng.randint(60, 900))
        w.stream.add(back, "vpa.activity_status_changed", {"status": "active"}, v.vpa_id)
    elif shape_name == "mobile":
        w.stream.add(w.uniform_time(d + timedelta(days=1), hm(7), hm(8, 50)), "vpa.activity_seen",
                     {"channel": "mobile"}, v.vpa_id)
        back_day = w.local(follow_up) + timedelta(days=1)
        w.stream.add(w.uniform_time(back_day, hm(7), hm(7, 50)), "vpa.activity_seen", {"channel": "mobile"}, v.vpa_id)
        back = w.uniform_time(back_day, hm(8), hm(10))
        w.stream.add(back, "vpa.activity_status_changed", {"status": "active"}, v.vpa_id)
    else:
        back = w.uniform_time(d + timedelta(days=rng.randint(5, 12)), hm(8), hm(10))
        complained: Optional[datetime] = None
        if rng.random() < 0.35:  # a customer complains meanwhile: the case opens at once
            span = int((back - start).total_seconds()) - 3 * 3600
            complained = start + timedelta(seconds=2 * 3600 + rng.randint(0, span))
            if not 7 <= complained.astimezone(tz).hour < 21:
                complained = w.uniform_time(w.local(complained), hm(9), hm(17))
                if complained <= start or complained >= back:
                    complained = None
            if complained is not None:
                _add_complaint(w, v, complained)
        w.stream.add(back - timedelta(seconds=rng.randint(60, 600)), "vpa.activity_seen", {"channel": "web"}, v.vpa_id)
        w.stream.add(back, "vpa.activity_status_changed", {"status": "active"}, v.vpa_id)
        opened = _inactive_case_opens(v, start, follow_up, complained)
        if opened is not None:
            # The automatic follow-up reminder is still live unless the case closed itself first.
            live_reminder = stamp(opened) <= stamp(follow_up) or not v.part_time
            people.work_case(w, v, task_id, opened, follow_up_reminder=live_reminder)
    v.busy_until_ts = stamp(back)


def _inactive_case_opens(v: Vpa, start: datetime, follow_up: datetime, complained: Optional[datetime]) -> Optional[datetime]:
    """When a long episode's case is open for the AT (DESIGN 2.1, 5.22), None if it closes itself."""
    if complained is not None and complained < follow_up:
        return complained  # a complaint during the episode opens it at once
    window_start = stamp(follow_up) - 14 * 86400
    earlier = any(window_start <= c <= stamp(follow_up) for c in v.complaints if c < stamp(start))
    if not v.part_time or earlier:
        return follow_up  # contact_needed at the follow-up
    return complained  # part-timer: closed as part_time_no_contact, reopened by a later complaint


def _schedule_change(w: World, v: Vpa, d: date) -> None:
    rng = w.rng
    when = w.uniform_time(d, hm(7), hm(21))
    new = add_months(v.started_on, 3) > d
    if rng.random() < (0.5 if new else 0.3):
        new_customers, orders = rng.choice(((False, True), (True, False), (False, False)))
    else:
        new_customers, orders = True, True  # other working hours, same availability
    event_id = w.stream.add(when, "vpa.schedule_changed",
                            {"accepts_new_customers": new_customers, "accepts_orders": orders}, v.vpa_id)
    _vpa_case(w, v, "schedule_change", event_id, when)


def _vpa_case(w: World, v: Vpa, kind: str, event_id: str, when: datetime) -> None:
    """One open case per VPA and kind (DESIGN 2.1): a later event merges into it."""
    held = v.open_cases.get(kind)
    if held is not None and (held[1] is None or held[1] > stamp(when)):
        return
    task_id = case_id(kind, v.vpa_id, event_id)
    v.open_cases[kind] = (task_id, people.work_case(w, v, task_id, when))


def _class_change(w: World, v: Vpa, d: date) -> None:
    rng = w.rng
    when = w.uniform_time(d, hm(8), hm(18))
    before = v.vpa_class
    if before is None:
        new = rng.choices(("A", "B", "C", "D"), weights=(10, 35, 40, 15))[0]
        rising = rng.random() < 0.25
    else:
        r = rng.random()
        if r < 0.45 and before != "A":
            new = "ABCD"[CLASS_RANK[before] - 1]
        elif r < 0.9 and before != "D":
            new = "ABCD"[CLASS_RANK[before] + 1]
        else:
            new = before
        rising = (CLASS_RANK[new] <= CLASS_RANK[before] and rng.random() < 0.3)
    data = {"class": new, "previous": before if before and rng.random() < 0.85 else None, "rising_star": rising}
    event_id = w.stream.add(when, "vpa.class_changed", data, v.vpa_id)
    reasons = []
    if before is not None and CLASS_RANK[new] != CLASS_RANK[before]:
        reasons.append("negative" if CLASS_RANK[new] > CLASS_RANK[before] else "positive")
    if rising and not v.rising_star:
        reasons.append("rising_star")
    v.vpa_class, v.rising_star = new, rising
    if reasons:
        _vpa_case(w, v, "class_change", event_id, when)


def _absence(w: World, v: Vpa, d: date) -> None:
    """An absence of the VPA and what becomes of it: cancelled, re-registered (DESIGN 2.1, 5.18, 5.19)."""
    rng = w.rng
    kinds = ("planned", "long", "sick", "short", "retro")
    kind = rng.choices(kinds, weights=(25, 25, 35, 10, 5) if v.often_away else (60, 6, 22, 8, 4))[0]
    if kind in ("sick", "retro"):
        registered = w.uniform_time(d, hm(6, 30), hm(9, 30))
    else:
        registered = w.uniform_time(d, hm(8), hm(20))
    if kind == "planned":
        starts = d + timedelta(days=rng.randint(5, 60))
        ends = starts + timedelta(days=rng.choice((1, 2, 3, 5, 5, 7, 7, 10, 12, 14)) - 1)
    elif kind == "long":
        starts = d + timedelta(days=rng.randint(14, 60))
        ends = starts + timedelta(days=rng.randint(22, 70) - 1)
    elif kind == "sick":
        starts = d - timedelta(days=1 if rng.random() < 0.2 else 0)
        ends = starts + timedelta(days=rng.randint(1, 5) - 1)
    elif kind == "short":
        starts = d + timedelta(days=1)
        ends = starts + timedelta(days=rng.randint(1, 3) - 1)
    else:  # a sick note entered after the fact: already over, so not short notice
        ends = d - timedelta(days=1)
        starts = ends - timedelta(days=rng.randint(1, 5) - 1)
    absence_id = w.ids.next("ABW")
    track = AbsenceTrack(absence_id, [(stamp(registered), "reg", starts, ends)])
    lead = (starts - d).days
    fate = rng.random()
    if kind in ("planned", "long", "short") and lead >= 3 and fate < 0.10:
        cancel = w.uniform_time(d + timedelta(days=rng.randint(1, min(10, lead - 1))), hm(8), hm(20))
        track.events.append((stamp(cancel), "cancel"))
    elif kind == "planned" and lead >= 3 and fate < 0.20:  # the dates change: extended
        moved = w.uniform_time(d + timedelta(days=rng.randint(1, min(7, lead - 1))), hm(8), hm(20))
        track.events.append((stamp(moved), "reg", starts, ends + timedelta(days=rng.randint(1, 12))))
    elif kind == "planned" and lead >= 6 and fate < 0.24:  # cancelled, then booked again
        cancel_day = d + timedelta(days=rng.randint(1, 2))
        track.events.append((stamp(w.uniform_time(cancel_day, hm(8), hm(20))), "cancel"))
        again = cancel_day + timedelta(days=rng.randint(1, min(3, lead - 3)))
        track.events.append((stamp(w.uniform_time(again, hm(8), hm(20))), "reg", starts, ends))
    v.absences.append(track)
    reason = rng.choice(ABSENCE_REASONS[kind])
    for ev in track.events:
        when = datetime.fromtimestamp(ev[0], w.tz)
        if ev[1] == "reg":
            data = {"absence_id": absence_id, "starts_on": ev[2].isoformat(), "ends_on": ev[3].isoformat()}
            if reason:
                data["reason"] = reason
            w.stream.add(when, "vpa.absence_registered", data, v.vpa_id)
        else:
            w.stream.add(when, "vpa.absence_cancelled", {"absence_id": absence_id}, v.vpa_id)
    _plan_absence_case(w, v, track)


def _absence_reasons(v: Vpa, track: AbsenceTrack, ts: int, starts: date, ends: date, registered_on: date) -> bool:
    """Would the detector see a reason (DESIGN 2.1 with its default thresholds)?"""
    if (ends - starts).days + 1 > 21:
        return True
    if starts <= registered_on + timedelta(days=1) and ends >= registered_on:
        return True
    window = starts - timedelta(days=90)
    others = 0
    for other in v.absences:
        if other.absence_id == track.absence_id:
            continue
        span = other.state_at(ts)
        if span and window <= span[0] <= starts:
            others += 1
    return others + 1 >= 3


def _plan_absence_case(w: World, v: Vpa, track: AbsenceTrack) -> None:
    task_id = case_id("absence", v.vpa_id, track.absence_id)
    open_since: Optional[int] = None
    resolved: Optional[int] = None
    for i, ev in enumerate(track.events):
        ts = ev[0]
        if open_since is not None and resolved is not None and resolved < ts:
            open_since = None  # resolved by the AT before this event
        if ev[1] == "cancel":
            open_since = None
            continue
        if open_since is None and _absence_reasons(v, track, ts, ev[2], ev[3], w.local(datetime.fromtimestamp(ts, w.tz))):
            open_since = ts
            closes = next((e[0] for e in track.events[i + 1:] if e[1] == "cancel"), None)
            resolved = people.work_case(w, v, task_id, datetime.fromtimestamp(ts, w.tz), closes_ts=closes)


def _profile_update(w: World, v: Vpa, d: date) -> None:
    rng = w.rng
    when = w.uniform_time(d, hm(8), hm(18))
    ats = [m.initials for m in w.at_members]
    r = rng.random()
    if r < 0.35 and not v.uses_mobile_app:
        v.uses_mobile_app = True
        data = {"uses_mobile_app": True}
    elif r < 0.55 and (d - v.started_on).days < 365 and len(ats) > 1:
        v.buddy = rng.choice([i for i in ats if i not in (v.at_owner, v.buddy)] or ats)
        data = {"buddy": v.buddy}
    elif r < 0.65:
        v.last = rng.choice(LAST_NAMES)
        data = {"name": v.name}
    elif r < 0.8:
        v.part_time = not v.part_time
        data = {"part_time": v.part_time}
    elif len(ats) > 1:  # the team rebalances: another AT member takes the VPA over
        v.at_owner = rng.choice([i for i in ats if i != v.at_owner])
        data = {"at_owner": v.at_owner}
    else:
        return
    w.stream.add(when, "vpa.profile_updated", data, v.vpa_id)


def _offboard(w: World, v: Vpa, d: date) -> None:
    when = w.uniform_time(d, hm(16), hm(18))
    w.stream.add(when, "vpa.offboarded", {}, v.vpa_id)
    v.offboarded_ts = stamp(when)
