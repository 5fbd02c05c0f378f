"""Benchmark: handing over 10,000 reminders when their owner goes on vacation (run by hand).

    .venv/bin/python tests/bench/bench_handover.py [--reminders 10000] [--per-vpa 5] [--members 25] [--json OUT]

The embedded engine with the reminders service: ``--members`` AT members (each with a deputy),
one of them (AB) owning ``--reminders`` waiting reminders spread over VPAs, ``--per-vpa`` each,
among other members' reminders (as many again). Then one ``roster.absence_registered`` for AB
starting today: every one of AB's reminders goes to the deputy (a new version each); then
``roster.absence_ended``: back to AB. Each is timed as one step of the engine, beside the floor
of the same run: one ``put_task`` per reminder on a copy of its state (the least a handover of
that many tasks costs), and the count of VPAs the engine re-evaluated (targeted by owner).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from services.config.settings import Settings  # noqa: E402
from services.core.clock import StreamClock  # noqa: E402
from services.core.processor import Context, json_copy  # noqa: E402
from services.core.tasks import put_task  # noqa: E402
from services.reminders.service import Reminders  # noqa: E402
from services.runners.embedded.runner import EmbeddedRunner  # noqa: E402

AT = "2026-03-02T08:00:00+01:00"


def env(n: int, type_: str, data: dict, vpa_id=None, actor=None, at: str = AT) -> bytes:
    return json.dumps({"event_id": f"b{n}", "type": type_, "occurred_at": at, "vpa_id": vpa_id, "actor": actor,
                       "schema_version": 1, "data": data}).encode()


def initials(i: int) -> str:
    return "A" + chr(ord("A") + i // 26) + chr(ord("A") + i % 26)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reminders", type=int, default=10_000)
    ap.add_argument("--per-vpa", type=int, default=5)
    ap.add_argument("--members", type=int, default=25)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    settings = Settings()
    runner = EmbeddedRunner([Reminders()], settings, StreamClock(), keep_versions=False)
    members = ["AB"] + [initials(i) for i in range(1, args.members)]
    n = 0
    for i, m in enumerate(members):
        n += 1
        runner.submit_raw(env(n, "roster.member_upserted", {"initials": m, "name": m, "role": "at",
                                                            "deputy": members[(i + 1) % len(members)], "active": True}),
                          "bench")
    vpas = args.reminders // args.per_vpa
    actor = {"initials": "AB", "role": "at"}
    for v in range(vpas * 2):  # half the VPAs' reminders are AB's, half another member's
        owner = "AB" if v < vpas else members[1 + v % (len(members) - 1)]
        for r in range(args.per_vpa):
            n += 1
            runner.submit_raw(env(n, "cmd.reminder.set", {"reminder_id": f"R-{v}-{r}", "due_at": "2026-04-01T10:00:00+02:00",
                                                          "owner": owner, "note": "bench"},
                                  vpa_id=f"V-{v}", actor={"initials": owner, "role": "at"}), "bench")
    runner.drain_tasks()
    calls_before = runner.stats.copy()

    def step(raw: bytes) -> tuple[float, int]:
        started = time.perf_counter()
        runner.submit_raw(raw, "bench")
        took = time.perf_counter() - started
        return took, len(runner.drain_tasks())

    away_s, moved = step(env(n + 1, "roster.absence_registered", {"absence_id": "U-1", "initials": "AB", "kind": "vacation",
                                                                  "starts_on": "2026-03-02", "ends_on": "2026-03-13"},
                             at="2026-03-02T08:30:00+01:00"))
    back_s, returned = step(env(n + 2, "roster.absence_ended", {"absence_id": "U-1", "initials": "AB"},
                                at="2026-03-02T09:30:00+01:00"))
    # The floor: one put_task per reminder on a copy of its VPA's state.
    ctx = Context(now=runner.engine.clock, settings=settings, roster=runner.engine.roster)
    states = [runner.state_of("reminders", f"V-{v}") for v in range(vpas)]
    started = time.perf_counter()
    for st in states:
        st = json_copy(st)
        for task_id in list(st["tasks"]):
            put_task(st, task_id, {"assignee": "XX", "reasons": ["handover"]}, ctx, "reminders", "x")
    floor_s = time.perf_counter() - started
    res = {"reminders": args.reminders, "vpas_with_them": vpas, "all_vpas": vpas * 2, "members": args.members,
           "away_s": away_s, "moved": moved, "back_s": back_s, "returned": returned, "floor_s": floor_s,
           "away_ratio": away_s / floor_s, "back_ratio": back_s / floor_s}
    print(f"{moved:,} of {args.reminders:,} reminders handed over in {away_s * 1e3:,.0f} ms "
          f"({away_s / floor_s:.1f}x the floor of {floor_s * 1e3:,.0f} ms: one put_task per reminder); "
          f"back to the owner: {returned:,} in {back_s * 1e3:,.0f} ms ({back_s / floor_s:.1f}x); "
          f"{vpas * 2:,} VPAs with reminders, {vpas:,} of them AB's")
    if args.json:
        Path(args.json).write_text(json.dumps({"handover": res}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
