"""Benchmark: the journey's daily 06:00 sweep for many VPAs (a plain script, not part of pytest).

    .venv/bin/python tests/bench/bench_journey_sweep.py [--vpas 100000] [--years 2] [--days 30]

Registers ``--vpas`` VPAs through the embedded runner (journey processor only), each on its own
``started_on``, spread evenly over ``--years`` of stream time (every stage timer on the way fires).
Then advances the stream clock day by day (midnight to midnight) through ``--days`` days and
measures, per simulated day, the wall time and how many VPAs the sweep touched (timers fired).

The sweep is a per-VPA timer due at 06:00 on the day the VPA's next stage begins, so a day costs
in proportion to the VPAs crossing a boundary that day. The baseline, measured in the same run, is
what a full-scan sweep would cost: one pass over every VPA's state computing its stage on the day
(and, as a floor, one bare pass reading each state's ``started_on``). Figures are reported as
ratios against that baseline, since absolute times depend on the machine.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.config.settings import Settings  # noqa: E402
from services.core.clock import StreamClock  # noqa: E402
from services.journey.service import Journey  # noqa: E402
from services.journey.stages import day_in_stage, stage_on  # noqa: E402
from services.runners.embedded.runner import EmbeddedRunner  # noqa: E402

START = date(2025, 1, 1)


class CountingJourney(Journey):
    """The journey processor, counting the VPAs its timers touch."""

    def __init__(self) -> None:
        self.touched: set[str] = set()

    def on_timer(self, state, timer, ctx):
        self.touched.add(state.get("vpa_id"))
        return super().on_timer(state, timer, ctx)


def envelope(event_id: str, type_: str, at: datetime, data: dict, vpa_id: str | None = None) -> str:
    return json.dumps({"event_id": event_id, "type": type_, "occurred_at": at.isoformat(), "vpa_id": vpa_id,
                       "actor": None, "schema_version": 1, "data": data})


def states(runner: EmbeddedRunner) -> list[dict]:
    """The journey's state of every VPA, from the engine's slots (one per VPA)."""
    name = runner.processors[0].name
    return [slot["states"][name] for key, slot in runner.engine.slots.items()
            if not key.startswith("__") and name in (slot or {}).get("states", {})]


def full_scan(runner: EmbeddedRunner, on: date) -> int:
    """What a full-scan sweep does every day: the stage of every VPA on ``on``, who starts one today."""
    crossing = 0
    for state in states(runner):
        started = date.fromisoformat(state["profile"]["started_on"])
        if stage_on(started, on) is not None and day_in_stage(started, on) == 0:
            crossing += 1
    return crossing


def bare_pass(runner: EmbeddedRunner) -> int:
    n = 0
    for state in states(runner):
        if state["profile"]["started_on"]:
            n += 1
    return n


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vpas", type=int, default=100_000)
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--freeze-gc", action="store_true",
                    help="gc.freeze() after registration: leaves the long-lived states out of the cyclic GC's "
                         "full collections (which otherwise add noise proportional to the number of states)")
    ap.add_argument("--json", help="also write the figures to this file (scripts/bench)")
    args = ap.parse_args(argv)

    settings = Settings()
    tz = settings.tz
    proc = CountingJourney()
    runner = EmbeddedRunner([proc], settings, StreamClock())
    t0 = datetime.combine(START - timedelta(days=1), dtime(8), tzinfo=tz)
    for n, (initials, role) in enumerate([("BA", "at"), ("BB", "at"), ("BM", "vpa_manager"), ("BN", "vpa_manager"),
                                          ("BO", "vpa_manager")]):
        runner.submit_raw(envelope(f"bench-m{n}", "roster.member_upserted", t0,
                                   {"initials": initials, "name": initials, "role": role, "deputy": None,
                                    "active": True}), "bench")

    # ---- registration: --vpas VPAs over --years of stream time, each on its first day ---------------
    span_days = 365 * args.years
    classes = ["A", "B", "C", "D", None]
    started = time.perf_counter()
    opened = 0
    for i in range(args.vpas):
        day = START + timedelta(days=i * span_days // args.vpas)
        at = datetime.combine(day, dtime(9), tzinfo=tz) + timedelta(seconds=i % 3600)
        runner.submit_raw(envelope(f"bench-r{i}", "vpa.registered", at,
                                   {"name": f"VPA {i}", "started_on": day.isoformat(), "at_owner": "BA",
                                    "buddy": "BB" if i % 2 else None, "class": classes[i % 5]}, f"V-{i:06}"), "bench")
        if i % 10_000 == 0:
            opened += len(runner.drain_tasks())  # keep memory flat: the notifier would take these
    opened += len(runner.drain_tasks())
    register_s = time.perf_counter() - started
    assert runner.stats["invalid"] == 0, runner.dlq[:3]
    n_states = len(states(runner))
    print(f"registered {args.vpas} VPAs over {span_days} days of stream time in {register_s:.1f} s "
          f"({opened} task versions, every stage timer on the way fired)")

    if args.freeze_gc:
        gc.collect()
        gc.freeze()

    # ---- the month: day by day ------------------------------------------------------------------
    first_day = START + timedelta(days=span_days)
    days: list[tuple[date, float, int, int]] = []
    for k in range(args.days):
        day = first_day + timedelta(days=k)
        proc.touched.clear()
        t = time.perf_counter()
        runner.advance_to(datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=tz))
        elapsed = time.perf_counter() - t
        versions = len(runner.drain_tasks())
        days.append((day, elapsed, len(proc.touched), versions))

    # ---- baselines, same process, same states -----------------------------------------------------
    scan_s, _ = timed(lambda: full_scan(runner, first_day))
    bare_s, _ = timed(lambda: bare_pass(runner))
    crossing = [full_scan(runner, d) for d, *_ in days[:3]]
    assert [c for _, _, c, _ in days[:3]] == crossing, "sweep and full scan disagree on who crosses"

    # For comparison: one roster change, on which the runner calls reassign() for every state.
    t = time.perf_counter()
    last_day = first_day + timedelta(days=args.days)
    runner.submit_raw(envelope("bench-m-upd", "roster.member_upserted",
                               datetime.combine(last_day, dtime(9), tzinfo=tz),
                               {"initials": "BO", "name": "BO", "role": "vpa_manager", "deputy": None,
                                "active": False}), "bench")
    roster_s = time.perf_counter() - t
    repicked = len(runner.drain_tasks())
    t = time.perf_counter()  # and one that changes no VPA Manager: the bare cost of the runner's pass
    runner.submit_raw(envelope("bench-m-upd2", "roster.member_upserted",
                               datetime.combine(last_day, dtime(9, 1), tzinfo=tz),
                               {"initials": "BA", "name": "BA renamed", "role": "at", "deputy": None,
                                "active": True}), "bench")
    roster_noop_s = time.perf_counter() - t
    assert runner.drain_tasks() == []

    per_day = [e for _, e, _, _ in days]
    touched = [c for _, _, c, _ in days]
    mean_s, med_s, max_s = statistics.mean(per_day), statistics.median(per_day), max(per_day)
    print(f"\n{n_states} VPA states; {args.days} simulated days from {first_day} (midnight to midnight)"
          f"{'; gc frozen' if args.freeze_gc else ''}")
    print(f"baseline: full-scan sweep (stage of every VPA) {scan_s * 1e3:.1f} ms; bare pass over all states "
          f"{bare_s * 1e3:.1f} ms")
    print(f"time per simulated day: mean {mean_s * 1e3:.2f} ms, median {med_s * 1e3:.2f} ms, max {max_s * 1e3:.2f} ms")
    print(f"  as a ratio of one full-scan sweep: mean {mean_s / scan_s:.3f}, median {med_s / scan_s:.3f}, "
          f"max {max_s / scan_s:.3f}")
    print(f"  as a ratio of one bare pass:       mean {mean_s / bare_s:.3f}, median {med_s / bare_s:.3f}, "
          f"max {max_s / bare_s:.3f}")
    print(f"VPAs touched per day: mean {statistics.mean(touched):.0f}, min {min(touched)}, max {max(touched)} "
          f"= {statistics.mean(touched) / n_states:.4f} of all states (a full scan touches 1.0)")
    print(f"time per touched VPA: {sum(per_day) / max(1, sum(touched)) * 1e6:.1f} us; per state in the full scan: "
          f"{scan_s / n_states * 1e6:.2f} us")
    print(f"one roster change (runner calls reassign() on all {n_states} states): {roster_s * 1e3:.1f} ms = "
          f"{roster_s / scan_s:.3f} of a full-scan sweep; {repicked} open NEW_GT_12 tasks re-picked")
    print(f"one roster change that moves no task: {roster_noop_s * 1e3:.1f} ms = {roster_noop_s / scan_s:.3f} of a "
          f"full-scan sweep")
    print("\nday         ms    touched  task versions")
    for d, e, c, v in days:
        print(f"{d}  {e * 1e3:7.2f}  {c:7}  {v:7}")
    if args.json:
        Path(args.json).write_text(json.dumps({"sweep": {
            "vpas": n_states, "days": args.days, "scan_s": scan_s, "bare_s": bare_s, "day_mean_s": mean_s,
            "day_median_s": med_s, "day_max_s": max_s, "touched_mean": statistics.mean(touched),
            "roster_change_s": roster_s, "roster_noop_s": roster_noop_s}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
