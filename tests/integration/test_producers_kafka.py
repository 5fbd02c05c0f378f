"""Every record a real producer writes (issue 24): producers nobody here wrote, into each input topic.

kcat (librdkafka) with every codec Kafka has, Kafka's own Java console producer with each
``compression.type``, aiokafka idempotent and transactional (committed and aborted), records with
headers, a record without a key and a tombstone. Each producer writes a small scenario of its own
(an AT member on ``at.roster``, a VPA with a long absence on ``vpa.events``, a reminder on
``vpa.commands``), so each one's tasks can be told apart. Every committed record ends as
`vpa replay` of the same lines says, none of an aborted transaction does, the key-less records
and the tombstones reach ``vpa.dlq`` with their reason, and every service is still running.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.harness import Pipeline, differences, final_tick, replay_tasks
from tests.integration.pipeline import ROOT, bootstrap, read_topic

pytestmark = pytest.mark.integration

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
KAFKA_LIBS = Path(os.environ.get("KAFKA_LIBS") or ROOT / ".cache" / "kafka" / "libs")


def scenario(initials: str, minute: int) -> dict[str, list[dict]]:
    """One producer's lines per topic, at 08:<minute> on one day (producers write in that order)."""
    at = f"2026-11-02T08:{minute:02d}:%02d+01:00"
    vpa = f"V-{initials}"

    def env(n: int, type_: str, data: dict, vpa_id: Optional[str] = vpa, actor: Optional[dict] = None) -> dict:
        return {"event_id": f"{initials}-{n}", "type": type_, "occurred_at": at % n, "vpa_id": vpa_id,
                "actor": actor, "schema_version": 1, "data": data}

    return {
        "at.roster": [env(1, "roster.member_upserted", {"initials": initials, "name": f"Member {initials}",
                                                          "role": "at", "deputy": None, "active": True}, None)],
        "vpa.events": [
            env(2, "vpa.registered", {"name": f"Nora {initials.title()}", "started_on": "2025-01-06",
                                      "at_owner": initials}),
            env(3, "vpa.absence_registered", {"absence_id": "L1", "starts_on": "2026-12-01", "ends_on": "2026-12-31"}),
        ],
        "vpa.commands": [env(4, "cmd.reminder.set", {"reminder_id": f"r-{initials}", "owner": initials,
                                                      "due_at": "2026-11-20T10:00:00+01:00", "note": "nachfassen"},
                             actor={"initials": initials, "role": "at"})],
    }


def key_of(topic: str, envelope: dict) -> bytes:
    return (envelope["data"]["initials"] if topic == "at.roster" else envelope["vpa_id"]).encode()


def kcat(topic: str, lines: list[dict], codec: str, headers: tuple[str, ...] = ()) -> None:
    exe = shutil.which("kcat") or shutil.which("kafkacat")
    assert exe, "kcat is missing (scripts/test installs Debian's kcat)"
    data = "".join(f"{key_of(topic, e).decode()}\t{json.dumps(e)}\n" for e in lines)
    # librdkafka's own default partitioner hashes keys otherwise than the Java client; the contract
    # asks for Kafka's default (murmur2), which librdkafka has as murmur2_random (README)
    cmd = [exe, "-P", "-b", bootstrap(), "-t", topic, "-K", "\t", "-z", codec, "-X", "partitioner=murmur2_random"]
    for h in headers:
        cmd += ["-H", h]
    subprocess.run(cmd, input=data.encode(), check=True, timeout=60)


