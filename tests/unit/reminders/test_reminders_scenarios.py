"""Reminder scenarios through the embedded pipeline in stream time (``vpa replay``), DESIGN 2.2 / 5.7-5.14.

Each file under tests/scenarios/reminders/ is self-contained (own roster members, VPAs, ids) and
ends with a final ``clock.tick`` after its last timer, so the same files can run through the Kafka
runner and be compared.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from schemas.task import Task
from services.app.entrypoints import replay
from services.config.settings import Settings
from services.core.ids import rendezvous_pick
from services.core.timeutil import parse
from services.runners.embedded.replay import final_tasks

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "reminders"
FILES = sorted(DIR.glob("*.jsonl"))


def run(name: str):
    runner = replay([str(DIR / name)], Settings(), keep_versions=True)
    versions = [t for t in runner.drain_tasks() if t["tab"] == "reminders"]
    final = {t["task_id"]: t for t in final_tasks(versions)}
    return runner, versions, final


def rejections(runner) -> list[str]:
    return [r.reason for r in runner.dlq if r.service == "reminders"]


def states(versions, task_id) -> list[tuple]:
    return [(v["status"], v["assignee"], v["reasons"]) for v in versions if v["task_id"] == task_id]


# ---- the files themselves -------------------------------------------------------------------

def test_there_are_scenario_files():
    assert len(FILES) >= 7


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_files_are_self_contained_sorted_and_end_with_a_final_tick(path):
    lines = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    assert len(lines) <= 60
    times = [parse(l["occurred_at"]) for l in lines]
    assert times == sorted(times)
    assert lines[-1]["type"] == "clock.tick" and lines[-1]["event_id"].endswith("-final-tick")
    stem = path.stem
    for l in lines:
        assert l["event_id"].startswith(stem + "-")
        if l["type"].startswith("cmd."):
            assert l["actor"] is not None
        rid = l["data"].get("reminder_id")
        if rid:
            assert rid.startswith(stem + "-") or rid.startswith("follow-up:")


def test_ids_are_unique_across_files():
    seen: Counter = Counter()
    vpas: dict[str, set] = {}
    for path in FILES:
        for l in path.read_text(encoding="utf-8").splitlines():
            env = json.loads(l)
            seen[env["event_id"]] += 1
            if env.get("vpa_id"):
                vpas.setdefault(env["vpa_id"], set()).add(path.name)
    assert [e for e, n in seen.items() if n > 1] == []
    assert {v: f for v, f in vpas.items() if len(f) > 1} == {}


def test_roster_initials_are_disjoint_across_files():
    """The roster is global: files that share members could change each other's handovers."""
    owners: dict[str, set] = {}
    for path in FILES:
        for l in path.read_text(encoding="utf-8").splitlines():
            env = json.loads(l)
            if env["type"].startswith("roster."):
                owners.setdefault(env["data"]["initials"], set()).add(path.name)
    assert {i: f for i, f in owners.items() if len(f) > 1} == {}


def test_all_files_together_give_the_same_reminders_as_each_alone():
    together = replay([str(p) for p in FILES], Settings())
    combined = {t["task_id"]: t for t in final_tasks(together.drain_tasks()) if t["tab"] == "reminders"}
    alone: dict = {}
    for p in FILES:
        alone.update(run(p.name)[2])
    strip = lambda t: {k: v for k, v in t.items() if k not in ("history", "updated_at", "version")}
    assert {k: strip(v) for k, v in combined.items()} == {k: strip(v) for k, v in alone.items()}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_reminder_version_matches_the_contract(path):
    _, versions, _ = run(path.name)
    for v in versions:
        Task.model_validate(v)
        assert ("handover" in v["reasons"]) == (v["assignee"] != v["owner"])


# ---- Done when (issue 4) ------------------------------------------------------------------------

def test_reminder_for_unknown_initials_never_appears_waiting_or_open():
    runner, versions, final = run("unknown_owner.jsonl")
    assert not [v for v in versions if v["owner"] in ("ZZ", "UG")]
    assert set(final) == {"reminder:unknown_owner-r4"}
    assert final["reminder:unknown_owner-r4"]["status"] == "open"
    assert rejections(runner) == [
        "rejected: ZZ ist nicht im AT-Dienstplan",
        "rejected: ZZ ist nicht im AT-Dienstplan",
        "rejected: UG ist kein aktives Mitglied des AT-Dienstplans",
        "rejected: Reminder unknown_owner-r1 von V-UNK-1 ist unbekannt",
        "rejected: Reminder unknown_owner-r1 von V-UNK-1 ist unbekannt",
        "rejected: ZZ ist nicht im AT-Dienstplan",  # known only through an absence: still unknown
    ]


def test_owner_on_vacation_deputy_gets_it_open_and_it_returns_when_the_absence_ends():
    _, versions, final = run("vacation_handover.jsonl")
    tid = "reminder:vacation_handover-r1"
    assert states(versions, tid) == [
        ("waiting", "VA", []),  # set two days before the vacation: no effect yet
        ("waiting", "VB", ["handover"]),  # 9 Dec 00:00, the vacation's first day
        ("open", "VB", ["handover"]),  # due during the vacation: open for the deputy
        ("open", "VA", []),  # 11 Dec 00:00, the day after ends_on
    ]
    t = final[tid]
    assert (t["owner"], t["assignee"], t["status"], t["vpa_name"]) == ("VA", "VA", "open", "Vera Lang")
    assert [(h["at"], h["change"], h["by"]) for h in t["history"][1:]] == [
        ("2026-12-09T00:00:00+01:00", "Übergabe an VB: VA ist abwesend (Tageswechsel)", "reminders"),
        ("2026-12-09T11:00:00+01:00", "Reminder fällig", "reminders"),
        ("2026-12-11T00:00:00+01:00", "Zurück bei VA (Tageswechsel)", "reminders"),
    ]


