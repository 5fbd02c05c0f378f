"""A dashlet task (DESIGN.md 4.6): the row the store keeps and the API and `vpa replay` return."""
from __future__ import annotations


from enum import Enum
from typing import Optional

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.base import Stage


class Tab(str, Enum):
    cases = "cases"
    reminders = "reminders"
    journey = "journey"


class Kind(str, Enum):
    schedule_change = "schedule_change"
    absence = "absence"
    class_change = "class_change"
    inactive = "inactive"
    reminder = "reminder"
    journey = "journey"


class Status(str, Enum):
    waiting = "waiting"
    open = "open"
    done = "done"
    cancelled = "cancelled"


class Priority(str, Enum):
    high = "high"
    normal = "normal"
    low = "low"


PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2}


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    change: str  # German text
    by: str  # initials or the service name


class Evidence(BaseModel):
    """One fact that made the task exist or look as it does: German text for the AT team, the
    event it comes from (null when the fact is not one event's, e.g. the roster at a moment),
    and a short machine code (a reason code when the fact fired that reason)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    text: str  # German, internal (may name classes: evidence never reaches an assistant)
    event_id: Optional[str] = None


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str
    tab: Tab
    kind: Kind
    stage: Optional[Stage] = None
    vpa_id: str
    vpa_name: Optional[str] = None
    status: Status
    priority: Priority
    reasons: list[str]
    title: str
    action: str
    owner: Optional[str] = None
    assignee: Optional[str] = None
    due_at: Optional[AwareDatetime] = None
    message_draft: Optional[str] = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int
    history: list[HistoryEntry]
    evidence: Optional[list[Evidence]] = None  # why the task exists ("Warum" in the dashlet)
    # a reminder's case (DESIGN 5.13a: linked reminders are shown and completed with their case)
    case_task_id: Optional[str] = None


TASK_FIELDS: tuple[str, ...] = tuple(Task.model_fields)
