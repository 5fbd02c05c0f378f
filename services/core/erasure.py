"""Erasure of a VPA's data (issue 13, data protection): shared by every service's rules.

Two ways a VPA's data goes: ``cmd.vpa.erase`` (``vpa erase VPA_ID``, on request), and the retention
after an offboarding (``VPA_ERASE_AFTER_DAYS``, default 180): each service sets a timer when the VPA
is offboarded and cancels it when the VPA registers again. Either way the service answers with
``Result(erase=True)``; the runner then drops that service's state of the VPA and removes each of
its tasks from the store (a tombstone on ``dashlet.tasks`` in the Kafka runner).
"""
from __future__ import annotations


from datetime import datetime, timedelta

from services.core.processor import Context, Result, Timer, cancel_timer, set_timer
from services.core.state import ServiceState

ERASE_COMMAND = "cmd.vpa.erase"
TIMER_ID = "erase:after-offboarding"
TIMER_NAME = "erase_after_offboarding"


def schedule(state: ServiceState, offboarded_at: datetime, ctx: Context) -> None:
    set_timer(state, TIMER_ID, offboarded_at + timedelta(days=ctx.settings.erase_after_days), TIMER_NAME)


def cancel(state: ServiceState) -> None:
    """A new registration: the VPA works here again, its data stays."""
    cancel_timer(state, TIMER_ID)


def is_due(timer: Timer) -> bool:
    return timer.name == TIMER_NAME


def erase() -> Result:
    return Result(erase=True)
