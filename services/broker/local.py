"""The broker port in memory: topics as lists in one process, for the runner contract suite.

``LocalBroker`` keeps what the stream driver relies on from Kafka, and no more:

* a partition is an append-only list; offsets count from 0; a send is acknowledged at once;
* a record's partition is its key's (the default partitioner's), or the one the producer names;
  records without a key go round the partitions;
* a consumer group gives partition number ``p`` of all its topics to one member (members in join
  order take turns over the partition numbers); a join or a leave revokes every member's
  partitions and assigns them again (the eager protocol), the listeners awaited in turn;
* a member reads from its committed offset, or from the start; commits are kept per group;
* no transactions: the stable end of a partition is its end.

It keeps none of a broker's failures unless a test asks: ``fail_sends`` makes the next sends raise
(``BrokerAway`` or ``ProducerBroken``), so the driver's retry and renewal run here too.
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional, Sequence

from services.broker.client import default_partition
from services.broker.port import (
    TP, Appended, Failure, GroupConsumerPort, OutRecord, RebalanceListener, Record, Unreadable,
)
from services.core.clock import MachineClock, SystemClock


class BrokerAway(ConnectionError):
    """A send the local broker did not take, as if its leader were unreachable."""


class ProducerBroken(RuntimeError):
    """A send refused for the producer's id, as after a broker lost its sequence."""


