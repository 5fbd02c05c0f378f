"""``vpa simulate`` (issue 8): deterministic, valid, in time order, and covering every rule.

The coverage test replays a 300-VPA, 30-day company through the embedded pipeline, as
``vpa replay`` does, and needs every case reason code of DESIGN 2.1, both handover flags and every
journey stage; the only rejected commands are those the simulated people get wrong on purpose.
"""
from __future__ import annotations

import ast
import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest

from schemas.envelope import topic_for_type
from services.app.cli import main
from services.app.entrypoints import replay
from services.config.settings import Settings
from services.engine.decode import Invalid, decode
from services.runners.embedded.replay import final_tasks
from services.simulator import SimConfig, record_of, simulate, to_line
from services.simulator.stream import TOPIC_RANK, WRONG

ROOT = Path(__file__).resolve().parents[3]
CASE_REASONS = {
    "new_vpa_no_orders", "priority_check", "review",                       # schedule_change
    "long", "frequent", "short_notice",                                    # absence
    "negative", "positive", "rising_star",                                 # class_change
    "follow_up", "active_again", "active_on_mobile", "part_time_no_contact",
    "contact_needed", "customer_complaint", "verify_mobile_activity",      # inactive
}
STAGES = {"NEW_0_3", "NEW_3_6", "NEW_6_9", "NEW_9_12", "NEW_GT_12"}
COVERAGE = SimConfig(vpas=300, days=30, seed=1, start=date(2026, 3, 2))


def lines(cfg: SimConfig) -> list[bytes]:
    return [to_line(item) for item in simulate(cfg)]


@pytest.fixture(scope="module")
def coverage_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "company.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines(COVERAGE)))
    runner = replay([str(path)], Settings(), keep_versions=True)
    return runner, runner.drain_tasks(), path


# ---- determinism and order ------------------------------------------------------------------------

def test_same_arguments_give_the_same_bytes():
    cfg = SimConfig(vpas=120, days=20, seed=5, start=date(2026, 10, 12))
    assert lines(cfg) == lines(cfg)
    assert lines(cfg) != lines(SimConfig(vpas=120, days=20, seed=6, start=date(2026, 10, 12)))


def test_the_command_writes_the_same_file_twice(tmp_path, capsys):
    args = ["simulate", "--vpas", "40", "--days", "7", "--seed", "3", "--start", "2026-03-23"]
    assert main([*args, "--output", str(tmp_path / "a.jsonl")]) == 0
    assert main([*args, "--output", str(tmp_path / "b.jsonl")]) == 0
    a = (tmp_path / "a.jsonl").read_bytes()
    assert a == (tmp_path / "b.jsonl").read_bytes() and a.count(b"\n") > 100
    assert "40 VPAs, 7 days from 2026-03-23, seed 3" in capsys.readouterr().err
    assert main(args) == 0  # stdout
    assert capsys.readouterr().out.encode() == a


@pytest.mark.parametrize("bad", [["--vpas", "0"], ["--days", "0"], ["--start", "23.03.2026"], ["--bad-ratio", "1"]])
def test_bad_arguments_get_a_clear_error(bad, capsys):
    assert main(["simulate", *bad]) == 2
    assert capsys.readouterr().err.startswith("vpa simulate: ")


def test_lines_are_in_time_order_and_ties_go_roster_events_commands(coverage_run):
    _, _, path = coverage_run
    previous = None
    for raw in path.read_bytes().splitlines():
        env = json.loads(raw)
        key = (datetime.fromisoformat(env["occurred_at"]).timestamp(), TOPIC_RANK[topic_for_type(env["type"])])
        assert previous is None or key >= previous, env
        previous = key


def test_every_datetime_carries_an_offset(coverage_run):
    _, _, path = coverage_run
    for raw in path.read_bytes().splitlines():
        env = json.loads(raw)
        stamps = [env["occurred_at"], env["data"].get("due_at"), env["data"].get("scheduled_for")]
        for value in filter(None, stamps):
            assert datetime.fromisoformat(value).utcoffset() is not None, env


