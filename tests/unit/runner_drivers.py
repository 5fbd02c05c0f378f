"""Both drivers of the one engine behind the same small test API, for the runner contract suite.

* ``embedded``: the EmbeddedRunner as ``vpa replay`` uses it.
* ``kafka``: the Kafka runner's ``PartitionWorker`` (its ordered merge, its flush: outputs, then
  state, then acks) over doubles of what faust and the broker give it: a dict for the state table,
  a producer that records what is sent, a roster feed over a list, and records handed in as faust
  hands them (topic, partition, offset, value). No broker: the rules of the driver, not the client.

Test API: ``submit_raw(raw, origin)``, ``advance_to(t)``, ``clock.now()``, ``stats``, ``dlq``
(records with ``reason``, ``service``, ``key``, ``origin.label``) and ``state_of(service, vpa)``.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Optional

from schemas.envelope import topic_for_type
from services.common.clock import ClockMode, StreamClock
from services.common.decode import Decoded, decode
from services.common.embedded_runner import EmbeddedRunner
from services.common.engine import EngineLimits
from services.common.kafka.roster_feed import RosterRecord
from services.common.kafka.worker import PartitionWorker
from services.common.metrics import StreamMetrics
from services.common.settings import Settings

DRIVERS = ("embedded", "kafka")


def make(driver: str, *processors: Any) -> Any:
    if driver == "embedded":
        return EmbeddedRunner(list(processors), Settings(), StreamClock())
    assert len(processors) == 1, "a Kafka worker runs one service"
    return WorkerRunner(processors[0])


@dataclass
class SentDlq:
    reason: str
    service: str
    key: Optional[str]
    value: bytes
    origin: Any


class _Journal(dict):
    """The table double; with the producer and stream doubles it writes what happened, in order,
    into ``journal`` (state written, producer flushed, input acked)."""

    def __init__(self, journal: list[str]) -> None:
        super().__init__()
        self.journal = journal

    def __setitem__(self, key: str, value: Any) -> None:
        self.journal.append("state")
        super().__setitem__(key, value)


class _Producer:
    def __init__(self, journal: Optional[list[str]] = None) -> None:
        self.records: list[tuple[str, Optional[bytes], bytes, Optional[int], list]] = []
        self.journal = journal if journal is not None else []

    async def send(self, topic, key, value, partition, timestamp, headers):  # noqa: ANN001, ANN201
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        self.records.append((topic, key, value, partition, list(headers or [])))
        return fut

    async def flush(self) -> None:
        self.journal.append("flush")


class _Feed:
    """The roster feed double: one roster partition, every record read at once."""

    def __init__(self) -> None:
        self.partitions = [0]
        self.records: list[RosterRecord] = []
        self.started = asyncio.Event()
        self.started.set()

    def subscribe(self, wake):  # noqa: ANN001, ANN201
        return lambda: None

    def next_record(self, partition: int, cursor: int) -> Optional[RosterRecord]:
        return next((r for r in self.records if r.offset >= cursor), None)

    def caught_up(self, partition: int, cursor: int) -> bool:
        return cursor >= len(self.records)

    def fetched_to(self, partition: int) -> int:
        return len(self.records)


class _Stream:
    def __init__(self, journal: Optional[list[str]] = None) -> None:
        self.journal = journal if journal is not None else []

    async def ack(self, event: Any) -> bool:
        self.journal.append("ack")
        return True


class _Driver:
    """The parts of a StreamDriver a PartitionWorker uses, without faust."""

    def __init__(self, proc: Any) -> None:
        self.proc, self.service = proc, proc.name
        self.settings = Settings()
        self.cfg = SimpleNamespace(input_idle_seconds=0.0, upstream_wait_seconds=0.0, wall_tick_seconds=1.0)
        self.mode = ClockMode.stream
        self.limits = EngineLimits()
        self.follows: tuple[str, ...] = ()
        self.emits_marks = False
        self.co_topics = tuple(t for t in ("vpa.events", "vpa.commands") if t in proc.topics)
        self.followed_topics: dict[str, str] = {}
        self.own_feedback = f"test-{self.service}-commands"
        self.metrics = StreamMetrics(self.service)
        self.journal: list[str] = []
        self.table: dict[str, Any] = _Journal(self.journal)
        self.roster = _Feed()
        self.app = SimpleNamespace(producer=_Producer(self.journal))
        self.worker: Optional[PartitionWorker] = None
        self.in_flight: dict[tuple[str, int], int] = {}  # records on the broker the worker has not been handed
        # records "on the broker" that read_range finds: (topic, partition) -> offset -> event
        self.broker: dict[tuple[str, int], dict[int, Any]] = {}
        self.reads: list[tuple[str, int, int, int]] = []

    def highwater(self, topic: str, partition: int) -> Optional[int]:
        """What the client has seen of the partition: the records handed in, and those on the
        ``broker`` (written, but dropped by the client or not handed over yet)."""
        buf = self.worker.inputs.get(topic) if self.worker else None
        written = max(self.broker.get((topic, partition), {}), default=-1) + 1
        return max((buf.next_offset or 0) if buf else 0, written)

    def end_offset_since(self, topic: str, partition: int, since: float, wake: Any) -> Optional[int]:
        """The broker double always answers at once: what was handed in, plus what a test says is
        written but not fetched yet (``in_flight``)."""
        if topic == "at.roster":
            return len(self.roster.records) + self.in_flight.get((topic, partition), 0)
        return self.highwater(topic, partition) + self.in_flight.get((topic, partition), 0)

    def committed(self, topic: str, partition: int) -> Optional[int]:
        return None

    async def read_range(self, topic: str, partition: int, start: int, end: int, timeout: float) -> list[Any]:
        self.reads.append((topic, partition, start, end))
        held = self.broker.get((topic, partition), {})
        return [held[o] for o in range(start, end) if o in held]

    def pause(self, topic: str, partition: int) -> None:
        pass

    def resume(self, topic: str, partition: int) -> None:
        pass


class _Clock:
    def __init__(self, worker: PartitionWorker) -> None:
        self._worker = worker

    def now(self) -> Optional[datetime]:
        return self._worker.engine.clock


class WorkerRunner:
    def __init__(self, proc: Any) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # the worker starts background tasks from plain calls
        self.d = _Driver(proc)
        self.d.roster.started = asyncio.Event()
        self.d.roster.started.set()
        self.worker = self.d.worker = PartitionWorker(self.d, 0)
        self.clock = _Clock(self.worker)
        self._offsets: Counter = Counter()
        self._labels: dict[tuple[str, int], str] = {}
        self._stream = _Stream(self.d.journal)

    @property
    def stats(self) -> Counter:
        return self.worker.engine.stats

    @property
    def dlq(self) -> list[SentDlq]:
        out = []
        for topic, key, value, _, headers in self.d.app.producer.records:
            if topic != "vpa.dlq":
                continue
            h = {k: v.decode() for k, v in headers}
            label = self._labels.get((h["origin_topic"], int(h["origin_offset"])), h["origin_topic"])
            out.append(SentDlq(h["reason"], h["service"], key.decode() if key else None, value,
                               SimpleNamespace(label=label)))
        return out

    def state_of(self, service: str, vpa_id: str) -> Optional[dict]:
        slot = self.worker.slots.get(vpa_id)
        return slot["states"].get(service) if slot else None

    def submit_raw(self, raw: bytes | str, origin: str) -> None:
        value = raw.encode() if isinstance(raw, str) else raw
        outcome = decode(value)
        topic = topic_for_type(outcome.envelope.type) if isinstance(outcome, Decoded) else None
        topic = topic if topic in ("at.roster", "vpa.events", "vpa.commands") else "vpa.events"
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        self._labels[(topic, offset)] = origin
        if topic == "at.roster":
            self.d.roster.records.append(RosterRecord(0, offset, outcome, value, None, 0))
        else:
            vpa_id = outcome.envelope.vpa_id if isinstance(outcome, Decoded) else None
            key = vpa_id.encode() if vpa_id else None  # keyed like the contract (DESIGN 4.1)
            message = SimpleNamespace(topic=topic, partition=0, offset=offset, key=key, timestamp=time.time())
            self.worker.offer(self._stream, SimpleNamespace(message=message, value=value))
        self._run()

    def advance_to(self, t: datetime) -> None:
        self.worker.engine.advance(t)
        self.worker._collect(None, 0)
        self._run()

    def _run(self) -> None:
        async def background() -> None:  # what the worker started in the background (reading skipped records)
            for _ in range(10):
                await asyncio.sleep(0)

        self.loop.run_until_complete(background())
        while True:
            action, arg = self.worker._choose(time.monotonic())
            if action != "step":
                break
            self.worker._step(*arg)
        self.loop.run_until_complete(self.worker._flush())

    def sent(self, topic: str) -> list[dict]:
        return [json.loads(v) for t, _, v, _, _ in self.d.app.producer.records if t == topic]
