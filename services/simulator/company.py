"""The company: the AT roster with its absences, and the VPAs with what the simulation knows of them.

The roster's calendar (vacations, sick days, team days) is planned for the whole run when the
company is created: people book vacations weeks ahead, and the simulated AT members must know who
is present to decide who works a case or a reminder on a given day.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from services.simulator import config as C
from services.simulator.names import FIRST_NAMES, LAST_NAMES
from services.simulator.timeline import at, hm, is_team_day


@dataclass
class RosterAbsence:
    absence_id: str
    initials: str
    kind: str  # vacation | sick
    starts_on: date
    ends_on: Optional[date]  # as registered; None = open-ended
    back_on: date  # first day present again
    registered_at: datetime
    ended_at: Optional[datetime] = None  # roster.absence_ended (open-ended, or ended early)


@dataclass
class Member:
    initials: str
    name: str
    role: str  # at | vpa_manager
    deputy: Optional[str]
    absences: list[RosterAbsence] = field(default_factory=list)
    away: set[date] = field(default_factory=set)

    def present(self, d: date) -> bool:
        return d not in self.away

    def actor(self) -> dict:
        return {"initials": self.initials, "role": self.role}


@dataclass
class AbsenceTrack:
    """One VPA absence as the detector will know it: (instant, 'reg', starts, ends) or (instant, 'cancel')."""
    absence_id: str
    events: list[tuple]

    def state_at(self, ts: int) -> Optional[tuple[date, date]]:
        """(starts_on, ends_on) of the registration in force before ``ts``; None if cancelled or unknown."""
        current = None
        for ev in self.events:
            if ev[0] >= ts:
                break
            current = (ev[2], ev[3]) if ev[1] == "reg" else None
        return current


@dataclass
class Vpa:
    vpa_id: str
    first: str
    last: str
    started_on: date
    part_time: bool
    vpa_class: Optional[str]
    at_owner: str
    buddy: Optional[str]
    uses_mobile_app: bool
    often_away: bool
    registered_ts: int = 0
    offboarded_ts: Optional[int] = None
    rising_star: bool = False
    busy_until_ts: int = 0  # a running inactivity episode ends then (status active)
    absences: list[AbsenceTrack] = field(default_factory=list)
    complaints: list[int] = field(default_factory=list)
    # kind -> (case task_id, instant it is resolved, or None while nobody resolves it)
    open_cases: dict[str, tuple[str, Optional[int]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def active_on(self, day_ts: int) -> bool:
        return self.registered_ts < day_ts and self.offboarded_ts is None

    def away_on(self, d: date, ts: int) -> bool:
        for a in self.absences:
            span = a.state_at(ts)
            if span and span[0] <= d <= span[1]:
                return True
        return False


def _initials(first: str, last: str, taken: set[str]) -> str:
    letters = [c for c in (first + last).upper() if "A" <= c <= "Z"]
    candidates = [first[0] + last[0], first[0] + last[:2], first[:2] + last[0], first[:2] + last[:2]]
    for cand in candidates:
        cand = "".join(c for c in cand.upper().replace("Ä", "A").replace("Ö", "O").replace("Ü", "U") if "A" <= c <= "Z")
        if 2 <= len(cand) <= 4 and cand not in taken and cand != "SYS":
            return cand
    n = 0
    while True:  # practically unreachable: a number-free fallback keeps the initials pattern
        cand = (letters[0] + letters[-1] + chr(ord("A") + n % 26) + chr(ord("A") + n // 26 % 26))
        if cand not in taken:
            return cand
        n += 1


def build_roster(rng: random.Random, vpas: int) -> list[Member]:
    n_at = max(2, round(vpas / C.VPAS_PER_AT_MEMBER))
    n_vm = max(1, round(vpas / C.VPAS_PER_MANAGER))
    taken: set[str] = set()
    people: list[tuple[str, str]] = []
    while len(people) < n_at + n_vm:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        ini = _initials(first, last, taken)
        taken.add(ini)
        people.append((ini, f"{first} {last}"))
    at_people, vm_people = people[:n_at], people[n_at:]
    members: list[Member] = []
    for i, (ini, name) in enumerate(at_people):
        if i % 5 == 4:
            deputy = None  # some members have no deputy: rendezvous hashing picks someone
        elif i % 7 == 2:
            deputy = vm_people[0][0]  # a deputy may have any role
        else:
            deputy = at_people[(i + 1) % n_at][0]
        members.append(Member(ini, name, "at", deputy))
    for i, (ini, name) in enumerate(vm_people):
        members.append(Member(ini, name, "vpa_manager", vm_people[(i + 1) % n_vm][0] if n_vm > 1 else None))
    return members


def plan_member_calendar(rng: random.Random, m: Member, first: date, last: date, tz: ZoneInfo,
                         ids: "IdCounter") -> None:
    """Vacations, sick days (some open-ended) and team days of one member between two dates."""
    d = first + timedelta(days=rng.randint(0, 45))
    while d <= last:  # vacations, booked 2 to 8 weeks ahead
        length = rng.choice((3, 4, 5, 5, 7, 8, 10, 12))
        end = d + timedelta(days=length - 1)
        booked = d - timedelta(days=rng.randint(14, 56))
        m.absences.append(RosterAbsence(ids.next("U"), m.initials, "vacation", d, end, end + timedelta(days=1),
                                        at(booked, rng.randint(hm(9), hm(16)), tz)))
        d = end + timedelta(days=rng.randint(25, 75))
    d = first + timedelta(days=int(rng.expovariate(1 / 50)))
    while d <= last:  # sick days, reported on the morning they start
        length = rng.choice((1, 1, 2, 2, 3, 4, 5, 7))
        back = d + timedelta(days=length)
        reported = at(d, rng.randint(hm(6, 45), hm(8, 30)), tz)
        shape = rng.random()
        if shape < 0.5:  # open-ended: "krank bis auf Weiteres", ended when the member is back
            a = RosterAbsence(ids.next("K"), m.initials, "sick", d, None, back, reported,
                              ended_at=at(back, rng.randint(hm(7), hm(8)), tz))
        elif shape < 0.6:  # dated, but back earlier than reported
            a = RosterAbsence(ids.next("K"), m.initials, "sick", d, back + timedelta(days=2), back, reported,
                              ended_at=at(back, rng.randint(hm(7), hm(8)), tz))
        else:
            a = RosterAbsence(ids.next("K"), m.initials, "sick", d, back - timedelta(days=1), back, reported)
        m.absences.append(a)
        d = back + timedelta(days=int(rng.expovariate(1 / 70)) + 3)
    d = first
    while d <= last:  # the team day: everybody at once, entered as a one-day absence
        if is_team_day(d, C.TEAM_DAY_PERIOD):
            booked = d - timedelta(days=21)
            m.absences.append(RosterAbsence(f"TEAMTAG-{d.isoformat()}-{m.initials}", m.initials, "vacation", d, d,
                                            d + timedelta(days=1), at(booked, hm(10), tz)))
        d += timedelta(days=1)
    for a in m.absences:
        day = a.starts_on
        while day < a.back_on:
            m.away.add(day)
            day += timedelta(days=1)


class IdCounter:
    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        self._n[prefix] = self._n.get(prefix, 0) + 1
        return f"{prefix}-{self._n[prefix]:06d}"


def pick_class(rng: random.Random) -> str:
    return rng.choices(("A", "B", "C", "D"), weights=(12, 33, 38, 17))[0]


def new_vpa(rng: random.Random, vpa_id: str, started_on: date, owner: str, buddies: list[str],
            tenure_days: int) -> Vpa:
    unrated = tenure_days < 60 and rng.random() < 0.8
    buddy = None
    if tenure_days < 365 and rng.random() < 0.75:
        buddy = rng.choice([b for b in buddies if b != owner] or buddies)
    return Vpa(
        vpa_id=vpa_id, first=rng.choice(FIRST_NAMES), last=rng.choice(LAST_NAMES), started_on=started_on,
        part_time=rng.random() < C.PART_TIME, vpa_class=None if unrated else pick_class(rng), at_owner=owner,
        buddy=buddy, uses_mobile_app=rng.random() < C.MOBILE_APP, often_away=rng.random() < C.OFTEN_AWAY,
    )
