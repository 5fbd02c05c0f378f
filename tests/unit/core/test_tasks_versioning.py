"""Task versions and history (DESIGN 4.6, fine print 5.25) through services.core.tasks.put_task.

A version carries the history entry of its own change (one per version); ``fold`` puts the
versions together as the store and ``vpa replay`` show a task. Closed tasks leave the state as
tombstones (``retire``), which keep ids and versions going if the task is reopened."""
from datetime import datetime, timedelta, timezone

from schemas.task import TASK_FIELDS
from services.config.settings import Settings
from services.core.processor import Context
from services.core.tasks import fold, get_task, put_task, retire

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
    assert set(task) == set(TASK_FIELDS) - {"case_task_id"}  # a reminder's case, only when it has one
    assert task["stage"] is None


def test_task_is_kept_in_state_without_history_and_null_fields():
    state: dict = {}
    task = create(state)
    kept = get_task(state, TASK_ID)
    assert {k: v for k, v in task.items() if v is not None and k != "history"} == kept
    assert "history" not in kept and "due_at" not in kept


def test_unchanged_fields_give_no_new_version():
    state: dict = {}
    create(state)
    again = put_task(state, TASK_ID, dict(FIELDS), ctx(T2), "detector", "Fall aktualisiert")
    assert again is None
    stored = get_task(state, TASK_ID)
    assert stored["version"] == 1
    assert stored["updated_at"] == "2026-11-26T09:00:00+01:00"


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
    assert task["history"] == [{"at": "2026-11-27T14:30:15+01:00", "change": "Fall gelöst", "by": "CD"}]


def test_each_change_adds_one_version():
    state: dict = {}
    create(state)
    put_task(state, TASK_ID, {"priority": "high"}, ctx(T2), "detector", "a")
    put_task(state, TASK_ID, {"priority": "high"}, ctx(T2), "detector", "b")  # no change
    task = put_task(state, TASK_ID, {"assignee": "EF"}, ctx(T2), "reminders", "c")
    assert task["version"] == 3
    assert [h["change"] for h in task["history"]] == ["c"]


def test_returned_task_is_a_copy():
    state: dict = {}
    task = create(state)
    task["status"] = "done"
    task["reasons"].append("y")
    stored = get_task(state, TASK_ID)
    assert stored["status"] == "open"
    assert stored["reasons"] == ["long"]


def test_history_entries_have_exactly_at_change_by():
    state: dict = {}
    create(state)
    task = put_task(state, TASK_ID, {"status": "cancelled"}, ctx(T2), "detector", "abgebrochen")
    assert all(set(h) == {"at", "change", "by"} for h in task["history"])


# ---- history in the store: fold ---------------------------------------------------------------

def test_fold_puts_the_versions_history_together_in_order():
    state: dict = {}
    v1 = create(state)
    v2 = put_task(state, TASK_ID, {"priority": "high"}, ctx(T2), "detector", "a")
    v3 = put_task(state, TASK_ID, {"status": "done"}, ctx(T2), "CD", "b")
    folded = fold(fold(fold(None, v1), v2), v3)
    assert [h["change"] for h in folded["history"]] == ["Fall eröffnet", "a", "b"]
    assert {k: v for k, v in folded.items() if k != "history"} == {k: v for k, v in v3.items() if k != "history"}


def test_fold_ignores_repeated_and_older_versions():
    state: dict = {}
    v1 = create(state)
    v2 = put_task(state, TASK_ID, {"priority": "high"}, ctx(T2), "detector", "a")
    held = fold(fold(None, v1), v2)
    assert fold(held, v2) is held and fold(held, v1) is held


def test_fold_takes_a_version_with_its_whole_history_as_it_is():
    # Versions written before history left the state carried every entry (N for version N).
    whole = {"task_id": TASK_ID, "version": 2, "history": [{"at": "a", "change": "x", "by": "b"},
                                                           {"at": "c", "change": "y", "by": "d"}]}
    held = {"task_id": TASK_ID, "version": 1, "history": [{"at": "a", "change": "x", "by": "b"}]}
    assert fold(held, whole) == whole


