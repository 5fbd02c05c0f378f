"""Calendar arithmetic for the rules: local dates, month steps, output format."""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


# The last answer of ``local_date`` and ``fmt``, by the identity of their arguments: a step asks
# both many times for the same instant (every rule reads "now"), and the zone conversion is the
# dear part. Datetimes are immutable, so the same object always gives the same answer.
_last_date: tuple[object, object, date] = (None, None, date.min)
_last_fmt: tuple[object, object, str] = (None, None, "")


def local_date(dt: datetime, tz: ZoneInfo) -> date:
    global _last_date
    last = _last_date
    if last[0] is dt and last[1] is tz:
        return last[2]
    d = dt.astimezone(tz).date()
    _last_date = (dt, tz, d)
    return d


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
    global _last_fmt
    if dt is None:
        return None
    last = _last_fmt
    if last[0] is dt and last[1] is tz:
        return last[2]
    text = dt.astimezone(tz).replace(microsecond=0).isoformat()
    _last_fmt = (dt, tz, text)
    return text


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
