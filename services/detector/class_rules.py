"""Class-change rules (DESIGN.md 2.1 ``class_change``, fine print 5.20). Pure functions.

Classes rank A (best) > B > C > D. ``negative``: the new class is worse than the previous one;
``positive``: better; ``rising_star``: the flag is newly set (it was not set before). A missing
``previous`` means the class the VPA had; when that is unknown too, only ``rising_star`` can apply.
An equal class without a newly set rising star opens nothing.
"""
from __future__ import annotations

from typing import Iterable, Optional

REASON_ORDER = ("negative", "positive", "rising_star")
PRIORITY = {"negative": "normal", "positive": "low", "rising_star": "low"}
RANK = {"A": 0, "B": 1, "C": 2, "D": 3}
PRAISE_REASONS = ("positive", "rising_star")


def class_reasons(new: str, previous: Optional[str], rising_star: bool, was_rising_star: bool) -> list[str]:
    found = set()
    if previous in RANK:
        if RANK[new] > RANK[previous]:
            found.add("negative")
        elif RANK[new] < RANK[previous]:
            found.add("positive")
    if rising_star and not was_rising_star:
        found.add("rising_star")
    return [r for r in REASON_ORDER if r in found]


def merge(old: Iterable[str], new: Iterable[str]) -> list[str]:
    found = set(old) | set(new)
    return [r for r in REASON_ORDER if r in found]


def wants_praise(reasons: Iterable[str]) -> bool:
    return any(r in PRAISE_REASONS for r in reasons)
