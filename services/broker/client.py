"""The Kafka side of the broker port: the one module of the Kafka runner that talks to aiokafka.

Everything above it (the stream driver, the partition workers, the notifier's consumer, the roster
feed) sees plain ``Record``s, ``(topic, partition)`` pairs and a few verbs: fetch, pause, resume,
seek, commit, send, end offsets. What aiokafka does not give in one piece is built here, once:

* a consumer group whose partition numbers move together across its topics
  (``CoPartitionedAssignor``), with a rebalance listener that is awaited in bounded time;
* a fetch that names the partition of a batch the client cannot read (a corrupt batch, a codec the
  client lacks) instead of raising the same error forever: the good records before it are
  delivered, the partition is paused and reported (``Unreadable``), the others go on;
* ``read_committed`` for every consumer of an input (a setting), so records of an aborted
  transaction never become tasks;
* the project's producers compress with ``VPA_KAFKA_COMPRESSION`` and wait for all in-sync
  replicas; every codec Kafka has is readable (aiokafka's codecs come with ``cramjam``).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional, Sequence

from services.broker.assignor import assignor_for
from services.broker.port import (  # noqa: F401 - the port's names, where the client's users found them
    TP, Failure, OutRecord, RebalanceListener, Record, Unreadable, send_batch, wait_all,
)
from services.config.kafka import KafkaConfig

log = logging.getLogger("vpa.kafka.client")

def _record(m: Any) -> Record:
    return Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp or 0, tuple(m.headers or ()))


def _tp(tp: TP) -> Any:
    from aiokafka import TopicPartition

    return TopicPartition(tp[0], tp[1])


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


@functools.lru_cache(maxsize=1 << 16)  # checked for every record read; keys (vpa_ids) come again and again
def default_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (the Java client's, aiokafka's) picks for ``key``."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def batch_errors() -> tuple[type[BaseException], ...]:
    """What the client raises for a batch it cannot turn into records: a failed CRC, a codec it
    lacks, or bytes its parser trips over. Group and connection errors are not among them."""
    import struct

    from aiokafka import errors

    return (errors.CorruptRecordException, errors.UnsupportedCodecError, ValueError, struct.error, IndexError)


def _ssl_context(cfg: KafkaConfig) -> Any:
    from aiokafka.helpers import create_ssl_context

    context = create_ssl_context(
        cafile=cfg.ssl_cafile, certfile=cfg.ssl_certfile, keyfile=cfg.ssl_keyfile,
        password=cfg.ssl_key_password.get_secret_value() if cfg.ssl_key_password else None,
    )
    context.check_hostname = cfg.ssl_check_hostname
    return context


def aiokafka_kwargs(cfg: KafkaConfig) -> dict[str, Any]:
    """Connection and security arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    kwargs: dict[str, Any] = {"bootstrap_servers": cfg.bootstrap_servers,
                              "security_protocol": cfg.security_protocol.value}
    if cfg.security_protocol.uses_tls:
        kwargs["ssl_context"] = _ssl_context(cfg)
    if cfg.security_protocol.uses_sasl:
        kwargs.update(sasl_mechanism=cfg.sasl_mechanism.value, sasl_plain_username=cfg.sasl_username,
                      sasl_plain_password=cfg.sasl_password.get_secret_value() if cfg.sasl_password else None)
    return kwargs


def consumer_kwargs(cfg: KafkaConfig) -> dict[str, Any]:
    return {**aiokafka_kwargs(cfg), "isolation_level": cfg.isolation_level.value, "enable_auto_commit": False,
            "auto_offset_reset": "earliest", "check_crcs": True}


def group_kwargs(cfg: KafkaConfig, group_id: str) -> dict[str, Any]:
    """A group member's arguments: no auto commit, the co-partitioning assignor, the session."""
    session_ms = int(cfg.session_timeout_seconds * 1000)
    return {
        **consumer_kwargs(cfg), "group_id": group_id, "group_instance_id": cfg.instance_id or None,
        "partition_assignment_strategy": (assignor_for(group_id),),
        "session_timeout_ms": session_ms, "heartbeat_interval_ms": int(cfg.heartbeat_interval_seconds * 1000),
        "request_timeout_ms": max(40_000, session_ms + 5000),
        # how long a rebalance waits for members to rejoin; a revocation itself takes at most 2 s
        "rebalance_timeout_ms": max(10_000, session_ms),
        "max_poll_interval_ms": 300_000,
    }


