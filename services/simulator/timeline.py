"""Calendar helpers of the simulation: local times, working days, the team day, follow-ups.

The simulation models the company with DESIGN's defaults (Europe/Berlin, Monday to Friday,
follow-up at 09:00 or 12:00 on a Monday). Local times never fall between 02:00 and 03:00, so
daylight-saving changes cannot make a time ambiguous or skip it.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.core.timeutil import add_months, months_between

__all__ = ["add_months", "months_between", "at", "hm", "is_working_day", "add_working_days", "next_working_day",
           "follow_up_at", "is_team_day", "stage_starts", "STAGES", "stamp", "day_start"]

TEAM_DAY_ANCHOR = date(2024, 1, 4)  # a Thursday; team days repeat every TEAM_DAY_PERIOD days
# (stage, first month of tenure) as DESIGN 2.3
STAGES = (("NEW_0_3", 0), ("NEW_3_6", 3), ("NEW_6_9", 6), ("NEW_9_12", 9), ("NEW_GT_12", 12))


def hm(h: int, m: int = 0, s: int = 0) -> int:
    """Seconds since local midnight."""
    return h * 3600 + m * 60 + s


def at(d: date, seconds: int, tz: ZoneInfo) -> datetime:
    seconds = max(0, min(seconds, 86399))
    return datetime.combine(d, time(seconds // 3600, seconds % 3600 // 60, seconds % 60), tzinfo=tz)


def day_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz)


def stamp(dt: datetime) -> int:
    """The instant as whole seconds (sort key of the output)."""
    return int(dt.timestamp())


def is_working_day(d: date) -> bool:
    return d.weekday() < 5


def next_working_day(d: date) -> date:
    d += timedelta(days=1)
    while not is_working_day(d):
        d += timedelta(days=1)
    return d


def add_working_days(d: date, n: int) -> date:
    """``n`` working days after ``d`` (0: ``d`` itself, or the next working day if ``d`` is none)."""
    if n == 0:
        return d if is_working_day(d) else next_working_day(d)
    for _ in range(n):
        d = next_working_day(d)
    return d


def follow_up_at(inactive_at: datetime, tz: ZoneInfo) -> datetime:
    """DESIGN 2.1: the next working day after the inactivity's local date, 09:00 (Monday 12:00)."""
    day = next_working_day(inactive_at.astimezone(tz).date())
    return at(day, hm(12) if day.weekday() == 0 else hm(9), tz)


def is_team_day(d: date, period: int) -> bool:
    return (d - TEAM_DAY_ANCHOR).days % period == 0


def stage_starts(started_on: date) -> list[tuple[str, date]]:
    return [(stage, add_months(started_on, months)) for stage, months in STAGES]


def stage_on(started_on: date, on: date) -> str | None:
    months = months_between(started_on, on)
    current = None
    for stage, first_month in STAGES:
        if months >= first_month:
            current = stage
    return current
