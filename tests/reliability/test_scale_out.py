"""Scale-out (issue 12, item 2): two workers of each stream service share the partitions; one of
each is stopped mid-stream and its partitions and state move to the other; started again, the
partitions are shared again; a third worker joins mid-stream; the end state equals `vpa replay`."""
from __future__ import annotations

import time
from datetime import date

import pytest

from tests.integration.harness import STREAM_SERVICES, Pipeline, write_stream
from tests.integration.pipeline import produce_fast
from tests.reliability.faults import wait_members, wait_progress
from tests.reliability.streams import company, drift_figures

pytestmark = pytest.mark.integration


async def half_way(pipe: Pipeline, before: dict[str, int]) -> None:
    """Until every stream service has committed half of what was produced since ``before``."""
    for s in STREAM_SERVICES:
        _, end = await pipe.progress(s)
        await wait_progress(pipe, s, before[s] + (end - before[s]) // 2)


async def produce_part(pipe: Pipeline, part: list[dict]) -> dict[str, int]:
    before = {s: (await pipe.progress(s))[0] for s in STREAM_SERVICES}
    await produce_fast(part)
    return before


async def regroup(pipe: Pipeline, count: int) -> tuple[float, dict[str, list[int]]]:
    t0 = time.monotonic()
    shares = {}
    for s in STREAM_SERVICES:
        members = await wait_members(pipe, s, count)
        shares[s] = sorted(len(p) for p in members.values())
    return round(time.monotonic() - t0, 1), shares


async def test_workers_joining_and_leaving_mid_stream_change_nothing(database_url, tmp_path, figures):
    """Two workers per stream service, one stopped and started again, a third joining, on a 300-VPA, 60-day stream."""
    envelopes = company(300, 60, date(2026, 4, 6), seed=21)
    path = write_stream(envelopes, tmp_path / "stream.jsonl")
    quarter = len(envelopes) // 4
    parts = [envelopes[i * quarter:(i + 1) * quarter] for i in range(3)] + [envelopes[3 * quarter:]]
    services = tuple(s for s in STREAM_SERVICES for _ in range(2)) + ("notifier",)
    async with Pipeline(database_url, tmp_path, services=services, VPA_CLOCK="stream",
                        VPA_UPSTREAM_WAIT_SECONDS="600") as pipe:
        seconds, shares = await regroup(pipe, 2)
        assert all(share == [2, 2] for share in shares.values()), shares
        figures.fault(kind="start", workers=2, seconds=seconds, partitions=shares)

        await half_way(pipe, await produce_part(pipe, parts[0]))
        stopped = {s: pipe.running(s)[0] for s in STREAM_SERVICES}
        t0 = time.monotonic()
        for proc in stopped.values():
            proc.send_signal()  # SIGTERM: each leaves its group cleanly, all at once
        for proc in stopped.values():
            proc.stop()
        seconds, shares = await regroup(pipe, 1)
        assert all(share == [4] for share in shares.values()), shares
        figures.fault(kind="stop one worker of each (SIGTERM)", workers=1, seconds=round(time.monotonic() - t0, 1),
                      partitions=shares)

        await half_way(pipe, await produce_part(pipe, parts[1]))
        t0 = time.monotonic()
        for proc in stopped.values():
            pipe.restart_like(proc)
        seconds, shares = await regroup(pipe, 2)
        assert all(share == [2, 2] for share in shares.values()), shares
        figures.fault(kind="start it again", workers=2, seconds=round(time.monotonic() - t0, 1), partitions=shares)

        await half_way(pipe, await produce_part(pipe, parts[2]))
        t0 = time.monotonic()
        for s in STREAM_SERVICES:
            pipe.start(s)
        seconds, shares = await regroup(pipe, 3)
        assert all(share == [1, 1, 2] for share in shares.values()), shares
        figures.fault(kind="a third worker joins", workers=3, seconds=round(time.monotonic() - t0, 1),
                      partitions=shares)

        await produce_fast(parts[3])
        await pipe.settle(timeout=600)
        report = pipe.verify([path])
    figures.set(events=len(envelopes), **drift_figures(report))
    assert report["ok"], "\n".join(f"{d['reference']} {d['kind']} {d['task_id']}: {d['detail']}"
                                   for d in report["drift"][:40])
