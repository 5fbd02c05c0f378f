"""The embedded runner: every service in one process, one partition engine (DESIGN.md 3).

Default for ``vpa replay`` and ``vpa demo``: no broker needed. It is a thin driver: it numbers
the inputs in the order it gets them, hands them to one ``PartitionEngine`` holding every
processor, and collects what comes out. All semantics (clock, timers, commands handled right after
their cause, duplicates, bad input) live in the engine, shared with the Kafka runner.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Iterable, Iterator, Optional

from services.config.clock_mode import ClockMode
from services.config.settings import Settings
from services.core.clock import Clock, StreamClock
from services.core.processor import Processor
from services.engine.decode import Decoded, decode
from services.engine.partition import PartitionEngine
from services.engine.records import DlqRecord, EngineLimits, Origin
from services.ops.metrics import MetricSink, publish_engine
from services.runners.embedded.latest import LatestTasks

__all__ = ["EmbeddedRunner", "DlqRecord", "replay_lines"]


class _EngineClock:
    """``runner.clock.now()``: the engine's clock, read only."""

    def __init__(self, engine: PartitionEngine) -> None:
        self._engine = engine
        self.mode = engine.mode.value

    def now(self) -> Optional[datetime]:
        return self._engine.clock


class EmbeddedRunner:
    def __init__(self, processors: list[Processor], settings: Settings, clock: Optional[Clock] = None,
                 limits: EngineLimits = EngineLimits(), keep_versions: bool = True,
                 keep_upstream: bool = False, hold_tasks: int = 20_000) -> None:
        mode = ClockMode.stream if clock is None or isinstance(clock, StreamClock) else ClockMode.wall
        self.engine = PartitionEngine(processors, settings, name="embedded", mode=mode, limits=limits)
        self.processors, self.settings = self.engine.processors, settings
        self.clock = _EngineClock(self.engine)
        self.dlq: list[DlqRecord] = []
        self.stats: Counter = self.engine.stats
        self._metrics = MetricSink("embedded")
        self._seq = 0
        # Replay needs only the latest version of each task; the demo writes every version.
        self._keep_versions = keep_versions
        self._emitted: list[dict] = []
        # Without versions: per task its latest version and its whole history, held up to
        # ``hold_tasks`` tasks and then written to temporary files (``LatestTasks``).
        self._latest = LatestTasks(hold_tasks)
        self._erased: list[str] = []
        self._of_vpa: dict[str, set[str]] = {}  # vpa_id -> its task ids, for an erasure
        # The demo's store keeps a read model of the upstream (profiles, events, roster) beside the
        # tasks: it takes the valid upstream envelopes handed in (drain_upstream).
        self._keep_upstream = keep_upstream
        self._upstream: list[Any] = []

    # ---- input ----------------------------------------------------------------------------

    def submit_raw(self, raw: bytes | str, origin: str) -> None:
        """One line or message: decoded, numbered in arrival order, handed to the engine."""
        value = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        self._seq += 1
        outcome = decode(value)
        self.engine.submit(outcome, value, (0, 0, self._seq), Origin(origin))
        if self._keep_upstream and isinstance(outcome, Decoded) and not outcome.envelope.type.startswith("cmd."):
            self._upstream.append(outcome.envelope)
        self._collect()

    def publish_metrics(self) -> None:
        """The engine's gauges (timers, stream time, clock lag), as a Kafka worker publishes them."""
        publish_engine("embedded", "0", self.engine)

    def drain_upstream(self) -> list[Any]:
        """The upstream's valid envelopes handed in since the last call (``keep_upstream``)."""
        out, self._upstream = self._upstream, []
        return out

    def advance_to(self, t: datetime) -> None:
        """Move the clock to ``t`` (``--until``, or wall ticks), firing timers on the way."""
        self.engine.advance(t)
        self._collect()

    def drain_tasks(self) -> list[dict]:
        """Task versions emitted since the last call (when the runner keeps no versions: the latest
        of each task since the last call, with the history of all the versions it folded)."""
        if self._keep_versions:
            out, self._emitted = self._emitted, []
            return out
        return list(self.drain_latest())

    def drain_latest(self) -> Iterator[dict]:
        """Without versions: the latest version of every task since the last call, with its whole
        history, sorted by task_id, one at a time (``vpa replay`` writes them as they come)."""
        yield from self._latest.drain()

    def known_vpas(self) -> list[str]:
        """The VPAs this runner keeps state or tasks of (its slots are keyed by VPA; the rest by ``__``)."""
        return sorted(set(self._of_vpa) | {k for k in self.engine.slots if not k.startswith("__")})

    def drain_erased(self) -> list[str]:
        """Task ids erased since the last call (their earlier versions were drained already)."""
        out, self._erased = self._erased, []
        return out

    def state_of(self, service: str, vpa_id: str) -> Optional[dict]:
        slot = self.engine.slots.get(vpa_id)
        return slot["states"].get(service) if slot else None

    # ---- internals ------------------------------------------------------------------------

    def _collect(self) -> None:
        out = self.engine.take_output()
        if self._keep_versions:
            self._emitted += out.tasks
            for task in out.tasks:
                self._of_vpa.setdefault(task["vpa_id"], set()).add(task["task_id"])
        else:
            for task in out.tasks:  # versions carry their own history entry: put together there (tasks.fold)
                self._of_vpa.setdefault(task["vpa_id"], set()).add(task["task_id"])
                self._latest.put(task)
        if out.erased or out.erased_vpas:
            # every task the runner ever put out for an erased VPA, named by a service or not
            gone = set(out.erased).union(*(self._of_vpa.pop(v, set()) for v in out.erased_vpas))
            self._emitted = [t for t in self._emitted if t["task_id"] not in gone]
            self._latest.erase(gone)
            self._erased += sorted(gone)
        self.dlq += out.dlq
        self._metrics.apply(out.counts)
        self.engine.clear_dirty()  # the slots are the store itself: nothing to write


def replay_lines(runner: EmbeddedRunner, sources: Iterable[tuple[str, int, str]]) -> None:
    """Feed (file, line number, text) in the given order; decoding errors go to the DLQ."""
    for name, lineno, text in sources:
        runner.submit_raw(text, f"{name}:{lineno}")
