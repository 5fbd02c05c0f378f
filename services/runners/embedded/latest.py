"""The latest version of every task with its whole history: what ``vpa replay`` writes at the end.

A replay of a large company holds every task it ever made until it ends (the output is sorted by
task_id), so memory would grow with the tasks ever created. ``LatestTasks`` holds at most
``hold`` tasks: when it holds more, it writes them, sorted by task_id, to a temporary file (a
*run*) and forgets them. ``drain`` merges the runs and what it still holds, by task_id, folding a
task's records in the order they were written, exactly as one record held all along would have
been folded: a later version carries the history entries of its own change (``core.tasks``), a
version that carries its whole history replaces the history, an older version is ignored.

An erased task leaves what is held at once; its records already written are skipped when merged
(only those written before the erasure: a task id made again afterwards counts from then on).
"""
from __future__ import annotations

import heapq
import tempfile
from typing import IO, Any, Iterable, Iterator, Optional

import msgspec

from services.core.tasks import history_after

# version, the task without history as compact JSON, history. Not compressed: at most ``hold``
# tasks are held (about 30 MB at 20,000), and compressing every version took a tenth of a replay.
Held = tuple[int, bytes, list[dict[str, Any]]]

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
# A run's line: task_id, version, history, and the task as the JSON it was held as (not parsed)
_RUN_LINE = msgspec.json.Decoder(tuple[str, int, list[dict[str, Any]], msgspec.Raw])


def _fold(acc: Optional[Held], version: int, doc: bytes, history: list[dict[str, Any]]) -> Optional[Held]:
    """``acc`` with one more record of the task: None when the record is older (nothing changes)."""
    if acc is None:
        return version, doc, history
    if version <= acc[0]:
        return None
    return version, doc, history_after(acc[2], version, history)


class LatestTasks:
    def __init__(self, hold: int = 20_000) -> None:
        self._hold = hold
        self._held: dict[str, Held] = {}
        self._runs: list[IO[bytes]] = []
        self._erased_before: dict[str, int] = {}  # task_id -> records of runs below this index are void
        # task_id -> its highest version, held or written out: an older one arriving after the task
        # was written out changes nothing either (an int per task; the runner keeps their ids anyway)
        self._top: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    @property
    def runs(self) -> int:
        return len(self._runs)

    def put(self, task: dict[str, Any]) -> None:
        """One version of a task, as a service published it (with its own history entry)."""
        task_id = task["task_id"]
        if task["version"] <= self._top.get(task_id, 0):
            return  # an older version (or the same again) changes nothing
        self._top[task_id] = task["version"]
        history = list(task.get("history") or [])
        held = self._held.get(task_id)
        doc = _ENCODER.encode({**task, "history": None})
        folded = _fold(held, task["version"], doc, history)
        assert folded is not None
        self._held[task_id] = folded
        if len(self._held) > self._hold:
            self._spill()

    def erase(self, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            self._held.pop(task_id, None)
            self._top.pop(task_id, None)
            if self._runs:
                self._erased_before[task_id] = len(self._runs)

    def drain(self) -> Iterator[dict[str, Any]]:
        """Every task's latest version with its whole history, sorted by task_id, one at a time;
        then nothing is held and no run is left."""
        held, self._held = self._held, {}
        runs, self._runs = self._runs, []
        erased, self._erased_before = self._erased_before, {}
        self._top = {}
        try:
            sources: list[Iterator[tuple[str, int, int, bytes, list[dict[str, Any]]]]] = [
                self._read(run, n, erased) for n, run in enumerate(runs)]
            sources.append(((tid, len(runs), *held.pop(tid)) for tid in sorted(held)))
            current: Optional[str] = None
            acc: Optional[Held] = None
            for task_id, _, version, doc, history in heapq.merge(*sources, key=lambda r: (r[0], r[1])):
                if task_id != current:
                    if acc is not None:
                        yield _task(acc)
                    current, acc = task_id, None
                acc = _fold(acc, version, doc, history) or acc
            if acc is not None:
                yield _task(acc)
        finally:
            for run in runs:
                run.close()

    def _spill(self) -> None:
        run = tempfile.TemporaryFile("w+b", prefix="vpa-replay-tasks-")
        for task_id in sorted(self._held):
            version, doc, history = self._held[task_id]
            run.write(_ENCODER.encode([task_id, version, history, msgspec.Raw(doc)]))
            run.write(b"\n")  # compact JSON has no newline of its own
        run.flush()
        self._runs.append(run)
        self._held.clear()

    @staticmethod
    def _read(run: IO[bytes], n: int,
              erased: dict[str, int]) -> Iterator[tuple[str, int, int, bytes, list[dict[str, Any]]]]:
        run.seek(0)
        for line in run:
            task_id, version, history, raw = _RUN_LINE.decode(line)
            doc = bytes(raw)
            if erased.get(task_id, 0) > n:
                continue  # erased after this run was written
            yield task_id, n, version, doc, history


def _task(held: Held) -> dict[str, Any]:
    version, doc, history = held
    task: dict[str, Any] = _DECODER.decode(doc)
    task["history"] = history
    return task
