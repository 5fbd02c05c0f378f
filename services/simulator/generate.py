"""The day loop: plan each day's events, then emit everything due before the next midnight."""
from __future__ import annotations

import random
from datetime import timedelta
from typing import Callable, Iterator, Optional
from zoneinfo import ZoneInfo

from services.simulator import people, upstream
from services.simulator.company import build_roster, plan_member_calendar
from services.simulator.config import SimConfig
from services.simulator.hostile import Hostile
from services.simulator.lines import Item
from services.simulator.stream import Stream
from services.simulator.timeline import day_start, hm, is_working_day, stamp
from services.simulator.world import World


def build_world(cfg: SimConfig) -> World:
    tz = ZoneInfo(cfg.timezone)
    end = day_start(cfg.start + timedelta(days=cfg.days), tz)
    w = World(cfg, random.Random(cfg.seed), tz, Stream(cfg.seed, end), end)
    for m in build_roster(w.rng, cfg.vpas):
        w.members[m.initials] = m
    for m in w.members.values():
        plan_member_calendar(w.rng, m, cfg.start - timedelta(days=60), cfg.start + timedelta(days=cfg.days + 60),
                             tz, w.ids)
    return w


def simulate(cfg: SimConfig, on_day: Optional[Callable[[int], None]] = None) -> Iterator[Item]:
    """Envelopes (dicts) in time order, with hostile lines (bytes) mixed in when ``bad_ratio`` > 0.

    ``on_day(n)`` is called after the n-th simulated day has been emitted (progress)."""
    w = build_world(cfg)
    hostile = Hostile(cfg) if cfg.bad_ratio > 0 else None
    for i in range(cfg.days):
        d = cfg.start + timedelta(days=i)
        day_ts = stamp(day_start(d, w.tz))
        w.stream.floor = day_ts
        if i == 0:
            upstream.plan_roster(w, w.at(d, hm(5)))
            upstream.snapshot_vpas(w, d)
        upstream.deputy_changes(w, d)
        settled = stamp(w.at(d, hm(6)))  # registered before the day's first spontaneous event
        active = [v for v in w.vpas.values() if v.registered_ts < settled and v.offboarded_ts is None]
        upstream.hire(w, d, active)
        for v in active:
            upstream.vpa_day(w, v, d, day_ts)
        if is_working_day(d):
            people.daily_reminders(w, d, [v for v in active if v.offboarded_ts is None])
        for ts, env in w.stream.pop_before(stamp(day_start(d + timedelta(days=1), w.tz))):
            if _gone(w, ts, env):
                continue
            yield env
            if hostile is not None:
                yield from hostile.after(env)
        if on_day is not None:
            on_day(i + 1)


def _gone(w: World, ts: int, env: dict) -> bool:
    """Nothing about a VPA after its offboarding: plans made earlier are dropped here."""
    v = w.vpas.get(env["vpa_id"]) if env["vpa_id"] else None
    if v is None or v.offboarded_ts is None:
        return False
    return ts > v.offboarded_ts or (ts == v.offboarded_ts and env["type"] != "vpa.offboarded")
