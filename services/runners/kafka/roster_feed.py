"""``at.roster`` for every partition of a worker, record by record (a global input).

The roster is global: every partition's engine needs every roster event, at its place in time
among that partition's own events (a handover decided at 09:00 must see a vacation registered
at 08:59 and not one registered at 09:01). So each worker reads the whole topic itself, as Kafka
Streams' global consumer does, and each partition engine takes the records in order from its own
cursor, which it stores with its state. The topic is small (members and their absences), so the
records are kept from the beginning.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from schemas.topics import Topic
from services.broker.port import Broker, ReaderPort
from services.core.clock import MachineClock
from services.engine.decode import Decoded, Outcome, decode
from services.engine.order import TOPIC_RANK, OrderKey, micros
from services.runners.kafka.keys import misrouted_roster

log = logging.getLogger("vpa.roster_feed")
TOPIC = Topic.roster


@dataclass(frozen=True)
class RosterRecord:
    partition: int
    offset: int
    outcome: Outcome
    raw: bytes
    key: Optional[bytes]
    timestamp_ms: int
    received: float = 0.0  # the machine clock's monotonic seconds when it was fetched (the merge policy: services.runners.kafka.merge)
    # Its place in the order (a valid record): the merge reads the head of every roster partition
    # at every step, so the key is made once, when the record is read.
    order_key: Optional[OrderKey] = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.outcome, Decoded):
            key = (micros(self.outcome.envelope.occurred_at), TOPIC_RANK[TOPIC], self.partition, self.offset)
            object.__setattr__(self, "order_key", key)


class RosterFeed:
    def __init__(self, broker: Broker, machine: MachineClock) -> None:
        self.broker = broker
        self.machine = machine
        self.partitions: list[int] = []
        self._offsets: dict[int, list[int]] = {}
        self._records: dict[int, dict[int, RosterRecord]] = {}
        self._highwater: dict[int, Optional[int]] = {}
        self._fetched_to: dict[int, int] = {}
        self._listeners: list[Callable[[], None]] = []
        self._reader: Optional[ReaderPort] = None
        self._task: Optional[asyncio.Task] = None
        self.started = asyncio.Event()  # partitions known, reading

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(wake)
        return lambda: self._listeners.remove(wake) if wake in self._listeners else None

    async def start(self) -> None:
        self._reader = self.broker.reader()
        await self._reader.start()
        parts = await self._reader.partitions(TOPIC)  # the topic exists before start; metadata may lag
        if not parts:
            raise RuntimeError(f"topic {TOPIC} has no partitions (does it exist? `vpa topics create` makes it)")
        self.partitions = parts
        tps = [(TOPIC, p) for p in parts]
        self._reader.assign(tps)
        for tp in tps:
            await self._reader.seek(tp, None)
        ends = await self._reader.end_offsets(tps)
        for topic, p in tps:
            self._offsets[p], self._records[p] = [], {}
            self._highwater[p] = ends.get((topic, p))
            self._fetched_to[p] = 0
        self._task = asyncio.ensure_future(self._run())
        self.started.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._reader is not None:
            await self._reader.stop()

    async def _run(self) -> None:
        reader = self._reader
        assert reader is not None
        delay = 0.5
        while True:
            try:
                batch = await reader.fetch(0.2)
                delay = 0.5
            except Exception as exc:  # noqa: BLE001 - a broker outage: keep trying, never die
                log.warning("reading at.roster failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            changed = False
            received = self.machine.monotonic()
            for (_, partition), msgs in batch.items():
                for m in msgs:
                    outcome = misrouted_roster(decode(m.value or b""), m.key)
                    rec = RosterRecord(partition, m.offset, outcome, m.value or b"", m.key, m.timestamp_ms, received)
                    self._records[partition][m.offset] = rec
                    self._offsets[partition].append(m.offset)
                    self._fetched_to[partition] = m.offset + 1
                    changed = True
            for p in self.partitions:
                hw = reader.stable_end((TOPIC, p))
                if hw is not None and hw != self._highwater.get(p):
                    self._highwater[p] = hw
                    changed = True
                try:  # the fetch position also steps over offsets that hold no record
                    position = await reader.position((TOPIC, p))
                except Exception:  # noqa: BLE001 - unknown for the moment: keep the last one
                    continue
                if position > self._fetched_to[p]:
                    self._fetched_to[p] = position
                    changed = True
            if changed:
                for wake in list(self._listeners):
                    wake()

    # ---- what a partition engine asks --------------------------------------------------------

    def next_record(self, partition: int, cursor: int) -> Optional[RosterRecord]:
        """The first record at or after offset ``cursor`` that has been read, if any."""
        offsets = self._offsets.get(partition, [])
        i = bisect.bisect_left(offsets, cursor)
        return self._records[partition][offsets[i]] if i < len(offsets) else None

    def caught_up(self, partition: int, cursor: int) -> bool:
        """Nothing at or after ``cursor`` exists in the partition (as far as the broker said)."""
        hw = self._highwater.get(partition)
        return hw is not None and self._fetched_to.get(partition, 0) >= hw and cursor >= self._last_offset(partition)

    def _last_offset(self, partition: int) -> int:
        offsets = self._offsets.get(partition)
        return offsets[-1] + 1 if offsets else 0

    def fetched_to(self, partition: int) -> int:
        """The offset up to which the partition has been read (records and gaps)."""
        return self._fetched_to.get(partition, 0)

    def lag(self, partition: int, cursor: int) -> int:
        hw = self._highwater.get(partition) or 0
        return max(0, hw - cursor)
