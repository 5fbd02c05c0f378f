"""Task versions: the one place that decides when a task changed, its version and history.

A processor keeps its own tasks in its state and calls ``put_task`` with the fields it wants;
the result is the task version to publish, or None when nothing but bookkeeping would change
(DESIGN 5.25: ``version`` grows only when a field other than ``updated_at``/``history`` changes).

What the state keeps of a task (issue 11, "state holds what the rules need"):

* a live task (``waiting``/``open``) in ``state["tasks"]``, every field but ``history`` (null
  fields left out: read them with ``.get``);
* a closed task (``done``/``cancelled``) only as a *tombstone* (``Tombstone``) in ``state["closed"]``:
  ``[version, "d" (done) or "c" (cancelled), closed_on, created_at]`` (``closed_on``: days since 1970-01-01, stream
  time; ``created_at`` only for a task a rule may reopen). That is all a rule reads of a closed task (is there one, its status for a rejection),
  and enough to reopen it with the next version and its first ``created_at``. ``retire`` turns
  closed tasks into tombstones at the end of each call and forgets tombstones after the
  retention (``Settings.task_retention_days``); a service may keep a closed task whole while a
  rule can still change it in place (the detector's inactivity case while its episode runs).

History lives in the store: each version carries only the history entry of its own change (one
entry per version: version N is the N-th entry), and the store and ``vpa replay`` put them
together (``fold``), so a task as they show it has its whole history, as before.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable, NamedTuple, Optional, TypeGuard

from schemas.task import PRIORITY_RANK, TASK_FIELDS
from services.core.processor import Context
from services.core.state import ServiceState, Stone, TaskDict
from services.core.timeutil import fmt, local_date

_BOOKKEEPING = {"updated_at", "history", "version", "created_at"}
# Evidence explains the other fields: it is written with a version that changes one of them and
# never makes a version by itself, so adding it changed no version or history (DESIGN 5.25).
_FOLLOWERS = ("evidence",)
_STATE_FIELDS = tuple(f for f in TASK_FIELDS if f != "history")
_ONLY_WHEN_SET = frozenset({"case_task_id"})
ACTIVE = ("waiting", "open")
_STATUS = {"d": "done", "c": "cancelled"}  # a tombstone's status, by its first letter


def is_active(task: Optional[TaskDict]) -> TypeGuard[TaskDict]:
    return task is not None and task["status"] in ACTIVE


def max_priority(*prios: str) -> str:
    return max(prios, key=PRIORITY_RANK.__getitem__)


def _snapshot(task: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The version to publish, in the field order of DESIGN 4.6, with this change's history entry.
    The state keeps mutating its own lists, so those are copied (cheaper than a deep copy)."""
    out: dict[str, Any] = {}
    for name in TASK_FIELDS:
        if name in _ONLY_WHEN_SET and task.get(name) is None:
            continue  # a field few tasks have (a reminder's case) is left out of the others
        if name == "history":
            out[name] = [entry]
        elif name == "reasons":
            out[name] = list(task["reasons"])
        else:
            out[name] = task.get(name)
    return out


_CLOSED_ON = 2  # where a stone keeps closed_on


class Tombstone(NamedTuple):
    """What the state keeps of a closed task, stored as the list
    ``[version, "d" or "c", closed_on, created_at]`` (short: there are many)."""

    version: int
    status: str  # "done" or "cancelled"
    closed_on: int  # days since 1970-01-01, local, in stream time
    created_at: Optional[str] = None  # only for a task a rule may reopen

    def encode(self) -> Stone:
        stone: Stone = [self.version, self.status[0], self.closed_on]
        if self.created_at is not None:
            stone.append(self.created_at)
        return stone

    @classmethod
    def decode(cls, stone: Stone) -> "Tombstone":
        return cls(stone[0], _STATUS[stone[1]], stone[2], stone[3] if len(stone) > 3 else None)

    def view(self, task_id: str) -> dict[str, Any]:
        """The closed task as the rules see it: its id, status, version (and creation time)."""
        return {"task_id": task_id, "status": self.status, "version": self.version, "created_at": self.created_at,
                "closed": True}


