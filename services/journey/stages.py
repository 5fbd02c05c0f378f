"""Stage arithmetic of the new-VPA journey (DESIGN 2.3, fine print 5.17 and 5.23). Pure functions.

A VPA's stage on a date is given by the whole calendar months since ``started_on``; month steps
clamp to the month end (``add_months``: 31 January + 3 months = 30 April, 30 November + 3 months =
28 February, 29 February + 12 months = 28 February). Stage ``k`` begins on
``add_months(started_on, k_months)``; its "first 30 days" are days 0 to 29 counted from that date.
"""
from __future__ import annotations

from datetime import date
from typing import Optional

from services.core.timeutil import add_months, months_between

NEW_0_3 = "NEW_0_3"
NEW_3_6 = "NEW_3_6"
NEW_6_9 = "NEW_6_9"
NEW_9_12 = "NEW_9_12"
NEW_GT_12 = "NEW_GT_12"

# (stage, the month of tenure it begins at), in order.
STAGES: tuple[tuple[str, int], ...] = ((NEW_0_3, 0), (NEW_3_6, 3), (NEW_6_9, 6), (NEW_9_12, 9), (NEW_GT_12, 12))
STAGE_NAMES: tuple[str, ...] = tuple(s for s, _ in STAGES)
_START_MONTH = dict(STAGES)


def stage_for_months(months: int) -> Optional[str]:
    """The stage of a tenure of ``months`` whole months (None before the start)."""
    if months < 0:
        return None
    current = None
    for stage, start in STAGES:
        if months >= start:
            current = stage
    return current


def stage_on(started_on: date, on: date) -> Optional[str]:
    """The stage of a VPA on the local date ``on``; None while ``started_on`` is still ahead."""
    return stage_for_months(months_between(started_on, on))


def stage_start(started_on: date, stage: str) -> date:
    """The date ``stage`` begins (day 0 of the stage)."""
    return add_months(started_on, _START_MONTH[stage])


def day_in_stage(started_on: date, on: date) -> Optional[int]:
    """Days since the current stage began (0 on its first day); None before ``started_on``."""
    stage = stage_on(started_on, on)
    if stage is None:
        return None
    return (on - stage_start(started_on, stage)).days


def within_first_days(started_on: date, on: date, days: int = 30) -> bool:
    """Is ``on`` within the first ``days`` days (days 0 .. days-1) of the stage it lies in?"""
    d = day_in_stage(started_on, on)
    return d is not None and d < days


def next_stage(stage: str) -> Optional[str]:
    i = STAGE_NAMES.index(stage)
    return STAGE_NAMES[i + 1] if i + 1 < len(STAGE_NAMES) else None


def next_boundary(started_on: date, on: date) -> Optional[tuple[str, date]]:
    """The next stage that begins strictly after ``on``, with its first day (None after ``NEW_GT_12``)."""
    current = stage_on(started_on, on)
    upcoming = NEW_0_3 if current is None else next_stage(current)
    if upcoming is None:
        return None
    return upcoming, stage_start(started_on, upcoming)
