"""Benchmark of ``vpa simulate`` and of replaying what it writes.

Run: .venv/bin/python tests/bench/bench_simulate.py [VPAS] [DAYS]
Figures are ratios against a baseline measured in the same run (``json.dumps`` of the same
envelopes), so they compare across machines; absolute rates are printed for orientation.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import date

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.runners.embedded.runner import EmbeddedRunner
from services.simulator import SimConfig, simulate, to_line


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    vpas = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 90
    cfg = SimConfig(vpas=vpas, days=days, seed=1, start=date(2026, 9, 14))
    envs = list(simulate(cfg))
    base = timed(lambda: [json.dumps(e) for e in envs])
    gen = timed(lambda: [to_line(e) for e in simulate(cfg)])
    lines = [to_line(e) for e in envs]

    def pipeline() -> None:
        runner = EmbeddedRunner(processors(), Settings(), StreamClock())
        for n, line in enumerate(lines):
            runner.submit_raw(line, f"bench:{n}")
        runner.drain_tasks()

    full = timed(pipeline)
    n = len(envs)
    print(f"{vpas} VPAs x {days} days: {n} envelopes ({n / (vpas * days):.3f} per VPA and day)")
    print(f"{'step':<34}{'envelopes/s':>14}{'x baseline time':>18}")
    for name, t in (("json.dumps (baseline)", base), ("simulate + serialise", gen), ("replay (embedded pipeline)", full)):
        print(f"{name:<34}{n / t:>14,.0f}{t / base:>18.1f}")


if __name__ == "__main__":
    main()
