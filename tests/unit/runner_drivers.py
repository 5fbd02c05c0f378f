"""The drivers of the one engine behind the same small test API, for the runner contract suite.

* ``embedded``: the EmbeddedRunner as ``vpa replay`` uses it.
* ``kafka-local``: the Kafka runner's whole driver (``StreamDriver``: its consumer group, producer,
  roster feed, partition store and workers) on the in-memory broker (``LocalBroker``). Inputs are
  produced to their topics and the test goes on once the group has committed them all and the
  worker is settled. The integration tests run the same suite with the driver on the real broker
  (``tests/integration/test_runner_contract_kafka.py``): three drivers, one suite.

``WorkerRunner`` is the partition worker alone over doubles of what its driver gives it (a memory
store, a producer that records what is sent, a roster feed over a list), for the tests of the
worker's merge and flush that step it by hand.

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
from typing import Any, Callable, Optional

from schemas.envelope import topic_for_type
from schemas.topics import CONTRACT_TOPICS, Topic
from services.broker.dead_letters import DeadLetters
from services.broker.local import LocalBroker
from services.broker.port import Record
from services.config.clock_mode import ClockMode
from services.config.kafka import KafkaConfig
from services.config.settings import Settings
from services.core.clock import MachineClock, StreamClock, SystemClock
from services.core.roster import roster_key
from services.engine.decode import Decoded, decode
from services.engine.records import EngineLimits
from services.ops.metrics import StreamMetrics
from services.runners.embedded.runner import EmbeddedRunner
from services.runners.kafka.roster_feed import RosterRecord
from services.runners.kafka.slots import TableSlots
from services.runners.kafka.state_store import MemoryStore
from services.runners.kafka.stream_app import StreamDriver
from services.runners.kafka.worker import PartitionWorker
from tests.waiting import poll

DRIVERS = ("embedded", "kafka-local")
OPEN: list["StreamRunner"] = []  # closed after each test (tests/unit/runners/conftest.py)


def make(driver: str, *processors: Any) -> Any:
    if driver == "embedded":
        return EmbeddedRunner(list(processors), Settings(), StreamClock())
    assert len(processors) == 1, "a Kafka driver runs one service"
    if driver == "kafka-local":
        return StreamRunner(processors[0])
    if driver == "worker":
        return WorkerRunner(processors[0])
    raise ValueError(driver)


def as_input(raw: bytes | str) -> tuple[str, Optional[bytes], bytes, Any]:
    """(topic, key, value, decoded) of a test's input: on the topic of its type (``vpa.events`` for
    what does not decode), keyed like the contract (DESIGN 4.1): by VPA, a roster record by the
    member's initials."""
    value = raw.encode() if isinstance(raw, str) else raw
    outcome = decode(value)
    topic = topic_for_type(outcome.envelope.type) if isinstance(outcome, Decoded) else None
    topic = topic if topic in (Topic.roster, Topic.events, Topic.commands) else Topic.events
    key = None
    if isinstance(outcome, Decoded):
        name = roster_key(outcome.envelope) if topic == Topic.roster else outcome.envelope.vpa_id
        key = name.encode() if name else None
    return str(topic), key, value, outcome


def dead_letters(records: list[tuple[Optional[bytes], bytes, Any]], labels: dict[tuple[str, int], str]
                 ) -> list[SentDlq]:
    """``vpa.dlq`` records (key, value, headers), with the test's label of their origin."""
    out = []
    for key, value, headers in records:
        h = {k: v.decode() for k, v in headers}
        label = labels.get((h["origin_topic"], int(h["origin_offset"])), h["origin_topic"])
        out.append(SentDlq(h["reason"], h["service"], key.decode() if key else None, value,
                           SimpleNamespace(label=label)))
    return out


def state_in(worker: PartitionWorker, service: str, vpa_id: str) -> Optional[dict]:
    slot = worker.slots.get(vpa_id)
    return slot["states"].get(service) if slot else None


def close_all() -> None:
    while OPEN:
        OPEN.pop().close()


