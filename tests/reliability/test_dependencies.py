"""Dependencies failing (issue 12, item 3): PostgreSQL stopped for 30 s mid-stream, and the broker
stopped and started again mid-stream with its data kept. The services retry with backoff, their
/healthz and metrics show the degradation, nothing is lost, and they recover without a restart.

(test_engine_kafka.py has PostgreSQL down when the notifier starts, and the store's content after a
mid-stream outage; these add what an operator sees and that nothing had to be restarted.)"""
from __future__ import annotations

import asyncio
import re
import time
from datetime import date

import pytest

from tests.integration.harness import ALL_SERVICES, Pipeline, write_stream
from tests.integration.pipeline import free_port, produce_fast
from tests.reliability.faults import LocalBroker, RssSampler, assert_no_restart, wait_health, wait_progress
from tests.reliability.streams import company, drift_figures

pytestmark = pytest.mark.integration
OUTAGE = 30.0  # seconds a dependency stays away


async def stay_away(pipe: Pipeline, since: float, seconds: float = OUTAGE) -> None:
    """The outage lasts ``seconds`` (a fault's length, not a wait for anything); the services live."""
    while time.monotonic() - since < seconds:
        assert all(p.alive() for p in pipe.procs), pipe.logs()
        await asyncio.sleep(1)


def retry_delays(log_text: str) -> list[float]:
    # The notifier writes task versions and the read model (profiles, events, roster); whichever
    # write the outage hits first retries with the same backoff.
    return [float(x) for x in re.findall(r"store (?:write|read model) failed .*; retrying in ([0-9.]+)s", log_text)]


async def test_postgres_away_for_30_s_mid_stream_is_seen_retried_and_healed(tmp_path, figures):
    """PostgreSQL stopped for 30 s while a 200-VPA, 45-day stream is worked through."""
    from services.store import embedded_pg

    data = tmp_path / "pg"
    url = embedded_pg.start(data)
    envelopes = company(200, 45, date(2026, 1, 5), seed=31)
    path = write_stream(envelopes, tmp_path / "stream.jsonl")
    half = len(envelopes) // 2
    try:
        async with Pipeline(url, tmp_path, fresh_db=False, metrics=True, VPA_CLOCK="stream") as pipe:
            dashlet = pipe.start("dashlet", VPA_HTTP_PORT=str(free_port()), VPA_DASHLET_TOKENS="t0ken=AB:at")
            notifier = pipe.running("notifier")[0]
            for p in (notifier, dashlet):
                await wait_health(p, True)
            await pipe.connect_store()
            await produce_fast(envelopes[:half])
            _, end = await pipe.progress("notifier")
            await wait_progress(pipe, "notifier", end // 2)
            pids = {p.service: p.pid for p in pipe.procs if p.alive()}
            errors_before = await notifier.metric("vpa_store_write_errors_total") or 0

            t_down = time.monotonic()
            embedded_pg.stop(data)
            await produce_fast(envelopes[half:])  # the stream goes on while the store is away
            seen = await wait_health(notifier, False, check="store")
            dashlet_seen = await wait_health(dashlet, False, check="store")
            assert await notifier.metric("vpa_store_up") == 0
            await stay_away(pipe, t_down)
            errors_during = (await notifier.metric("vpa_store_write_errors_total") or 0) - errors_before

            embedded_pg.start(data)
            t_up = time.monotonic()
            healed = await wait_health(notifier, True)
            dashlet_healed = await wait_health(dashlet, True)
            assert await notifier.metric("vpa_store_up") == 1
            await pipe.connect_store()
            await pipe.settle(timeout=600)
            caught_up = time.monotonic() - t_up
            report = pipe.verify([path])
            assert_no_restart(pipe, pids)
            delays = retry_delays(notifier.log_path.read_text(errors="replace"))
    finally:
        embedded_pg.stop(data)
    figures.fault(kind="PostgreSQL stopped mid-stream", seconds_away=round(t_up - t_down, 1),
                  seen_by_notifier_healthz_s=round(seen, 1), seen_by_dashlet_healthz_s=round(dashlet_seen, 1),
                  write_errors_counted=errors_during, retry_delays_s=sorted(set(delays)),
                  recovery_seconds=round(healed, 1), dashlet_recovery_seconds=round(dashlet_healed, 1),
                  caught_up_seconds=round(caught_up, 1), restarts=0)
    figures.set(events=len(envelopes), **drift_figures(report))
    assert report["ok"], report["drift"][:20]
    assert errors_during > 0
    # Backoff: one batch retried all through the outage, waiting twice as long each time, up to 10 s.
    assert delays[0] == 0.2 and all(b >= a for a, b in zip(delays, delays[1:])) and max(delays) == 10.0, delays


async def test_a_broker_restart_mid_stream_is_seen_and_healed_without_a_restart(database_url, tmp_path, figures):
    """The broker stopped (data kept) while a 200-VPA, 45-day stream is worked through, started again after 30 s."""
    broker = LocalBroker()
    if not broker.ours:
        pytest.skip("the broker was not started by deploy/kafka/kafka.sh (scripts/test): cannot restart it")
    envelopes = company(200, 45, date(2026, 1, 5), seed=32)
    path = write_stream(envelopes, tmp_path / "stream.jsonl")
    half = len(envelopes) // 2
    async with Pipeline(database_url, tmp_path, metrics=True, VPA_CLOCK="stream",
                        VPA_UPSTREAM_WAIT_SECONDS="600") as pipe:
        for p in pipe.procs:
            await wait_health(p, True)
        with RssSampler(pipe, figures=figures) as rss:
            await produce_fast(envelopes[:half])
            _, end = await pipe.progress("detector")
            await wait_progress(pipe, "detector", end // 3)
            pids = {p.service: p.pid for p in pipe.procs if p.alive()}

            t_down = time.monotonic()
            broker.stop()
            stopped = time.monotonic() - t_down
            seen = {p.service: round(await wait_health(p, False, check="broker"), 1) for p in pipe.procs}
            await stay_away(pipe, t_down)

            broker.start()
            t_up = time.monotonic()
            healed = {p.service: round(await wait_health(p, True, timeout=300), 1) for p in pipe.procs}
            assert all([await p.metric("vpa_broker_up") == 1 for p in pipe.procs])
            await produce_fast(envelopes[half:])
            await pipe.settle(timeout=900)
            caught_up = time.monotonic() - t_up
        report = pipe.verify([path])
        assert_no_restart(pipe, pids)
        for service in ALL_SERVICES:
            figures.rss(service, rss.samples.get(service, []), peak_kib=rss.peak(service))
    figures.fault(kind="broker stopped mid-stream (data kept)", seconds_away=round(t_up - t_down, 1),
                  broker_stop_seconds=round(stopped, 1), seen_by_healthz_s=seen, recovery_seconds=healed,
                  caught_up_seconds=round(caught_up, 1), restarts=0)
    figures.set(events=len(envelopes), **drift_figures(report))
    assert report["ok"], report["drift"][:20]
