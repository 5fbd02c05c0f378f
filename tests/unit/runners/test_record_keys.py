"""Where a record must sit (DESIGN 4.1; services.runners.kafka.keys): keyed by its vpa_id, in the
partition Kafka's default partitioner picks for that key; roster records keyed by the initials."""
from __future__ import annotations

import json

from services.broker.client import default_partition
from services.engine.decode import Decoded, Invalid, decode
from services.runners.kafka.keys import misrouted, misrouted_roster
from tests import builders


def _event(vpa: str) -> bytes:
    return json.dumps(builders.activity(vpa, at="2026-03-02T09:00:00+01:00", event_id="e1")).encode()


def test_kafkas_default_partitioner_is_murmur2_as_the_java_client_computes_it():
    # values of the Java client's Utils.toPositive(Utils.murmur2(key)) % n
    assert [default_partition(b"V-1042", n) for n in (1, 4, 6, 12)] == [
        0, (3110256330 & 0x7FFFFFFF) % 4, (3110256330 & 0x7FFFFFFF) % 6, (3110256330 & 0x7FFFFFFF) % 12]


def test_a_record_in_the_partition_of_its_key_is_taken_and_one_elsewhere_is_invalid():
    right = default_partition(b"V-1042", 4)
    assert isinstance(misrouted(decode(_event("V-1042")), b"V-1042", right, 4), Decoded)
    wrong = misrouted(decode(_event("V-1042")), b"V-1042", (right + 1) % 4, 4)
    assert isinstance(wrong, Invalid) and f"belongs in partition {right}" in wrong.reason
    assert "murmur2_random" in wrong.reason  # what a librdkafka producer must set
    assert isinstance(misrouted(decode(_event("V-1042")), b"V-1042"), Decoded)  # partition unknown: key only


def test_roster_records_are_keyed_by_the_initials():
    upsert = decode(json.dumps({"event_id": "m1", "type": "roster.member_upserted", "occurred_at": "2026-03-02T09:00:00+01:00",
                                "data": {"initials": "AB", "name": "Anna Berg", "role": "at", "deputy": None,
                                         "active": True}}).encode())
    assert isinstance(misrouted_roster(upsert, b"AB"), Decoded)
    assert "no key" in misrouted_roster(upsert, None).reason
    assert "key 'CD'" in misrouted_roster(upsert, b"CD").reason
