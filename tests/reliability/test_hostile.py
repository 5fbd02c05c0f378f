"""Hostile input over Kafka (issue 12, item 4): hand-picked and hypothesis-generated records,
interleaved with a valid company stream, on every input topic (``vpa.events``, ``vpa.commands``,
``at.roster``, ``dashlet.tasks``). Every invalid one reaches ``vpa.dlq`` with its reason and origin
(once per service that reads it), every valid one is processed (the store equals `vpa replay` of
the valid records), no service restarts, memory stays bounded."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas.envelope import topic_for_type
from services.engine.decode import Decoded, Invalid, Unknown, decode
from services.notifier.validation import parse_task
from services.runners.kafka.keys import misrouted, misrouted_roster
from tests.integration.harness import ALL_SERVICES, STREAM_SERVICES, Pipeline, replay_tasks, write_stream
from tests.integration.pipeline import bootstrap, produce_fast
from tests.reliability.faults import RssSampler, assert_no_restart
from tests.reliability.streams import company, drift_figures

pytestmark = pytest.mark.integration
RSS_BOUND_KIB = 1024 * 1024  # 1 GiB per service, also with 1 MiB records and 10,000-level nesting
BIG = 1_000_000  # characters: with the envelope the record stays under the broker's 1 MiB message limit
Raw = tuple[str, Optional[bytes], Optional[bytes]]  # (topic, key, value): a record as produced


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def hand_picked(template: dict, key: Optional[bytes]) -> list[tuple[str, Optional[bytes], Optional[bytes]]]:
    """(what, key, value) for one input envelope: the kinds the issue names, each on the template's
    topic and key."""
    good = _dump(template)
    # the same event_id for another valid event about the VPA: a repetition, whatever it says
    other = {**template, "type": "vpa.activity_seen", "data": {"channel": "web"}}
    return [
        ("invalid UTF-8", key, b"\xff\xfe" + good[2:]),
        ("not JSON", key, b"kein JSON {"),
        ("a JSON array", key, b"[1, 2, 3]"),
        ("a JSON string", key, b'"vpa.activity_seen"'),
        ("1 MiB string", key, _dump({**template, "occurred_at": "x" * BIG})),
        ("10,000-level nesting", key, good[:-1] + b', "deep": ' + _nested(10_000) + b"}"),
        ("10,000-level nesting in data", key, _dump({**template, "data": None}).replace(b'"data": null',
                                                                                     b'"data": ' + _nested(10_000))),
        ("type a number", key, _dump({**template, "type": 42})),
        ("data a string", key, _dump({**template, "data": "nichts"})),
        ("schema_version a string", key, _dump({**template, "schema_version": "1"})),
        ("U+0000 in event_id", key, _dump({**template, "event_id": template["event_id"] + "\u0000"})),
        ("year 1", key, _dump({**template, "event_id": "h-y1", "occurred_at": "0001-01-01T00:00:00+00:00"})),
        ("year 9999", key, _dump({**template, "event_id": "h-y9999", "occurred_at": "9999-12-31T23:59:59+00:00"})),
        ("no type", key, _dump({k: v for k, v in template.items() if k != "type"})),
        ("no event_id", key, _dump({k: v for k, v in template.items() if k != "event_id"})),
        ("no data", key, _dump({k: v for k, v in template.items() if k != "data"})),
        ("schema_version 2", key, _dump({**template, "event_id": "h-v2", "schema_version": 2})),
        ("unknown type", key, _dump({**template, "event_id": "h-unknown", "type": "vpa.teleported"})),
        ("repeated event_id, same record", key, good),
        *([("repeated event_id, other content", key, _dump(other))] if template.get("vpa_id") else []),
        ("a null value", key, None),
        ("an empty value", key, b""),
    ]


def misrouted_picks(template: dict) -> list[tuple[str, Optional[bytes], Optional[bytes]]]:
    """A record about a VPA keyed otherwise (or not at all): its partition does not hold the state."""
    return [("no key", None, _dump({**template, "event_id": "h-nokey"})),
            ("another VPA's key", b"V-OTHER", _dump({**template, "event_id": "h-otherkey"}))]


def task_picks(task: dict) -> list[tuple[str, Optional[bytes], Optional[bytes]]]:
    key = task["task_id"].encode()
    return [
        ("invalid UTF-8", key, b"\xff\xfe" + _dump(task)[2:]),
        ("not JSON", key, b"kein JSON"),
        ("10,000-level nesting", b"h-task-deep", _nested(10_000)),
        ("U+0000 in the title", b"h-task-nul", _dump({**task, "task_id": "h-task-nul", "title": "a\u0000b"})),
        ("version a string", b"h-task-v", _dump({**task, "task_id": "h-task-v", "version": "1"})),
        ("no task_id", b"h-task-noid", _dump({k: v for k, v in task.items() if k != "task_id"})),
        ("1 MiB title", b"h-task-big", _dump({**task, "task_id": "h-task-big", "status": "x" * BIG})),
        ("an erase marker naming nobody", b"erase:", b"{}"),
        ("an empty value", b"h-task-empty", b""),
    ]


# ---- hypothesis: mutated envelopes and tasks ----------------------------------------------------

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


@st.composite
def mutated(draw: Any, record: dict, protected: tuple[str, ...]) -> bytes:
    """``record`` with one change: a field replaced by junk, dropped, added, a data field changed,
    or the bytes replaced by random ones (never with a line break: the replay file is JSONL)."""
    fields = sorted(k for k in record if k not in protected)
    how = draw(st.sampled_from(["replace", "drop", "add", "data", "bytes"]))
    out = dict(record)
    if how == "replace":
        out[draw(st.sampled_from(fields))] = draw(JUNK)
    elif how == "drop":
        out.pop(draw(st.sampled_from(fields)))
    elif how == "add":
        out[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
    elif how == "data" and isinstance(out.get("data"), dict):
        data = dict(out["data"])
        data[draw(st.sampled_from(sorted(data) or ["x"]))] = draw(JUNK)
        out["data"] = data
    else:
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    return _dump(out).replace(b"\n", b" ")


def generated(templates: list[tuple[str, Optional[bytes], dict]], count: int) -> list[tuple[int, bytes]]:
    """``count`` (template index, mutated value), drawn by hypothesis with a fixed seed: the same
    records every run. The time (``occurred_at``) stays the template's, so a mutation that is
    still valid keeps its place in the stream (Kafka cannot reorder a partition; replay sorts)."""
    out: list[tuple[int, bytes]] = []

    @settings(max_examples=1, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data: Any) -> None:
        out.clear()
        for _ in range(count):
            i = data.draw(st.integers(0, len(templates) - 1))
            out.append((i, data.draw(mutated(templates[i][2], protected=("occurred_at",)))))

    draw()
    return out


# ---- what each record should become -------------------------------------------------------------

def verdict(topic: str, key: Optional[bytes], value: Optional[bytes]) -> str:
    """"invalid" (vpa.dlq), "unknown" (ignored, counted) or "valid", as the contract says."""
    if topic == "dashlet.tasks":
        if value is None:
            return "valid"  # a tombstone deletes the task of the key (none here)
        return "invalid" if not isinstance(parse_task(value), dict) else "valid"
    outcome = decode(value)
    outcome = misrouted(outcome, key) if topic != "at.roster" else misrouted_roster(outcome, key)
    return {Invalid: "invalid", Unknown: "unknown", Decoded: "valid"}[type(outcome)]


READERS = {"vpa.events": set(STREAM_SERVICES), "vpa.commands": set(STREAM_SERVICES),
           "at.roster": set(STREAM_SERVICES), "dashlet.tasks": {"notifier"}}


def contract_key(env: dict) -> Optional[bytes]:
    key = env.get("vpa_id") or (env.get("data") or {}).get("initials")
    return key.encode() if key else None


async def read_dlq() -> dict[tuple[str, int, int], list[dict]]:
    """Every record on vpa.dlq by origin (topic, partition, offset): its service and reason."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    out: dict[tuple[str, int, int], list[dict]] = defaultdict(list)
    try:
        tps = [TopicPartition("vpa.dlq", p) for p in sorted(await _partitions(consumer, "vpa.dlq"))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                for m in msgs:
                    h = {k: v.decode("utf-8", "replace") for k, v in m.headers}
                    out[(h["origin_topic"], int(h["origin_partition"]), int(h["origin_offset"]))].append(
                        {"service": h["service"], "reason": h["reason"], "size": len(m.value or b""),
                         "truncated_from": h.get("truncated_from")})
    finally:
        await consumer.stop()
    return out


async def _partitions(consumer: Any, topic: str) -> set[int]:
    import asyncio

    for _ in range(100):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return parts
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)  # metadata of a topic just created: polled with a deadline
    raise AssertionError(f"{topic} has no partitions")