# ---- closed tasks leave the state: retire -------------------------------------------------------

def test_a_closed_task_leaves_the_state_as_a_tombstone_and_reopens_with_the_next_version():
    state: dict = {}
    create(state)
    put_task(state, TASK_ID, {"status": "done"}, ctx(T2), "CD", "Fall gelöst")
    assert retire(state, ctx(T2)) == [TASK_ID]
    assert "tasks" not in state
    assert get_task(state, TASK_ID) == {"task_id": TASK_ID, "status": "done", "version": 2,
                                        "created_at": "2026-11-26T09:00:00+01:00", "closed": True}
    again = put_task(state, TASK_ID, dict(FIELDS), ctx(T2), "detector", "Fall erneut geöffnet")
    assert (again["version"], again["status"], again["created_at"]) == (3, "open", "2026-11-26T09:00:00+01:00")
    assert "closed" not in state and get_task(state, TASK_ID)["version"] == 3


def test_live_and_kept_tasks_stay_whole():
    state: dict = {}
    create(state)
    assert retire(state, ctx(T2)) == []
    put_task(state, TASK_ID, {"status": "done"}, ctx(T2), "CD", "Fall gelöst")
    assert retire(state, ctx(T2), keep=[TASK_ID]) == []
    assert state["tasks"][TASK_ID]["status"] == "done"


def test_a_tombstone_is_forgotten_after_the_retention():
    state: dict = {}
    create(state)
    put_task(state, TASK_ID, {"status": "cancelled"}, ctx(T2), "CD", "abgebrochen")
    retire(state, ctx(T2), reopens=lambda task_id: False)
    assert state["closed"][TASK_ID][:2] == [2, "c"] and len(state["closed"][TASK_ID]) == 3  # no created_at
    retire(state, Context(now=T2 + timedelta(days=3650), settings=Settings(task_retention_days=0)))
    assert get_task(state, TASK_ID) is not None  # 0: kept as long as the VPA's state
    days = Settings().task_retention_days
    assert days == 90  # the default (issue 11)
    later = lambda d: Context(now=T2 + timedelta(days=d), settings=Settings())  # noqa: E731
    retire(state, later(days))
    assert get_task(state, TASK_ID) is not None  # the last day of the retention
    state["offboarded"] = True
    retire(state, later(days + 1))
    assert get_task(state, TASK_ID) is not None  # kept for the erasure of an offboarded VPA
    state["offboarded"] = False
    retire(state, later(days + 1))
    assert get_task(state, TASK_ID) is None and "closed" not in state


# ---- tombstones: typed in the code, the same short lists in the state ------------------------

def test_a_tombstone_reads_and_writes_the_list_the_state_has_always_held():
    from services.core.tasks import Tombstone

    reopenable = [3, "d", 20420, "2025-11-28T09:00:00+01:00"]
    final = [1, "c", 20400]
    assert Tombstone.decode(reopenable) == Tombstone(3, "done", 20420, "2025-11-28T09:00:00+01:00")
    assert Tombstone.decode(final) == Tombstone(1, "cancelled", 20400)
    assert Tombstone.decode(reopenable).encode() == reopenable
    assert Tombstone.decode(final).encode() == final
    assert Tombstone.decode(final).view("case:x") == {"task_id": "case:x", "status": "cancelled", "version": 1,
                                                     "created_at": None, "closed": True}


def test_retire_reads_closed_on_where_a_tombstone_keeps_it():
    from services.core.tasks import _CLOSED_ON, Tombstone

    stone = Tombstone(3, "done", 20_400, "2025-11-02T09:00:00+01:00").encode()
    assert stone[_CLOSED_ON] == 20_400 == Tombstone.decode(stone).closed_on