class StreamRunner:
    """A ``StreamDriver`` for one service on the broker ``broker_for(cfg)`` makes (the local one by
    default), on partition 0 of one-partition topics, in stream mode. ``cfg`` adds to the settings
    (the real broker's address)."""

    SETTLE_TIMEOUT = 60.0

    def __init__(self, proc: Any, broker_for: Callable[[KafkaConfig], Any] = lambda cfg: LocalBroker(),
                 machine: Optional[MachineClock] = None, **cfg: Any) -> None:
        self.cfg = KafkaConfig(**{"clock_mode": "stream", "input_idle_seconds": 0, "state_store": "memory", "group_prefix": "contract", "partitions": 1,
                                  "metrics_port": 0, **cfg})
        self.broker = broker = broker_for(self.cfg)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.driver = StreamDriver(proc, Settings(), self.cfg, (), False, machine=machine, broker=broker)
        if isinstance(broker, LocalBroker):
            for topic in (*CONTRACT_TOPICS, self.driver.changelog, self.driver.own_feedback):
                broker.create_topic(topic, 1)
        self._labels: dict[tuple[str, int], str] = {}
        self._written: dict[str, int] = {}  # topic -> the offset after the last record this test wrote
        self._stop = asyncio.Event()
        self._producer = broker.producer()
        self.loop.run_until_complete(self._producer.start())
        self._task = self.loop.create_task(self.driver.run(self._stop))
        OPEN.append(self)
        self.clock = _DriverClock(self)
        self.settle()

    @property
    def worker(self) -> PartitionWorker:
        return self.driver.workers[0]

    @property
    def stats(self) -> Counter:
        return self.worker.engine.stats

    @property
    def dlq(self) -> list[SentDlq]:
        return dead_letters([(r.key, r.value or b"", r.headers) for r in self.read(Topic.dlq)], self._labels)

    def state_of(self, service: str, vpa_id: str) -> Optional[dict]:
        return state_in(self.worker, service, vpa_id)

    def submit_raw(self, raw: bytes | str, origin: str) -> None:
        topic, key, value, _ = as_input(raw)
        offset = self.loop.run_until_complete(self._producer.send_and_wait(topic, key, value, 0))
        self._labels[(str(topic), offset)] = origin
        self._written[str(topic)] = offset + 1
        self.settle()

    def advance_to(self, t: datetime) -> None:
        """A ``clock.tick`` at ``t``: how stream time moves on Kafka without an event."""
        self.submit_raw(json.dumps({"event_id": f"advance-{t.isoformat()}", "type": "clock.tick",
                                    "occurred_at": t.isoformat(), "data": {}}), f"advance to {t.isoformat()}")

    def settle(self) -> None:
        self.until(self._settled, "the driver to settle")

    def until(self, condition: Callable[[], Any], what: str, timeout: Optional[float] = None) -> Any:
        """Run the driver until ``condition()`` (or its awaited value) holds."""
        return self.loop.run_until_complete(poll(condition, timeout or self.SETTLE_TIMEOUT, what, interval=0.002))

    async def _settled(self) -> bool:
        if self._task.done():
            raise AssertionError(f"the driver stopped: {self.driver.failed or self._task.exception()!r}")
        worker = self.driver.workers.get(0)
        if worker is None:
            return False
        tps = [(topic, 0) for topic in worker.inputs] + [(Topic.roster, 0)]
        ends = await self.driver.offsets.end_offsets(tps)
        # Everything below is looked at with no await in between: the driver runs during an await,
        # and a record fetched meanwhile would be read as handled.
        worker = self.driver.workers.get(0)
        if worker is None or worker.task is None or worker.task.done() or not worker.settled():
            return False

        def end(topic: str) -> int:
            # The broker's end, and at least every record this test wrote (known without asking).
            return max(ends.get((topic, 0), 0), self._written.get(str(topic), 0))
        if any(buf.fetched_to < end(topic) for topic, buf in worker.inputs.items()):
            return False
        return worker.engine.roster_positions.get(0, 0) >= end(Topic.roster)

    def read(self, topic: str) -> list[Record]:
        async def read() -> list[Record]:
            end = (await self.driver.offsets.end_offsets([(topic, 0)])).get((topic, 0), 0)
            return [r async for batch in self.broker.read_range((topic, 0), 0, end, 30) for r in batch]
        return self.loop.run_until_complete(read())

    def sent(self, topic: str) -> list[dict]:
        return [json.loads(r.value) for r in self.read(topic) if r.value is not None]

    def close(self) -> None:
        if self in OPEN:
            OPEN.remove(self)
        if self.loop.is_closed():
            return
        self._stop.set()
        self.loop.run_until_complete(asyncio.wait((self._task,), timeout=10))
        self.loop.run_until_complete(self._producer.stop())
        self.loop.close()


