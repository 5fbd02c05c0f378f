"""The reminders service's state of one VPA (the JSON its changelog holds), typed, and its codec."""
from __future__ import annotations

from typing import Optional, TypedDict

from services.core.state import COMMON_UPGRADES, ServiceState, StateCodec


class Link(TypedDict):
    """A reminder's case (kept out of the task: not a task field)."""

    case_task_id: Optional[str]


class RemindersState(ServiceState, total=False):
    links: dict[str, Link]  # reminder_id -> its case


CODEC: StateCodec[RemindersState] = StateCodec("reminders", COMMON_UPGRADES)
