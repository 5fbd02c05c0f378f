"""Benchmark: serialised state per VPA over a simulated year (run by hand, not by pytest).

    .venv/bin/python tests/bench/bench_state.py [--vpas 1000] [--days 365] [--json OUT]

Replays a simulated company (seed 1, from 2026-01-05) through the embedded runner, as ``vpa
replay`` does, and at the start of every month serialises each VPA's slot (every service's
domain state plus the runner's bookkeeping: recent event ids, timer keys) with the Kafka runner's
own encoder (compact UTF-8 JSON, ``runners/kafka/slots.encode_slot``): the bytes its table and
changelog hold. Reports bytes per VPA on average (all services
together, and per service), the median, and the share of the biggest part (live tasks).
Issue 11: under 2 KiB on average after a year, and not growing from month 6 to month 12.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from bench_replay import stream  # noqa: E402
from services.app.bootstrap import processors  # noqa: E402
from services.config.settings import Settings  # noqa: E402
from services.core.clock import StreamClock  # noqa: E402
from services.engine.records import EngineLimits  # noqa: E402
from services.runners.embedded.replay import read_lines  # noqa: E402
from services.runners.embedded.runner import EmbeddedRunner  # noqa: E402
from services.runners.kafka.slots import encode_slot  # noqa: E402


def size(value) -> int:
    return len(encode_slot(value))


def measure(runner: EmbeddedRunner, label: str) -> dict:
    slots = [v for k, v in runner.engine.slots.items() if not k.startswith("__")]
    sizes = [size(s) for s in slots]
    per_service: dict[str, int] = {}
    live = 0
    for slot in slots:
        for service, state in slot.get("states", {}).items():
            per_service[service] = per_service.get(service, 0) + size(state)
            live += size(state.get("tasks", {}))
    n = len(slots)
    return {"at": label, "vpas": n, "bytes_per_vpa": sum(sizes) / n, "median": statistics.median(sizes),
            "max": max(sizes), "per_service": {s: b / n for s, b in sorted(per_service.items())},
            "live_tasks_per_vpa": live / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vpas", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    settings = Settings()
    runner = EmbeddedRunner(processors(), settings, StreamClock(), limits=EngineLimits.of(settings), keep_versions=False)
    month, months, rows = None, 0, []
    for line in read_lines([str(stream(args.vpas, args.days))]):
        if line.at is not None:
            m = (line.at.year, line.at.month)
            if month is not None and m != month:
                months += 1
                rows.append(measure(runner, f"after month {months}"))
                print(f"{rows[-1]['at']:>16}: {rows[-1]['vpas']} VPAs, {rows[-1]['bytes_per_vpa']:,.0f} B/VPA "
                      f"(median {rows[-1]['median']:,.0f}, live tasks {rows[-1]['live_tasks_per_vpa']:,.0f})", flush=True)
            month = m
        runner.submit_raw(line.text.encode("utf-8", "surrogateescape"), f"{line.source}:{line.lineno}")
        runner.drain_tasks()  # what replay writes out; not state
    rows.append(measure(runner, "end"))
    print(f"{'end':>16}: {rows[-1]['bytes_per_vpa']:,.0f} B/VPA; per service "
          + ", ".join(f"{s} {b:,.0f}" for s, b in rows[-1]["per_service"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"state": {"vpas": args.vpas, "days": args.days, "months": rows}},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
