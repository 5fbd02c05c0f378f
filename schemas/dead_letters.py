"""``vpa.dlq`` (DESIGN 4.1, 4.5): what a dead letter says about itself.

A record on ``vpa.dlq`` is the original key and value with headers: ``reason`` (``<kind>: <detail>``,
so a consumer can filter on the kind, e.g. ``rejected:`` for a refused command), ``service`` (who
put it there) and its origin (``origin_topic``, ``origin_partition``, ``origin_offset``; plus
``truncated_from`` when the value was cut to fit).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DlqKind(StrEnum):
    undecodable = "undecodable"  # no JSON at all: empty, not UTF-8, broken
    invalid = "invalid"  # JSON, but not a valid envelope, task version or record of its topic
    rejected = "rejected"  # a valid command a rule refused (DESIGN 4.5)
    error = "error"  # a rule raised on a valid input (a bug; the partition goes on)


@dataclass(frozen=True)
class DlqReason:
    """Why something went to ``vpa.dlq``: the kind, typed, and a detail for people."""

    kind: DlqKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"
