"""Order keys: the one total order in which a partition's work happens, in both drivers.

Everything a partition engine does is a *step* with a key, and steps happen in key order. Keys
are tuples of ints compared lexicographically (a proper prefix sorts first):

* an input record:       ``(t, rank, partition, offset)``. ``t`` is ``occurred_at`` in whole
  microseconds since the epoch; ``rank`` orders inputs that share an instant (Kafka: ``at.roster``
  0, ``vpa.events`` 1, ``vpa.commands`` 2; replay: 0, its lines are sorted already); partition and
  offset come from the topic (replay: 0 and the line's position after sorting);
* a local midnight with a roster boundary: ``(t, -2)``, before any timer or input of that instant;
* a timer:               ``(due, -1, *set_step, 0, service_rank, n)``: timers of one instant fire
  in the order they were set (the key of the step that set them, then the service, then the order
  within that step); a timer set for a time the clock has already reached gets
  ``(*set_step, 0, service_rank, n)`` instead: it fires right after the step that set it and
  before that step's commands, wherever that step runs;
* a command a step emits: ``(*cause, 1, service_rank, n)``: right after its cause and before
  anything later, in the order of the services and then of emission;
* the end of an instant:  ``(t, 9)`` (wall-clock advances, ``--until``): after every input of ``t``.

The same keys arise in the embedded runner, where every service shares one engine, and in the
Kafka runner, where each service runs its own engine per partition and a command one service
emits reaches another with its key: that is what makes both end in the same tasks.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional, Sequence

from schemas.topics import Topic

OrderKey = tuple[int, ...]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)

RANK_MIDNIGHT = -2
RANK_TIMER = -1
RANK_END = 9
TOPIC_RANK = {Topic.roster: 0, Topic.events: 1, Topic.commands: 2}
_OWN, _CHILD = 0, 1


# The last two instants asked for and their answers: a step asks for the same input's time and
# the same clock several times (its key, the dedupe window, the pending work, the next midnight).
# Held by reference, so ``is`` cannot meet another object at a reused address; one tuple, replaced
# whole, so a thread (the demo builds its company in one) never reads half of an update
# (``timeutil.local_date`` keeps its last answer the same way).
_last: tuple[object, int, object, int] = (None, 0, None, 0)


def micros(t: datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp loses them after year 2255)."""
    global _last
    last = _last
    if t is last[0]:
        return last[1]
    if t is last[2]:
        return last[3]
    us = (t - EPOCH) // _MICRO
    _last = (t, us, last[0], last[1])
    return us


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def input_key(at: datetime, position: Sequence[int]) -> OrderKey:
    return (micros(at), *position)


def midnight_key(at: datetime) -> OrderKey:
    return (micros(at), RANK_MIDNIGHT)


def timer_key(due: datetime, set_step: OrderKey, service_rank: int, n: int,
              now: Optional[datetime] = None) -> OrderKey:
    if now is not None and due <= now:
        return (*set_step, _OWN, service_rank, n)
    return (micros(due), RANK_TIMER, *set_step, _OWN, service_rank, n)


def child_key(cause: OrderKey, service_rank: int, n: int) -> OrderKey:
    return (*cause, _CHILD, service_rank, n)


def end_key(at: datetime) -> OrderKey:
    return (micros(at), RANK_END)


def instant_of(key: OrderKey) -> datetime:
    """The instant a key belongs to."""
    return from_micros(key[0])
