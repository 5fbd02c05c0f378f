"""Partition assignment for a service's group: partition *numbers* move together, and stay put.

A worker owns partition ``p`` of every input topic at once (``vpa.events``, ``vpa.commands``, a
followed service's commands: co-partitioned by ``vpa_id``), because the per-VPA state of partition
``p`` needs all of them. aiokafka's round-robin assignor splits topics independently, so this one
assigns partition numbers, balanced (every member gets ⌊n/m⌋ or ⌈n/m⌉), and keeps each number with
the member that owned it before where the balance allows: a member joining or leaving moves only
the partitions it must, and each moved partition costs a state restore.

Each member tells the leader what it owns in its subscription's user data (JSON list of numbers).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Mapping

log = logging.getLogger("vpa.kafka.assignor")
NAME = "vpa-copartitioned"


def plan(partitions: int, members: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    """member id -> partition numbers. Pure: the leader's decision from what each member owned."""
    ids = sorted(members)
    if not ids:
        return {}
    quota_low, extra = divmod(partitions, len(ids))
    # members that may take one more than quota_low: those owning the most first, for stickiness
    by_claim = sorted(ids, key=lambda m: (-len([p for p in members[m] if 0 <= p < partitions]), m))
    quota = {m: quota_low + (1 if i < extra else 0) for i, m in enumerate(by_claim)}
    out: dict[str, list[int]] = {m: [] for m in ids}
    taken: set[int] = set()
    for m in by_claim:
        for p in sorted(set(members[m])):
            if 0 <= p < partitions and p not in taken and len(out[m]) < quota[m]:
                out[m].append(p)
                taken.add(p)
    free = [p for p in range(partitions) if p not in taken]
    for p in free:
        m = min(ids, key=lambda k: (len(out[k]) - quota[k], len(out[k]), k))
        out[m].append(p)
    return {m: sorted(ps) for m, ps in out.items()}


def assignor_for(group_id: str) -> Any:
    """A fresh assignor class for one consumer (aiokafka calls assignors as classes)."""
    from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

    class CoPartitionedAssignor(AbstractPartitionAssignor):
        name = NAME
        version = 0
        owned: list[int] = []

        @classmethod
        def assign(cls, cluster: Any, members: Mapping[str, Any]) -> dict[str, Any]:
            topics = sorted({t for meta in members.values() for t in meta.subscription})
            counts = {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}
            known = [n for n in counts.values() if n]
            if not known:
                log.warning("%s: no partition metadata for %s", group_id, topics)
                return {m: ConsumerProtocolMemberAssignment(cls.version, [], b"") for m in members}
            n = min(known)
            if len(set(known)) > 1:
                log.error("%s: the input topics differ in partition count (%s): only partitions 0 to %d are "
                          "assigned; co-partitioned topics need the same count", group_id, counts, n - 1)
            claims: dict[str, list[int]] = {}
            for member, meta in members.items():
                try:
                    claims[member] = [int(p) for p in json.loads(meta.user_data or b"[]")]
                except (ValueError, TypeError):
                    claims[member] = []
            decided = plan(n, claims)
            out = {}
            for member, meta in members.items():
                parts = decided.get(member, [])
                out[member] = ConsumerProtocolMemberAssignment(
                    cls.version, sorted((t, list(parts)) for t in meta.subscription if counts.get(t)), b"")
            return out

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> Any:
            return ConsumerProtocolMemberMetadata(cls.version, list(topics), json.dumps(cls.owned).encode())

        @classmethod
        def on_assignment(cls, assignment: Any) -> None:
            cls.owned = sorted({p for _, parts in assignment.assignment for p in parts})

    return CoPartitionedAssignor
