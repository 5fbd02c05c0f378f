"""Deterministic ids (DESIGN 3 "Determinism", fine print 5.6 and 5.7)."""
import hashlib
import struct
from datetime import timezone

from services.config.settings import Settings
from services.core.ids import (
    case_id,
    command_id,
    journey_task_id,
    reminder_task_id,
    rendezvous_pick,
    rendezvous_rank,
    rendezvous_ranks,
    rendezvous_score,
)
from services.core.processor import Context
from services.detector.service import Detector
from tests import builders


def expected_score(key: str, initials: str) -> int:
    """DESIGN 5.7, written out independently: first 8 bytes, big-endian, of SHA-256(key NUL initials)."""
    digest = hashlib.sha256(key.encode("utf-8") + b"\x00" + initials.encode("utf-8")).digest()
    (value,) = struct.unpack(">Q", digest[:8])
    return value


def test_rendezvous_score_matches_design():
    for key in ("reminder-1", "case:absence:V-1042:abs-7", "V-1042", ""):
        for initials in ("AB", "CD", "EFGH"):
            assert rendezvous_score(key, initials) == expected_score(key, initials)


def test_rendezvous_score_known_value():
    digest = hashlib.sha256(b"V-1042\x00AB").digest()
    assert rendezvous_score("V-1042", "AB") == int(digest[:8].hex(), 16)


def test_ranks_order_exactly_as_the_design_scores_do():
    """The picks compare 8-byte ranks, not integers: the same order, ties broken by initials."""
    names = [f"{a}{b}" for a in "ABCDEFGHIJKLMNOP" for b in "QRSTUVWXYZ"] + ["AB", "AB"]
    for key in ("reminder-1", "case:absence:V-1042:abs-7", "V-1042", "", "ü€"):
        by_score = sorted(names, key=lambda i: (expected_score(key, i), i))
        assert [name for _, name in sorted(rendezvous_ranks(key, names))] == by_score
        assert all(rendezvous_rank(key, i) == (expected_score(key, i).to_bytes(8, "big"), i) for i in names)


def test_rendezvous_pick_takes_the_highest_score():
    candidates = ["AB", "CD", "EF", "GH", "IJ"]
    for key in (f"reminder-{n}" for n in range(50)):
        best = max(candidates, key=lambda i: expected_score(key, i))
        assert rendezvous_pick(key, candidates) == best


def test_rendezvous_pick_ignores_candidate_order():
    assert rendezvous_pick("r-1", ["AB", "CD", "EF"]) == rendezvous_pick("r-1", ["EF", "AB", "CD"])


def test_rendezvous_pick_moves_only_keys_of_a_leaving_candidate():
    candidates = ["AB", "CD", "EF", "GH"]
    keys = [f"reminder-{n}" for n in range(200)]
    before = {k: rendezvous_pick(k, candidates) for k in keys}
    after = {k: rendezvous_pick(k, [c for c in candidates if c != "CD"]) for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "CD"}
    assert set(before.values()) == set(candidates)  # every candidate gets some keys


def test_rendezvous_pick_nobody():
    assert rendezvous_pick("r-1", []) is None


def test_id_formats():
    assert case_id("absence", "V-1042", "abs-7") == "case:absence:V-1042:abs-7"
    assert case_id("schedule_change", "V-1042", "evt-9") == "case:schedule_change:V-1042:evt-9"
    assert reminder_task_id("r-1") == "reminder:r-1"
    follow_up = f"follow-up:{case_id('inactive', 'V-1', 'evt-3')}"
    assert reminder_task_id(follow_up) == "reminder:follow-up:case:inactive:V-1:evt-3"
    assert journey_task_id("V-1042", "NEW_3_6") == "journey:V-1042:NEW_3_6"


def test_command_ids_are_stable():
    assert command_id("detector", "reminder", "case:inactive:V-1:e3") == command_id(
        "detector", "reminder", "case:inactive:V-1:e3")
    assert command_id("detector", "a", "b") == "detector:a:b"


def _events() -> list:
    return [
        builders.decoded("vpa.registered", {"name": "Anna", "started_on": "2025-01-15", "at_owner": "AB"},
                         at="2026-11-01T09:00:00+01:00", vpa_id="V-1042", event_id="r1"),
        builders.decoded("vpa.absence_registered",
                         {"absence_id": "abs-7", "starts_on": "2026-11-27", "ends_on": "2026-12-31"},
                         at="2026-11-26T09:00:00+01:00", vpa_id="V-1042", event_id="a1"),
        builders.decoded("vpa.absence_cancelled", {"absence_id": "abs-7"},
                         at="2026-11-26T10:00:00+01:00", vpa_id="V-1042", event_id="c1"),
    ]


def test_replaying_the_same_events_gives_the_same_tasks_and_ids():
    def run() -> list[dict]:
        state: dict = {}
        out = []
        for env in _events():
            ctx = Context(now=env.occurred_at.astimezone(timezone.utc), settings=Settings())
            out += Detector().handle(state, env, ctx).tasks
        return out

    first, second = run(), run()
    assert first == second
    assert {t["task_id"] for t in first} == {"case:absence:V-1042:abs-7"}
