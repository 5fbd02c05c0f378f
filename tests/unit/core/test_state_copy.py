"""``json_copy``: the copy of a VPA's state a rule works on (a failing rule leaves the stored one)."""
from services.core.processor import json_copy


def test_a_json_shaped_state_copies_equal_and_apart():
    state = {"v": 2, "profile": {"name": "Anna Schmidt", "part_time": False, "class": None},
             "tasks": {"case:x": {"reasons": ["short_notice"], "version": 3, "evidence": [{"code": "a", "text": "ü€😀"}]}},
             "timers": {}, "score": 1.5, "big": 2**63 - 1, "neg": -(2**63)}
    copy = json_copy(state)
    assert copy == state
    copy["tasks"]["case:x"]["reasons"].append("frequent")
    copy["profile"]["name"] = "B"
    assert state["tasks"]["case:x"]["reasons"] == ["short_notice"] and state["profile"]["name"] == "Anna Schmidt"


def test_what_msgpack_cannot_hold_is_still_copied():
    state = {"huge": 2**80, "nested": [{"x": -(2**70)}]}
    copy = json_copy(state)
    assert copy == state and copy["nested"] is not state["nested"]


def test_a_tuple_comes_back_as_the_list_the_kafka_store_would_give():
    assert json_copy({"k": (1, "a")}) == {"k": [1, "a"]}