async def test_hostile_records_on_every_input_topic_reach_the_dlq_and_nothing_else_changes(
        database_url, tmp_path, figures):
    """Hand-picked and hypothesis-generated hostile records on every input topic, among a 120-VPA, 30-day stream."""
    envelopes = company(120, 30, date(2026, 3, 2), seed=44)
    by_topic: dict[str, list[int]] = defaultdict(list)
    for i, env in enumerate(envelopes):
        by_topic[topic_for_type(env["type"]) or "vpa.events"].append(i)
    # The hostile records go right after a template each: on its topic, with its key.
    after: dict[int, list[tuple[str, str, Optional[bytes], Optional[bytes]]]] = defaultdict(list)
    for topic in ("vpa.events", "vpa.commands", "at.roster"):
        indices = [i for i in by_topic[topic] if envelopes[i]["type"] != "clock.tick"]
        for n, i in enumerate(indices[len(indices) // 4::max(1, len(indices) // 3)][:2]):
            env = envelopes[i]
            picks = hand_picked(env, contract_key(env)) + (misrouted_picks(env) if env.get("vpa_id") else [])
            after[i] += [(what, topic, k, v) for what, k, v in picks]
    templates = [(t, contract_key(envelopes[i]), envelopes[i]) for t in ("vpa.events", "vpa.commands", "at.roster")
                 for i in by_topic[t] if envelopes[i]["type"] != "clock.tick"]
    index_of = {id(env): i for i, env in enumerate(envelopes)}
    for t_index, value in generated(templates, 240):
        topic, key, env = templates[t_index]
        after[index_of[id(env)]].append(("hypothesis", topic, key, value))
    # dashlet.tasks: versions of tasks vpa replay produces, mangled; hypothesis mutations the notifier refuses.
    tasks = replay_tasks(envelopes, tmp_path)[:20]
    task_records: list[tuple[str, str, Optional[bytes], Optional[bytes]]] = []
    for task in tasks[:2]:
        task_records += [(what, "dashlet.tasks", k, v) for what, k, v in task_picks(task)]
    for _, value in generated([("dashlet.tasks", None, {**t, "task_id": f"h-{t['task_id']}"}) for t in tasks], 60):
        task_records.append(("hypothesis", "dashlet.tasks", b"h-generated", value))

    stream: list[Any] = []
    reference: list[Any] = []  # the records vpa replay must see: valid ones and the ignored unknown types
    hostile: list[tuple[int, str, str, Optional[bytes], Optional[bytes], str]] = []  # (position, what, topic, key, value, verdict)
    for i, env in enumerate(envelopes):
        stream.append(env)
        reference.append(env)
        for what, topic, key, value in after[i]:
            v = verdict(topic, key, value)
            hostile.append((len(stream), what, topic, key, value, v))
            stream.append((topic, key, value))
            if v != "invalid" and value is not None:
                reference.append(value)
    tail = stream.pop()  # the final clock.tick stays last
    for what, topic, key, value in task_records:
        v = verdict(topic, key, value)
        assert v == "invalid" or what == "hypothesis", f"{what} is not invalid for the notifier"
        if v == "valid":
            continue  # a mutated task still valid would be a task the pipeline did not make
        hostile.append((len(stream), what, topic, key, value, v))
        stream.append((topic, key, value))
    stream.append(tail)
    path = write_stream(reference, tmp_path / "reference.jsonl")
    picked_invalid = [h for h in hostile if h[1] != "hypothesis" and h[5] != "invalid"]
    assert {h[1] for h in picked_invalid} <= {"unknown type", "repeated event_id, same record",
                                               "repeated event_id, other content"}, picked_invalid

    async with Pipeline(database_url, tmp_path, metrics=True, VPA_CLOCK="stream",
                        VPA_UPSTREAM_WAIT_SECONDS="600") as pipe:
        pids = {p.service: p.pid for p in pipe.procs}
        with RssSampler(pipe, figures=figures) as rss:
            where = await produce_fast(stream)
            await pipe.settle(timeout=600)
        dlq = await read_dlq()
        report = pipe.verify([path])
        assert_no_restart(pipe, pids)
        unknown_counted = {p.service: await p.metric("vpa_unknown_types_total") for p in pipe.procs
                           if p.service in STREAM_SERVICES}
        for service in ALL_SERVICES:
            figures.rss(service, rss.samples.get(service, []), peak_kib=rss.peak(service))

    missing, unexpected, without_reason = [], [], []
    valid_positions = {pos for pos, *_rest, v in hostile if v != "invalid"}
    for pos, what, topic, key, value, v in hostile:
        got = dlq.pop(where[pos], [])
        services = sorted(r["service"] for r in got)
        if v == "invalid" and services != sorted(READERS[topic]):
            missing.append((what, topic, where[pos], services, (value or b"")[:80]))
        if v != "invalid" and got:
            unexpected.append((what, topic, [r["reason"] for r in got]))
        without_reason += [(what, r) for r in got if not r["reason"].startswith(("invalid: ", "undecodable: "))]
    assert not missing, (Counter((m[0], m[1], tuple(m[3])) for m in missing), missing[:5])
    assert not unexpected, unexpected[:10]
    assert not without_reason, without_reason[:10]
    # What else is on vpa.dlq: the company's own commands the rules refuse (a wrong role, ...)
    others = [r for records in dlq.values() for r in records if not r["reason"].startswith("rejected: ")]
    assert not others, f"vpa.dlq holds records of valid input: {others[:5]}"
    assert report["ok"], "\n".join(f"{d['reference']} {d['kind']} {d['task_id']}: {d['detail']}"
                                   for d in report["drift"][:40])
    peaks = {s: rss.peak(s) for s in ALL_SERVICES}
    assert all(0 < kib < RSS_BOUND_KIB for kib in peaks.values()), peaks

    counts: dict[str, int] = defaultdict(int)
    for _, what, topic, *_rest, v in hostile:
        counts[f"{topic} {v}"] += 1
    figures.set(events=len(envelopes), hostile_records=len(hostile), hostile_by_topic_and_verdict=dict(counts),
                hand_picked_kinds=len({h[1] for h in hostile if h[1] != "hypothesis"}),
                hypothesis_records=sum(1 for h in hostile if h[1] == "hypothesis"),
                valid_among_generated=len(valid_positions), unknown_types_counted=unknown_counted,
                restarts=0, rss_peak_kib=peaks, **drift_figures(report))
