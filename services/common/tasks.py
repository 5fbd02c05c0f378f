"""Task versions: the one place that decides when a task changed, its version and history.

A processor keeps its own tasks in its state and calls ``put_task`` with the fields it wants;
the result is the full task to publish, or None when nothing but bookkeeping would change
(DESIGN 5.25: ``version`` grows only when a field other than ``updated_at``/``history`` changes).
"""
from __future__ import annotations

from typing import Any, Optional

from schemas.task import PRIORITY_RANK, TASK_FIELDS
from services.common.processor import Context
from services.common.timeutil import fmt

_BOOKKEEPING = {"updated_at", "history", "version", "created_at"}
# Evidence explains the other fields: it is written with a version that changes one of them and
# never makes a version by itself, so adding it changed no version or history (DESIGN 5.25).
_FOLLOWERS = ("evidence",)
ACTIVE = ("waiting", "open")


def is_active(task: Optional[dict]) -> bool:
    return task is not None and task["status"] in ACTIVE


def max_priority(*prios: str) -> str:
    return max(prios, key=PRIORITY_RANK.__getitem__)


def _snapshot(task: dict) -> dict:
    """A copy safe to publish: the state keeps mutating its own lists (cheaper than deepcopy)."""
    return {**task, "reasons": list(task["reasons"]), "history": [dict(h) for h in task["history"]]}


def put_task(state: dict, task_id: str, fields: dict[str, Any], ctx: Context, by: str, change: str) -> Optional[dict]:
    """Create or update ``task_id`` in ``state["tasks"]``; return the version to publish, if any."""
    tasks = state.setdefault("tasks", {})
    now = fmt(ctx.now, ctx.settings.tz)
    old = tasks.get(task_id)
    if old is None:
        task = {name: None for name in TASK_FIELDS}
        task.update(reasons=[], history=[], task_id=task_id)
        task.update(fields)
        task.update(created_at=now, updated_at=now, version=1)
        task["history"] = [{"at": now, "change": change, "by": by}]
        tasks[task_id] = task
        return _snapshot(task)
    changed = {k: v for k, v in fields.items()
               if k not in _BOOKKEEPING and k not in _FOLLOWERS and old.get(k) != v}
    if not changed:
        return None
    old.update(changed)
    old.update((k, fields[k]) for k in _FOLLOWERS if k in fields)
    old["version"] += 1
    old["updated_at"] = now
    old["history"].append({"at": now, "change": change, "by": by})
    return _snapshot(old)


def get_task(state: dict, task_id: str) -> Optional[dict]:
    return state.get("tasks", {}).get(task_id)
