"""The merge policy of a partition worker, as a pure function of what it sees and of the time.

A worker feeds its engine the records of several inputs (its co-partitioned topics, the commands
of a followed service, every roster partition) in order-key order. ``decide`` says, from a
snapshot (``View``) and the machine clock's monotonic seconds, which record goes next or how long
to wait: the smallest head goes once no input could still deliver a smaller one.

* **Proof from the broker.** Every input with nothing buffered must hold nothing more on the
  broker, by an end offset asked *after* the record about to go was received. The client's own
  high watermarks can be seconds old, and one producer appends in order, so only an answer asked
  later covers everything written before that record. Ends not known that fresh are asked for
  (``Decision.ask``); the answer wakes the worker.
* **Idle time.** An empty input must also have stayed empty for ``idle_seconds`` since that record
  arrived (Kafka Streams' ``max.task.idle.ms``): the end offsets cannot know records another
  producer has not written yet, so a record of a burst on one topic may arrive a moment before the
  earlier records of the same burst on another.
* **Followed services.** A followed service's next command is its progress (it emits in key
  order); with none buffered, its progress mark must have reached the key about to go. The worker
  waits for it ``upstream_wait_seconds`` at most, then goes on without it (``Decision.timed_out``).

The worker gathers the snapshot, asks what ``ask`` names, sets the marks ``marks`` names and
counts the time-outs; it decides nothing itself. The tests of the waits at their boundaries call
``decide`` with a snapshot and a number for now (``tests/unit/runners/test_merge_policy.py``).
"""
from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple, Optional

from services.engine.order import OrderKey


class Action(Enum):
    step = "step"  # hand ``take`` to the engine
    wait = "wait"  # until woken, or until ``until`` at the latest
    idle = "idle"  # nothing buffered anywhere


class Candidate(NamedTuple):
    """The head of an input: the next record it would hand to the engine."""

    key: OrderKey
    kind: str  # "input" (a topic's buffer) or "roster" (a roster partition's next record)
    source: Any  # what the worker steps: the input's buffer, or the roster record
    received: float  # monotonic seconds when the record was handed over


class Empty(NamedTuple):
    """An input with nothing buffered: a topic of the partition, or a roster partition."""

    topic: str
    partition: int
    fetched_to: int  # read up to this offset (records and gaps)
    empty_since: float  # monotonic seconds
    caught_up: bool  # read up to the end the client last saw
    end: Optional[tuple[int, float]]  # the end offset the broker last gave, and when it was asked


class Upstream(NamedTuple):
    """A followed service."""

    name: str
    head: Optional[OrderKey]  # the key of its next buffered command
    mark: Optional[OrderKey]  # how far it is known to have emitted everything


class View(NamedTuple):
    candidates: tuple[Candidate, ...]
    empty: tuple[Empty, ...]
    upstreams: tuple[Upstream, ...] = ()
    upstream_waiting_since: Optional[float] = None  # since when the worker waits for a followed service
    idle_seconds: float = 0.0
    upstream_wait_seconds: float = 30.0


class Decision(NamedTuple):
    action: Action
    take: Optional[Candidate] = None  # step: the record that goes next
    until: Optional[float] = None  # wait: the moment to look again at the latest (None: when woken)
    ask: tuple[tuple[str, int], ...] = ()  # end offsets to ask the broker for
    marks: tuple[tuple[str, OrderKey], ...] = ()  # followed services' progress to note
    timed_out: tuple[str, ...] = ()  # followed services gone on without
    upstream_waiting_since: Optional[float] = None


def _order(candidate: Candidate) -> OrderKey:
    return candidate.key


def decide(view: View, now: float) -> Decision:
    """What the worker does next, at monotonic time ``now``."""
    waiting_since = view.upstream_waiting_since
    candidates = view.candidates
    if not candidates:
        return Decision(Action.idle, upstream_waiting_since=waiting_since)
    take = candidates[0] if len(candidates) == 1 else min(candidates, key=_order)
    received, idle = take.received, view.idle_seconds
    ask: list[tuple[str, int]] = []
    on_their_way = False
    until: Optional[float] = None
    for e in view.empty:  # one pass (it runs for every record): the checks' order is kept below
        end = e.end
        if end is None or end[1] < received:
            ask.append((e.topic, e.partition))
            continue
        if end[0] > e.fetched_to or not e.caught_up:
            on_their_way = True
        quiet_at = (e.empty_since if e.empty_since > received else received) + idle
        if now < quiet_at and (until is None or quiet_at < until):
            until = quiet_at
    if ask:
        return Decision(Action.wait, ask=tuple(ask), upstream_waiting_since=waiting_since)
    if on_their_way:
        return Decision(Action.wait, upstream_waiting_since=waiting_since)  # records are on their way
    marks: list[tuple[str, OrderKey]] = []
    timed_out: list[str] = []
    for up in view.upstreams:
        if up.head is not None:
            marks.append((up.name, up.head))  # everything before its next command is out
            continue
        if up.mark is not None and up.mark >= take.key:
            continue
        if waiting_since is None:
            waiting_since = now
        give_up = waiting_since + view.upstream_wait_seconds
        if now < give_up:
            until = give_up if until is None else min(until, give_up)
            continue
        timed_out.append(up.name)
        marks.append((up.name, take.key))
    if until is not None:
        return Decision(Action.wait, until=until, marks=tuple(marks), timed_out=tuple(timed_out),
                        upstream_waiting_since=waiting_since)
    return Decision(Action.step, take=take, marks=tuple(marks), timed_out=tuple(timed_out))
