"""The processor definition both runners execute (DESIGN.md 3, "two runners, one logic").

A processor is a service's logic: plain functions over per-VPA state, an envelope and a
``Context`` (``now``, settings, the roster). It knows nothing of Kafka, faust or PostgreSQL.

State is a JSON-serialisable dict per VPA (the Kafka runner keeps it in a changelog-backed store, the
embedded runner in a dict). Timers live *inside* that state (``state["timers"]``), so they are
persisted and restored with it; runners only index them to know when one falls due.
"""
from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Protocol

import msgspec

from schemas.envelope import Envelope
from services.config.settings import Settings
from services.core.state import ServiceState, TimerRecord
from services.core.timeutil import parse


@dataclass(frozen=True)
class Context:
    now: datetime
    settings: Settings
    roster: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Result:
    tasks: list[dict[str, Any]] = field(default_factory=list)  # task versions for dashlet.tasks
    commands: list[Envelope[Any]] = field(default_factory=list)  # for vpa.commands
    # Why a valid command was refused, for people; the engine puts each on vpa.dlq as "rejected: <it>"
    rejections: list[str] = field(default_factory=list)
    # Things worth counting for ops (metric name -> increment); the drivers turn them into
    # Prometheus counters, so no service core imports prometheus.
    counts: Counter[Any] = field(default_factory=Counter)
    # Erase this service's state of the VPA: the runner drops it and removes its tasks from the
    # store (cmd.vpa.erase, or the retention after an offboarding ran out).
    erase: bool = False

    def extend(self, other: "Result") -> "Result":
        self.tasks += other.tasks
        self.commands += other.commands
        self.rejections += other.rejections
        self.counts.update(other.counts)
        self.erase = self.erase or other.erase
        return self


@dataclass(frozen=True)
class Timer:
    timer_id: str
    due_at: datetime
    name: str
    payload: dict[str, Any]


# Roster dependency tokens (see ``Processor.roster_dependencies``).
ANY_ROSTER_CHANGE = "*"


def role_token(role: str) -> str:
    return f"role:{role}"


PICK = "pick\x00"


def pick_token(assignee: str, key: str, role: str = "at", owner: Optional[str] = None) -> str:
    """A task a member of ``role`` was picked for by rendezvous hashing on ``key`` among the present
    members of that role: it changes only when that member leaves the role (or is away), or when
    one arrives in it who scores higher on ``key``. ``owner``: whose task it is, when the owner's
    deputy goes first (the handover policy): while the assignee is that deputy, no arrival can
    take the task (the owner's record, which the task depends on as well, covers the deputy)."""
    return f"{PICK}{role}\x00{assignee}\x00{owner or ''}\x00{key}"


class Processor(Protocol):
    name: str
    rank: int  # the order in which services handle the same step (detector 0, reminders 1, journey 2)
    topics: frozenset[str]  # the input topics it consumes
    # The envelope types ``handle`` acts on; None: every type of its topics. The runners call
    # ``handle`` for no other type (it would return an empty Result and leave the state as it
    # is), which saves a state copy.
    types: Optional[frozenset[str]]

    def handle(self, state: dict[str, Any], env: Envelope[Any], ctx: Context) -> Result: ...

    def on_timer(self, state: dict[str, Any], timer: Timer, ctx: Context) -> Result: ...

    def reassign(self, state: dict[str, Any], ctx: Context) -> Result:
        """Re-evaluate what depends on the roster or the date (assignees, handover).

        Runners call it for every VPA after each roster change and at each local midnight on
        which a roster absence starts or has just ended (DESIGN 5.8)."""
        ...

    def roster_dependencies(self, state: dict[str, Any]) -> Iterable[str]:
        """Which roster facts ``reassign`` reads for this state, so the runner re-evaluates only
        the VPAs a roster change can affect: initials (that member's record, and through it the
        records of members whose deputy it is), ``role_token("at")`` (the set of present AT
        members) or ``role_token("vpa_manager")``, ``pick_token`` (a rendezvous pick among the
        present members of a role); ``ANY_ROSTER_CHANGE`` for
        every change (``ProcessorDefaults``: every VPA with state, on every change)."""
        ...


class ProcessorDefaults:
    """What a processor that says nothing else gets: rank 0, every type of its topics, nothing to
    re-evaluate on a roster change, and re-evaluation of every VPA with state on every change."""

    rank = 0
    types: Optional[frozenset[str]] = None

    def reassign(self, state: dict[str, Any], ctx: Context) -> Result:
        return Result()

    def roster_dependencies(self, state: dict[str, Any]) -> Iterable[str]:
        return {ANY_ROSTER_CHANGE} if state else set()


_PACK = msgspec.msgpack.Encoder()
_UNPACK: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()


def json_copy(value: Any) -> Any:
    """Deep copy of JSON-shaped state (dicts, lists, strings, numbers, booleans, null): a msgpack
    round trip in C, about half the time of a pickle round trip (which took a tenth of a replay)
    and ten times faster than ``copy.deepcopy``. A tuple comes back as a list, as it would from
    the Kafka runner's JSON store; what msgpack cannot hold (an int beyond 64 bits) is pickled."""
    try:
        return _UNPACK.decode(_PACK.encode(value))
    except (TypeError, OverflowError, msgspec.EncodeError):
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


# ---- timers inside the state -------------------------------------------------------------

def set_timer(state: ServiceState, timer_id: str, due_at: datetime, name: str,
              payload: Optional[dict[str, Any]] = None) -> None:
    """Set (or move) a timer. Setting an existing id replaces it (one timer per id)."""
    timers = state.setdefault("timers", {})
    # Re-insert so the dict keeps the order timers were (re)set: same-instant timers fire in it.
    timers.pop(timer_id, None)
    timers[timer_id] = TimerRecord(due_at=due_at.isoformat(), name=name, payload=payload or {})


def cancel_timer(state: ServiceState, timer_id: str) -> None:
    state.get("timers", {}).pop(timer_id, None)


def timers_of(state: ServiceState) -> list[Timer]:
    return [
        Timer(tid, parse(t["due_at"]), t["name"], t["payload"]) for tid, t in state.get("timers", {}).items()
    ]


def pop_timer(state: ServiceState, timer_id: str) -> Optional[Timer]:
    t = state.get("timers", {}).pop(timer_id, None)
    if t is None:
        return None
    return Timer(timer_id, parse(t["due_at"]), t["name"], t["payload"])


def vpa_of(env: Envelope[Any]) -> str:
    """The VPA an input is about: every ``vpa.*`` and ``cmd.*`` envelope names one (the contract
    refuses those without), and only those reach a rule about a VPA."""
    assert env.vpa_id is not None, f"{env.type} without a vpa_id reached a rule"
    return env.vpa_id
