"""Soak (issue 12, item 5): 1,000,000 simulated events through the Kafka runner. Each service's
resident memory stays under a documented bound (README "Reliability") and stops growing after
warm-up; at the end the store equals the compacted ``dashlet.tasks`` (`vpa verify`)."""
from __future__ import annotations

import asyncio
import time
from datetime import date
from itertools import islice

import pytest

from services.simulator import SimConfig, simulate
from tests.integration.harness import ALL_SERVICES, Pipeline, final_tick
from tests.integration.pipeline import produce_fast
from tests.reliability.faults import RssSampler, assert_no_restart
from tests.reliability.streams import drift_figures

pytestmark = [pytest.mark.integration, pytest.mark.long]
EVENTS = 1_000_000
RSS_BOUND_MIB = 1024  # per service; README "Reliability" states it
# After warm-up (a third of the detector's input done) the peak of the second half of the rest of
# the run may exceed the peak of its first half by this much at most: state grows with the VPAs the company hires, not
# with the events it sends.
GROWTH_ALLOWED = 1.10
GROWTH_SLACK_MIB = 32


async def _produce_all(cfg: SimConfig, chunk: int = 50_000) -> int:
    """The simulated company straight into Kafka, in chunks (never 1,000,000 dicts at once)."""
    items = (e for e in simulate(cfg) if isinstance(e, dict))
    sent, last = 0, None
    while sent < EVENTS:
        part = list(islice(items, min(chunk, EVENTS - sent)))
        if not part:
            break
        await produce_fast(part)
        sent, last = sent + len(part), part
    await produce_fast([final_tick(last)])
    return sent + 1


async def test_a_million_events_keep_memory_bounded(database_url, tmp_path, figures):
    """1,000,000 events of a 5,600-VPA company over two years through every service."""
    cfg = SimConfig(vpas=5_600, days=730, seed=1_000_000, start=date(2024, 12, 2))
    async with Pipeline(database_url, tmp_path, metrics=True, VPA_CLOCK="stream",
                        VPA_UPSTREAM_WAIT_SECONDS="600") as pipe:
        pids = {p.service: p.pid for p in pipe.procs}
        progress: list[tuple[float, float]] = []  # (seconds, share of the detector's input done)
        t0 = time.monotonic()
        with RssSampler(pipe, interval=5.0, figures=figures) as rss:
            produced = await _produce_all(cfg)
            produced_s = time.monotonic() - t0

            async def follow() -> None:
                while True:
                    done, end = await pipe.progress("detector")
                    progress.append((round(time.monotonic() - t0, 1), done / max(end, 1)))
                    await asyncio.sleep(5)  # a sampling period, like the RSS sampler's

            follower = asyncio.ensure_future(follow())
            try:
                await pipe.settle(timeout=4 * 3600, calm=5.0, stall=900)
            finally:
                follower.cancel()
            processed_s = time.monotonic() - t0
        assert produced >= EVENTS
        report = pipe.verify()
        assert_no_restart(pipe, pids)

    warm = next((t for t, share in progress if share >= 1 / 3), processed_s / 3)
    verdicts = {}
    for service in ALL_SERVICES:
        samples = [(t, kib) for t, kib in rss.samples.get(service, []) if t >= warm]
        half = max(1, len(samples) // 2)
        middle, last = samples[:half], samples[half:]
        peak_middle = max((k for _, k in middle), default=0) / 1024
        peak_last = max((k for _, k in last), default=0) / 1024
        verdicts[service] = {"peak_mib": round(rss.peak(service) / 1024, 1),
                             "after_warm_up_first_half_peak_mib": round(peak_middle, 1),
                             "after_warm_up_second_half_peak_mib": round(peak_last, 1)}
        figures.rss(service, rss.samples.get(service, []), peak_kib=rss.peak(service))
    figures.set(events=produced, vpas=cfg.vpas, days=cfg.days, produce_seconds=round(produced_s, 1),
                processed_seconds=round(processed_s, 1),
                events_per_second=round(produced / processed_s), warm_up_seconds=warm,
                rss_bound_mib=RSS_BOUND_MIB, memory=verdicts, **drift_figures(report))
    assert report["ok"], report["drift"][:20]
    for service, v in verdicts.items():
        assert v["peak_mib"] < RSS_BOUND_MIB, (service, v)
        assert v["after_warm_up_second_half_peak_mib"] <= (
                v["after_warm_up_first_half_peak_mib"] * GROWTH_ALLOWED + GROWTH_SLACK_MIB), (service, v)
