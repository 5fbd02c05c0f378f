"""``data`` payloads of the ``vpa.commands`` topic (DESIGN.md 4.5)."""
from __future__ import annotations

from typing import Optional

from schemas.base import Data, Initials, NonEmpty, OffsetDatetime, Stage, Text


class ReminderSet(Data):
    reminder_id: NonEmpty
    due_at: OffsetDatetime
    owner: Initials
    note: Optional[Text] = None
    case_task_id: Optional[NonEmpty] = None


class ReminderComplete(Data):
    reminder_id: NonEmpty
    # Optional on the wire on purpose: a missing flag is a *rejection* by the reminders
    # service (DESIGN 5.5), not an invalid line for the DLQ.
    file_updated: Optional[bool] = None


class ReminderReschedule(Data):
    reminder_id: NonEmpty
    due_at: OffsetDatetime


class CaseResolve(Data):
    task_id: NonEmpty
    note: Optional[Text] = None


class JourneyClear(Data):
    stage: Stage
    note: Optional[Text] = None


COMMAND_DATA: dict[str, type[Data]] = {
    "cmd.reminder.set": ReminderSet,
    "cmd.reminder.complete": ReminderComplete,
    "cmd.reminder.reschedule": ReminderReschedule,
    "cmd.case.resolve": CaseResolve,
    "cmd.journey.clear": JourneyClear,
}
