"""``vpa replay``: JSONL files into the embedded pipeline in stream time (DESIGN 4.7, 5.1 to 5.4).

The runner itself is wired in ``services.entrypoints.replay``."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional, TextIO

from services.common.clock import StreamClock
from services.common.embedded_runner import EmbeddedRunner
from services.common.settings import Settings
from services.common.timeutil import parse



@dataclass(frozen=True)
class Line:
    source: str
    lineno: int
    text: str
    at: Optional[datetime]



def _occurred_at(text: str) -> Optional[datetime]:
    try:
        value = json.loads(text).get("occurred_at")
        at = parse(value)
        return at if at.tzinfo is not None else None
    except Exception:  # anything unreadable is sorted first and rejected by the runner
        return None


def read_lines(paths: Iterable[str]) -> list[Line]:
    lines: list[Line] = []
    for path in paths:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            for n, text in enumerate(fh, 1):
                if text.strip():
                    lines.append(Line(path, n, text.strip(), _occurred_at(text)))
    # Stable sort by occurred_at: ties keep command-line order, then line order (DESIGN 5.1).
    # Comparing aware datetimes with datetime.min would fail, so unreadable lines get their own bucket.
    return sorted(lines, key=lambda l: (l.at is not None, l.at.timestamp() if l.at else 0.0))


def feed(runner: EmbeddedRunner, paths: list[str], until: Optional[datetime] = None) -> EmbeddedRunner:
    """Every line of ``paths`` into ``runner`` in replay order, then the clock to ``until``."""
    for line in _with_progress(read_lines(paths)):
        # The file's own bytes (read with surrogateescape): invalid UTF-8 is then an invalid line.
        runner.submit_raw(line.text.encode("utf-8", "surrogateescape"), f"{line.source}:{line.lineno}")
    if until is not None:
        runner.advance_to(until)  # an --until before the clock changes nothing (5.4)
    return runner


PROGRESS_FROM_LINES = 20_000  # smaller replays finish in seconds: no bar


def _with_progress(lines: list[Line]) -> Iterable[Line]:
    from services.common.progress import track

    return track(lines, len(lines), "vpa replay", "lines", PROGRESS_FROM_LINES)


def final_tasks(task_versions: Iterable[dict]) -> list[dict]:
    """Latest version of every task, sorted by task_id: the replay output."""
    latest: dict[str, dict] = {}
    for t in task_versions:
        cur = latest.get(t["task_id"])
        if cur is None or t["version"] > cur["version"]:
            latest[t["task_id"]] = t
    return [latest[k] for k in sorted(latest)]


def report(runner: EmbeddedRunner, err: Optional[TextIO] = None) -> None:
    err = err or sys.stderr
    for rec in runner.dlq:
        print(f"vpa replay: {rec.origin.label}: {rec.reason}", file=err)
    s = runner.stats
    print(
        f"vpa replay: {s['processed']} processed, {s['invalid']} invalid, {s['rejected']} rejected, "
        f"{s['unknown_types']} unknown types skipped, {s['duplicates']} duplicates ignored",
        file=err,
    )
