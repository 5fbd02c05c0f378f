"""Benchmark of the event hot path: decode at the edge, then the processors (embedded runner).

Run: .venv/bin/python tests/bench/bench_pipeline.py [N_EVENTS]
Figures are ratios against a baseline measured in the same run (plain ``json.loads`` of the
same lines), so they compare across machines; absolute rates are printed for orientation.
"""
from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.engine.decode import decode
from services.runners.embedded.runner import EmbeddedRunner


def make_lines(n: int, vpas: int = 2000, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    t0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    lines = []
    for v in range(vpas):
        lines.append(json.dumps({"event_id": f"reg-{v}", "type": "vpa.registered", "occurred_at": t0.isoformat(),
                                 "vpa_id": f"V-{v}", "data": {"name": f"Vorname{v} Nachname", "started_on": "2025-06-01",
                                                              "at_owner": "AB", "class": "B"}}))
    for i in range(n - vpas):
        at = t0 + timedelta(minutes=5 * i)
        start = at.date() + timedelta(days=rnd.randint(0, 60))
        lines.append(json.dumps({"event_id": f"abs-{i}", "type": "vpa.absence_registered", "occurred_at": at.isoformat(),
                                 "vpa_id": f"V-{rnd.randrange(vpas)}",
                                 "data": {"absence_id": f"A{i}", "starts_on": start.isoformat(),
                                          "ends_on": (start + timedelta(days=rnd.randint(0, 30))).isoformat()}}))
    return lines


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    lines = make_lines(n)
    base = timed(lambda: [json.loads(x) for x in lines])
    dec = timed(lambda: [decode(x) for x in lines])

    def pipeline() -> None:
        runner = EmbeddedRunner(processors(), Settings(), StreamClock())
        for i, x in enumerate(lines):
            runner.submit_raw(x, f"bench:{i}")
        runner.drain_tasks()

    full = timed(pipeline)
    print(f"{n} events")
    print(f"{'step':<28}{'events/s':>12}{'x baseline time':>18}")
    for name, secs in (("json.loads (baseline)", base), ("decode (pydantic, strict)", dec),
                       ("embedded pipeline (all)", full)):
        print(f"{name:<28}{n / secs:>12,.0f}{secs / base:>18.1f}")


if __name__ == "__main__":
    main()