def test_event_ids_are_unique(coverage_run):
    _, _, path = coverage_run
    ids = [json.loads(raw)["event_id"] for raw in path.read_bytes().splitlines()]
    assert len(ids) == len(set(ids))


# ---- validity -------------------------------------------------------------------------------------

def test_a_large_company_over_a_quarter_has_no_invalid_line():
    outcomes = Counter(type(decode(line)).__name__ for line in lines(
        SimConfig(vpas=1000, days=90, seed=11, start=date(2026, 9, 14))))
    assert outcomes["Decoded"] > 15_000
    assert set(outcomes) == {"Decoded"}, outcomes


def test_hostile_lines_are_all_invalid_and_leave_the_valid_ones_alone(tmp_path):
    clean_cfg = SimConfig(vpas=150, days=14, seed=4, start=date(2026, 5, 4))
    hostile_cfg = SimConfig(vpas=150, days=14, seed=4, start=date(2026, 5, 4), bad_ratio=0.05)
    items = list(simulate(hostile_cfg))
    bad = [i for i in items if isinstance(i, bytes)]
    assert 0.03 < len(bad) / len(items) < 0.07
    assert all(isinstance(decode(b), Invalid) for b in bad)
    assert [i for i in items if isinstance(i, dict)] == list(simulate(clean_cfg))

    for name, cfg in (("clean", clean_cfg), ("hostile", hostile_cfg)):
        (tmp_path / f"{name}.jsonl").write_bytes(b"".join(to_line(i) + b"\n" for i in simulate(cfg)))
    clean = replay([str(tmp_path / "clean.jsonl")], Settings())
    hostile = replay([str(tmp_path / "hostile.jsonl")], Settings())
    assert hostile.stats["invalid"] == len(bad) and clean.stats["invalid"] == 0
    assert hostile.stats["processed"] == clean.stats["processed"]
    assert final_tasks(hostile.drain_tasks()) == final_tasks(clean.drain_tasks())


# ---- coverage (DESIGN 2.1 to 2.3) -----------------------------------------------------------------

def test_every_case_reason_both_handover_flags_and_every_stage_occur(coverage_run):
    runner, versions, _ = coverage_run
    reasons = {r for t in versions if t["tab"] == "cases" for r in t["reasons"]}
    assert CASE_REASONS <= reasons, CASE_REASONS - reasons
    for tab in ("cases", "reminders"):
        flags = {r for t in versions if t["tab"] == tab for r in t["reasons"]}
        assert {"handover", "handover_unavailable"} <= flags, tab
    assert {t["stage"] for t in versions if t["tab"] == "journey"} == STAGES
    assert {"measures_needed", "class_ok"} <= {r for t in versions if t["tab"] == "journey" for r in t["reasons"]}
    final = final_tasks(versions)
    for tab in ("cases", "reminders", "journey"):
        statuses = {t["status"] for t in final if t["tab"] == tab}
        assert {"open", "done"} <= statuses, (tab, statuses)
    assert runner.stats["invalid"] == 0


def test_only_the_deliberate_mistakes_are_rejected(coverage_run):
    """Every command names a task that exists and is live when it arrives; the simulated people
    only err on purpose (completing without the VPA file, NEW_GT_12 cleared by role at)."""
    runner, _, path = coverage_run
    rejected = [json.loads(r.value)["event_id"] for r in runner.dlq if r.reason.startswith("rejected:")]
    deliberate = [json.loads(raw)["event_id"] for raw in path.read_bytes().splitlines() if WRONG.encode() in raw]
    assert sorted(rejected) == sorted(deliberate)
    kinds = Counter(json.loads(raw)["type"] for raw in path.read_bytes().splitlines() if WRONG.encode() in raw)
    assert kinds["cmd.reminder.complete"] > 0 and kinds["cmd.journey.clear"] > 0


