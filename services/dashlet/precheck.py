"""Immediate answers for a person's command, checked against the dashlet store.

Over Kafka a rule rejection reaches ``vpa.dlq`` only after the owning service handled the
command, too late for an HTTP answer. What can be decided from the command and the store alone
is decided here, so the person gets a 422 with the reason at once. The owning service still
enforces every rule (this is a courtesy, not the authority); the roster is not in the store, so
an unknown reminder owner is only rejected by the reminders service. The store may trail the
services by a moment: a task created a second ago may be "unknown" here; trying again helps.

A command that would change nothing is refused here too (DESIGN 4.8): a resolve of a task that
is not a case, or of a case already closed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

from schemas.envelope import Envelope
from services.core import labels
from services.core.ids import journey_task_id, reminder_task_id
from services.dashlet.errors import ErrorCode

Lookup = Callable[[str], Awaitable[Optional[dict]]]
LIVE = ("waiting", "open")


@dataclass(frozen=True)
class Rejection:
    code: ErrorCode
    reason: str  # German, for the person who sent the command

    def __str__(self) -> str:
        return f"rejected: {self.reason}"


async def precheck(env: Envelope, lookup: Lookup) -> Optional[Rejection]:
    d = env.data
    if env.type == "cmd.reminder.complete" and d.file_updated is not True:
        return Rejection(ErrorCode.file_not_updated,
                         "Ein Reminder wird erst entfernt, wenn der Fall gelöst und die VPA-Akte gepflegt ist: "
                         "bitte „VPA-Akte gepflegt“ bestätigen")
    if env.type in ("cmd.reminder.complete", "cmd.reminder.reschedule"):
        task = await lookup(reminder_task_id(d.reminder_id))
        if task is None or task["vpa_id"] != env.vpa_id:
            return Rejection(ErrorCode.unknown_task, f"Reminder {d.reminder_id} von {env.vpa_id} ist unbekannt")
        if task["status"] not in LIVE:
            return Rejection(ErrorCode.task_closed,
                             f"Reminder {d.reminder_id} ist bereits {labels.status(task['status'])}")
    if env.type == "cmd.reminder.set" and await lookup(reminder_task_id(d.reminder_id)) is not None:
        return Rejection(ErrorCode.reminder_exists, f"Reminder {d.reminder_id} gibt es bereits")
    if env.type == "cmd.case.resolve":
        if not d.task_id.startswith("case:"):
            return Rejection(ErrorCode.not_a_case, f"{d.task_id} ist kein Fall: nur Fälle werden gelöst")
        task = await lookup(d.task_id)
        if task is None or task["vpa_id"] != env.vpa_id:
            return Rejection(ErrorCode.unknown_task, f"Fall {d.task_id} von {env.vpa_id} ist unbekannt")
        if task["status"] not in LIVE:
            return Rejection(ErrorCode.task_closed, f"Fall {d.task_id} ist bereits {labels.status(task['status'])}")
    if env.type == "cmd.journey.clear":
        if d.stage.value == "NEW_GT_12" and env.actor.role.value != "vpa_manager":
            return Rejection(ErrorCode.manager_only,
                             f"Nur ein VPA Manager darf das Flag {d.stage.value} von {env.vpa_id} entfernen")
        task = await lookup(journey_task_id(env.vpa_id, d.stage.value))
        if task is None or task["status"] not in LIVE:
            return Rejection(ErrorCode.unknown_task, f"Kein offener Journey-Schritt {d.stage.value} für {env.vpa_id}")
    return None
