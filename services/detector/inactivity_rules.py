"""Inactivity rules (DESIGN.md 2.1 ``inactive``, fine print 5.2, 5.13, 5.22). Pure functions.

The follow-up time is the next working day after the inactivity's local date at 09:00, or at
12:00 when that day is a Monday. At the follow-up the case is decided:

1. any activity processed after the inactive event (``vpa.activity_seen`` on web or mobile, or
   status ``active``) -> ``done``: ``active_again``, or ``active_on_mobile`` when only mobile
   activity was seen;
2. else a part-time VPA without a complaint in [follow-up - 14 days, follow-up] -> ``done``:
   ``part_time_no_contact``;
3. else ``open``: ``contact_needed``, plus ``customer_complaint`` (priority high) when a complaint
   came in, plus ``verify_mobile_activity`` when the VPA uses the mobile app.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from services.config.settings import Settings
from services.core.timeutil import at_local, local_date, next_working_day

REASON_ORDER = ("follow_up", "active_again", "active_on_mobile", "part_time_no_contact", "contact_needed",
                "customer_complaint", "verify_mobile_activity")
PRIORITY = {r: "normal" for r in REASON_ORDER} | {"customer_complaint": "high"}
SELF_CLOSING = ("active_again", "active_on_mobile", "part_time_no_contact")


def follow_up_at(inactive_at: datetime, s: Settings) -> datetime:
    """Next working day after the local date of ``inactive_at``; 09:00, or 12:00 on a Monday."""
    day = next_working_day(local_date(inactive_at, s.tz), s.working_days, s.holidays)
    t = s.monday_follow_up_time if day.weekday() == 0 else s.follow_up_time
    return at_local(day, t, s.tz)


def complaint_counts(complained_at: datetime, follow_up: datetime, s: Settings) -> bool:
    """Within [follow-up - 14 days, follow-up], both ends included (5.22)."""
    return follow_up - timedelta(days=s.complaint_window_days) <= complained_at <= follow_up


@dataclass(frozen=True)
class Decision:
    status: str  # "done" or "open"
    reasons: list[str]

    @property
    def closes(self) -> bool:
        return self.status == "done"


def contact_reasons(complaint: bool, uses_mobile_app: bool) -> list[str]:
    reasons = ["contact_needed"]
    if complaint:
        reasons.append("customer_complaint")
    if uses_mobile_app:
        reasons.append("verify_mobile_activity")
    return reasons


def decide(seen_web: bool, seen_mobile: bool, status_active: bool, part_time: bool, uses_mobile_app: bool,
           complaint_times: Iterable[datetime], follow_up: datetime, s: Settings) -> Decision:
    if seen_web or status_active:
        return Decision("done", ["active_again"])
    if seen_mobile:
        return Decision("done", ["active_on_mobile"])
    complaint = any(complaint_counts(t, follow_up, s) for t in complaint_times)
    if part_time and not complaint:
        return Decision("done", ["part_time_no_contact"])
    return Decision("open", contact_reasons(complaint, uses_mobile_app))


def priority_of(reasons: Iterable[str]) -> str:
    return "high" if "customer_complaint" in reasons else "normal"