class _DriverClock:
    def __init__(self, runner: StreamRunner) -> None:
        self._runner = runner

    def now(self) -> Optional[datetime]:
        return self._runner.worker.engine.clock


@dataclass
class SentDlq:
    reason: str
    service: str
    key: Optional[str]
    value: bytes
    origin: Any


class _Store(MemoryStore):
    """The partition store double; with the producer and commit doubles it writes what happened, in
    order, into ``journal`` (outputs sent, changelog sent, state stored, offsets committed)."""

    def __init__(self, journal: list[str]) -> None:
        super().__init__()
        self.journal = journal

    def apply(self, items: Any, changelog_offset: int) -> None:
        self.journal.append("state")
        super().apply(items, changelog_offset)

    @property
    def table(self) -> dict[str, bytes]:
        return self._data


class _Producer:
    generation = 0

    def __init__(self, journal: Optional[list[str]] = None, changelog: str = "") -> None:
        self.records: list[tuple[str, Optional[bytes], Optional[bytes], Optional[int], list]] = []
        self.journal = journal if journal is not None else []
        self.changelog = changelog
        self._offsets: Counter = Counter()

    async def send(self, topic, key, value, partition=None, headers=()):  # noqa: ANN001, ANN201
        fut = asyncio.get_running_loop().create_future()
        offset = self._offsets[(topic, partition)]
        self._offsets[(topic, partition)] += 1
        fut.set_result(SimpleNamespace(offset=offset))
        self.records.append((topic, key, value, partition, list(headers or [])))
        self.journal.append("changelog" if topic == self.changelog else "output")
        return fut

    async def send_many(self, records):  # noqa: ANN001, ANN201
        offsets = [(await (await self.send(*record))).offset for record in records]
        done = asyncio.get_running_loop().create_future()
        done.set_result(offsets)
        return done


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


