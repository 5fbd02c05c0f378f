"""Where a record must sit (DESIGN 4.1): what a worker checks of a record's key and partition.

The per-VPA state of partition ``p`` needs every record about its VPAs in partition ``p`` of
``vpa.events`` and of ``vpa.commands``. A record keyed otherwise than by its ``vpa_id``, or put in
another partition than Kafka's default partitioner (murmur2 of the key, as the Java client and
aiokafka do) chooses for that key, sits where the VPA's state is not: taking it would split that
state, and its order against the VPA's other records would be the producer's accident. Such a
record is invalid (``vpa.dlq`` with the reason) rather than quietly taken. Roster records are read
by every partition, so only their key is checked (the member's initials).
"""
from __future__ import annotations

from typing import Optional

from services.broker.client import default_partition
from services.engine.decode import Decoded, Invalid, Outcome


def misrouted(outcome: Outcome, key: Optional[bytes], partition: int = -1,
              partitions: Optional[int] = None) -> Outcome:
    if not isinstance(outcome, Decoded) or outcome.envelope.vpa_id is None:
        return outcome
    vpa_id = outcome.envelope.vpa_id
    if key != vpa_id.encode():
        shown = "no key" if key is None else f"key {key[:80].decode('utf-8', 'replace')!r}"
        return Invalid(f"{shown}, but the message is about {vpa_id!r}: "
                       "records about a VPA must be keyed by its vpa_id")
    if partitions and partition >= 0:
        want = default_partition(key, partitions)
        if want != partition:
            return Invalid(f"a record about {vpa_id!r} belongs in partition {want} (Kafka's default "
                           f"partitioner, murmur2 of the key), not {partition}: the producer must use the default "
                           "partitioner (librdkafka: partitioner=murmur2_random)")
    return outcome


def misrouted_roster(outcome: Outcome, key: Optional[bytes]) -> Outcome:
    if not isinstance(outcome, Decoded):
        return outcome
    data = outcome.envelope.data
    initials = data.get("initials") if isinstance(data, dict) else getattr(data, "initials", None)
    if isinstance(initials, str) and key != initials.encode():
        shown = "no key" if key is None else f"key {key[:80].decode('utf-8', 'replace')!r}"
        return Invalid(f"{shown}, but the roster record is about {initials!r}: "
                       "roster records must be keyed by the member's initials")
    return outcome
