"""Journey scenarios (tests/scenarios/journey/*.jsonl) through the embedded pipeline in stream time.

Each file is self-contained (own roster, registrations, `clock.tick`s up to a final tick) and is
also run through the Kafka runner by tests/integration/test_scenarios_kafka.py. Only the Journey
tab is checked here; other services may add cases for the same events.
"""
import json
from pathlib import Path

import pytest

from schemas.task import Task
from services.app.entrypoints import replay
from services.config.settings import Settings
from services.core.timeutil import parse
from services.runners.embedded.replay import final_tasks

DIR = Path(__file__).resolve().parents[2] / "scenarios" / "journey"
FIELDS = ("status", "owner", "assignee", "reasons", "created_at")


def run(name: str):
    runner = replay([str(DIR / f"{name}.jsonl")], Settings())
    assert (runner.stats["invalid"], runner.stats["unknown_types"], runner.stats["duplicates"]) == (0, 0, 0)
    tasks = {t["task_id"]: t for t in final_tasks(runner.drain_tasks()) if t["tab"] == "journey"}
    rejections = [r.reason for r in runner.dlq]
    return tasks, rejections


def summary(tasks: dict) -> dict:
    return {tid: (*(t[f] for f in FIELDS), t["history"][-1]["by"]) for tid, t in tasks.items()}


def test_every_scenario_file_is_self_contained_and_sorted():
    files = sorted(DIR.glob("*.jsonl"))
    assert len(files) >= 4
    seen_ids: set[str] = set()
    seen_vpas: set[str] = set()
    for f in files:
        lines = [json.loads(l) for l in f.read_text(encoding="utf-8").splitlines() if l.strip()]
        assert len(lines) <= 80, f
        ids = [l["event_id"] for l in lines]
        assert not seen_ids & set(ids), f
        seen_ids |= set(ids)
        assert all(i.startswith(f"jrn-{f.stem}-") for i in ids), f
        vpa_ids = {l["vpa_id"] for l in lines if l.get("vpa_id")}
        assert not seen_vpas & vpa_ids, f
        seen_vpas |= vpa_ids
        assert lines[-1]["type"] == "clock.tick", f
        times = [parse(l["occurred_at"]) for l in lines]
        assert times == sorted(times), f


def test_first_year_opens_the_five_stages_on_their_dates_and_clears_them_only_as_the_table_says():
    tasks, rejections = run("first_year")
    # V-JFY-1 registered on its first day (31 Jan 2026, 09:00; month ends clamp: 30 Apr, 31 Jul, 31 Oct,
    # 31 Jan); V-JFY-2 registered the day before, so even its NEW_0_3 opens at the 06:00 sweep.
    assert summary(tasks) == {
        "journey:V-JFY-1:NEW_0_3": ("done", "FYA", "FYA", [], "2026-01-31T09:00:00+01:00", "journey"),
        "journey:V-JFY-1:NEW_3_6": ("done", "FYA", "FYB", [], "2026-04-30T06:00:00+02:00", "journey"),
        "journey:V-JFY-1:NEW_6_9": ("done", "FYA", "FYA", ["measures_needed"], "2026-07-31T06:00:00+02:00", "FYA"),
        "journey:V-JFY-1:NEW_9_12": ("done", "FYA", "FYA", ["class_ok"], "2026-10-31T06:00:00+01:00", "SYS"),
        "journey:V-JFY-1:NEW_GT_12": ("done", "FYA", "FYM", [], "2027-01-31T06:00:00+01:00", "FYM"),
        "journey:V-JFY-2:NEW_0_3": ("open", "FYA", "FYA", [], "2026-01-31T06:00:00+01:00", "journey"),
        "journey:V-JFY-2:NEW_3_6": ("open", "FYA", "FYA", [], "2026-04-30T06:00:00+02:00", "journey"),
        "journey:V-JFY-2:NEW_6_9": ("open", "FYA", "FYA", ["class_unknown"], "2026-07-31T06:00:00+02:00", "journey"),
        "journey:V-JFY-2:NEW_9_12": ("open", "FYA", "FYA", ["class_unknown"], "2026-10-31T06:00:00+01:00", "journey"),
        "journey:V-JFY-2:NEW_GT_12": ("open", "FYA", "FYM", [], "2027-01-31T06:00:00+01:00", "journey"),
    }
    fy1 = {t["stage"]: t for t in tasks.values() if t["vpa_id"] == "V-JFY-1"}
    # Each cleared exactly once, by the event or command the table names, at that moment.
    assert [(s, t["version"], t["updated_at"]) for s, t in fy1.items()] == [
        ("NEW_0_3", 2, "2026-03-10T11:00:00+01:00"),      # vpa.onboarding_call_completed
        ("NEW_3_6", 2, "2026-05-06T10:00:00+02:00"),      # vpa.checkin_call_scheduled (the early one did nothing)
        ("NEW_6_9", 2, "2026-08-04T14:00:00+02:00"),      # cmd.journey.clear by role at
        ("NEW_9_12", 3, "2026-11-04T14:00:00+01:00"),     # class change C -> B (v2), then clear by the system
        ("NEW_GT_12", 2, "2027-02-02T14:00:00+01:00"),    # cmd.journey.clear by the VPA Manager
    ]
    assert rejections == [
        "rejected: kein offener Journey-Schritt NEW_9_12 für V-JFY-1",
        "rejected: nur ein VPA Manager darf NEW_GT_12 von V-JFY-1 entfernen; FYA ist AT-Mitglied",
        "rejected: nur ein VPA Manager darf NEW_GT_12 von V-JFY-1 entfernen; SYS ist System",
    ]
    assert all(t["tab"] == "journey" and t["kind"] == "journey" and t["priority"] == "normal" for t in tasks.values())
    assert all(t["stage"] == t["task_id"].rsplit(":", 1)[1] for t in tasks.values())