@dataclass
class _Group:
    members: list["LocalGroupConsumer"] = field(default_factory=list)
    committed: dict[TP, int] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LocalBroker:
    """The broker port (``services.broker.port.Broker``) in memory."""

    def __init__(self, default_partitions: int = 1, machine: Optional[MachineClock] = None) -> None:
        self.default_partitions = default_partitions
        self.machine = machine or SystemClock()
        self.topics: dict[str, list[list[Record]]] = {}
        self.groups: dict[str, _Group] = {}
        self.fail_sends: list[BaseException] = []  # raised by the next sends, one each
        self._round: dict[str, itertools.count[int]] = {}
        self._listeners: set[Callable[[], None]] = set()

    # ---- topics ------------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: Optional[int] = None) -> None:
        if topic not in self.topics:
            self.topics[topic] = [[] for _ in range(partitions or self.default_partitions)]

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic``, partition after partition."""
        return [r for part in self.topics.get(topic, []) for r in part]

    def end(self, tp: TP) -> int:
        parts = self.topics.get(tp[0])
        return len(parts[tp[1]]) if parts is not None and tp[1] < len(parts) else 0

    def append(self, topic: str, key: Optional[bytes], value: Optional[bytes], partition: Optional[int] = None,
               headers: Iterable[tuple[str, bytes]] = ()) -> Record:
        self.create_topic(topic)
        parts = self.topics[topic]
        if partition is None:
            if key is not None:
                partition = default_partition(key, len(parts))
            else:
                partition = next(self._round.setdefault(topic, itertools.count())) % len(parts)
        log = parts[partition]
        rec = Record(topic, partition, len(log), key, value, int(self.machine.wall().timestamp() * 1000),
                     tuple(headers))
        log.append(rec)
        self.notify()
        return rec

    def notify(self) -> None:
        for wake in list(self._listeners):
            wake()

    async def wait_for_change(self, timeout: float) -> None:
        """Until a record is appended (or a member's positions change), at most ``timeout`` seconds."""
        event = asyncio.Event()
        self._listeners.add(event.set)
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((waiter,), timeout=timeout)
        finally:
            waiter.cancel()
            self._listeners.discard(event.set)

    # ---- the port ----------------------------------------------------------------------------

    def group_consumer(self, group_id: str, topics: Iterable[str], listener: RebalanceListener, *,
                       on_unreadable: Optional[Callable[[Unreadable], None]] = None) -> GroupConsumerPort:
        return LocalGroupConsumer(self, group_id, tuple(topics), listener)

    def producer(self) -> "LocalProducer":
        return LocalProducer(self)

    def offsets(self) -> "LocalReader":
        return LocalReader(self)

    def reader(self, *, isolation: Optional[str] = None) -> "LocalReader":
        return LocalReader(self)

    async def partitions(self, topic: str, wait: float = 30.0) -> list[int]:
        return list(range(len(self.topics.get(topic, []))))

    async def read_range(self, tp: TP, start: int, end: int, timeout: float,
                         isolation: Optional[str] = None) -> AsyncIterator[list[Record]]:
        parts = self.topics.get(tp[0], [])
        log = parts[tp[1]] if tp[1] < len(parts) else []
        if start < min(end, len(log)):
            yield log[start:min(end, len(log))]

    # ---- groups ------------------------------------------------------------------------------

    async def rebalance(self, group_id: str, joining: Optional["LocalGroupConsumer"] = None,
                         leaving: Optional["LocalGroupConsumer"] = None) -> None:
        group = self.groups.setdefault(group_id, _Group())
        async with group.lock:
            for member in group.members:
                if member.assigned:
                    revoked, member.assigned = set(member.assigned), set()
                    member.paused.clear()
                    await member.listener.on_revoked(revoked)
            if joining is not None:
                group.members.append(joining)
            if leaving is not None and leaving in group.members:
                group.members.remove(leaving)
            numbers = sorted({p for m in group.members for t in m.topics for p in range(len(self.topics.get(t, [])))})
            for i, member in enumerate(group.members):
                mine = {(t, p) for p in numbers[i::len(group.members)] for t in member.topics
                        if p < len(self.topics.get(t, []))}
                member.assigned = mine
                member.positions = {tp: group.committed.get(tp, 0) for tp in mine}
                await member.listener.on_assigned(set(mine))
        self.notify()


class LocalGroupConsumer:
    def __init__(self, broker: LocalBroker, group_id: str, topics: tuple[str, ...],
                 listener: RebalanceListener) -> None:
        self.broker, self.group_id, self.topics, self.listener = broker, group_id, topics, listener
        self.assigned: set[TP] = set()
        self.paused: set[TP] = set()
        self.positions: dict[TP, int] = {}
        self.max_records = 2000
        self._started = False

    async def start(self) -> None:
        self._started = True
        await self.broker.rebalance(self.group_id, joining=self)

    async def stop(self, timeout: float = 2.0) -> None:
        if self._started:
            self._started = False
            await self.broker.rebalance(self.group_id, leaving=self)

    async def fetch(self, timeout: float) -> dict[TP, list[Record]]:
        out = self._take()
        if not out:
            await self.broker.wait_for_change(timeout)
            out = self._take()
        return out

    def _take(self) -> dict[TP, list[Record]]:
        out: dict[TP, list[Record]] = {}
        for tp in sorted(self.assigned - self.paused):
            log = self.broker.topics[tp[0]][tp[1]]
            at = self.positions.get(tp, 0)
            got = log[at:at + self.max_records]
            if got:
                out[tp] = got
                self.positions[tp] = at + len(got)
        return out

    @property
    def unreadable(self) -> list[Unreadable]:
        return []

    def pause(self, tp: TP) -> None:
        if tp in self.assigned:
            self.paused.add(tp)

    def resume(self, tp: TP) -> None:
        self.paused.discard(tp)
        self.broker.notify()

    def seek(self, tp: TP, offset: int) -> None:
        if tp in self.assigned:
            self.positions[tp] = offset
            self.broker.notify()

    async def position(self, tp: TP) -> Optional[int]:
        return self.positions.get(tp) if tp in self.assigned else None

    def stable_end(self, tp: TP) -> Optional[int]:
        return self.broker.end(tp) if tp in self.assigned else None

    async def committed(self, tp: TP) -> Optional[int]:
        return self.broker.groups.setdefault(self.group_id, _Group()).committed.get(tp)

    async def commit(self, offsets: dict[TP, int]) -> bool:
        mine = {tp: off for tp, off in offsets.items() if tp in self.assigned}
        if not mine:
            return False
        self.broker.groups.setdefault(self.group_id, _Group()).committed.update(mine)
        return True


class LocalProducer:
    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.generation = 0
        self.running = False

    async def start(self) -> None:
        self.running = True
        self.generation += 1

    async def stop(self, timeout: float = 2.0) -> None:
        self.running = False

    async def renew(self, generation: int) -> None:
        if generation == self.generation:
            await self.stop()
            await self.start()

    async def flush(self, timeout: float) -> bool:
        return True

    async def send(self, topic: str, key: Optional[bytes], value: Optional[bytes], partition: Optional[int] = None,
                   headers: Iterable[tuple[str, bytes]] = ()) -> Awaitable[Any]:
        if not self.running:
            raise RuntimeError("the producer is not running")
        if self.broker.fail_sends:
            raise self.broker.fail_sends.pop(0)
        rec = self.broker.append(topic, key, value, partition, headers)
        done: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        done.set_result(Appended(rec.offset))
        return done

    async def send_and_wait(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                            partition: Optional[int] = None) -> int:
        appended: Appended = await (await self.send(topic, key, value, partition))
        return appended.offset

    async def send_many(self, records: Sequence[OutRecord]) -> Awaitable[list[int]]:
        offsets = [(await (await self.send(t, k, v, p, h))).offset for t, k, v, p, h in records]
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        done.set_result(offsets)
        return done

    def failure(self, exc: BaseException) -> Failure:
        if isinstance(exc, ProducerBroken):
            return Failure.broken
        return Failure.away if isinstance(exc, BrokerAway) else Failure.refused


class LocalReader:
    """Partitions read without a group; also the end-offset client (``OffsetsPort``)."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.positions: dict[TP, int] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions(self, topic: str, wait: float = 30.0) -> list[int]:
        return await self.broker.partitions(topic, wait)

    def assign(self, tps: Iterable[TP]) -> None:
        self.positions = {tp: 0 for tp in tps}

    async def seek(self, tp: TP, offset: Optional[int]) -> None:
        self.positions[tp] = offset or 0

    async def fetch(self, timeout: float, max_records: int = 5000) -> dict[TP, list[Record]]:
        out = self._take(max_records)
        if not out:
            await self.broker.wait_for_change(timeout)
            out = self._take(max_records)
        return out

    def _take(self, max_records: int) -> dict[TP, list[Record]]:
        out: dict[TP, list[Record]] = {}
        for tp, at in sorted(self.positions.items()):
            parts = self.broker.topics.get(tp[0], [])
            got = parts[tp[1]][at:at + max_records] if tp[1] < len(parts) else []
            if got:
                out[tp] = got
                self.positions[tp] = at + len(got)
        return out

    async def position(self, tp: TP) -> int:
        return self.positions.get(tp, 0)

    def stable_end(self, tp: TP) -> Optional[int]:
        return self.broker.end(tp)

    async def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        return {tp: self.broker.end(tp) for tp in tps}
