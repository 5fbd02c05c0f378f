"""Every threshold of the business rules is a setting with the documented default (DESIGN.md 2).

Settings come from environment variables (``VPA_*``) so the same image runs anywhere; tests build
``Settings(...)`` directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import date, time
from zoneinfo import ZoneInfo


def _parse_time(s: str) -> time:
    return time.fromisoformat(s)


@dataclass(frozen=True)
class Settings:
    timezone: str = "Europe/Berlin"
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday..Friday, date.weekday()
    holidays: tuple[date, ...] = ()
    # absences
    long_absence_days: int = 21
    frequent_absence_count: int = 3
    frequent_absence_window_days: int = 90
    short_notice_days: int = 1
    # inactivity
    follow_up_time: time = time(9, 0)
    monday_follow_up_time: time = time(12, 0)
    complaint_window_days: int = 14
    # N-VPA tenure
    new_vpa_months: int = 3
    # shifts: (start, end) local times
    shifts: tuple[tuple[time, time], ...] = ((time(8), time(14)), (time(14), time(20)))
    # journey
    journey_sweep_time: time = time(6, 0)
    journey_grace_days: int = 30
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.timezone))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        kw: dict = {}
        simple = {
            "VPA_TIMEZONE": ("timezone", str),
            "VPA_LONG_ABSENCE_DAYS": ("long_absence_days", int),
            "VPA_FREQUENT_ABSENCE_COUNT": ("frequent_absence_count", int),
            "VPA_FREQUENT_ABSENCE_WINDOW_DAYS": ("frequent_absence_window_days", int),
            "VPA_SHORT_NOTICE_DAYS": ("short_notice_days", int),
            "VPA_FOLLOW_UP_TIME": ("follow_up_time", _parse_time),
            "VPA_MONDAY_FOLLOW_UP_TIME": ("monday_follow_up_time", _parse_time),
            "VPA_COMPLAINT_WINDOW_DAYS": ("complaint_window_days", int),
            "VPA_NEW_VPA_MONTHS": ("new_vpa_months", int),
            "VPA_JOURNEY_SWEEP_TIME": ("journey_sweep_time", _parse_time),
            "VPA_JOURNEY_GRACE_DAYS": ("journey_grace_days", int),
        }
        for var, (name, conv) in simple.items():
            if env.get(var):
                kw[name] = conv(env[var])
        if env.get("VPA_WORKING_DAYS"):  # e.g. "0,1,2,3,4"
            kw["working_days"] = tuple(int(x) for x in env["VPA_WORKING_DAYS"].split(","))
        if env.get("VPA_HOLIDAYS"):  # e.g. "2026-12-25,2026-12-26"
            kw["holidays"] = tuple(date.fromisoformat(x.strip()) for x in env["VPA_HOLIDAYS"].split(","))
        if env.get("VPA_SHIFTS"):  # e.g. "08:00-14:00,14:00-20:00"
            kw["shifts"] = tuple(
                tuple(_parse_time(t) for t in part.split("-")) for part in env["VPA_SHIFTS"].split(",")
            )
        return cls(**kw)


SETTING_NAMES = tuple(f.name for f in fields(Settings) if f.init)
