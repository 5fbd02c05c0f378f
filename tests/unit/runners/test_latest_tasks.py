"""``vpa replay`` holds at most so many tasks and writes the rest to temporary files (issue 22):
what it writes at the end is the same, byte for byte, however often it had to write them out."""
from __future__ import annotations

import random

from services.app.bootstrap import processors
from services.config.settings import Settings
from services.core.clock import StreamClock
from services.runners.embedded.latest import LatestTasks
from services.runners.embedded.replay import render
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders


def version(task_id: str, v: int, *, whole: bool = False, status: str = "open") -> dict:
    """A task version as a service publishes it: the entry of its own change (or, as versions
    written before history left the state did, all of them)."""
    entries = [{"at": f"2026-01-01T00:00:{n:02d}+01:00", "change": f"{task_id} v{n}", "by": "AB"}
               for n in range(1, v + 1)]
    return {"task_id": task_id, "version": v, "status": status, "title": f"{task_id} at {v}",
            "history": entries if whole else entries[-1:]}


def drained(hold: int, steps: list) -> list[dict]:
    latest = LatestTasks(hold)
    for kind, value in steps:
        if kind == "put":
            latest.put(value)
        else:
            latest.erase(value)
    return list(latest.drain())


def random_steps(seed: int) -> list:
    rnd = random.Random(seed)
    versions: dict[str, int] = {}
    steps: list = []
    for _ in range(300):
        task_id = f"T{rnd.randrange(25):02d}"
        r = rnd.random()
        if r < 0.08 and task_id in versions:
            steps.append(("erase", [task_id]))
            del versions[task_id]  # made again from version 1 (a journey stage after an erasure)
        elif r < 0.15 and task_id in versions:
            steps.append(("put", version(task_id, rnd.randint(1, versions[task_id]))))  # older, or again
        else:
            versions[task_id] = versions.get(task_id, 0) + 1
            steps.append(("put", version(task_id, versions[task_id], whole=rnd.random() < 0.1)))
    return steps


def test_the_drain_is_the_same_whether_tasks_were_written_out_or_not():
    for seed in range(30):
        steps = random_steps(seed)
        expected = drained(10_000, steps)
        for hold in (1, 2, 3, 7):
            assert drained(hold, steps) == expected, (seed, hold)


def test_a_task_folds_its_history_across_runs_and_ignores_an_older_version():
    steps = [("put", version("A", 1)), ("put", version("B", 1)), ("put", version("A", 2)),
             ("put", version("A", 1)), ("put", version("A", 3))]
    [a, b] = drained(1, steps)
    assert (a["version"], [h["change"] for h in a["history"]]) == (3, ["A v1", "A v2", "A v3"])
    assert (b["version"], len(b["history"])) == (1, 1)


def test_an_erased_task_is_gone_and_one_made_again_afterwards_starts_anew():
    steps = [("put", version("A", 1)), ("put", version("A", 2)), ("put", version("B", 1)),
             ("erase", ["A"]), ("put", version("C", 1)), ("put", version("A", 1))]
    for hold in (1, 100):
        [a, b, c] = drained(hold, steps)
        assert (a["task_id"], a["version"], len(a["history"])) == ("A", 1, 1)
        assert [b["task_id"], c["task_id"]] == ["B", "C"]


def test_the_drain_leaves_nothing_held_and_closes_its_files():
    latest = LatestTasks(1)
    for n in range(5):
        latest.put(version(f"T{n}", 1))
    assert (latest.runs, len(latest)) == (2, 1)  # written out whenever it held more than one
    assert len(list(latest.drain())) == 5
    assert latest.runs == 0 and len(latest) == 0 and list(latest.drain()) == []


def test_a_replay_writing_its_tasks_out_writes_the_same_text():
    lines = [builders.line(**builders.as_kwargs(builders.registered(f"V-{n}", started_on="2026-01-05")))
             for n in range(40)]
    lines += [builders.line(**builders.as_kwargs(builders.vpa_absence(f"a-{n}", "2026-12-01", "2026-12-30",
                                                                       vpa_id=f"V-{n}")))
              for n in range(40)]

    def replay(hold: int) -> tuple[str, int]:
        runner = EmbeddedRunner(processors(), Settings(), StreamClock(), keep_versions=False, hold_tasks=hold)
        for n, line in enumerate(lines):
            runner.submit_raw(line, f"t:{n}")
        runner.advance_to(builders.decoded("clock.tick", at="2027-03-01T09:00:00+01:00").occurred_at)
        runs = runner._latest.runs  # noqa: SLF001 - how often it wrote out, to show the test wrote out
        return render(list(runner.drain_latest())), runs

    held, _ = replay(100_000)
    written, runs = replay(7)
    assert runs > 5 and written == held
