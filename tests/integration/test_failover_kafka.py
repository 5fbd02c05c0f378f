"""A killed worker's partitions and state move to another (DESIGN 3): two detector workers, one
is killed with SIGKILL mid-stream, and rules that depend on earlier state still hold."""
from __future__ import annotations

import signal
import uuid

import pytest

from tests.integration.pipeline import (
    ServiceProcess, fresh_database, produce_envelopes, recreate_topics, service_env,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
VPAS = 8


def absence(run: str, vpa: str, n: int, at: str, start: str, end: str) -> dict:
    return {"event_id": f"fo-{run}-{vpa}-{n}", "type": "vpa.absence_registered", "occurred_at": at, "vpa_id": vpa,
            "actor": None, "schema_version": 1, "data": {"absence_id": f"X{n}", "starts_on": start, "ends_on": end}}


async def test_state_survives_a_killed_worker(database_url, tmp_path):
    from services.store.postgres import PostgresTaskStore

    run = uuid.uuid4().hex[:8]
    await recreate_topics()
    url = await fresh_database(database_url)
    env = service_env(url, f"fo-{run}", VPA_SESSION_TIMEOUT_SECONDS="10")
    det_a = ServiceProcess("detector", env, tmp_path)
    det_b = ServiceProcess("detector", env, tmp_path)
    notifier = ServiceProcess("notifier", env, tmp_path)
    store = await PostgresTaskStore.connect(url)
    vpas = [f"V-fo-{run}-{i}" for i in range(VPAS)]
    try:
        # Two absences per VPA, both without a reason (no case yet), then a long one (a case).
        first = [absence(run, v, 1, "2026-10-01T09:00:00+02:00", "2026-11-02", "2026-11-03") for v in vpas]
        first += [absence(run, v, 2, "2026-10-02T09:00:00+02:00", "2026-11-09", "2026-11-10") for v in vpas]
        first += [absence(run, v, 3, "2026-10-03T09:00:00+02:00", "2026-12-01", "2026-12-31") for v in vpas]
        await produce_envelopes(first)

        async def long_cases():
            return [await store.get(f"case:absence:{v}:X3") for v in vpas]
        got = await wait_for(long_cases, lambda ts: all(ts), timeout=150)
        assert all(got), f"first wave not processed\n{det_a.log_tail()}\n{det_b.log_tail()}"
        # frequent already: X3 is the 3rd absence within 90 days of its start for every VPA
        assert all(t["reasons"] == ["long", "frequent"] for t in got)

        det_a.stop(signal.SIGKILL)
        # A 4th absence: "frequent" only if the state of the first three moved to the survivor.
        await produce_envelopes([absence(run, v, 4, "2026-10-04T09:00:00+02:00", "2026-11-16", "2026-11-17")
                                 for v in vpas])

        async def fourth():
            return [await store.get(f"case:absence:{v}:X4") for v in vpas]
        got = await wait_for(fourth, lambda ts: all(ts), timeout=150)
        assert all(got), f"after the kill nothing was processed\n{det_b.log_tail()}"
        assert all(t["reasons"] == ["frequent"] for t in got)
        # Redelivery after failover: the same event ids change nothing. A marker event behind them
        # (same VPAs, so the same partitions) shows they were processed.
        await produce_envelopes(first[-VPAS:] + [absence(run, v, 5, "2026-10-05T09:00:00+02:00", "2026-12-01",
                                                         "2026-12-31") for v in vpas])

        async def fifth():
            return [await store.get(f"case:absence:{v}:X5") for v in vpas]
        assert all(await wait_for(fifth, lambda ts: all(ts), timeout=150)), det_b.log_tail()
        again = await long_cases()
        assert all(t["version"] == 1 for t in again)
    finally:
        for p in (det_a, det_b, notifier):
            p.stop()
        await store.close()
