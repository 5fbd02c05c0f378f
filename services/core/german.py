"""Dates and times in German, one form everywhere (issue 20): ``Mi 08.12.2026, 11:45 Uhr``.

Every text the rules write into a task (titles, history, evidence, actions) uses these, always
with the year: a stored text is read months later. The page formats the times it shows itself
with the same rules (``static/app.js``, ``formatTime``) and leaves the year out only inside the
current year. Pure functions; the time zone is the caller's (the business time zone).
"""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

WEEKDAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")


def day(d: date) -> str:
    """``Mo 30.11.2026``."""
    # Only plain dates are cached: equal aware datetimes may lie on different local days.
    return _day(d) if type(d) is date else _day_text(d)


@lru_cache(maxsize=4096)  # a rule names the same few days again and again, and strftime is slow
def _day(d: date) -> str:
    return _day_text(d)


def _day_text(d: date) -> str:
    return f"{WEEKDAYS[d.weekday()]} {d.day:02d}.{d.month:02d}.{d.year}"  # what %d.%m.%Y gives


def moment(t: datetime, tz: ZoneInfo) -> str:
    """``Mo 30.11.2026, 12:00 Uhr`` in the time zone ``tz``."""
    local = t.astimezone(tz)
    return f"{day(local.date())}, {local.hour:02d}:{local.minute:02d} Uhr"  # strftime is three times slower


def day_range(first: date, last: date) -> str:
    """``Sa 07.11.2026 bis Do 07.01.2027``."""
    return f"{day(first)} bis {day(last)}"
