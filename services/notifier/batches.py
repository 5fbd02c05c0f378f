"""The CPU part of writing a batch, apart from the writing: which records are task versions the
store can take, which are tombstones or erasure markers, and the upstream envelopes of the read
model. The notifier does it for the next batch while the store writes the one before
(issue 22, point 4); it reads nothing but the records, so it can run at any time."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from services.broker.port import Record
from services.broker.topics import erased_vpa
from services.engine.decode import Decoded, Invalid, decode
from services.notifier.validation import check_task


@dataclass(frozen=True)
class Versions:
    """Task versions between two tombstones, in order: those to write, and those refused."""

    good: list[Record]
    refused: list[tuple[Invalid, Record]]


@dataclass(frozen=True)
class Delete:
    """A task's tombstone (a null value): the task leaves the store."""

    task_id: str


@dataclass(frozen=True)
class Erase:
    """An erasure marker: every task of the VPA leaves the store and the compacted topic."""

    vpa_id: str
    marker_key: bytes


Step = Union[Versions, Delete, Erase]


@dataclass
class CheckedBatch:
    """A batch off the notifier's topics, checked: the steps for ``dashlet.tasks`` in their order,
    the upstream envelopes for the read model, and the offsets to commit once both are written."""

    steps: list[Step] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def task_steps(records: list[Record]) -> list[Step]:
    """``dashlet.tasks`` records as steps: the versions between tombstones are written together."""
    steps: list[Step] = []
    good: list[Record] = []
    refused: list[tuple[Invalid, Record]] = []

    def close_run() -> None:
        nonlocal good, refused
        if good or refused:
            steps.append(Versions(good, refused))
            good, refused = [], []

    for rec in records:
        vpa_id: Optional[str] = erased_vpa(rec.key, rec.value)
        if vpa_id and rec.key:
            close_run()
            steps.append(Erase(vpa_id, rec.key))
        elif rec.value is None and rec.key:
            close_run()
            steps.append(Delete(rec.key.decode("utf-8", "replace")))
        else:
            invalid = check_task(rec.value)
            if invalid is None:
                good.append(rec)
            else:
                refused.append((invalid, rec))
    close_run()
    return steps


def upstream_envelopes(records: list[Record]) -> list[Any]:
    """The upstream's valid envelopes the read model keeps (profiles, events, roster); what is
    invalid the stream services send to vpa.dlq, so it is only skipped here."""
    from services.store import projection

    envelopes = []
    for rec in records:
        outcome = decode(rec.value or b"")
        if isinstance(outcome, Decoded) and projection.relevant(outcome.envelope):
            envelopes.append(outcome.envelope)
    return envelopes


def check_batch(fetched: dict[tuple[str, int], list[Record]], tasks_topic: str) -> CheckedBatch:
    """A fetch (records per partition) checked, partitions in a fixed order."""
    tasks = [rec for tp in sorted(fetched) if tp[0] == tasks_topic for rec in fetched[tp]]
    upstream = [rec for tp in sorted(fetched) if tp[0] != tasks_topic for rec in fetched[tp]]
    offsets = {tp: recs[-1].offset + 1 for tp, recs in fetched.items() if recs}
    return CheckedBatch(task_steps(tasks), upstream_envelopes(upstream), offsets)
