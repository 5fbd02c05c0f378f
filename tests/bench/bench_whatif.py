"""Benchmark: ``vpa whatif`` beside two plain ``vpa replay`` runs of the same history (issue 23).

    .venv/bin/python tests/bench/bench_whatif.py [--vpas 12000] [--days 180] [--json OUT]

Simulates the company once into a file, then times (wall, in separate processes, one after the
other) ``vpa replay`` of it, and ``vpa whatif --set VPA_LONG_ABSENCE_DAYS=28 --json`` of it. A
what-if is two replays and a comparison: the figure is its time against twice the replay's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VPA = str(Path(sys.executable).with_name("vpa"))


def timed(args: list[str], out: Path) -> float:
    t0 = time.monotonic()
    with out.open("wb") as f:
        done = subprocess.run(args, stdout=f, stderr=subprocess.PIPE, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.decode()[-500:]}")
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vpas", type=int, default=12000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as tmp:
        history = Path(tmp) / "history.jsonl"
        subprocess.run([VPA, "simulate", "--vpas", str(args.vpas), "--days", str(args.days), "--seed", "11",
                        "--start", "2026-01-05", "--output", str(history)], check=True, capture_output=True)
        lines = sum(1 for _ in history.open("rb"))
        replay_s = timed([VPA, "replay", str(history)], Path(tmp) / "replay.json")
        whatif_s = timed([VPA, "whatif", str(history), "--set", "VPA_LONG_ABSENCE_DAYS=28", "--json"],
                         Path(tmp) / "whatif.json")
        report = json.loads((Path(tmp) / "whatif.json").read_text())
    out = {"vpas": args.vpas, "days": args.days, "lines": lines, "replay_s": round(replay_s, 1),
           "whatif_s": round(whatif_s, 1), "ratio_to_two_replays": round(whatif_s / (2 * replay_s), 2),
           "summary": report["summary"], "differences": report["differences"]["count"],
           "load_average": os.getloadavg()}
    text = json.dumps(out, indent=1, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