def test_commands_use_every_kind_the_at_sends(coverage_run):
    _, _, path = coverage_run
    envs = [json.loads(raw) for raw in path.read_bytes().splitlines()]
    types = Counter(e["type"] for e in envs)
    for t in ("cmd.reminder.set", "cmd.reminder.reschedule", "cmd.reminder.complete", "cmd.case.resolve",
              "cmd.journey.clear"):
        assert types[t] > 0, t
    assert any(e["data"].get("case_task_id") for e in envs if e["type"] == "cmd.reminder.set")
    assert any(e["data"]["reminder_id"].startswith("follow-up:") for e in envs if e["type"] == "cmd.reminder.complete")
    assert {e["actor"]["role"] for e in envs if e["type"] == "cmd.journey.clear"} == {"at", "vpa_manager"}


# ---- plausibility ---------------------------------------------------------------------------------

def test_a_company_of_realistic_shape(coverage_run):
    _, _, path = coverage_run
    envs = [json.loads(raw) for raw in path.read_bytes().splitlines()]
    members: dict[str, dict] = {}
    for e in envs:  # the team as it starts (later upserts change deputies)
        if e["type"] == "roster.member_upserted":
            members.setdefault(e["data"]["initials"], e["data"])
    at = [m for m in members.values() if m["role"] == "at"]
    assert abs(len(at) - 300 / 40) <= 1, "about one AT member per 40 VPAs"
    assert any(m["role"] == "vpa_manager" for m in members.values())
    assert any(m["deputy"] is None for m in at) and any(m["deputy"] for m in at)
    absences = [e["data"] for e in envs if e["type"] == "roster.absence_registered"]
    assert {"vacation", "sick"} <= {a["kind"] for a in absences}
    assert any(a["ends_on"] is None for a in absences), "some sick notes are open-ended"
    assert any(e["type"] == "roster.absence_ended" for e in envs)
    regs = [e["data"] for e in envs if e["type"] == "vpa.registered"]
    part_time = sum(r["part_time"] for r in regs) / len(regs)
    assert 0.12 < part_time < 0.28
    assert any(r["uses_mobile_app"] for r in regs)
    assert {"A", "B", "C", "D", None} <= {r["class"] for r in regs}
    hires = [e for e in envs if e["type"] == "vpa.registered" and e["occurred_at"] > "2026-03-03"]
    assert {date.fromisoformat(e["occurred_at"][:10]).isocalendar().week for e in hires} >= {10, 11, 12, 13}


def test_volume_is_moderate_per_vpa_and_day():
    cfg = SimConfig(vpas=300, days=60, seed=2, start=date(2026, 6, 1))
    per_vpa_day = sum(1 for _ in simulate(cfg)) / (cfg.vpas * cfg.days)
    assert 0.1 <= per_vpa_day <= 0.5


def test_kafka_records_use_the_contract_keys():
    envs = list(simulate(SimConfig(vpas=30, days=5, seed=1, start=date(2026, 3, 2))))
    for env in envs:
        topic, key = record_of(env)
        assert topic == topic_for_type(env["type"])
        expected = env["data"]["initials"] if topic == "at.roster" else env["vpa_id"]
        assert key == expected.encode()
    assert {record_of(e)[0] for e in envs} == {"at.roster", "vpa.events", "vpa.commands"}


# ---- the simulator stands apart from the engine -------------------------------------------------

SIMULATOR = sorted(p for p in (ROOT / "services" / "simulator").glob("*.py") if p.name != "kafka.py")


@pytest.mark.parametrize("path", SIMULATOR, ids=lambda p: p.name)
def test_simulator_is_pure_and_independent_of_the_rules(path: Path):
    """It models the upstream and the people with DESIGN's rules, not by calling the services
    (or a broken rule would hide itself), never reads the clock and never uses ``hash()``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith(("services.detector", "services.reminders", "services.journey",
                                               "aiokafka", "asyncpg", "aiohttp")), node.module
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "hash"
    text = path.read_text()
    for forbidden in ("datetime.now(", "date.today(", "time.time("):
        assert forbidden not in text
