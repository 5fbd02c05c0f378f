"""How a runner's clock moves: a setting (``VPA_CLOCK``), read by the clock and both drivers."""
from __future__ import annotations

from enum import Enum


class ClockMode(str, Enum):
    """How a runner's clock moves (DESIGN 3 "Clock")."""

    stream = "stream"  # now = the highest occurred_at seen (replay, backfills, tests)
    wall = "wall"  # now = the wall clock; events never move it
    catchup = "catchup"  # stream time while working through a backlog, the wall clock once caught up

    def __str__(self) -> str:
        return self.value
