"""Calendar arithmetic for the rules: local dates, month steps, output format."""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_date(dt: datetime, tz: ZoneInfo) -> date:
    return dt.astimezone(tz).date()


def at_local(d: date, t: time, tz: ZoneInfo) -> datetime:
    """The instant of local wall time ``t`` on ``d`` (DST gaps resolve forward, as zoneinfo does)."""
    return datetime.combine(d, t, tzinfo=tz)


def add_months(d: date, months: int) -> date:
    """Calendar months with clamping to the month end (30 Nov + 3 months = 28 Feb)."""
    idx = d.month - 1 + months
    year, month = d.year + idx // 12, idx % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, on: date) -> int:
    """Whole calendar months from ``start`` to ``on`` (0 when ``on`` < start + 1 month)."""
    if on < start:
        return -1
    m = (on.year - start.year) * 12 + (on.month - start.month)
    while m > 0 and add_months(start, m) > on:
        m -= 1
    return m


def next_midnight(t: datetime, tz: ZoneInfo) -> datetime:
    """The first local 00:00 strictly after ``t``."""
    return datetime.combine(local_date(t, tz) + timedelta(days=1), time(0), tzinfo=tz)


def fmt(dt: datetime | None, tz: ZoneInfo) -> str | None:
    """RFC 3339 in the business time zone, to the second (DESIGN 5.25)."""
    if dt is None:
        return None
    return dt.astimezone(tz).replace(microsecond=0).isoformat()


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def is_working_day(d: date, working_days: tuple[int, ...], holidays: tuple[date, ...] = ()) -> bool:
    return d.weekday() in working_days and d not in holidays


def next_working_day(d: date, working_days: tuple[int, ...], holidays: tuple[date, ...] = ()) -> date:
    nxt = d + timedelta(days=1)
    for _ in range(366):
        if is_working_day(nxt, working_days, holidays):
            return nxt
        nxt += timedelta(days=1)
    raise ValueError("no working day within a year: check VPA_WORKING_DAYS")
