"""Dates and times in German, one form everywhere (issue 20): ``Mi 08.12.2026, 11:45 Uhr``.

Every text the rules write into a task (titles, history, evidence, actions) uses these, always
with the year: a stored text is read months later. The page formats the times it shows itself
with the same rules (``static/app.js``, ``formatTime``) and leaves the year out only inside the
current year. Pure functions; the time zone is the caller's (the business time zone).
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

WEEKDAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")


def day(d: date) -> str:
    """``Mo 30.11.2026``."""
    return f"{WEEKDAYS[d.weekday()]} {d:%d.%m.%Y}"


def moment(t: datetime, tz: ZoneInfo) -> str:
    """``Mo 30.11.2026, 12:00 Uhr`` in the time zone ``tz``."""
    local = t.astimezone(tz)
    return f"{day(local.date())}, {local:%H:%M} Uhr"


def day_range(first: date, last: date) -> str:
    """``Sa 07.11.2026 bis Do 07.01.2027``."""
    return f"{day(first)} bis {day(last)}"