def producer_kwargs(cfg: KafkaConfig) -> dict[str, Any]:
    """Every producer of the project: idempotent, waiting for all in-sync replicas (outputs are sent
    before state is written and offsets are committed, so a lost write would be a lost task
    version), compressed with ``VPA_KAFKA_COMPRESSION``."""
    codec = cfg.compression.value
    return {**aiokafka_kwargs(cfg), "acks": "all", "enable_idempotence": True,
            "compression_type": None if codec == "none" else codec, "linger_ms": 5,
            # a stream service's flush goes out as whole batches (send_many): 512 KiB, half of what a
            # topic takes by default (max.message.bytes 1 MiB), even uncompressed
            "max_batch_size": 512 * 1024,
            "max_request_size": 2 * 1024 * 1024, "request_timeout_ms": 30_000}


class GroupConsumer:
    """One consumer group member over ``topics`` (all with the same partition count)."""

    RETRY_UNREADABLE = 60.0  # seconds before a paused unreadable partition is tried again
    PROBE_MS = 500  # how long each partition is given to show its batch again after a failed wait

    def __init__(self, cfg: KafkaConfig, group_id: str, topics: Iterable[str], listener: RebalanceListener,
                 *, max_records: int = 2000, on_unreadable: Optional[Callable[[Unreadable], None]] = None) -> None:
        self.cfg, self.group_id, self.topics = cfg, group_id, tuple(topics)
        self.listener = listener
        self.max_records = max_records
        self.on_unreadable = on_unreadable
        self._consumer: Any = None
        self._paused: set[TP] = set()  # paused by the caller (flow control, restoring)
        self._unreadable: dict[TP, tuple[Unreadable, float]] = {}  # paused here, with when to retry
        self._assigned: set[TP] = set()

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener

        outer = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                parts = {(tp.topic, tp.partition) for tp in revoked}
                outer._assigned -= parts
                outer._paused -= parts
                for tp in parts:
                    outer._unreadable.pop(tp, None)
                await outer.listener.on_revoked(parts)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                outer._assigned = {(tp.topic, tp.partition) for tp in assigned}
                await outer.listener.on_assigned(set(outer._assigned))

        self._consumer = AIOKafkaConsumer(**group_kwargs(self.cfg, self.group_id))
        await self._consumer.start()
        self._consumer.subscribe(list(self.topics), listener=Listener())

    async def stop(self, timeout: float = 2.0) -> None:
        """Leave the group (the partitions move at once, without a session timeout)."""
        if self._consumer is None:
            return
        consumer, self._consumer = self._consumer, None
        try:
            await asyncio.wait_for(consumer.stop(), timeout)
        except Exception as exc:  # noqa: BLE001 - the broker is away: the session times out instead
            log.warning("leaving the group %s did not finish within %.0f s (%s)", self.group_id, timeout,
                        type(exc).__name__)

    @property
    def assigned(self) -> set[TP]:
        return set(self._assigned)

    # ---- fetching ------------------------------------------------------------------------------

    def _fetchable(self) -> list[TP]:
        return [tp for tp in sorted(self._assigned) if tp not in self._paused and tp not in self._unreadable]

    async def fetch(self, timeout: float) -> dict[TP, list[Record]]:
        """The records fetched since the last call, per partition; waits up to ``timeout`` seconds
        when none are there. A partition with a batch the client cannot read is reported once and
        paused (its good records before that batch are returned); the others go on."""
        self._retry_unreadable()
        out: dict[TP, list[Record]] = {}
        errors = batch_errors()
        for tp in self._fetchable():  # per partition, so an unreadable batch is charged to its own
            try:
                got = await self._consumer.getmany(_tp(tp), timeout_ms=0, max_records=self.max_records)
            except errors as exc:
                await self._isolate(tp, exc, out)
                continue
            for ktp, msgs in got.items():
                out.setdefault((ktp.topic, ktp.partition), []).extend(_record(m) for m in msgs)
        if out:
            return out
        fetchable = self._fetchable()
        if not fetchable:
            await asyncio.sleep(min(timeout, 0.05))  # a rebalance or all paused: nothing to wait on
            return out
        # The wait over all partitions takes one record at most. aiokafka drains partition after
        # partition and raises on a batch it cannot read, dropping what it drained before it in the
        # same call while the positions have moved on: with one record the error can only come
        # before anything was drained, so nothing is lost.
        try:
            got = await self._consumer.getmany(*[_tp(tp) for tp in fetchable], timeout_ms=int(timeout * 1000),
                                               max_records=1)
        except errors:
            # Which partition it was is found by asking each one alone. Leaving it to the next
            # call's pass did not work: the failed fetch is dropped and fetched again while that
            # pass runs, so the error came back in this wait every time and the partition's good
            # records before the batch were never handed over.
            for tp in fetchable:
                try:
                    got = await self._consumer.getmany(_tp(tp), timeout_ms=self.PROBE_MS,
                                                       max_records=self.max_records)
                except errors as exc:
                    await self._isolate(tp, exc, out)
                    break
                for ktp, msgs in got.items():
                    out.setdefault((ktp.topic, ktp.partition), []).extend(_record(m) for m in msgs)
            return out
        for ktp, msgs in got.items():
            out.setdefault((ktp.topic, ktp.partition), []).extend(_record(m) for m in msgs)
        return out

    async def _isolate(self, tp: TP, exc: BaseException, out: dict[TP, list[Record]]) -> None:
        """Read ``tp`` record by record up to the batch that fails, so nothing before it is lost
        (aiokafka drops the records of a fetch in which a later batch fails), then pause it."""
        consumer = self._consumer
        reason = _reason(exc)
        failures, deadline = 0, time.monotonic() + 30
        while time.monotonic() < deadline and failures < 3:
            try:
                got = await consumer.getmany(_tp(tp), timeout_ms=200, max_records=1)
            except batch_errors() as again:
                failures += 1
                reason = _reason(again)
                continue
            for ktp, msgs in got.items():
                if msgs:
                    failures = 0
                out.setdefault((ktp.topic, ktp.partition), []).extend(_record(m) for m in msgs)
        try:
            offset = await asyncio.wait_for(consumer.position(_tp(tp)), 5)
        except Exception:  # noqa: BLE001 - unknown: the last record returned tells it
            offset = out[tp][-1].offset + 1 if out.get(tp) else -1
        consumer.pause(_tp(tp))
        bad = Unreadable(tp[0], tp[1], offset, reason[:500])
        self._unreadable[tp] = (bad, time.monotonic() + self.RETRY_UNREADABLE)
        if self.on_unreadable is not None:
            self.on_unreadable(bad)

    def _retry_unreadable(self) -> None:
        now = time.monotonic()
        for tp, (bad, at) in list(self._unreadable.items()):
            if now >= at:
                del self._unreadable[tp]
                if tp in self._assigned and tp not in self._paused:
                    self._consumer.resume(_tp(tp))

    @property
    def unreadable(self) -> list[Unreadable]:
        return [bad for bad, _ in self._unreadable.values()]

    # ---- positions -----------------------------------------------------------------------------

    def pause(self, tp: TP) -> None:
        if tp in self._assigned:
            self._paused.add(tp)
            self._consumer.pause(_tp(tp))

    def resume(self, tp: TP) -> None:
        self._paused.discard(tp)
        if tp in self._assigned and tp not in self._unreadable:
            self._consumer.resume(_tp(tp))

    def seek(self, tp: TP, offset: int) -> None:
        if tp in self._assigned:
            self._consumer.seek(_tp(tp), offset)

    async def position(self, tp: TP) -> Optional[int]:
        """The offset of the next record the client hands over (beyond transaction markers)."""
        if tp not in self._assigned:
            return None
        try:
            return await asyncio.wait_for(self._consumer.position(_tp(tp)), 5)
        except Exception:  # noqa: BLE001 - revoked meanwhile, or not known yet
            return None

    def stable_end(self, tp: TP) -> Optional[int]:
        """The end of what this client may read, as of its last fetch: the last stable offset with
        read_committed (an open transaction holds it back), else the high watermark."""
        if tp not in self._assigned:
            return None
        try:
            hw = self._consumer.highwater(_tp(tp))
            if self.cfg.isolation_level.value == "read_committed":
                lso = self._consumer.last_stable_offset(_tp(tp))
                if lso is not None and lso >= 0:
                    return lso
            return hw
        except (AssertionError, Exception):  # noqa: BLE001 - revoked meanwhile
            return None

    async def committed(self, tp: TP) -> Optional[int]:
        try:
            return await asyncio.wait_for(self._consumer.committed(_tp(tp)), 10)
        except Exception:  # noqa: BLE001 - not known: the caller starts from its own state
            return None

    async def commit(self, offsets: dict[TP, int]) -> bool:
        """Commit ``offsets`` (the next offset to read per partition). False when the group moved on
        meanwhile (the state, not the commit, says where a partition stands)."""
        mine = {_tp(tp): off for tp, off in offsets.items() if tp in self._assigned}
        if not mine or self._consumer is None:
            return False
        try:
            await asyncio.wait_for(self._consumer.commit(mine), 10)
            return True
        except Exception as exc:  # noqa: BLE001 - a rebalance or the broker away: the next commit covers it
            log.info("%s: commit skipped (%s: %s)", self.group_id, type(exc).__name__, exc)
            return False


