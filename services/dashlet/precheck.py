"""Immediate answers for a person's command, checked against the dashlet store.

Over Kafka a rule rejection reaches ``vpa.dlq`` only after the owning service handled the
command, too late for an HTTP answer. What can be decided from the command and the store alone
is decided here, so the person gets a 422 with the reason at once. The owning service still
enforces every rule (this is a courtesy, not the authority); the roster is not in the store, so
an unknown reminder owner is only rejected by the reminders service. The store may trail the
services by a moment: a task created a second ago may be "unknown" here; trying again helps.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Optional

from schemas.envelope import Envelope
from services.common.ids import journey_task_id, reminder_task_id

Lookup = Callable[[str], Awaitable[Optional[dict]]]
LIVE = ("waiting", "open")


async def precheck(env: Envelope, lookup: Lookup) -> Optional[str]:
    d = env.data
    if env.type == "cmd.reminder.complete" and d.file_updated is not True:
        return "rejected: a reminder is removed only when the case is solved and the VPA file is maintained (file_updated: true)"
    if env.type in ("cmd.reminder.complete", "cmd.reminder.reschedule"):
        task = await lookup(reminder_task_id(d.reminder_id))
        if task is None or task["vpa_id"] != env.vpa_id:
            return f"rejected: unknown reminder {d.reminder_id} for {env.vpa_id}"
        if task["status"] not in LIVE:
            return f"rejected: reminder {d.reminder_id} is already {task['status']}"
    if env.type == "cmd.reminder.set" and await lookup(reminder_task_id(d.reminder_id)) is not None:
        return f"rejected: reminder {d.reminder_id} exists already"
    if env.type == "cmd.case.resolve" and d.task_id.startswith("case:"):
        task = await lookup(d.task_id)
        if task is None or task["vpa_id"] != env.vpa_id:
            return f"rejected: unknown case {d.task_id} for {env.vpa_id}"
        if task["status"] not in LIVE:
            return f"rejected: case {d.task_id} is already {task['status']}"
    if env.type == "cmd.journey.clear":
        if d.stage.value == "NEW_GT_12" and env.actor.role.value != "vpa_manager":
            return f"rejected: only a VPA Manager may clear {d.stage.value} of {env.vpa_id}"
        task = await lookup(journey_task_id(env.vpa_id, d.stage.value))
        if task is None or task["status"] not in LIVE:
            return f"rejected: no open journey task {d.stage.value} for {env.vpa_id}"
    return None
