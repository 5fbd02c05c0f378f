"""Schedule-change rules (DESIGN.md 2.1 ``schedule_change``, fine print 5.16 and 5.17). Pure functions.

``new_vpa_no_orders``: an N-VPA (tenure under 3 calendar months on the event's local date) that
no longer accepts orders or new customers. ``priority_check``: a VPA of class A or B (both may
apply). ``review``: any other change, and only when no other reason applies.
"""
from __future__ import annotations

from datetime import date
from typing import Iterable, Optional

from services.config.settings import Settings
from services.core.timeutil import add_months

REASON_ORDER = ("new_vpa_no_orders", "priority_check", "review")
PRIORITY = {"new_vpa_no_orders": "high", "priority_check": "normal", "review": "low"}
PRIORITY_CLASSES = ("A", "B")


def is_new_vpa(started_on: Optional[date], on: date, s: Settings) -> bool:
    """N-VPA while ``started_on`` + 3 months > ``on`` (month ends clamp, 5.17). Unknown start: no."""
    return started_on is not None and add_months(started_on, s.new_vpa_months) > on


def schedule_reasons(accepts_new_customers: bool, accepts_orders: bool, started_on: Optional[date],
                     vpa_class: Optional[str], on: date, s: Settings) -> list[str]:
    found = set()
    if is_new_vpa(started_on, on, s) and not (accepts_new_customers and accepts_orders):
        found.add("new_vpa_no_orders")
    if vpa_class in PRIORITY_CLASSES:
        found.add("priority_check")
    return [r for r in REASON_ORDER if r in found] or ["review"]


def merge(old: Iterable[str], new: Iterable[str]) -> list[str]:
    """Reasons of an open case updated by a later change: union, ``review`` only when alone."""
    found = set(old) | set(new)
    if found - {"review"}:
        found.discard("review")
    return [r for r in REASON_ORDER if r in found]
