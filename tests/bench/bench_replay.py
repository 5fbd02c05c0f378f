"""Benchmark: ``vpa replay`` throughput against the strict decode of the same lines (run by hand).

    .venv/bin/python tests/bench/bench_replay.py [--runs 12000x180,3000x90,48000x90] [--json OUT]

For each ``VPASxDAYS`` a simulated company (seed 1, from 2026-01-05) is written once to
``.cache/bench/`` (``vpa simulate``), then, in this run:

* the ceilings, in this process on the same lines: ``json.loads`` of each line, and the strict
  decode at the edge (``services.engine.decode.decode``: JSON, poison checks, pydantic strict);
* ``vpa replay FILE --output FILE`` as its own process (read, sort, decode, every service,
  output), timed from start to exit, with its CPU time and peak RSS (``wait4``).

Figures: replay lines/s and its ratio to the strict decode rate (issue 11: at least 1/3), and the
rate at the largest company against the smallest (within 25%). The machine is shared: the load
average is printed beside the figures, and the CPU time of the replay process is reported too
(wall time includes waiting for a core).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from services.engine.decode import decode  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
VPA = str(ROOT / ".venv" / "bin" / "vpa")


def stream(vpas: int, days: int) -> Path:
    path = CACHE / f"sim-{vpas}x{days}.jsonl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run([VPA, "simulate", "--vpas", str(vpas), "--days", str(days), "--seed", "1",
                        "--start", "2026-01-05", "--output", str(tmp)], check=True, stderr=subprocess.DEVNULL)
        tmp.rename(path)
    return path


def rate(fn, items: list) -> float:
    started = time.process_time()
    for x in items:
        fn(x)
    return len(items) / (time.process_time() - started)


def replay(path: Path) -> dict:
    out = path.with_suffix(".tasks.json")
    started = time.perf_counter()
    proc = subprocess.Popen([VPA, "replay", str(path), "--output", str(out)], stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"vpa replay {path} failed ({status})")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="12000x180,3000x90,48000x90")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    results = []
    for spec in args.runs.split(","):
        vpas, days = map(int, spec.split("x"))
        path = stream(vpas, days)
        lines = [line.rstrip(b"\n") for line in path.read_bytes().splitlines() if line.strip()]
        loads = rate(json.loads, lines)
        strict = rate(decode, lines)
        load_before = os.getloadavg()[0]
        r = replay(path)
        n = len(lines)
        row = {"vpas": vpas, "days": days, "lines": n, "json_loads_per_s": loads, "decode_per_s": strict,
               "replay_per_s": n / r["wall_s"], "replay_cpu_per_s": n / r["cpu_s"], **r,
               "load_avg": (load_before + os.getloadavg()[0]) / 2}
        row["ratio_to_decode"] = row["replay_per_s"] / strict
        row["cpu_ratio_to_decode"] = row["replay_cpu_per_s"] / strict
        results.append(row)
        print(f"{vpas} VPAs x {days} days: {n:,} lines; json.loads {loads:,.0f}/s, strict decode {strict:,.0f}/s; "
              f"vpa replay {row['replay_per_s']:,.0f}/s wall ({r['wall_s']:.1f} s), {row['replay_cpu_per_s']:,.0f}/s "
              f"CPU; ratio to decode {row['ratio_to_decode']:.3f} (CPU {row['cpu_ratio_to_decode']:.3f}); "
              f"peak RSS {r['peak_rss_mb']:.0f} MB; load {row['load_avg']:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"replay": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
