"""Task versions and history (DESIGN 4.6, fine print 5.25) through services.common.tasks.put_task."""
from datetime import datetime, timezone

from schemas.task import TASK_FIELDS
from services.common.processor import Context
from services.common.settings import Settings
from services.common.tasks import get_task, put_task

T1 = datetime(2026, 11, 26, 8, 0, 0, 500000, tzinfo=timezone.utc)  # 09:00:00 Berlin
T2 = datetime(2026, 11, 27, 13, 30, 15, tzinfo=timezone.utc)  # 14:30:15 Berlin
TASK_ID = "case:absence:V-1:abs-1"
FIELDS = {
    "tab": "cases", "kind": "absence", "vpa_id": "V-1", "vpa_name": "Anna", "status": "open",
    "priority": "normal", "reasons": ["long"], "title": "Abwesenheit", "action": "Klären",
    "owner": "AB", "assignee": "AB", "due_at": None, "message_draft": None,
}


def ctx(now: datetime) -> Context:
    return Context(now=now, settings=Settings())


def create(state: dict) -> dict:
    return put_task(state, TASK_ID, dict(FIELDS), ctx(T1), "detector", "Fall eröffnet")


def test_new_task_starts_at_version_1_with_one_history_entry():
    state: dict = {}
    task = create(state)
    assert task["version"] == 1
    assert task["task_id"] == TASK_ID
    assert task["created_at"] == task["updated_at"] == "2026-11-26T09:00:00+01:00"
    assert task["history"] == [{"at": "2026-11-26T09:00:00+01:00", "change": "Fall eröffnet", "by": "detector"}]


def test_new_task_has_every_task_field():
    task = create({})
    assert set(task) == set(TASK_FIELDS)
    assert task["stage"] is None


def test_task_is_kept_in_state():
    state: dict = {}
    task = create(state)
    assert get_task(state, TASK_ID) == task


def test_unchanged_fields_give_no_new_version():
    state: dict = {}
    create(state)
    again = put_task(state, TASK_ID, dict(FIELDS), ctx(T2), "detector", "Fall aktualisiert")
    assert again is None
    stored = get_task(state, TASK_ID)
    assert stored["version"] == 1
    assert stored["updated_at"] == "2026-11-26T09:00:00+01:00"
    assert len(stored["history"]) == 1


def test_only_bookkeeping_fields_give_no_new_version():
    state: dict = {}
    create(state)
    bookkeeping = {"updated_at": "2027-01-01T00:00:00+01:00", "history": [], "version": 99,
                   "created_at": "2020-01-01T00:00:00+01:00"}
    assert put_task(state, TASK_ID, bookkeeping, ctx(T2), "detector", "x") is None
    assert get_task(state, TASK_ID)["version"] == 1


def test_a_changed_field_bumps_the_version_and_appends_history():
    state: dict = {}
    create(state)
    task = put_task(state, TASK_ID, {"status": "done"}, ctx(T2), "CD", "Fall gelöst")
    assert task["version"] == 2
    assert task["status"] == "done"
    assert task["reasons"] == ["long"]  # fields not given stay as they were
    assert task["created_at"] == "2026-11-26T09:00:00+01:00"
    assert task["updated_at"] == "2026-11-27T14:30:15+01:00"
    assert task["history"] == [
        {"at": "2026-11-26T09:00:00+01:00", "change": "Fall eröffnet", "by": "detector"},
        {"at": "2026-11-27T14:30:15+01:00", "change": "Fall gelöst", "by": "CD"},
    ]


def test_each_change_adds_one_version():
    state: dict = {}
    create(state)
    put_task(state, TASK_ID, {"priority": "high"}, ctx(T2), "detector", "a")
    put_task(state, TASK_ID, {"priority": "high"}, ctx(T2), "detector", "b")  # no change
    task = put_task(state, TASK_ID, {"assignee": "EF"}, ctx(T2), "reminders", "c")
    assert task["version"] == 3
    assert [h["change"] for h in task["history"]] == ["Fall eröffnet", "a", "c"]


def test_returned_task_is_a_copy():
    state: dict = {}
    task = create(state)
    task["status"] = "done"
    task["history"].append({"at": "x", "change": "y", "by": "z"})
    stored = get_task(state, TASK_ID)
    assert stored["status"] == "open"
    assert len(stored["history"]) == 1


def test_history_entries_have_exactly_at_change_by():
    state: dict = {}
    create(state)
    task = put_task(state, TASK_ID, {"status": "cancelled"}, ctx(T2), "detector", "abgebrochen")
    assert all(set(h) == {"at", "change", "by"} for h in task["history"])
