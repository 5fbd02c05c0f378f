"""The Kafka worker's slots over faust's table (issue 12, found by the scale-out test)."""
from __future__ import annotations

import json

from services.common.kafka.slots import TableSlots


def test_a_slot_changed_in_place_stays_unchanged_in_the_table_until_it_is_written():
    """faust hands values recovered from the changelog back as the very dicts its memory store
    keeps. The engine changes a slot in place while it works through a batch; if the batch is
    never written (a rebalance cancelled its worker), the table must still hold the old slot, or
    the next worker in the same process skips the redelivered inputs as already applied."""
    recovered = {"states": {"journey": {"tasks": {"t": {"status": "open"}}}}, "pos": {"vpa.events": 433}}
    table = {"3/V-1310": recovered}
    slots = TableSlots(table, 3)
    slot = slots["V-1310"]
    slot["pos"]["vpa.events"] = 507
    slot["states"]["journey"]["tasks"]["t"]["status"] = "done"
    assert table["3/V-1310"]["pos"] == {"vpa.events": 433}
    assert table["3/V-1310"]["states"]["journey"]["tasks"]["t"]["status"] == "open"
    assert TableSlots(table, 3)["V-1310"]["pos"] == {"vpa.events": 433}  # what a new worker reads
    slots.write({"V-1310": slot})
    assert json.loads(table["3/V-1310"])["pos"] == {"vpa.events": 507}
