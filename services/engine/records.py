"""What the partition engine keeps and gives, as types: a VPA's slot, the partition's meta, roster
and member records (the JSON the changelog holds), where an input came from, and the output of a
step (task versions, commands for other services, DLQ records, erasures, metric counts)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional, TypedDict

from schemas.dead_letters import DlqKind, DlqReason
from schemas.envelope import Envelope
from services.config.settings import Settings
from services.engine.order import OrderKey


class Slot(TypedDict, total=False):
    """One VPA's slot: every service's state of it and the engine's bookkeeping."""

    states: dict[str, dict[str, Any]]  # service -> its domain state for this VPA
    seen: dict[str, int]  # recent event ids -> occurred_at (microseconds), for duplicate detection
    timers: dict[str, dict[str, list[int]]]  # service -> timer_id -> the order key of that timer
    pos: dict[str, int]  # input topic -> offset of the last record applied (a restart skips up to it)


def new_slot() -> Slot:
    return {"states": {}}  # ``seen`` and ``timers`` are added when there is something to keep


class MetaRecord(TypedDict):
    """The partition's own slot (``META_SLOT``)."""

    clock: Optional[str]  # the stream clock, ISO 8601
    last: Optional[list[int]]  # the highest order key of any step done
    watermarks: dict[str, list[int]]  # followed service -> how far it has emitted everything
    pos: dict[str, int]  # input topic -> offset of the last keyless record applied


class RosterRecord(TypedDict, total=False):
    """The roster's slot (``ROSTER_SLOT``)."""

    positions: dict[str, int]  # roster partition -> the next offset to read
    seen: dict[str, int]  # recent event ids of keyless inputs -> occurred_at (microseconds)
    members: dict[str, dict[str, Any]]  # written before members had slots of their own


class MemberRecord(TypedDict):
    """One AT member's slot (``MEMBER_PREFIX`` + initials)."""

    member: dict[str, Any]
    seen: dict[str, int]


@dataclass(frozen=True)
class Origin:
    """Where an input came from: for DLQ headers and error messages."""

    label: str  # "vpa.events[3]@120", "stream.jsonl:12", "api", ...
    topic: str = ""
    partition: int = -1
    offset: int = -1
    key: Optional[bytes] = None  # the record's key, kept for its DLQ copy


@dataclass
class DlqRecord:
    kind: DlqKind
    detail: str
    service: str  # who rejected it
    origin: Origin
    value: bytes
    key: Optional[str] = None

    @property
    def reason(self) -> str:
        """The text of the DLQ's ``reason`` header: ``<kind>: <detail>``."""
        return str(DlqReason(self.kind, self.detail))


@dataclass
class Output:
    tasks: list[dict[str, Any]] = field(default_factory=list)
    commands: list[tuple[OrderKey, Envelope[Any]]] = field(default_factory=list)  # for other services
    dlq: list[DlqRecord] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)  # task ids to remove from the store (erasure)
    erased_vpas: list[str] = field(default_factory=list)  # VPAs whose every task leaves the store
    counts: Counter[Any] = field(default_factory=Counter)  # (metric, *labels) -> increment

    def __bool__(self) -> bool:
        return bool(self.tasks or self.commands or self.dlq or self.erased or self.erased_vpas)


@dataclass(frozen=True)
class EngineLimits:
    dedupe_window: timedelta = timedelta(days=7)  # how long an event_id is remembered (stream time)
    max_future: timedelta = timedelta(hours=1)  # live modes: how far occurred_at may lie ahead
    targeted_reassign: bool = True  # False: re-evaluate every VPA on every roster change (tests)

    @classmethod
    def of(cls, settings: Settings) -> "EngineLimits":
        """The limits the settings give, the same for both runners."""
        return cls(dedupe_window=timedelta(days=settings.dedupe_window_days),
                   max_future=timedelta(minutes=settings.max_future_minutes))


ROSTER_SLOT = "__roster__"  # roster input positions, recent event ids of keyless inputs
# One slot per AT member (its record and its recent event ids): a roster event writes the member it
# changed, never the whole roster, which grows with the company (one record of it passed Kafka's
# 1 MB limit at 100,000 VPAs).
MEMBER_PREFIX = "__member__/"
META_SLOT = "__meta__"  # clock, last step, upstream watermarks