def test_mid_stage_registrations_future_starts_and_leap_day_boundaries():
    tasks, rejections = run("mid_stage_and_leap")
    assert rejections == []
    assert summary(tasks) == {
        # day 0 of NEW_0_3; NEW_3_6 on 29 February 2028 (30 Nov + 3 months in a leap year)
        "journey:V-JMS-1:NEW_0_3": ("open", "MSA", "MSA", [], "2027-11-30T10:00:00+01:00", "journey"),
        "journey:V-JMS-1:NEW_3_6": ("open", "MSA", "MSA", [], "2028-02-29T06:00:00+01:00", "journey"),
        # day 29 of NEW_3_6: opens at registration; NEW_6_9 on its first day
        "journey:V-JMS-2:NEW_3_6": ("open", "MSA", "MSA", [], "2027-11-30T10:00:00+01:00", "journey"),
        "journey:V-JMS-2:NEW_6_9": ("open", "MSA", "MSA", ["class_ok"], "2028-02-01T06:00:00+01:00", "journey"),
        # day 30 and day 31 of NEW_3_6: nothing until NEW_6_9 begins
        "journey:V-JMS-3:NEW_6_9": ("open", "MSA", "MSA", ["class_unknown"], "2028-01-31T06:00:00+01:00", "journey"),
        "journey:V-JMS-4:NEW_6_9": ("open", "MSA", "MSA", ["class_unknown"], "2028-01-30T06:00:00+01:00", "journey"),
        # started_on ahead: nothing until 06:00 on started_on
        "journey:V-JMS-5:NEW_0_3": ("open", "MSA", "MSA", [], "2027-12-15T06:00:00+01:00", "journey"),
        # V-JMS-6 (NEW_GT_12, day 60) gets nothing. V-JMS-7: class unknown, then D while open.
        "journey:V-JMS-7:NEW_9_12": ("open", "MSA", "MSA", ["measures_needed"], "2027-12-10T06:00:00+01:00", "journey"),
        # day 0 of NEW_6_9 (31 May + 6 months = 30 Nov); NEW_9_12 on 29 February (clamped)
        "journey:V-JMS-8:NEW_6_9": ("open", "MSA", "MSA", ["class_ok"], "2027-11-30T10:00:00+01:00", "journey"),
        "journey:V-JMS-8:NEW_9_12": ("open", "MSA", "MSA", ["class_ok"], "2028-02-29T06:00:00+01:00", "journey"),
    }
    assert tasks["journey:V-JMS-7:NEW_9_12"]["version"] == 2


