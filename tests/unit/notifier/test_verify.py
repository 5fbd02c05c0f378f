"""`vpa verify` on plain data: every kind of drift, found per task, and none where there is none."""
from __future__ import annotations

import json

from services.notifier.verify import (
    COMPARED_FIELDS, DriftKind, Reference, TopicRead, build_report, compare, render,
)


def task(task_id: str = "case:absence:V-1:A", version: int = 1, **changes) -> dict:
    base = {"task_id": task_id, "tab": "cases", "kind": "absence", "stage": None, "vpa_id": "V-1",
            "vpa_name": "Nina Berg", "status": "open", "priority": "normal", "reasons": ["long", "frequent"],
            "title": "Abwesenheit", "action": "Ansprechen", "owner": "AB", "assignee": "AB", "due_at": None,
            "message_draft": None, "created_at": "2026-11-02T09:00:00+01:00",
            "updated_at": "2026-11-02T09:00:00+01:00", "version": version,
            "history": [{"at": "2026-11-02T09:00:00+01:00", "change": f"v{n}", "by": "system"}
                        for n in range(1, version + 1)]}
    base.update(changes)
    return base


def by_id(*tasks: dict) -> dict:
    return {t["task_id"]: t for t in tasks}


def test_equal_sides_have_no_drift_and_bookkeeping_fields_do_not_count():
    want = by_id(task(), task("reminder:r1", tab="reminders", kind="reminder"))
    got = by_id(task(updated_at="2026-11-03T10:00:00+01:00", history=[{"at": "x", "change": "y", "by": "z"}],
                     reasons=["frequent", "long"]),  # reasons compare as a set
                task("reminder:r1", tab="reminders", kind="reminder"))
    assert compare(Reference.replay, want, got) == []


def test_each_kind_of_drift_is_reported_for_its_task():
    want = by_id(task("a"), task("b", version=3), task("c", version=2), task("d"))
    got = by_id(task("b", version=2), task("c", version=4), task("d", status="done", assignee="CD"), task("e"))
    drift = compare(Reference.topic, want, got)
    assert [(d.task_id, d.kind) for d in drift] == [
        ("a", DriftKind.missing), ("b", DriftKind.older), ("c", DriftKind.newer), ("d", DriftKind.fields),
        ("e", DriftKind.extra)]
    assert "status: store 'done', topic 'open'" in drift[3].detail
    assert "assignee: store 'CD', topic 'AB'" in drift[3].detail


def test_without_versions_only_the_compared_fields_count():
    want, got = by_id(task(version=1)), by_id(task(version=5))
    assert compare(Reference.replay, want, got, versions=False) == []
    assert [d.kind for d in compare(Reference.replay, want, got)] == [DriftKind.newer]


def test_every_compared_field_is_one_the_at_sees():
    assert set(COMPARED_FIELDS) <= set(task())
    assert not {"history", "updated_at", "created_at", "version"} & set(COMPARED_FIELDS)


def test_the_topic_reference_is_the_highest_version_the_notifier_can_store():
    read = TopicRead()
    for value in (json.dumps(task(version=2)).encode(), json.dumps(task(version=1)).encode(), None,
                  b"not json", json.dumps(task(version=3, title="a\u0000b")).encode(),
                  json.dumps(task(version=2)).encode()):
        read.take(value)
    assert (read.records, read.tombstones, read.refused, read.repeated) == (6, 1, 2, 1)
    assert read.latest["case:absence:V-1:A"]["version"] == 2


def test_tombstones_and_erase_markers_delete_as_the_notifier_does():
    from services.broker.topics import erase_marker

    read = TopicRead()
    a, b = task("a"), task("b")
    other = {**task("c"), "vpa_id": "V-2"}
    for t, stamp in ((a, 1), (b, 1), (other, 1)):
        read.take(json.dumps(t).encode(), t["task_id"].encode(), stamp)
    read.take(None, b"a", 2)  # a tombstone: the task of the key is gone
    read.take(erase_marker(b["vpa_id"])[1], erase_marker(b["vpa_id"])[0], 3)
    later = {**task("d"), "vpa_id": b["vpa_id"]}  # a version written after the erasure stays
    read.take(json.dumps(later).encode(), b"d", 4)
    read.finish()
    assert set(read.latest) == {"c", "d"}
    assert (read.tombstones, read.erasures) == (1, 1)


def test_the_report_counts_drift_per_reference_and_renders_as_text_and_json():
    topic = TopicRead(latest=by_id(task("a"), task("b")), records=2)
    report = build_report([task("a")], topic, replay=[task("a", status="done"), task("b")])
    assert not report.ok
    assert report.counts() == {"topic": {"missing": 1}, "replay": {"fields": 1, "missing": 1}}
    doc = json.loads(render(report, as_json=True))
    assert doc["ok"] is False and doc["store"] == {"tasks": 1} and doc["replay"]["tasks"] == 2
    assert {(d["reference"], d["task_id"], d["kind"]) for d in doc["drift"]} == {
        ("topic", "b", "missing"), ("replay", "a", "fields"), ("replay", "b", "missing")}
    text = render(report, as_json=False)
    assert "drift in 2 tasks" in text and "replay fields  a: status: store 'open', replay 'done'" in text
    clean = build_report([task("a")], TopicRead(latest=by_id(task("a")), records=1), replay=None)
    assert clean.ok and "no drift" in render(clean, as_json=False)


def test_a_task_whose_history_lacks_an_entry_is_reported():
    """Issue 27: a version that reached the store without its history entry (or never) shows."""
    whole, gap = task("a", version=3), task("b", version=6)
    del gap["history"][4]
    topic = TopicRead(latest=by_id(whole, gap), records=2)
    report = build_report([whole, gap], topic, replay=None)
    assert [(d.reference, d.kind, d.task_id) for d in report.drift] == [(Reference.store, DriftKind.history, "b")]
    assert "version 6 with 5 history entries" in report.drift[0].detail
