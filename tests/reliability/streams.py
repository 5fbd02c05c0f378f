"""Simulated streams for the reliability tests (``vpa simulate``'s company, no hostile lines)."""
from __future__ import annotations

from datetime import date

from services.simulator import SimConfig, simulate
from tests.integration.harness import final_tick


def company(vpas: int, days: int, start: date, seed: int) -> list[dict]:
    """The company's envelopes in time order, with a final clock.tick (DESIGN 5.26)."""
    envelopes = [e for e in simulate(SimConfig(vpas=vpas, days=days, seed=seed, start=start)) if isinstance(e, dict)]
    envelopes.append(final_tick(envelopes))
    return envelopes


def drift_figures(report: dict) -> dict:
    """Lost and duplicated tasks as `vpa verify` counts them, against both references."""
    counts = report["counts"]
    lost = sum(counts.get(ref, {}).get(k, 0) for ref in ("topic", "replay") for k in ("missing", "older"))
    doubled = sum(counts.get(ref, {}).get(k, 0) for ref in ("topic", "replay") for k in ("extra", "newer"))
    changed = sum(counts.get(ref, {}).get("fields", 0) for ref in ("topic", "replay"))
    return {"store_tasks": report["store"]["tasks"], "replay_tasks": (report["replay"] or {}).get("tasks"),
            "topic_records": report["topic"]["records"], "versions_sent_again": report["topic"]["repeated"],
            "lost": lost, "duplicated": doubled, "fields_differ": changed}
