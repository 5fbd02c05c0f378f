"""``vpa replay``: JSONL files into the embedded pipeline in stream time (DESIGN 4.7, 5.1 to 5.4).

The runner itself is wired in ``services.app.entrypoints.replay``."""
from __future__ import annotations

import heapq
import json
import sys
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Optional, TextIO

import msgspec

from services.core.tasks import fold
from services.core.timeutil import parse
from services.runners.embedded.runner import EmbeddedRunner

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class Line:
    source: str
    lineno: int
    text: str
    at: Optional[datetime]


class _Stamp(msgspec.Struct):
    """The one field the first pass reads of a line (msgspec skips the rest without building it)."""

    occurred_at: Any = None


_STAMP = msgspec.json.Decoder(_Stamp)


def _occurred_at(text: str) -> Optional[datetime]:
    try:
        value = _STAMP.decode(text).occurred_at
    except Exception:  # not an object, or what only Python's reader takes (NaN): read as it reads
        try:
            value = json.loads(text).get("occurred_at")
        except Exception:
            return None
    try:
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


def stream_lines(paths: list[str]) -> tuple[int, Iterator[tuple[str, int, str]]]:
    """The lines of ``paths`` in ``read_lines``'s order, as (file, line number, text), without
    holding them all: a first pass notes each line's instant (8 bytes a line) and whether each
    file is in time order already (the simulator's files are); the second merges the files line
    by line. Unreadable lines come first, as in ``read_lines``; a file out of order is sorted in
    memory. Returns the number of lines and the iterator."""
    unreadable: list[tuple[str, int, str]] = []
    stamps: list[array] = []
    in_order: list[bool] = []
    total = 0
    for path in paths:
        ts, last, ordered_ = array("d"), float("-inf"), True
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                total += 1
                at = _occurred_at(text)
                if at is None:
                    unreadable.append((path, n, text.strip()))
                    continue
                t = at.timestamp()
                ordered_ = ordered_ and t >= last
                last = max(last, t)
                ts.append(t)
        stamps.append(ts)
        in_order.append(ordered_)

    def one(i: int, path: str) -> Iterator[tuple[float, int, int, str]]:
        k = 0
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip() or (unreadable_at.get(path) and n in unreadable_at[path]):
                    continue
                yield stamps[i][k], i, n, text.strip()
                k += 1

    unreadable_at: dict[str, set[int]] = {}
    for path, n, _ in unreadable:
        unreadable_at.setdefault(path, set()).add(n)

    def files() -> Iterator[tuple[str, int, str]]:
        yield from unreadable
        streams = []
        for i, path in enumerate(paths):
            lines = one(i, path)
            streams.append(lines if in_order[i] else iter(sorted(lines, key=lambda x: (x[0], x[2]))))
        for _, i, n, text in heapq.merge(*streams, key=lambda x: (x[0], x[1], x[2])):
            yield paths[i], n, text

    return total, files()


def feed(runner: EmbeddedRunner, paths: list[str], until: Optional[datetime] = None,
         on_progress: Optional[Callable[[int, int], None]] = None) -> EmbeddedRunner:
    """Every line of ``paths`` into ``runner`` in replay order (``stream_lines``), then the clock to
    ``until``. ``on_progress(done, total)`` is called every 1% of the lines (a job's progress)."""
    total, lines = stream_lines(paths)
    step = max(1, total // 100)
    for n, (source, lineno, text) in enumerate(_with_progress(lines, total), 1):
        if on_progress is not None and n % step == 0:
            on_progress(n, total)
        # The file's own bytes (read with surrogateescape): invalid UTF-8 is then an invalid line.
        runner.submit_raw(text.encode("utf-8", "surrogateescape"), f"{source}:{lineno}")
    if until is not None:
        runner.advance_to(until)  # an --until before the clock changes nothing (5.4)
    return runner


PROGRESS_FROM_LINES = 20_000  # smaller replays finish in seconds: no bar


def _with_progress(lines: Iterable, total: int) -> Iterable:
    from services.ops.progress import track

    return track(lines, total, "vpa replay", "lines", PROGRESS_FROM_LINES)


def final_tasks(task_versions: Iterable[dict]) -> list[dict]:
    """Latest version of every task with its whole history, sorted by task_id: the replay output."""
    latest: dict[str, dict] = {}
    for t in task_versions:
        latest[t["task_id"]] = fold(latest.get(t["task_id"]), t)
    return [latest[k] for k in sorted(latest)]


def render(tasks: list[dict]) -> str:
    """The text ``vpa replay`` writes: the tasks as an indented JSON array."""
    return "".join(render_parts(tasks))


def render_parts(tasks: Iterable[dict]) -> Iterator[str]:
    """``render`` piece by piece, one task at a time, so writing a large replay never holds its
    whole text. The text is that of ``json.dumps(tasks, indent=2, ensure_ascii=False)``, made in C
    (Python's own encoder runs in Python once it indents: it took 7% of a replay). The one
    difference, a float's exponent (1e16 for 1e+16), never shows: a task has no float field."""
    first = True
    for task in tasks:
        text = msgspec.json.format(_ENCODER.encode(task), indent=2).decode("utf-8")
        yield ("[\n  " if first else ",\n  ") + text.replace("\n", "\n  ")
        first = False
    yield "[]\n" if first else "\n]\n"


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