@dataclass
class Sent:
    """A record handed to the producer; ``result`` resolves to its offset once the broker has it."""

    result: Awaitable[Any]


class Producer:
    """The process's producer: idempotent, ``acks=all``, compressed with ``VPA_KAFKA_COMPRESSION``."""

    def __init__(self, cfg: KafkaConfig, **overrides: Any) -> None:
        self.cfg = cfg
        self.overrides = overrides  # e.g. the simulator's larger batches, uncompressed like upstream's
        self._producer: Any = None
        self.generation = 0  # one more with every start: a new producer id
        self._renewing = asyncio.Lock()
        self._restart_pending = False  # renewed, but its new start failed: the next send starts it

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**{**producer_kwargs(self.cfg), **self.overrides})
        try:
            await producer.start()
        except BaseException:
            await _stop_quietly(producer)
            raise
        self._producer = producer
        self.generation += 1
        self._restart_pending = False

    async def renew(self, generation: int) -> None:
        """Start again with a new producer id, once the broker no longer takes this one's sequence
        (``producer_broken``: a restarted broker lost it). Every batch that failed on generation
        ``generation`` asks; only the first renews, the others send on the new one. When the new
        start fails (the broker is away), the next send tries again."""
        async with self._renewing:
            if generation != self.generation or (self._producer is None and not self._restart_pending):
                return
            log.warning("the broker no longer takes this producer's sequence; starting it again with a new "
                        "producer id (the failed batches are sent again)")
            await self.stop()
            self._restart_pending = True
            await self._restart()

    async def _restart(self) -> None:
        try:
            await self.start()
        except Exception as exc:  # noqa: BLE001 - the broker is away: the next send tries again
            log.warning("starting the producer again failed (%s: %s); the next send tries again",
                        type(exc).__name__, exc)

    async def stop(self, timeout: float = 2.0) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), timeout)
        except Exception as exc:  # noqa: BLE001 - the broker is away; what was not acked is done again
            log.warning("stopping the producer did not finish within %.0f s (%s)", timeout, type(exc).__name__)

    @property
    def running(self) -> bool:
        return self._producer is not None

    async def flush(self, timeout: float) -> bool:
        """Wait until every record handed over has reached the broker or failed; False after
        ``timeout`` seconds. A worker that gives a partition up calls it, so none of its records
        lands in the changelog after the next owner has read it."""
        if self._producer is None:
            return True
        try:
            await asyncio.wait_for(self._producer.flush(), timeout)
            return True
        except Exception:  # noqa: BLE001 - the broker is away: the caller says so
            return False

    async def send(self, topic: str, key: Optional[bytes], value: Optional[bytes], partition: Optional[int] = None,
                   headers: Iterable[tuple[str, bytes]] = ()) -> Awaitable[Any]:
        """Hands the record over; the returned future resolves to its metadata (``.offset``) once the
        broker has it, or raises when it refused it."""
        producer = await self._ready()
        return await producer.send(topic, value, key=key, partition=partition, headers=list(headers) or None)

    async def send_many(self, records: Sequence[OutRecord]) -> Awaitable[list[int]]:
        """Each partition's records as whole batches (``create_batch``/``send_batch``): aiokafka's
        ``send`` looks up the topic's metadata, picks the partition and makes a future for every
        record, which took a tenth of a stream service's time while it worked off a backlog. A
        record without a partition goes where ``send`` would put it (the key's murmur2 partition)."""
        producer = await self._ready()
        partitions: dict[str, int] = {}
        by_tp: dict[tuple[str, int], list[int]] = {}
        for i, (topic, key, _value, partition, _headers) in enumerate(records):
            if partition is None:
                if topic not in partitions:
                    partitions[topic] = len(await producer.partitions_for(topic))
                partition = (default_partition(key, partitions[topic]) if key is not None
                             else random.randrange(partitions[topic]))
            by_tp.setdefault((topic, partition), []).append(i)
        sent: list[tuple[Awaitable[Any], list[int]]] = []  # a batch's future, the records it holds
        for (topic, partition), indexes in by_tp.items():
            batch, held = producer.create_batch(), []
            for i in indexes:
                _topic, key, value, _partition, headers = records[i]
                if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                    sent.append((await producer.send_batch(batch, topic, partition=partition), held))
                    batch, held = producer.create_batch(), []
                    batch.append(key=key, value=value, timestamp=None, headers=list(headers))  # a first one fits
                held.append(i)
            sent.append((await producer.send_batch(batch, topic, partition=partition), held))
        return _offsets_of(sent, len(records))

    async def send_and_wait(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                            partition: Optional[int] = None) -> int:
        fut = await self.send(topic, key, value, partition)
        return (await fut).offset

    async def _ready(self) -> Any:
        """The running aiokafka producer; a renewed one whose start failed is started now."""
        if self._producer is None and self._restart_pending:
            async with self._renewing:
                if self._producer is None and self._restart_pending:
                    await self._restart()
            if self._producer is None:
                raise ProducerRestarting("the producer is being started again with a new producer id")
        if self._producer is None:
            raise RuntimeError("the producer is not running")
        return self._producer

    def failure(self, exc: BaseException) -> Failure:
        if producer_broken(exc):
            return Failure.broken
        return Failure.away if broker_away(exc) or isinstance(exc, ProducerRestarting) else Failure.refused