def java_console(topic: str, lines: list[dict], codec: str) -> None:
    java = shutil.which("java")
    assert java and KAFKA_LIBS.is_dir(), f"java or the Kafka jars ({KAFKA_LIBS}) are missing"
    data = "".join(f"{key_of(topic, e).decode()}\t{json.dumps(e)}\n" for e in lines)
    cmd = [java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", f"{KAFKA_LIBS}/*", "org.apache.kafka.tools.ConsoleProducer",
           "--bootstrap-server", bootstrap(), "--topic", topic, "--property", "parse.key=true",
           "--property", "key.separator=\t", "--producer-property", f"compression.type={codec}",
           "--producer-property", "acks=all"]
    subprocess.run(cmd, input=data.encode(), check=True, timeout=120, capture_output=True)


async def aiokafka_send(lines_by_topic: dict[str, list[dict]], *, transactional: Optional[str] = None,
                        commit: bool = True, headers: bool = False) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), enable_idempotence=True, acks="all",
                                transactional_id=transactional)
    await producer.start()
    try:
        if transactional:
            await producer.begin_transaction()
        for topic, lines in lines_by_topic.items():
            for e in lines:
                hdrs = [("trace-id", b"abc123"), ("source", b"crm")] if headers else None
                await producer.send_and_wait(topic, json.dumps(e).encode(), key=key_of(topic, e), headers=hdrs)
        if transactional:
            await (producer.commit_transaction() if commit else producer.abort_transaction())
    finally:
        await producer.stop()


async def test_records_of_every_real_producer_end_as_their_uncompressed_twins(database_url, tmp_path):
    committed: list[dict] = []
    minute = iter(range(60))
    async with Pipeline(database_url, tmp_path, VPA_CLOCK="stream") as pipe:
        # kcat, every codec, each topic of the scenario
        for codec, initials in zip(CODECS, ("KN", "KG", "KS", "KL", "KZ")):
            lines = scenario(initials, next(minute))
            for topic, batch in lines.items():
                kcat(topic, batch, codec)
            committed += [e for batch in lines.values() for e in batch]
        # kcat with headers on every record
        lines = scenario("HD", next(minute))
        for topic, batch in lines.items():
            kcat(topic, batch, "lz4", headers=("trace-id=abc123", "source=crm"))
        committed += [e for batch in lines.values() for e in batch]
        # Kafka's own Java producer (the client most upstream platforms use), each compression.type,
        # into vpa.events (a JVM start per run: the roster and command lines of these go with kcat)
        for codec, initials in zip(CODECS, ("JN", "JG", "JS", "JL", "JZ")):
            lines = scenario(initials, next(minute))
            for topic, batch in lines.items():
                if topic == "vpa.events":
                    java_console(topic, batch, codec)
                else:
                    kcat(topic, batch, "none")
            committed += [e for batch in lines.values() for e in batch]
        # aiokafka: idempotent; a committed transaction; an aborted one (never a task)
        lines = scenario("AI", next(minute))
        await aiokafka_send(lines)
        committed += [e for batch in lines.values() for e in batch]
        lines = scenario("TC", next(minute))
        await aiokafka_send(lines, transactional="vpa-test-tc", commit=True, headers=True)
        committed += [e for batch in lines.values() for e in batch]
        await aiokafka_send(scenario("TA", next(minute)), transactional="vpa-test-ta", commit=False)
        # no key, and a tombstone, on each input topic
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all")
        await producer.start()
        try:
            no_key = scenario("NK", next(minute))
            for topic, batch in no_key.items():
                await producer.send_and_wait(topic, json.dumps(batch[0]).encode(), key=None)
                await producer.send_and_wait(topic, None, key=b"V-TOMB")
        finally:
            await producer.stop()
        tick = final_tick(committed)
        await pipe.produce([tick])
        got = await pipe.settle(timeout=240)
        dead = [p.service for p in pipe.procs if not p.alive()]
        dlq = await read_topic("vpa.dlq", lambda recs: len(recs) >= 6, timeout=60)

    want = replay_tasks(committed + [tick], tmp_path)
    assert not dead, f"services ended: {dead}"
    assert differences(want, got) == []
    assert not [t for t in got if t["vpa_id"] == "V-TA"], "records of an aborted transaction became tasks"
    assert {t["vpa_id"] for t in got} >= {f"V-{i}" for i in ("KN", "KG", "KS", "KL", "KZ", "JN", "JG", "JS", "JL",
                                                              "JZ", "HD", "AI", "TC")}
    reasons = {}
    for rec in dlq:
        h = dict(rec.headers)
        reasons.setdefault(h["origin_topic"].decode(), []).append(h["reason"].decode())
    for topic in ("vpa.events", "vpa.commands"):
        assert any("no key" in r for r in reasons.get(topic, [])), (topic, reasons)
    for topic in ("vpa.events", "vpa.commands", "at.roster"):
        assert any("empty record" in r for r in reasons.get(topic, [])), (topic, reasons)


def _pick_vpas(partitions: int) -> tuple[str, str]:
    """Two VPA ids in different partitions of vpa.events."""
    from services.broker.client import default_partition

    first = "V-CB1"
    other = next(f"V-CB{n}" for n in range(2, 100)
                 if default_partition(f"V-CB{n}".encode(), partitions) != default_partition(first.encode(), partitions))
    return first, other


def _corrupt(topic: str, partition: int, marker: bytes) -> None:
    """Change one byte of ``marker`` in the partition's log on the broker's disk: its batch's CRC no
    longer matches (the broker serves the bytes as they are; the client checks the CRC)."""
    log_dirs = Path(os.environ.get("KAFKA_LOG_DIRS") or ROOT / ".cache" / "kafka" / "data" / "kraft")
    folder = log_dirs / f"{topic}-{partition}"
    for segment in sorted(folder.glob("*.log")):
        data = segment.read_bytes()
        at = data.find(marker)
        if at >= 0:
            with open(segment, "r+b") as f:
                f.seek(at)
                f.write(b"X")
            return
    raise AssertionError(f"{marker!r} not found in {folder}")


def _reset_offset(group: str, topic: str, partition: int, offset: int) -> None:
    java = shutil.which("java")
    cmd = [java, "-Xmx128m", "-cp", f"{KAFKA_LIBS}/*", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
           "--bootstrap-server", bootstrap(), "--group", group, "--topic", f"{topic}:{partition}",
           "--reset-offsets", "--to-offset", str(offset), "--execute"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_batch_that_cannot_be_read_stops_only_its_partition_and_can_be_skipped(database_url, tmp_path):
    """A corrupt batch on the broker's disk: one error line, the metric, the other partitions go on;
    the operator's way out (README) skips it with Kafka's own consumer-groups tool."""
    import uuid

    from services.broker.client import default_partition
    from tests.integration.pipeline import free_port, produce_envelopes
    from tests.waiting import wait_for

    async with Pipeline(database_url, tmp_path, services=(), VPA_CLOCK="stream") as pipe:
        good, bad = _pick_vpas(pipe.partitions)
        p_bad = default_partition(bad.encode(), pipe.partitions)
        marker = f"CORRUPT-{uuid.uuid4().hex}".encode()
        at = "2026-11-02T09:%02d:00+01:00"

        def absence(n: int, vpa: str, absence_id: str, reason: str = "Urlaub") -> dict:
            return {"event_id": f"cb-{n}", "type": "vpa.absence_registered", "occurred_at": at % n, "vpa_id": vpa,
                    "schema_version": 1, "data": {"absence_id": absence_id, "starts_on": "2026-12-01",
                                                  "ends_on": "2026-12-31", "reason": reason}}

        await produce_envelopes([absence(1, bad, "A0"), absence(2, good, "G0"), absence(3, bad, "A1", marker.decode()),
                                 absence(4, bad, "A2"), absence(5, good, "G1")])
        _corrupt("vpa.events", p_bad, marker)
        port = free_port()
        detector = pipe.start("detector", VPA_METRICS_PORT=str(port))
        pipe.start("notifier")

        async def case_ids() -> set[str]:
            return {t["task_id"] for t in await pipe.store.all()}

        got = await wait_for(case_ids, lambda ids: {f"case:absence:{good}:G1", f"case:absence:{bad}:A0"} <= ids,
                             timeout=120)
        assert {f"case:absence:{good}:G0", f"case:absence:{good}:G1", f"case:absence:{bad}:A0"} <= got
        assert not {f"case:absence:{bad}:A1", f"case:absence:{bad}:A2"} & got, "nothing behind the bad batch"
        unreadable = await wait_for(lambda: detector.metric("vpa_input_unreadable", topic="vpa.events",
                                                             partition=str(p_bad)), lambda v: v == 1, timeout=60)
        assert unreadable == 1
        log = detector.log_path.read_text()
        errors = [line for line in log.splitlines() if " ERROR " in line and "cannot be read" in line]
        assert len(errors) == 1 and f"vpa.events[{p_bad}]" in errors[0] and "CorruptRecordException" in errors[0], errors
        assert detector.alive()

        # The way out: stop the service, move the group past the batch, start it again.
        offset = int(errors[0].split("the batch at offset ")[1].split()[0])
        detector.stop()
        _reset_offset(f"{pipe.prefix}-detector", "vpa.events", p_bad, offset + 1)
        pipe.start("detector")
        got = await wait_for(case_ids, lambda ids: f"case:absence:{bad}:A2" in ids, timeout=120)
        assert f"case:absence:{bad}:A2" in got and f"case:absence:{bad}:A1" not in got
