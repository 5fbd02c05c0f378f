"""What every rule service keeps of a VPA, as types, and the versioned codec of that state.

A service's state is the JSON the changelog holds (the engine stores it without reading it), so
its types are TypedDicts: the same dicts at run time, every key checked by mypy --strict. Each rule
package extends ``ServiceState`` with its own keys (``detector/state.py`` and so on).

The codec is versioned: a state carries its version under ``"v"`` (a state without one was written
before versions existed: version 1). When a service reads a state, ``StateCodec.read`` upgrades an
older one in place, one version at a time, and refuses one newer than the code (a service rolled
back must not rewrite state it cannot read: the input goes to the DLQ and the state stays as it
was). After each call a state that holds anything is marked with the current version, so a VPA's
state is written in the new form the first time it changes.

A state keeps no key that reads as its default (issue 22, state per VPA): every rule reads its
keys with ``.get``, so a null, a ``False`` or an empty dict or list reads the same whether it is
stored or not. ``mark`` leaves such keys out, at the top of the state and in its ``profile``, as
``core.tasks`` leaves a task's null fields out. That is about 170 B of a simulated VPA's 2 KB
slot after a year (the defaults of three services' profiles, ``offboarded``, ``episode``, empty
``timers``), and a service of an earlier version reads the shorter state as it reads the longer one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, Optional, TypeVar, TypedDict, cast

# A task as the state keeps it: every field of DESIGN 4.6 but ``history``, null fields left out.
# Its fields are checked where it leaves (schemas.task), not here: a rule builds it from a partial dict.
TaskDict = dict[str, Any]
Stone = list[Any]  # a closed task's tombstone, as ``core.tasks.Tombstone`` encodes it


class TimerRecord(TypedDict):
    due_at: str  # ISO 8601
    name: str
    payload: dict[str, Any]


# ``class`` is a keyword, hence the functional form.
Profile = TypedDict("Profile", {
    "name": Optional[str], "started_on": str, "part_time": bool, "class": Optional[str],
    "at_owner": Optional[str], "buddy": Optional[str], "uses_mobile_app": bool,
}, total=False)


class ServiceState(TypedDict, total=False):
    """The keys every rule service may hold (the shared helpers read and write these)."""

    v: int  # the state's version (absent: 1)
    profile: Profile  # from vpa.registered / vpa.profile_updated (core.profile)
    offboarded: bool  # set by vpa.offboarded, lifted by a new vpa.registered
    tasks: dict[str, TaskDict]  # live tasks (core.tasks)
    closed: dict[str, Stone]  # closed tasks, as tombstones (core.tasks.retire)
    timers: dict[str, TimerRecord]  # timer_id -> its record (core.processor.set_timer)


S = TypeVar("S", bound=ServiceState)

Upgrade = Callable[[dict[str, Any]], None]  # version n -> n+1, in place


class StateTooNew(Exception):
    """A state written by a newer version of the service than this one."""


@dataclass(frozen=True)
class StateCodec(Generic[S]):
    """Reads a stored state as ``S`` (upgrading an older one) and marks a state with its version."""

    service: str
    upgrades: Mapping[int, Upgrade] = field(default_factory=dict)  # from version n to n+1

    @functools.cached_property
    def version(self) -> int:
        return 1 + len(self.upgrades)

    def read(self, raw: dict[str, Any]) -> S:
        found = raw.get("v", 1)
        if found != self.version:
            if found > self.version:
                raise StateTooNew(f"state of version {found}, this {self.service} reads up to {self.version}")
            for v in range(found, self.version):
                self.upgrades[v](raw)
            if raw:
                raw["v"] = self.version
        return cast(S, raw)

    def mark(self, state: S) -> None:
        """After a call: a state that holds anything says which version it is, and leaves out
        what reads as its default (the module's docstring)."""
        if not state:
            return
        raw = cast(dict[str, Any], state)
        profile = raw.get("profile")
        if profile:
            for key in [k for k, v in profile.items() if v is None or v is False]:
                del profile[key]
        # Null, False or an empty dict or list; by identity and type, inline (this runs after
        # every call): 0 == False, but a 0 is a value.
        for key in [k for k, v in raw.items() if not v and (v is None or v is False or type(v) in _CONTAINERS)]:
            del raw[key]
        version = self.version
        if len(raw) > 1 or (raw and "v" not in raw):
            if raw.get("v") != version:
                raw["v"] = version
        else:
            raw.clear()  # only defaults were left: the engine stores no state


_CONTAINERS = (dict, list)


def drop_task_history(raw: dict[str, Any]) -> None:
    """Version 1 -> 2: history lives in the store, a state written before that kept it in each task."""
    for task in raw.get("tasks", {}).values():
        task.pop("history", None)


# The upgrades every rule service's state goes through (a package adds its own after them).
COMMON_UPGRADES: Mapping[int, Upgrade] = {1: drop_task_history}
