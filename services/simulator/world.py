"""The shared state of one simulation run: config, random source, roster, VPAs and the stream."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from services.core.ids import rendezvous_pick
from services.simulator.company import IdCounter, Member, Vpa
from services.simulator.config import SimConfig
from services.simulator.stream import Stream
from services.simulator.timeline import add_working_days, at, is_working_day, stamp


@dataclass
class World:
    cfg: SimConfig
    rng: random.Random
    tz: ZoneInfo
    stream: Stream
    end: datetime
    members: dict[str, Member] = field(default_factory=dict)
    vpas: dict[str, Vpa] = field(default_factory=dict)
    ids: IdCounter = field(default_factory=IdCounter)
    next_vpa_number: int = 1001

    @property
    def at_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "at"]

    @property
    def managers(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "vpa_manager"]

    def local(self, dt: datetime) -> date:
        return dt.astimezone(self.tz).date()

    def at(self, d: date, seconds: int) -> datetime:
        return at(d, seconds, self.tz)

    def uniform_time(self, d: date, lo: int, hi: int) -> datetime:
        return at(d, self.rng.randint(lo, hi), self.tz)

    def poisson(self, lam: float) -> int:
        """A Poisson draw (Knuth's method: fine for the small means used here)."""
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def present_person(self, prefs: list[Optional[str]], d: date, key: str) -> Optional[Member]:
        """Who acts on ``d``: the first present of ``prefs``, else a present AT member (as the
        handover would pick), else nobody (weekend, team day)."""
        for ini in prefs:
            m = self.members.get(ini) if ini else None
            if m is not None and m.present(d):
                return m
        present = sorted(m.initials for m in self.at_members if m.present(d))
        pick = rendezvous_pick(key, present)
        return self.members[pick] if pick else None

    def slot(self, prefs: list[Optional[str]], after: datetime, delay_days: int, window: tuple[int, int],
             key: str) -> Optional[tuple[datetime, Member]]:
        """A moment in ``window`` (seconds of the local day), ``delay_days`` working days after
        ``after`` or later, when someone of ``prefs`` (or another present member) works."""
        first = self.local(after)
        d = add_working_days(first, delay_days)
        for _ in range(40):
            if stamp(self.at(d, 0)) >= stamp(self.end):
                return None
            if is_working_day(d):
                who = self.present_person(prefs, d, key)
                lo = window[0]
                if d == first:
                    here = after.astimezone(self.tz)
                    lo = max(lo, here.hour * 3600 + here.minute * 60 + here.second + 600)
                if who is not None and lo < window[1]:
                    return self.uniform_time(d, lo, window[1]), who
            d += timedelta(days=1)
        return None
