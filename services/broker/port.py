"""The broker port: what the Kafka runner asks of a broker, as types, and nothing of any client.

Two adapters implement it: ``client.KafkaBroker`` (aiokafka against a real cluster) and
``local.LocalBroker`` (topics as lists in memory, one process). The stream driver, its partition
workers and the roster feed see only these names, so the same driver runs on either: the runner
contract suite runs it on the local broker in milliseconds and on a real broker in the
integration tests.

The verbs are the few the driver needs: a group member that fetches, pauses, resumes, seeks and
commits; a producer whose sends resolve to offsets; end offsets asked from the broker; a reader
of whole partitions without a group.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional, Protocol, Sequence

log = logging.getLogger("vpa.kafka.client")

TP = tuple[str, int]  # (topic, partition)
# (topic, key, value, partition or None for the key's partition, headers)
OutRecord = tuple[str, Optional[bytes], Optional[bytes], Optional[int], tuple[tuple[str, bytes], ...]]


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Unreadable:
    """A batch the client cannot read: the partition stops at ``offset`` until an operator acts."""

    topic: str
    partition: int
    offset: int
    reason: str


class Failure(Enum):
    away = "away"
    broken = "broken"
    refused = "refused"


@dataclass(frozen=True, slots=True)
class Appended:
    """Where the broker put a record a producer sent."""

    offset: int


class RebalanceListener(Protocol):
    async def on_revoked(self, partitions: set[TP]) -> None: ...

    async def on_assigned(self, partitions: set[TP]) -> None: ...


class GroupConsumerPort(Protocol):
    """One member of a consumer group over topics of one partition count."""

    async def start(self) -> None: ...

    async def stop(self, timeout: float = 2.0) -> None: ...

    async def fetch(self, timeout: float) -> dict[TP, list[Record]]: ...

    @property
    def unreadable(self) -> list[Unreadable]: ...

    def pause(self, tp: TP) -> None: ...

    def resume(self, tp: TP) -> None: ...

    def seek(self, tp: TP, offset: int) -> None: ...

    async def position(self, tp: TP) -> Optional[int]: ...

    def stable_end(self, tp: TP) -> Optional[int]: ...

    async def committed(self, tp: TP) -> Optional[int]: ...

    async def commit(self, offsets: dict[TP, int]) -> bool: ...


class ProducerPort(Protocol):
    generation: int  # one more with every start: a new producer id

    async def start(self) -> None: ...

    async def stop(self, timeout: float = 2.0) -> None: ...

    async def renew(self, generation: int) -> None: ...

    async def flush(self, timeout: float) -> bool: ...

    async def send(self, topic: str, key: Optional[bytes], value: Optional[bytes], partition: Optional[int] = None,
                   headers: Iterable[tuple[str, bytes]] = ()) -> Awaitable[Any]: ...

    async def send_and_wait(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                            partition: Optional[int] = None) -> int:
        """One record, sent and acknowledged: its offset (a command from the dashlet or the CLI)."""
        ...

    async def send_many(self, records: Sequence[OutRecord]) -> Awaitable[list[int]]:
        """Hands ``records`` over (each partition's in their order) as a few batches rather than
        record by record; the awaitable resolves to their offsets, in order, once the broker has
        every one, and raises when it refused one."""
        ...

    def failure(self, exc: BaseException) -> Failure:
        """What a failed send means: a broker away or busy (sending again may succeed), a broken
        producer (only a renewed producer id can send again) or a refusal."""
        ...


class OffsetsPort(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]: ...


class ReaderPort(Protocol):
    """Whole partitions without a group: assign, seek, fetch."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def partitions(self, topic: str, wait: float = 30.0) -> list[int]: ...

    def assign(self, tps: Iterable[TP]) -> None: ...

    async def seek(self, tp: TP, offset: Optional[int]) -> None: ...

    async def fetch(self, timeout: float, max_records: int = 5000) -> dict[TP, list[Record]]: ...

    async def position(self, tp: TP) -> int: ...

    def stable_end(self, tp: TP) -> Optional[int]: ...

    async def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]: ...


class Broker(Protocol):
    """Makes the clients of one cluster (or of one in-memory broker)."""

    def group_consumer(self, group_id: str, topics: Iterable[str], listener: RebalanceListener, *,
                       on_unreadable: Optional[Callable[[Unreadable], None]] = None) -> GroupConsumerPort: ...

    def producer(self) -> ProducerPort: ...

    def offsets(self) -> OffsetsPort: ...

    def reader(self, *, isolation: Optional[str] = None) -> ReaderPort: ...

    async def partitions(self, topic: str, wait: float = 30.0) -> list[int]: ...

    def read_range(self, tp: TP, start: int, end: int, timeout: float,
                   isolation: Optional[str] = None) -> AsyncIterator[list[Record]]: ...



async def send_batch(producer: ProducerPort, records: list[OutRecord], give_up: float, what: str) -> list[int]:
    """Send ``records`` and wait until the broker has all of them; their offsets, in order. While a
    broker is away the whole batch is sent again (the records are deterministic, so a record that
    got through twice is recognised downstream), for up to ``give_up`` seconds; then, or on any
    other refusal, it raises. A broken producer is renewed first (``ProducerPort.renew``)."""
    deadline = time.monotonic() + give_up
    delay = 0.5
    while True:
        generation = producer.generation
        try:
            sent = await producer.send_many(records)
            return await _within(sent, max(1.0, deadline - time.monotonic()), what)
        except Exception as exc:  # noqa: BLE001 - sorted below: away (again), a broken producer, or refused
            failure = producer.failure(exc)
            if failure is Failure.refused or time.monotonic() + delay > deadline:
                raise
            if failure is Failure.broken:  # without a new producer id every later send fails the same way
                await producer.renew(generation)
            log.warning("%s: the broker did not take it (%s); sending it again in %.1f s", what,
                        type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def wait_all(sent: list[Awaitable[Any]], timeout: float, what: str) -> list[int]:
    """Wait until the broker has every record of ``sent``; their offsets, in order. Raises when one
    was refused or the broker did not answer within ``timeout`` seconds."""
    if not sent:
        return []
    return await _within(_offsets(sent), timeout, what)


async def _within(offsets: Awaitable[list[int]], timeout: float, what: str) -> list[int]:
    try:
        return await asyncio.wait_for(offsets, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"{what} did not reach the broker within {timeout:.0f} s") from None


async def _offsets(sent: list[Awaitable[Any]]) -> list[int]:
    # One after the other, not gather: a record's future is mostly done by the time it is reached
    # (the broker acknowledges a whole batch at once), and gather's callback per future cost a
    # twentieth of a stream service's time while it works off a backlog.
    return [(await one).offset for one in sent]
