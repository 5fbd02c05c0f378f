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
    # DESIGN 5.13a: true completes the reminders linked to the case with it (the VPA file is maintained)
    file_updated: Optional[bool] = None


class JourneyClear(Data):
    stage: Stage
    note: Optional[Text] = None


class VpaErase(Data):
    """Erase a VPA's data on request (data protection): every service drops its state of the VPA
    and every task of it leaves the store. Sent by `vpa erase` (system actor)."""

    reason: Optional[Text] = None


COMMAND_DATA: dict[str, type[Data]] = {
    "cmd.reminder.set": ReminderSet,
    "cmd.reminder.complete": ReminderComplete,
    "cmd.reminder.reschedule": ReminderReschedule,
    "cmd.case.resolve": CaseResolve,
    "cmd.journey.clear": JourneyClear,
    "cmd.vpa.erase": VpaErase,
}

# Commands no person sends through the dashlet API: erasure is the data-protection officer's
# `vpa erase` (system actor).
SYSTEM_ONLY_COMMANDS = frozenset({"cmd.vpa.erase"})
