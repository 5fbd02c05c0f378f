"""The notifier's compiled check (issue 22, point 4) only ever accepts what the full check accepts:
a differential test over every golden task and over versions broken one field (or two) at a time."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from schemas.task import TASK_FIELDS
from services.notifier.fast_check import accepts
from services.notifier.validation import parse_task

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "scenarios"
TASK = {"task_id": "case:absence:V-1:A", "tab": "cases", "kind": "absence", "stage": None, "vpa_id": "V-1",
        "vpa_name": "Anna", "status": "open", "priority": "normal", "reasons": ["long"], "title": "t", "action": "a",
        "owner": "AB", "assignee": "AB", "due_at": None, "message_draft": None,
        "created_at": "2026-11-26T09:00:00+01:00", "updated_at": "2026-11-26T09:00:00+01:00", "version": 1,
        "history": [{"at": "2026-11-26T09:00:00+01:00", "change": "eröffnet", "by": "detector"}],
        "evidence": [{"code": "long", "text": "22 Tage", "event_id": "e-1"}], "case_task_id": None}

# What a producer might put in any field: right and wrong types, edge datetimes and numbers.
ODD_VALUES = [
    None, 0, 1, -1, 2**31 - 1, 2**31, 1.0, 1.5, True, False, "", "x", "1", "\u0000", "a\\u0000", [], {}, ["x"], [1],
    "cases", "reminders", "absence", "reminder", "open", "waiting", "done", "high", "low", "NEW_0_3", "nope",
    "2026-11-26T09:00:00+01:00", "2026-11-26T09:00:00Z", "2026-11-26t09:00:00z", "2026-11-26 09:00:00+01:00",
    "2026-11-26T09:00:00", "2026-11-26", "2026-11-26T09:00+01:00", "2026-11-26T09:00:00.123456+01:00",
    "2026-11-26T09:00:00.1234567+01:00", "2026-11-26T09:00:00-00:00", "2026-11-26T09:00:00+24:00",
    "2026-02-30T09:00:00+01:00", "2026-11-26T24:00:00+01:00", "2026-11-26T23:59:60+00:00",
    "1899-12-31T23:59:59+00:00", "1900-01-01T00:00:00+00:00", "2999-12-31T23:59:59+00:00",
    "3000-01-01T00:00:00+00:00", "0001-01-01T00:00:00+00:00", "+2026-11-26T09:00:00+01:00", 1764144000,
    [{"at": "2026-11-26T09:00:00+01:00", "change": "c", "by": "b"}],
    [{"at": "2026-11-26T09:00:00", "change": "c", "by": "b"}],
    [{"at": "2026-11-26T09:00:00+01:00", "change": "c"}],
    [{"at": "3000-01-01T00:00:00+00:00", "change": "c", "by": "b"}],
    [{"at": "2026-11-26T09:00:00+01:00", "change": "c", "by": "b", "extra": 1}],
    [{"code": "c", "text": "t"}], [{"code": "c", "text": "t", "event_id": None}], [{"code": "c"}],
    [{"code": "c", "text": "t", "event_id": 5}],
]


def full_accepts(raw: bytes) -> bool:
    return isinstance(parse_task(raw), dict)


def golden_tasks() -> list[dict]:
    return [task for path in sorted(GOLDEN.glob("*.json")) for task in json.loads(path.read_text("utf-8"))]


def test_every_golden_task_passes_the_compiled_check():
    """Valid versions take the fast path (otherwise the check would only add cost)."""
    tasks = golden_tasks()
    assert len(tasks) > 50
    for task in tasks:
        raw = json.dumps(task, ensure_ascii=False).encode()
        assert full_accepts(raw), task["task_id"]
        assert accepts(raw), task["task_id"]
    assert accepts(json.dumps(TASK).encode())


@pytest.mark.parametrize("field", [*TASK_FIELDS, "unknown_key"])
def test_one_field_changed_never_passes_what_the_full_check_refuses(field):
    for value in [*ODD_VALUES, "<missing>"]:
        task = dict(TASK)
        if value == "<missing>":
            task.pop(field, None)
        else:
            task[field] = value
        raw = json.dumps(task, ensure_ascii=False).encode()
        assert not accepts(raw) or full_accepts(raw), (field, value)


def test_two_fields_changed_at_random():
    rng = random.Random(22)
    fields = [*TASK_FIELDS, "unknown_key"]
    for _ in range(3000):
        task = dict(TASK)
        for field in rng.sample(fields, 2):
            task[field] = rng.choice(ODD_VALUES)
        raw = json.dumps(task, ensure_ascii=rng.random() < 0.5).encode()
        assert not accepts(raw) or full_accepts(raw), raw


@pytest.mark.parametrize("raw", [
    # a key twice: JSON parsers keep the last one, and so must both checks agree
    json.dumps(TASK)[:-1].encode() + b', "version": 0}',
    json.dumps(TASK)[:-1].encode() + b', "version": 2}',
    json.dumps({**TASK, "version": 0})[:-1].encode() + b', "version": 1}',
    json.dumps(TASK)[:-1].encode() + b', "tab": "nope"}',
    json.dumps(TASK).replace('"t"', '"\\ud800"').encode(),  # a lone surrogate
    json.dumps(TASK).replace('"t"', '"\xff"').encode("latin-1"),  # not UTF-8
    json.dumps(TASK).replace('"t"', '"a\x01b"').encode(),  # a raw control character
    json.dumps(TASK).replace(' "version": 1', ' "version": 1e0').encode(),
    json.dumps(TASK).replace(' "version": 1', ' "version": NaN').encode(),
    json.dumps(TASK).encode() + b" ",
    json.dumps(TASK).encode() + b" x",
    json.dumps([TASK]).encode(),
    b"null", b"", b"{}",
])
def test_odd_json_never_passes_what_the_full_check_refuses(raw):
    assert not accepts(raw) or full_accepts(raw)
