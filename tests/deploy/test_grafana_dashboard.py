"""deploy/grafana/dashboard.json: every query names metrics the services export, and ops find
throughput, latency, lag, dead letters and open work per tab on it."""
from __future__ import annotations

import json
import re

from tests.deploy.exported import ROOT, SCRAPE_SERIES, exported_metric_names, metric_names_in

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"


def panels(items: list[dict]) -> list[dict]:
    out = []
    for panel in items:
        out.append(panel)
        out.extend(panels(panel.get("panels", [])))  # panels inside collapsed rows
    return out


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [(f"panel {p.get('title')!r}", t["expr"]) for p in panels(board["panels"]) for t in p.get("targets", [])]
    for var in board.get("templating", {}).get("list", []):
        query = var.get("query")
        if var.get("type") == "query":
            found.append((f"variable {var['name']}", query["query"] if isinstance(query, dict) else query))
    return found


def test_every_query_names_exported_metrics():
    exported = exported_metric_names() | SCRAPE_SERIES
    assert queries()
    for where, expr in queries():
        names = metric_names_in(expr)
        assert names, f"{where}: no VPA metric in {expr!r}"
        assert names <= exported, f"{where}: {sorted(names - exported)} are exported by no service"


def test_panel_ids_are_unique_and_queries_reference_the_datasource():
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in panels(board["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels(board["panels"]):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "prometheus", panel["title"]


def _panel_using(pattern: str) -> bool:
    return any(re.search(pattern, expr) for where, expr in queries() if where.startswith("panel"))


def test_the_dashboard_shows_what_ops_need():
    assert _panel_using(r"rate\(vpa_events_processed_total"), "throughput"
    assert _panel_using(r"histogram_quantile\(.*vpa_end_to_end_latency_seconds_bucket"), "end-to-end latency"
    assert _panel_using(r"histogram_quantile\(.*vpa_processing_seconds_bucket"), "processing time"
    assert _panel_using(r"vpa_consumer_lag"), "consumer lag"
    assert _panel_using(r"vpa_dlq_messages_total"), "dead letters"
    assert _panel_using(r"by \(tab[,)].*vpa_open_tasks\b"), "open work per tab"
    assert _panel_using(r"vpa_oldest_open_task_age_seconds"), "age of the oldest open task"
    assert _panel_using(r"vpa_reminders_due"), "reminders due and overdue"