class _Driver:
    """The parts of a StreamDriver a PartitionWorker uses, without a broker."""

    def __init__(self, proc: Any, machine: Optional[MachineClock] = None, mode: ClockMode = ClockMode.stream,
                 follows: tuple[str, ...] = (), **cfg: float) -> None:
        self.proc, self.service = proc, proc.name
        self.machine = machine or SystemClock()
        self.settings = Settings()
        self.cfg = SimpleNamespace(**{"input_idle_seconds": 0.0, "upstream_wait_seconds": 0.0, "wall_tick_seconds": 1.0,
                                      "commit_interval_seconds": 0.0, **cfg})
        self.mode = mode
        self.limits = EngineLimits()
        self.follows = follows
        self.emits_marks = False
        self.co_topics = tuple(t for t in ("vpa.events", "vpa.commands") if t in proc.topics)
        self.followed_topics: dict[str, str] = {u: f"test-{u}-commands" for u in follows}
        self.own_feedback = f"test-{self.service}-commands"
        self.changelog = f"test-{self.service}-changelog"
        self.partition_count: Optional[int] = None
        self.metrics = StreamMetrics(self.service)
        self.dead_letters = DeadLetters(self.service)
        self.journal: list[str] = []
        self.store = _Store(self.journal)
        self.roster = _Feed()
        self.producer = _Producer(self.journal, self.changelog)
        self.worker: Optional[PartitionWorker] = None
        self.in_flight: dict[tuple[str, int], int] = {}  # records on the broker the worker has not been handed
        self.commits: list[dict[str, int]] = []

    @property
    def table(self) -> dict[str, bytes]:
        """The partition's stored slots (slot key -> JSON bytes)."""
        return self.store.table

    def stable_end(self, topic: str, partition: int) -> Optional[int]:
        """What the client has seen of the partition: the records handed in."""
        buf = self.worker.inputs.get(topic) if self.worker else None
        return buf.fetched_to if buf else 0

    def known_end(self, topic: str, partition: int) -> Optional[tuple[int, float]]:
        """The broker double has always just answered: what was handed in, plus what a test says is
        written but not fetched yet (``in_flight``)."""
        if topic == "at.roster":
            return len(self.roster.records) + self.in_flight.get((topic, partition), 0), float("inf")
        return (self.stable_end(topic, partition) or 0) + self.in_flight.get((topic, partition), 0), float("inf")

    def ask_end(self, topic: str, partition: int, wake: Any) -> None:
        pass

    async def commit(self, partition: int, offsets: dict[str, int]) -> None:
        self.journal.append("commit")
        self.commits.append(dict(offsets))

    def pause(self, topic: str, partition: int) -> None:
        pass

    def resume(self, topic: str, partition: int) -> None:
        pass

    def new_worker(self) -> PartitionWorker:
        """A worker taking the partition over (a rebalance), over the same store."""
        self.worker = PartitionWorker(self, 0, TableSlots(self.store))
        for topic, at in self.worker.start_offsets().items():
            self.worker.inputs[topic].fetched_to = at
        return self.worker


class _Clock:
    def __init__(self, worker: PartitionWorker) -> None:
        self._worker = worker

    def now(self) -> Optional[datetime]:
        return self._worker.engine.clock


class WorkerRunner:
    """``driver``: what the Kafka driver would give the worker (a ``machine`` clock, the ``mode``,
    the services it ``follows``, settings such as ``input_idle_seconds``)."""

    def __init__(self, proc: Any, **driver: Any) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # the worker starts background tasks from plain calls
        self.d = _Driver(proc, **driver)
        self.d.roster.started = asyncio.Event()
        self.d.roster.started.set()
        self.worker = self.d.new_worker()
        self.clock = _Clock(self.worker)
        self._offsets: Counter = Counter()
        self._labels: dict[tuple[str, int], str] = {}

    @property
    def stats(self) -> Counter:
        return self.worker.engine.stats

    @property
    def dlq(self) -> list[SentDlq]:
        return dead_letters([(k, v, h) for t, k, v, _, h in self.d.producer.records if t == Topic.dlq], self._labels)

    def state_of(self, service: str, vpa_id: str) -> Optional[dict]:
        return state_in(self.worker, service, vpa_id)

    def submit_raw(self, raw: bytes | str, origin: str) -> None:
        topic, key, value, outcome = as_input(raw)
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        self._labels[(topic, offset)] = origin
        if topic == Topic.roster:
            self.d.roster.records.append(RosterRecord(0, offset, outcome, value, None, 0))
        else:
            self.worker.offer(topic, [Record(topic, 0, offset, key, value, int(time.time() * 1000))], offset + 1)
        self._run()

    def advance_to(self, t: datetime) -> None:
        self.worker.engine.advance(t)
        self.worker._collect(None, 0)
        self._run()

    def _run(self) -> None:
        while True:
            action, arg = self.worker._choose(self.d.machine.monotonic())
            if action != "step":
                break
            self.worker._step(*arg)
        self.loop.run_until_complete(self.worker._flush())
        self.loop.run_until_complete(self.worker._commit_due(force=True))

    def sent(self, topic: str) -> list[dict]:
        return [json.loads(v) for t, _, v, _, _ in self.d.producer.records if t == topic and v is not None]
