"""``vpa whatif`` (issue 23) on hand-built streams at the thresholds' boundaries: the difference is
exactly the tasks expected; a setting equal to its current value changes nothing; a bad --set
names the setting."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.app.cli import main
from tests.unit.runners.test_replay import absence, env, member, registered, write_jsonl


def run(capsys, tmp_path: Path, lines: list, *sets: str) -> dict:
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    args = ["whatif", path, "--json"] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def company(*absences: tuple) -> list:
    lines = [member("m1", "2026-05-01T08:00:00+02:00", "AB"), registered("r1", "2026-05-01T09:00:00+02:00")]
    for n, (at, starts, ends) in enumerate(absences, 1):
        lines.append(absence(f"a{n}", at, f"ABW-{n}", starts, ends))
    return lines


@pytest.mark.parametrize("days, threshold, long_in_changed", [
    (22, 21, True),    # 22 days: longer than 21
    (22, 22, False),   # ... but not longer than 22
    (28, 28, False),
    (29, 28, True),
])
def test_a_long_absence_at_the_boundary(capsys, tmp_path, days, threshold, long_in_changed):
    ends = f"2026-06-{days:02d}"
    report = run(capsys, tmp_path, company(("2026-05-20T10:00:00+02:00", "2026-06-01", ends)),
                 f"VPA_LONG_ABSENCE_DAYS={threshold}")
    task_id = "case:absence:V-1:ABW-1"
    changed = {d["task_id"]: d for d in report["differences"]["sample"]}
    long_now = days > 21
    if long_now == long_in_changed:
        assert report["differences"]["count"] == 0
        assert report["summary"].endswith("keine Aufgabe ändert sich")
    else:
        assert list(changed) == [task_id]
        assert changed[task_id]["kind"] == ("only_current" if long_now else "only_changed")
        assert report["totals"]["cases"] == ([1, 0] if long_now else [0, 1])
        assert report["reasons_delta"] == {"long": -1 if long_now else 1}


def test_the_third_absence_inside_or_outside_the_frequent_window(capsys, tmp_path):
    # Three short absences starting 0, 40 and 75 days apart: the third is inside 90 days, outside 60.
    lines = company(("2026-05-02T10:00:00+02:00", "2026-05-10", "2026-05-11"),
                    ("2026-05-02T10:05:00+02:00", "2026-06-19", "2026-06-20"),
                    ("2026-05-02T10:10:00+02:00", "2026-07-24", "2026-07-25"))
    report = run(capsys, tmp_path, lines, "VPA_FREQUENT_ABSENCE_WINDOW_DAYS=60")
    diffs = report["differences"]["sample"]
    assert [(d["task_id"], d["kind"]) for d in diffs] == [("case:absence:V-1:ABW-3", "only_current")]
    assert "frequent" in diffs[0]["current"]["reasons"]
    assert report["reasons_delta"] == {"frequent": -1}


def test_the_monday_follow_up_time_moves_the_decision(capsys, tmp_path):
    # Inactive on Friday, active again on Monday at 13:00: at 12:00 the follow-up finds no sign of
    # life (a case opens), at 14:00 the VPA is back (it closes by itself).
    lines = [member("m1", "2026-05-01T08:00:00+02:00", "AB"), registered("r1", "2026-05-01T09:00:00+02:00"),
             env("i1", "vpa.activity_status_changed", "2026-06-05T10:00:00+02:00", {"status": "inactive"}),
             env("i2", "vpa.activity_status_changed", "2026-06-08T13:00:00+02:00", {"status": "active"}),
             env("i3", "vpa.activity_status_changed", "2026-06-09T13:00:00+02:00", {"status": "inactive"})]
    report = run(capsys, tmp_path, lines, "VPA_MONDAY_FOLLOW_UP_TIME=14:00")
    diffs = {d["task_id"]: d for d in report["differences"]["sample"]}
    case = diffs["case:inactive:V-1:i1"]
    assert case["kind"] == "differs" and "status" in case["fields"]
    assert case["current"]["status"] == "open" and case["changed"]["status"] == "done"
    assert "active_again" in case["changed"]["reasons"]


def test_a_setting_equal_to_its_current_value_changes_nothing(capsys, tmp_path):
    report = run(capsys, tmp_path, company(("2026-05-20T10:00:00+02:00", "2026-06-01", "2026-06-25")),
                 "VPA_LONG_ABSENCE_DAYS=21", "VPA_SHIFTS=08:00-14:00,14:00-20:00")
    assert report["differences"]["count"] == 0 and report["members_delta"] == {}
    assert report["summary"].startswith("±0 Fälle in 1 Woche")


@pytest.mark.parametrize("setting, says", [
    ("VPA_DEDUPE_WINDOW_DAYS=3", "keine Geschäftsregel"),       # a setting, but not a business rule
    ("KAFKA_BOOTSTRAP_SERVERS=x:1", "keine Geschäftsregel"),
    ("VPA_LONG_ABSENCE_DAYS", "erwartet NAME=WERT"),
    ("VPA_LONG_ABSENCE_DAYS=zwei", "VPA_LONG_ABSENCE_DAYS"),     # the settings' own message names it
    ("VPA_FOLLOW_UP_TIME=25:00", "VPA_FOLLOW_UP_TIME"),
])
def test_a_bad_set_names_the_setting(capsys, tmp_path, setting, says):
    path = write_jsonl(tmp_path / "in.jsonl", company())
    assert main(["whatif", path, "--set", setting]) == 2
    err = capsys.readouterr().err
    assert says in err and err.startswith("vpa whatif: ")


def test_the_text_report_starts_with_the_summary_and_shows_why(capsys, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", company(("2026-05-20T10:00:00+02:00", "2026-06-01", "2026-06-24")))
    assert main(["whatif", path, "--set", "VPA_LONG_ABSENCE_DAYS=28"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("−1 Fall in 1 Woche (−100 %), davon −1 lange Abwesenheiten")
    assert any("Warum:" in line and "24 Tage" in line for line in out)


def test_the_html_report_is_one_self_contained_page(capsys, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", company(("2026-05-20T10:00:00+02:00", "2026-06-01", "2026-06-24")))
    page = tmp_path / "whatif.html"
    assert main(["whatif", path, "--set", "VPA_LONG_ABSENCE_DAYS=28", "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "lang='de'" in text
    assert text.count("<svg") == 4  # the change per week, and one chart per tab
    assert "−1 Fall in 1 Woche" in text and "lange Abwesenheiten" in text and "Warum" in text
    import re

    assert "<script" not in text and "src=" not in text  # nothing runs, nothing is fetched at view time
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', text))  # only the SVG's own parts
