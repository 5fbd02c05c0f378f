"""The Kafka worker's slots over its partition store."""
from __future__ import annotations

import json

from services.common.kafka.slots import TableSlots
from services.common.kafka.state_store import MemoryStore, slot_key, slot_value


def test_a_slot_changed_in_place_stays_unchanged_in_the_store_until_it_is_written():
    """The engine changes a slot in place while it works through a batch; if the batch is never
    written (a rebalance cancelled its worker), the store must still hold the old slot, or the next
    worker in the same process skips the redelivered inputs as already applied."""
    store = MemoryStore()
    store.apply([("V-1310", json.dumps({"states": {"journey": {"tasks": {"t": {"status": "open"}}}},
                                          "pos": {"vpa.events": 433}}).encode())], 1)
    slots = TableSlots(store)
    slot = slots["V-1310"]
    slot["pos"]["vpa.events"] = 507
    slot["states"]["journey"]["tasks"]["t"]["status"] = "done"
    assert json.loads(store.get("V-1310"))["pos"] == {"vpa.events": 433}
    assert TableSlots(store)["V-1310"]["pos"] == {"vpa.events": 433}  # what a new worker reads
    records = slots.encode({"V-1310": slot})
    slots.stored(records, 2)
    assert json.loads(store.get("V-1310"))["pos"] == {"vpa.events": 507}
    assert store.changelog_offset == 2


def test_deleted_slots_leave_the_index_and_the_store():
    store = MemoryStore()
    slots = TableSlots(store)
    slots.stored(slots.encode({"V-1": {"states": {}}, "V-2": {"states": {}}}), 2)
    assert list(slots) == ["V-1", "V-2"]
    del slots["V-1"]
    slots.stored(slots.encode({"V-1": None}), 3)
    assert list(slots) == ["V-2"] and store.get("V-1") is None and list(TableSlots(store)) == ["V-2"]


def test_changelog_records_of_the_earlier_faust_runner_are_read_alike():
    """Keys JSON-encoded with a partition prefix, values as a JSON string: a deployment's existing
    changelog is read by the new runner."""
    assert slot_key(b'"3/V-1042"') == "V-1042"
    assert slot_key(b"V-1042") == "V-1042"
    assert slot_key(b'"3/__member__/AB"') == "__member__/AB"
    assert slot_value(b'{"states":{}}') == b'{"states":{}}'
    assert slot_value(json.dumps('{"states":{}}').encode()) == b'{"states":{}}'
    assert slot_value(None) is None
