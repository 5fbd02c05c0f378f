"""The Kafka worker's slots over its partition store."""
from __future__ import annotations

import json

from services.runners.kafka.slots import TableSlots
from services.runners.kafka.state_store import MemoryStore, slot_key, slot_value


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
    assert list(slots) == ["V-1", "V-2", "__meta__"]  # every batch ends with the meta slot
    del slots["V-1"]
    slots.stored(slots.encode({"V-1": None}), 3)
    assert [k for k in slots if k.startswith("V-")] == ["V-2"] and store.get("V-1") is None
    assert [k for k in TableSlots(store) if k.startswith("V-")] == ["V-2"]


def test_a_batch_cut_off_by_a_crash_is_never_applied_in_part():
    from services.runners.kafka.state_store import BatchReader

    reader = BatchReader()
    applied = []
    log = [("V-1", b"1", b"w1:1"), ("__meta__", b"m1", b"w1:1"),   # a whole batch
           ("V-1", b"2", b"w1:2"), ("V-2", b"2", b"w1:2"),          # cut off: its writer died
           ("V-1", b"3", b"w2:1"), ("__meta__", b"m3", b"w2:1"),    # the next owner's batch
           ("V-3", b"old", None)]                                     # the earlier runner's format
    for key, value, batch in log:
        applied += reader.add(key, value, batch)
    # The cut-off records come out with the next owner's first batch, which wrote their keys again
    # (stream_app: the repair), so they never decide a slot's value.
    assert applied == [("V-1", b"1"), ("__meta__", b"m1"), ("V-1", b"2"), ("V-2", b"2"),
                       ("V-1", b"3"), ("__meta__", b"m3"), ("V-3", b"old")]
    assert reader.unfinished == 0


def test_a_cut_off_batch_at_the_end_is_held_and_its_keys_named_for_the_repair():
    from services.runners.kafka.state_store import BatchReader

    reader = BatchReader()
    applied = []
    for key, value, batch in [("V-1", b"1", b"w1:1"), ("__meta__", b"m1", b"w1:1"),
                              ("V-2", b"2", b"w1:2"), ("V-1", b"2", b"w1:2")]:
        applied += reader.add(key, value, batch)
    assert applied == [("V-1", b"1"), ("__meta__", b"m1")]
    assert reader.unfinished == 2 and reader.unfinished_keys() == ["V-1", "V-2"]


def test_a_compacted_changelog_is_read_whole():
    """Compaction keeps only the last meta record: the batches before it are proven whole by their
    writer going on (a writer sends a batch only after the broker took the previous one)."""
    from services.runners.kafka.state_store import BatchReader

    reader = BatchReader()
    applied = []
    compacted = [("V-1", b"1", b"w1:1"), ("V-2", b"2", b"w1:2"), ("V-3", b"3", b"w1:3"),  # metas gone
                 ("V-4", b"4", b"w2:1"), ("V-1", b"5", b"w2:2"), ("__meta__", b"m", b"w2:2")]
    for key, value, batch in compacted:
        applied += reader.add(key, value, batch)
    assert applied == [(k, v) for k, v, _ in compacted] and reader.unfinished == 0


def test_changelog_records_of_the_earlier_faust_runner_are_read_alike():
    """Keys JSON-encoded with a partition prefix, values as a JSON string: a deployment's existing
    changelog is read by the new runner."""
    assert slot_key(b'"3/V-1042"') == "V-1042"
    assert slot_key(b"V-1042") == "V-1042"
    assert slot_key(b'"3/__member__/AB"') == "__member__/AB"
    assert slot_value(b'{"states":{}}') == b'{"states":{}}'
    assert slot_value(json.dumps('{"states":{}}').encode()) == b'{"states":{}}'
    assert slot_value(None) is None
