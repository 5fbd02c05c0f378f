"""deploy/prometheus/alerts.yml: valid rules, a promtool unit test for every alert, real metric names."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.deploy.exported import ROOT, SCRAPE_SERIES, exported_metric_names, metric_names_in

PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "alerts.yml"
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))
REQUIRED_ALERTS = {
    "VpaServiceDown", "VpaConsumerLagGrowing", "VpaDeadLetters", "VpaStreamClockStalled",
    "VpaNoEventsInWorkingHours", "VpaRemindersOverdue", "VpaOpenCasesOlderThanWorkingDay", "VpaStoreWriteErrors",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's prometheus package (scripts/test does)")
    return path


def rules() -> list[dict]:
    return [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]]


def test_promtool_check_rules():
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_unit_tests_pass():
    done = subprocess.run([promtool(), "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True,
                          timeout=120, cwd=PROM / "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_the_issue_asks_for_exists_and_each_has_a_unit_test():
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert REQUIRED_ALERTS <= alerts
    tested = {case["alertname"] for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    assert alerts - tested == set(), "alerts without a promtool unit test"
    # each alert is also seen firing in its test, not only silent
    firing = {case["alertname"] for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts - firing == set(), "alerts whose unit test never expects them to fire"


def test_every_metric_an_alert_uses_is_exported():
    exported = exported_metric_names() | SCRAPE_SERIES
    for rule in rules():
        missing = metric_names_in(rule["expr"]) - exported
        assert not missing, f"{rule.get('alert') or rule.get('record')} uses metrics nobody exports: {missing}"


def test_every_alert_has_severity_and_text():
    for rule in (r for r in rules() if "alert" in r):
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
