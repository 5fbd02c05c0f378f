"""``vpa simulate --kafka`` through the real broker: every line on its contract topic with the
contract key (DESIGN 4.1), each partition in output order, nothing lost (issue 8, item 1)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from services.simulator import record_of
from tests.integration.pipeline import read_topic, recreate_topics

pytestmark = pytest.mark.integration

VPA = str(Path(sys.executable).with_name("vpa"))
ARGS = ["simulate", "--vpas", "40", "--days", "6", "--seed", "9", "--start", "2026-03-26", "--bad-ratio", "0.02"]


async def test_simulate_produces_each_line_to_its_topic_in_order(tmp_path):
    await recreate_topics()  # start from empty topics, so everything read back is ours
    try:
        file = tmp_path / "company.jsonl"
        subprocess.run([VPA, *ARGS, "--output", str(file)], check=True, capture_output=True, timeout=120)
        done = subprocess.run([VPA, *ARGS, "--kafka"], capture_output=True, text=True, timeout=180,
                              env=dict(os.environ))
        assert done.returncode == 0, done.stderr
        lines = file.read_bytes().splitlines()
        assert f"{len(lines)} lines" in done.stderr

        expected: dict[str, int] = defaultdict(int)
        topic = "vpa.events"
        for line in lines:
            if line.startswith(b'{"event_id":"s9-'):
                topic = record_of(json.loads(line))[0]
            expected[topic] += 1  # a hostile line goes where the line before it went
        read = await asyncio.gather(*(read_topic(t, lambda r, t=t: len(r) >= expected[t], timeout=60)
                                      for t in ("vpa.events", "at.roster", "vpa.commands")))
        records = [r for topic in read for r in topic]
        assert sorted(r.value for r in records) == sorted(lines), "every line once, nothing else"

        counts: dict[bytes, int] = defaultdict(int)
        for line in lines:
            counts[line] += 1
        position = {line: n for n, line in enumerate(lines) if counts[line] == 1}  # hostile lines repeat
        by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
        for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
            if r.value in position:
                by_partition[(r.topic, r.partition)].append(position[r.value])
            if not r.value.startswith(b'{"event_id":"s9-'):
                continue  # a hostile line: it goes with the topic and key of the line before it
            env = json.loads(r.value)
            expected = env["data"]["initials"] if r.topic == "at.roster" else env["vpa_id"]
            assert r.key == expected.encode(), env
        for where, order in by_partition.items():
            assert order == sorted(order), f"{where} is not in output order"
    finally:
        await recreate_topics()  # leave empty topics to the tests after this one


async def test_topics_of_another_partition_count_are_named_without_a_traceback():
    await recreate_topics()
    have = int(os.environ.get("VPA_PARTITIONS", "4"))
    first = subprocess.run([VPA, "simulate", "--vpas", "1", "--days", "1", "--kafka"], capture_output=True,
                           text=True, timeout=120, env=dict(os.environ))  # the topics, with `have` partitions
    assert first.returncode == 0, first.stderr
    done = subprocess.run([VPA, *ARGS, "--kafka"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, VPA_PARTITIONS=str(have + 2)))
    assert done.returncode == 1, done.stderr
    assert f"vpa.events has {have} partitions, expected {have + 2}" in done.stderr
    assert "Traceback" not in done.stderr
