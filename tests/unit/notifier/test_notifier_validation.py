"""What the notifier lets into PostgreSQL (issue 9): a task version the store would refuse goes to
the DLQ with its reason instead of being retried for ever."""
from __future__ import annotations

import json

import pytest

from schemas.dead_letters import DlqKind
from services.engine.decode import Invalid
from services.notifier.validation import parse_task

TASK = {"task_id": "case:absence:V-1:A", "tab": "cases", "kind": "absence", "stage": None, "vpa_id": "V-1",
        "vpa_name": "Anna", "status": "open", "priority": "normal", "reasons": ["long"], "title": "t", "action": "a",
        "owner": "AB", "assignee": "AB", "due_at": None, "message_draft": None,
        "created_at": "2026-11-26T09:00:00+01:00", "updated_at": "2026-11-26T09:00:00+01:00", "version": 1,
        "history": [{"at": "2026-11-26T09:00:00+01:00", "change": "eröffnet", "by": "detector"}]}


def reason(**changes) -> str:
    out = parse_task(json.dumps({**TASK, **changes}).encode())
    assert isinstance(out, Invalid), out
    return out.reason


def test_a_valid_version_passes():
    assert parse_task(json.dumps(TASK).encode())["task_id"] == TASK["task_id"]


@pytest.mark.parametrize("value", [None, b""])
def test_a_tombstone_is_refused(value):
    assert "empty" in parse_task(value).reason


def test_u0000_is_refused_wherever_it_is():
    assert "U+0000" in reason(title="Ab\u0000wesenheit")
    assert "U+0000" in reason(history=[{**TASK["history"][0], "change": "x\u0000"}])


@pytest.mark.parametrize("version", [0, 2**31])
def test_a_version_outside_the_column_is_refused(version):
    assert "version" in reason(version=version)


@pytest.mark.parametrize("field", ["created_at", "updated_at", "due_at"])
def test_a_datetime_outside_the_years_is_refused(field):
    assert "outside" in reason(**{field: "9999-01-01T00:00:00+00:00"})


def test_not_json_and_not_a_task():
    assert parse_task(b"\xff").kind is DlqKind.undecodable
    assert parse_task(b'{"task_id": 1}').reason.startswith("invalid: task ")


def test_latency_is_observed_from_the_headers_a_stream_service_sends():
    from types import SimpleNamespace

    from services.ops import metrics
    from services.notifier.service import observe_latency

    def count(source: str) -> float:
        return metrics.END_TO_END_LATENCY.labels(source)._sum.get()

    before = count("occurred_at"), count("ingested")
    event = SimpleNamespace(headers=[("occurred_at_ms", b"1000000"), ("ingested_at_ms", b"1500000")],
                            message=SimpleNamespace(headers=None))
    observe_latency([event], committed=2000.0)
    assert count("occurred_at") - before[0] == 1000.0
    assert count("ingested") - before[1] == 500.0
    observe_latency([SimpleNamespace(headers=None, message=SimpleNamespace(headers=None))], committed=2000.0)
    assert count("occurred_at") - before[0] == 1000.0  # no headers: nothing observed