def test_new_gt_12_follows_the_available_vpa_managers_and_falls_back_to_the_at_owner():
    tasks, rejections = run("gt12_managers")
    gm1, gm2 = tasks["journey:V-JGM-1:NEW_GT_12"], tasks["journey:V-JGM-2:NEW_GT_12"]
    # rendezvous on the vpa_id: V-JGM-1 -> GMX, V-JGM-2 -> GMY while both are available
    assert [(h["at"], h["change"], h["by"]) for h in gm1["history"]] == [
        ("2026-03-02T09:00:00+01:00", "Journey-Schritt eröffnet", "journey"),                   # GMX
        ("2026-03-16T00:00:00+01:00", "VPA Manager neu zugeteilt: GMY", "journey"),            # GMX on vacation
        ("2026-03-20T09:00:00+01:00", "Kein VPA Manager verfügbar: zugewiesen an GMA", "journey"),  # GMY inactive
        ("2026-03-23T10:00:00+01:00", "AT-Zuständigkeit an GMB (vorher GMA); Zugewiesen an GMB (vorher GMA)",
         "journey"),                                                                            # at_owner changed
        ("2026-03-28T00:00:00+01:00", "VPA Manager neu zugeteilt: GMX", "journey"),            # GMX back
        ("2026-03-31T10:00:00+02:00", "Flag entfernt: Assistentin kontaktiert", "GMX"),
    ]
    assert (gm1["status"], gm1["owner"], gm1["assignee"], gm1["reasons"]) == ("done", "GMB", "GMX", [])
    assert [h["change"] for h in gm2["history"]] == [
        "Journey-Schritt eröffnet", "Kein VPA Manager verfügbar: zugewiesen an GMA", "VPA Manager neu zugeteilt: GMX"]
    assert (gm2["status"], gm2["assignee"], gm2["created_at"], gm2["reasons"]) == (
        "open", "GMX", "2026-03-10T06:00:00+01:00", [])
    assert rejections == ["rejected: nur ein VPA Manager darf NEW_GT_12 von V-JGM-1 entfernen; GMA ist AT-Mitglied"]


def test_profile_changes_class_changes_and_offboarding():
    tasks, rejections = run("profile_and_offboarding")
    assert summary(tasks) == {
        "journey:V-JPO-1:NEW_0_3": ("cancelled", "POC", "POC", [], "2026-03-01T09:00:00+01:00", "journey"),
        "journey:V-JPO-1:NEW_3_6": ("cancelled", "POC", "POC", [], "2026-06-01T06:00:00+02:00", "journey"),
        "journey:V-JPO-2:NEW_6_9": ("done", "POA", "POA", ["measures_needed"], "2026-06-01T09:00:00+02:00", "POA"),
        "journey:V-JPO-2:NEW_9_12": ("open", "POA", "POA", ["class_ok"], "2026-09-01T06:00:00+02:00", "journey"),
    }
    # The name change before offboarding reached the open task; the one after it was ignored.
    assert tasks["journey:V-JPO-1:NEW_0_3"]["vpa_name"] == "Mia Roth-Klein"
    # NEW_3_6 went to the buddy, moved with the owner only when the buddy was removed.
    assert [h["change"] for h in tasks["journey:V-JPO-1:NEW_3_6"]["history"]] == [
        "Journey-Schritt eröffnet", "AT-Zuständigkeit an POC (vorher POA)", "Zugewiesen an POC (vorher POB)",
        "VPA ausgeschieden, Aufgabe abgebrochen"]
    # A→C changed the reason; C→D did not (still measures_needed); B after the clear changed nothing.
    assert tasks["journey:V-JPO-2:NEW_6_9"]["version"] == 3
    assert rejections == ["rejected: kein offener Journey-Schritt NEW_0_3 für V-JPO-1 (er ist abgebrochen)"]


@pytest.mark.parametrize("name", sorted(p.stem for p in DIR.glob("*.jsonl")))
def test_replaying_a_scenario_twice_gives_the_same_tasks(name):
    first = final_tasks(replay([str(DIR / f"{name}.jsonl")], Settings()).drain_tasks())
    second = final_tasks(replay([str(DIR / f"{name}.jsonl")], Settings()).drain_tasks())
    assert first == second


@pytest.mark.parametrize("name", sorted(p.stem for p in DIR.glob("*.jsonl")))
def test_every_journey_task_version_matches_the_contract(name):
    versions = [t for t in replay([str(DIR / f"{name}.jsonl")], Settings(), keep_versions=True).drain_tasks() if t["tab"] == "journey"]
    assert versions
    for t in versions:
        Task.model_validate(t)
        assert "handover" not in t["reasons"] and "handover_unavailable" not in t["reasons"]


def test_all_files_together_give_the_same_journey_tasks_as_each_alone():
    # Except NEW_GT_12: its VPA Manager comes from the one global roster, which then holds every
    # file's managers (rendezvous hashing over more candidates may pick another one).
    files = sorted(str(p) for p in DIR.glob("*.jsonl"))
    # Together the files span years: no erasure of offboarded VPAs, so the outputs compare.
    keep = Settings(erase_after_days=36500)
    together = {t["task_id"]: t for t in final_tasks(replay(files, keep).drain_tasks()) if t["tab"] == "journey"}
    alone = {}
    for f in files:
        alone.update({t["task_id"]: t for t in final_tasks(replay([f], keep).drain_tasks()) if t["tab"] == "journey"})
    strip = lambda ts: {k: {f: v for f, v in t.items() if f not in ("history", "version", "updated_at")}
                        for k, t in ts.items() if t["stage"] != "NEW_GT_12"}
    assert strip(together) == strip(alone)