async def _offsets_of(sent: list[tuple[Awaitable[Any], list[int]]], n: int) -> list[int]:
    """The offset of each record, in the order handed over: its batch's base offset plus its place
    in the batch (a batch's records are consecutive in the partition)."""
    offsets = [0] * n
    for batch, held in sent:
        base = (await batch).offset
        for k, i in enumerate(held):
            offsets[i] = base + k
    return offsets


class ProducerRestarting(ConnectionError):
    """A renewed producer whose new start failed: sending again (after a pause) starts it."""


def client_error() -> type[BaseException]:
    """The base of every error the client raises (unreachable, refused credentials, timeouts)."""
    from aiokafka.errors import KafkaError

    return KafkaError


async def cluster_brokers(cfg: KafkaConfig, timeout: float) -> list[dict[str, Any]]:
    """The brokers in the cluster's metadata, each asked within ``timeout`` seconds; raises when
    none answers (the health probe's question)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**aiokafka_kwargs(cfg), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        if not cluster.get("brokers"):
            raise RuntimeError("no broker in the cluster metadata")
        return list(cluster["brokers"])
    finally:
        try:
            await asyncio.wait_for(admin.close(), timeout)
        except Exception:  # noqa: BLE001 - closing a client whose broker is gone
            pass


async def _stop_quietly(consumer: Any) -> None:
    """Stop a consumer within 2 s; a broker that is away cannot stop it from stopping."""
    if consumer is not None:
        try:
            await asyncio.wait_for(consumer.stop(), 2)
        except Exception:  # noqa: BLE001 - the broker is away
            pass


def producer_broken(exc: BaseException) -> bool:
    """The broker refuses the producer's idempotence state (a broker restarted and lost its
    sequence, or fenced it): aiokafka cannot send on it again; a new producer id can."""
    from aiokafka import errors

    return isinstance(exc, (errors.OutOfOrderSequenceNumber, errors.UnknownProducerId, errors.InvalidProducerEpoch,
                            errors.ProducerFenced))


def broker_away(exc: BaseException) -> bool:
    """A send that failed because a broker was unreachable or busy: sending again may succeed."""
    from aiokafka import errors

    return isinstance(exc, (errors.KafkaTimeoutError, errors.KafkaConnectionError, errors.RequestTimedOutError,
                            errors.NotEnoughReplicasError, errors.NotEnoughReplicasAfterAppendError,
                            errors.NotLeaderForPartitionError, errors.LeaderNotAvailableError)) \
        or bool(getattr(exc, "retriable", False))


class Offsets:
    """A client of its own for end offsets (no group): a question never waits behind a long fetch."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self.cfg = cfg
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(**consumer_kwargs(self.cfg), group_id=None)
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        await _stop_quietly(consumer)

    async def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        """The end of each partition as this client may read it (read_committed: the last stable offset)."""
        ends = await self._consumer.end_offsets([_tp(tp) for tp in tps])
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def partitions(self, topic: str) -> list[int]:
        return await partitions_of(self.cfg, topic, 0)


