"""Shifts (DESIGN 1, 2.2): the AT team checks due reminders every shift. Pure functions.

Shifts are local wall-time windows from ``Settings.shifts`` (default 08:00–14:00 and 14:00–20:00
Europe/Berlin), start inclusive, end exclusive, every calendar day. A shift whose end is not after
its start runs over midnight (e.g. 20:00–08:00).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Mapping, Optional

from services.config.settings import Settings
from services.core.timeutil import at_local, parse

LIVE = ("waiting", "open")


def _windows(day: date, settings: Settings) -> list[tuple[datetime, datetime]]:
    out = []
    for start, end in settings.shifts:
        begin = at_local(day, start, settings.tz)
        finish = at_local(day + timedelta(days=1) if end <= start else day, end, settings.tz)
        out.append((begin, finish))
    return out


def current_shift(now: datetime, settings: Settings) -> Optional[tuple[datetime, datetime]]:
    """The (start, end) of the shift ``now`` falls in, as aware local datetimes; None between shifts."""
    local = now.astimezone(settings.tz)
    # Yesterday's windows too: a shift over midnight started the day before.
    for day in (local.date(), local.date() - timedelta(days=1)):
        for begin, finish in _windows(day, settings):
            if begin <= local < finish:
                return begin, finish
    return None


def next_shift(now: datetime, settings: Settings) -> Optional[tuple[datetime, datetime]]:
    """The (start, end) of the next shift to begin after ``now`` (the one the AT prepares for)."""
    local = now.astimezone(settings.tz)
    upcoming = [w for day in (local.date(), local.date() + timedelta(days=1)) for w in _windows(day, settings)
                if w[0] > local]
    return min(upcoming) if upcoming else None


def due_in_current_shift(task: Mapping[str, Any], now: datetime, settings: Settings) -> bool:
    """Is the task waiting or open and due by the end of the current shift (overdue included)?

    Between shifts nothing is "due in the current shift": False."""
    if task.get("status") not in LIVE or not task.get("due_at"):
        return False
    shift = current_shift(now, settings)
    if shift is None:
        return False
    due = task["due_at"]
    due_at = parse(due) if isinstance(due, str) else due
    return due_at <= shift[1]
