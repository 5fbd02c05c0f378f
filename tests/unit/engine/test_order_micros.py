"""``micros`` keeps its last two answers by identity (issue 22: a step asks for the same instants
several times). Whatever order instants come in, each answer is the exact one."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from services.engine.order import EPOCH, micros


def exact(t: datetime) -> int:
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def test_every_answer_is_exact_whatever_the_order_of_the_instants():
    rng = random.Random(7)
    berlin = ZoneInfo("Europe/Berlin")
    base = datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=berlin)  # the night the clocks change
    pool = [base + timedelta(microseconds=rng.randrange(10**11)) for _ in range(5)]
    pool += [datetime(2026, 10, 25, 2, 30, fold=f, tzinfo=berlin) for f in (0, 1)]  # the hour that comes twice
    pool += [datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-9)))]
    for _ in range(2_000):
        t = rng.choice(pool)
        assert micros(t) == exact(t)
    twice = [micros(t) for t in pool[-4:-2]]
    assert twice[1] - twice[0] == 3_600_000_000  # fold 1 is an hour after fold 0


def test_an_equal_instant_as_another_object_gets_the_same_answer():
    a = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    b = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)  # the same instant, another object
    assert micros(a) == micros(b) == micros(a)