def put_task(state: ServiceState, task_id: str, fields: dict[str, Any], ctx: Context, by: str,
             change: str) -> Optional[TaskDict]:
    """Create or update ``task_id`` in ``state["tasks"]``; return the version to publish, if any.

    A task known only by its tombstone is reopened: the next version, its first ``created_at``,
    and every field from ``fields`` (a reopening gives them all)."""
    tasks = state.setdefault("tasks", {})
    now = fmt(ctx.now, ctx.settings.tz)
    entry = {"at": now, "change": change, "by": by}
    old = tasks.get(task_id)
    if old is None:
        stored = state.get("closed", {}).get(task_id)
        task: dict[str, Any] = {name: None for name in _STATE_FIELDS}
        task.update(reasons=[], task_id=task_id)
        if stored is not None:
            stone = Tombstone.decode(stored)
            assert stone.created_at is not None, f"{task_id} was retired as a task that is never reopened"
            task.update(status=stone.status, version=stone.version, created_at=stone.created_at)
            changed = {k: v for k, v in fields.items()
                       if k not in _BOOKKEEPING and k not in _FOLLOWERS and task.get(k) != v}
            if not changed:
                return None
            task.update(fields)
            task.update(updated_at=now, version=stone.version + 1)
            del state["closed"][task_id]
            if not state["closed"]:
                del state["closed"]
        else:
            task.update(fields)
            task.update(created_at=now, updated_at=now, version=1)
        tasks[task_id] = _without_nulls(task)
        return _snapshot(task, entry)
    changed = {k: v for k, v in fields.items()
               if k not in _BOOKKEEPING and k not in _FOLLOWERS and old.get(k) != v}
    if not changed:
        return None
    old.update(changed)
    old.update((k, fields[k]) for k in _FOLLOWERS if k in fields)
    old["version"] += 1
    old["updated_at"] = now
    for k in [k for k, v in old.items() if v is None]:
        del old[k]
    return _snapshot(old, entry)


def _without_nulls(task: dict[str, Any]) -> dict[str, Any]:
    """The state keeps a task without its null fields (a missing field reads as null)."""
    return {k: v for k, v in task.items() if v is not None}


def get_task(state: ServiceState, task_id: str) -> Optional[TaskDict]:
    """The live (or kept) task, or a closed one's tombstone view (``task_id``, ``status``,
    ``version``, ``created_at``), or None."""
    task: Optional[dict[str, Any]] = state.get("tasks", {}).get(task_id)
    if task is not None:
        return task
    stored = state.get("closed", {}).get(task_id)
    return Tombstone.decode(stored).view(task_id) if stored is not None else None


def _day_number(ctx: Context) -> int:
    return local_date(ctx.now, ctx.settings.tz).toordinal() - _EPOCH_ORDINAL


_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def retire(state: ServiceState, ctx: Context, keep: Iterable[str] = (),
           reopens: Callable[[str], bool] = lambda task_id: True) -> list[str]:
    """Closed tasks leave ``state["tasks"]`` as tombstones (except ``keep``); tombstones older
    than the retention are forgotten. ``reopens(task_id)``: whether a rule may reopen that task
    (only then its tombstone keeps ``created_at``). Returns the task ids retired now."""
    tasks = state.get("tasks")
    today = _day_number(ctx)
    retired: list[str] = []
    if tasks:
        held = set(keep)
        for task_id in [t for t, task in tasks.items() if task["status"] not in ACTIVE and t not in held]:
            task = tasks.pop(task_id)
            stone = Tombstone(task["version"], task["status"], today, task["created_at"] if reopens(task_id) else None)
            state.setdefault("closed", {})[task_id] = stone.encode()
            retired.append(task_id)
        if not tasks:
            del state["tasks"]
    closed = state.get("closed")
    # 0 (the default): tombstones stay as long as the VPA's state, so an erasure (issue 13) names
    # every task of the VPA in the store; an offboarded VPA's are kept until its erasure either way.
    if closed and ctx.settings.task_retention_days and not state.get("offboarded"):
        horizon = today - ctx.settings.task_retention_days
        # the stone's closed_on read in place (``Tombstone.encode``): this runs at every call
        for task_id in [t for t, stored in closed.items() if stored[_CLOSED_ON] < horizon]:
            del closed[task_id]
        if not closed:
            del state["closed"]
    return retired


def live_tasks(state: ServiceState) -> dict[str, TaskDict]:
    tasks: dict[str, dict[str, Any]] = state.get("tasks", {})
    return tasks


def fold(held: Optional[dict[str, Any]], version: dict[str, Any]) -> dict[str, Any]:
    """The task as the store shows it after ``version``: its fields, and the history of every
    version so far (``held``'s, then this one's entry). A version that carries its whole history
    already (as every version did before history left the state: N entries for version N) is
    taken as it is. An older or repeated version leaves ``held`` as it is."""
    if held is not None and version["version"] <= held["version"]:
        return held
    if held is None:
        return version
    history = history_after(held.get("history") or [], version["version"], version.get("history") or [])
    return {**version, "history": history}


def history_after(held: list[Any], version: int, history: list[Any]) -> list[Any]:
    """The whole history once version ``version``, carrying ``history``, follows a task whose
    history was ``held``: its own entries appended, or, when it carries N entries for version N,
    its own."""
    return list(history) if len(history) >= version else list(held) + list(history)
