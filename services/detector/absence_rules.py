"""Absence rules (DESIGN.md 2.1 ``absence``, fine print 5.18 and 5.19). Pure functions.

Long: more than 21 days including both ends. Frequent: at least the 3rd non-cancelled absence
starting within the 90 days up to this one's start. Short notice: starts at the latest the day
after it was registered, and is not already over when registered.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable

from services.config.settings import Settings

REASON_ORDER = ("short_notice", "long", "frequent")
PRIORITY = {"long": "normal", "frequent": "normal", "short_notice": "high"}


@dataclass(frozen=True)
class AbsenceFacts:
    absence_id: str
    starts_on: date
    ends_on: date
    cancelled: bool = False

    @property
    def days(self) -> int:
        return (self.ends_on - self.starts_on).days + 1


def is_long(a: AbsenceFacts, s: Settings) -> bool:
    return a.days > s.long_absence_days


def absences_in_window(a: AbsenceFacts, known: Iterable[AbsenceFacts], s: Settings) -> int:
    """How many non-cancelled absences start in [a.starts_on - 90 days, a.starts_on], ``a`` included.

    ``known``: the absences known when ``a`` is registered (``a`` itself may be among them)."""
    window_start = a.starts_on - timedelta(days=s.frequent_absence_window_days)
    others = {
        k.absence_id for k in known
        if k.absence_id != a.absence_id and not k.cancelled and window_start <= k.starts_on <= a.starts_on
    }
    return len(others) + 1


def is_frequent(a: AbsenceFacts, known: Iterable[AbsenceFacts], s: Settings) -> bool:
    return absences_in_window(a, known, s) >= s.frequent_absence_count


def is_short_notice(a: AbsenceFacts, registered_on: date, s: Settings) -> bool:
    return a.starts_on <= registered_on + timedelta(days=s.short_notice_days) and a.ends_on >= registered_on


def absence_reasons(a: AbsenceFacts, known: Iterable[AbsenceFacts], registered_on: date, s: Settings) -> list[str]:
    found = set()
    if is_long(a, s):
        found.add("long")
    if is_frequent(a, known, s):
        found.add("frequent")
    if is_short_notice(a, registered_on, s):
        found.add("short_notice")
    return [r for r in REASON_ORDER if r in found]