async def partitions_of(cfg: KafkaConfig, topic: str, wait: float = 30.0) -> list[int]:
    """The partition numbers of ``topic`` (empty when it does not exist), asked from the cluster's
    metadata; waits up to ``wait`` seconds for a topic created a moment ago to show."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**aiokafka_kwargs(cfg))
    await admin.start()
    try:
        deadline = time.monotonic() + wait
        while True:
            parts: list[int] = []
            # Described only once listed: a metadata request naming a missing topic lets a broker
            # with auto-create on make it, with the broker's defaults.
            if topic in await admin.list_topics():
                described = await admin.describe_topics([topic])
                parts = sorted(p["partition"] for d in described if d.get("error_code", 0) == 0
                               for p in d.get("partitions", []))
            if parts or time.monotonic() >= deadline:
                return parts
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


class PartitionReader:
    """Reads partitions of a topic without a group (the roster feed, a changelog being restored,
    ``vpa verify``): assign, seek, fetch."""

    def __init__(self, cfg: KafkaConfig, *, isolation: Optional[str] = None) -> None:
        self.cfg = cfg
        self.isolation = isolation
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        kwargs = consumer_kwargs(self.cfg)
        if self.isolation:
            kwargs["isolation_level"] = self.isolation
        self._consumer = AIOKafkaConsumer(**kwargs, group_id=None)
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        await _stop_quietly(consumer)

    async def partitions(self, topic: str, wait: float = 30.0) -> list[int]:
        return await partitions_of(self.cfg, topic, wait)

    def assign(self, tps: Iterable[TP]) -> None:
        self._consumer.assign([_tp(tp) for tp in tps])

    async def seek(self, tp: TP, offset: Optional[int]) -> None:
        if offset is None:
            await self._consumer.seek_to_beginning(_tp(tp))
        else:
            self._consumer.seek(_tp(tp), offset)

    async def fetch(self, timeout: float, max_records: int = 5000) -> dict[TP, list[Record]]:
        """The records fetched since the last call, per partition; waits up to ``timeout`` seconds
        when none are there. A batch the client cannot read raises, but only when no other
        partition has records to hand over, so none are dropped with the error (see
        ``GroupConsumer.fetch``: aiokafka drops what it drained before a failing batch)."""
        out: dict[TP, list[Record]] = {}
        for ktp in sorted(self._consumer.assignment()):
            try:
                got = await self._consumer.getmany(ktp, timeout_ms=0, max_records=max_records)
            except batch_errors():
                if out:
                    return out  # the failing batch is fetched again and raises on a later call
                raise
            for tp, msgs in got.items():
                out.setdefault((tp.topic, tp.partition), []).extend(_record(m) for m in msgs)
        if out:
            return out
        got = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=1)
        return {(tp.topic, tp.partition): [_record(m) for m in msgs] for tp, msgs in got.items()}

    async def position(self, tp: TP) -> int:
        return await asyncio.wait_for(self._consumer.position(_tp(tp)), 5)

    def stable_end(self, tp: TP) -> Optional[int]:
        """As ``GroupConsumer.stable_end``: what this reader may read, as of its last fetch."""
        hw = self._consumer.highwater(_tp(tp))
        if (self.isolation or self.cfg.isolation_level.value) == "read_committed":
            lso = self._consumer.last_stable_offset(_tp(tp))
            if lso is not None and lso >= 0:
                return lso
        return hw

    async def end_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        ends = await self._consumer.end_offsets([_tp(tp) for tp in tps])
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}


async def read_range(cfg: KafkaConfig, tp: TP, start: int, end: int, timeout: float,
                     isolation: Optional[str] = None) -> AsyncIterator[list[Record]]:
    """The records of ``tp`` from ``start`` up to (not including) ``end``, in fetched batches.
    Raises ``TimeoutError`` when the broker does not hand them over within ``timeout`` seconds."""
    reader = PartitionReader(cfg, isolation=isolation)
    await reader.start()
    try:
        reader.assign([tp])
        await reader.seek(tp, start)
        deadline = time.monotonic() + timeout
        position = start
        while position < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tp[0]}[{tp[1]}]: offsets {position} to {end - 1} were not read within "
                                   f"{timeout:.0f} s")
            got = await reader.fetch(0.5)
            batch = [r for r in got.get(tp, []) if r.offset < end]
            if batch:
                yield batch
            position = await reader.position(tp)
    finally:
        await reader.stop()


async def iter_retained(cfg: KafkaConfig, topics: Iterable[str], idle_timeout: float = 30.0
                        ) -> AsyncIterator[list[Record]]:
    """Every retained record of ``topics`` from the earliest offset to the end offsets of now, in
    fetched batches, with a reader that joins no group (safe against production: ``vpa verify``,
    ``vpa whatif --from-kafka``). A topic that does not exist holds nothing. Raises
    ``TimeoutError`` when the broker hands nothing over for ``idle_timeout`` seconds."""
    topics = tuple(topics)
    offsets, reader = Offsets(cfg), PartitionReader(cfg)
    await offsets.start()
    await reader.start()
    try:
        tps = [(t, p) for t in topics for p in await partitions_of(cfg, t, wait=5.0)]
        ends = await offsets.end_offsets(tps)
        reader.assign(tps)
        for tp in tps:
            await reader.seek(tp, None)
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            behind = [tp for tp in tps if await reader.position(tp) < ends.get(tp, 0)]
            if not behind:
                return
            got = await reader.fetch(0.5)
            for tp, records in got.items():
                yield [r for r in records if r.offset < ends.get(tp, 0)]
            if got:
                last = loop.time()
            elif loop.time() - last > idle_timeout:
                raise TimeoutError(f"reading {', '.join(topics)} made no progress for {idle_timeout:.0f} s")
    finally:
        await reader.stop()
        await offsets.stop()


async def read_retained(cfg: KafkaConfig, topics: Iterable[str], idle_timeout: float = 30.0) -> list[Record]:
    """``iter_retained`` as one list."""
    return [r async for batch in iter_retained(cfg, topics, idle_timeout) for r in batch]


@dataclass
class Admin:
    """Topics: create, describe, configs (``vpa topics create`` and the services' start)."""

    cfg: KafkaConfig
    _admin: Any = field(default=None, init=False)

    async def __aenter__(self) -> "Admin":
        from aiokafka.admin import AIOKafkaAdminClient

        self._admin = AIOKafkaAdminClient(**aiokafka_kwargs(self.cfg))
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._admin.close()

    @property
    def raw(self) -> Any:
        return self._admin


class KafkaBroker:
    """The broker port (``services.broker.port.Broker``) over a real cluster, with aiokafka."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self.cfg = cfg

    def group_consumer(self, group_id: str, topics: Iterable[str], listener: RebalanceListener, *,
                       on_unreadable: Optional[Callable[[Unreadable], None]] = None) -> GroupConsumer:
        return GroupConsumer(self.cfg, group_id, topics, listener, on_unreadable=on_unreadable)

    def producer(self) -> Producer:
        return Producer(self.cfg)

    def offsets(self) -> Offsets:
        return Offsets(self.cfg)

    def reader(self, *, isolation: Optional[str] = None) -> PartitionReader:
        return PartitionReader(self.cfg, isolation=isolation)

    async def partitions(self, topic: str, wait: float = 30.0) -> list[int]:
        return await partitions_of(self.cfg, topic, wait)

    def read_range(self, tp: TP, start: int, end: int, timeout: float,
                   isolation: Optional[str] = None) -> AsyncIterator[list[Record]]:
        return read_range(self.cfg, tp, start, end, timeout, isolation)