def test_open_ended_sick_owner_back_early():
    _, versions, final = run("vacation_handover.jsonl")
    tid = "reminder:vacation_handover-r2"
    assert states(versions, tid) == [
        ("waiting", "VB", ["handover"]), ("open", "VB", ["handover"]), ("open", "VD", [])]
    assert final[tid]["history"][0]["by"] == "VB"
    assert final[tid]["history"][-1] == {"at": "2026-12-09T08:00:00+01:00", "change": "Zurück bei VD (Dienstplan geändert)",
                                         "by": "reminders"}


def test_completion_without_file_updated_leaves_it_open():
    runner, _, final = run("complete_file.jsonl")
    assert final["reminder:complete_file-r1"]["status"] == "open"
    assert final["reminder:complete_file-r2"]["status"] == "done"
    reasons = rejections(runner)
    assert len(reasons) == 3 and all(r.startswith("rejected: ") for r in reasons)
    assert sum("file_updated: true" in r for r in reasons) == 2
    assert "bereits erledigt" in reasons[2]


def test_completion_does_not_resolve_the_linked_case():
    runner = replay([str(DIR / "complete_file.jsonl")], Settings())
    cases = [t for t in final_tasks(runner.drain_tasks()) if t["tab"] == "cases"]
    assert [(c["task_id"], c["status"]) for c in cases] == [("case:absence:V-CF-1:complete_file-a1", "open")]


# ---- the other rules ------------------------------------------------------------------------------

def test_a_resolve_with_the_file_maintained_completes_its_reminders_and_nothing_else():
    """DESIGN 5.13a: the person resolves the case with "VPA-Akte gepflegt"."""
    runner, _, final = run("follow_up_resolve.jsonl")
    case = "case:inactive:V-FU-1:follow_up_resolve-e1"
    assert {k: v["status"] for k, v in final.items()} == {
        f"reminder:follow-up:{case}": "done",  # still waiting when resolved; its timer never fires
        "reminder:follow_up_resolve-r2": "done",  # already open
        "reminder:follow_up_resolve-r3": "open",  # not linked
    }
    assert rejections(runner) == []  # the detector owns cases; reminders never reject a resolve
    sys_set = final[f"reminder:follow-up:{case}"]
    assert sys_set["history"][0]["by"] == "SYS" and sys_set["history"][-1]["by"] == "FA"


def test_offboarding_cancels_and_blocks_until_registered_again():
    runner, _, final = run("offboarded.jsonl")
    assert {k: v["status"] for k, v in final.items()} == {
        "reminder:offboarded-r1": "cancelled", "reminder:offboarded-r2": "cancelled",
        "reminder:offboarded-r4": "open"}
    assert final["reminder:offboarded-r4"]["vpa_name"] == "Otto Brandt-Neu"
    assert final["reminder:offboarded-r1"]["vpa_name"] == "Otto Brandt"  # ignored while offboarded
    assert rejections(runner) == ["rejected: VPA V-OFF-1 ist ausgeschieden: keine neuen Reminder für ihn",
                                  "rejected: Reminder offboarded-r1 ist bereits abgebrochen"]


def test_reschedule_future_waits_past_opens_and_name_arrives_late():
    runner, versions, final = run("reschedule.jsonl")
    r1, r2 = final["reminder:reschedule-r1"], final["reminder:reschedule-r2"]
    assert [v["status"] for v in versions if v["task_id"] == r1["task_id"]] == [
        "waiting", "waiting", "open", "waiting", "open"]
    assert (r1["status"], r1["due_at"]) == ("open", "2026-12-08T09:00:00+01:00")
    assert (r2["status"], r2["due_at"]) == ("open", "2026-12-07T08:00:00+01:00")
    assert r1["vpa_name"] == r2["vpa_name"] == "Rita Vogel"  # set before vpa.registered
    assert rejections(runner) == ["rejected: Reminder reschedule-r9 von V-RS-1 ist unbekannt",
                                  "rejected: Reminder reschedule-r1 für V-RS-1 gibt es bereits"]


def test_rendezvous_nobody_available_and_back():
    _, versions, final = run("rendezvous.jsonl")
    tid = "reminder:rendezvous-r1"
    first = rendezvous_pick("rendezvous-r1", ["ZC", "ZD"])  # ZA sick, deputy ZB on vacation, ZM not role at
    expected = [("waiting", first, ["handover"])]
    if first == "ZC":
        expected.append(("waiting", "ZD", ["handover"]))  # ZC deactivated at 12:00
    expected += [
        ("waiting", "ZA", ["handover_unavailable"]),  # ZD away today too: nobody left
        ("waiting", "ZD", ["handover"]),  # 8 Dec 00:00: ZD's one-day vacation is over
        ("open", "ZD", ["handover"]),  # due, re-evaluated, unchanged
        ("open", "ZA", []),  # roster.absence_ended: the open-ended sick note ends
    ]
    assert states(versions, tid) == expected
    assert final[tid]["history"][0]["by"] == "ZM"
