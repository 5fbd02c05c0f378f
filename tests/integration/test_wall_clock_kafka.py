"""Production mode (VPA_CLOCK=wall): now is the machine's clock, and the worker's periodic
ticks (which fire timers) keep running without disturbing processing."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.pipeline import ServiceProcess, fresh_database, produce_envelopes, service_env
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


async def test_wall_clock_worker_stamps_wall_time_and_keeps_ticking(database_url, tmp_path):
    from services.store.postgres import PostgresTaskStore

    run = uuid.uuid4().hex[:8]
    url = await fresh_database(database_url)
    env = service_env(url, f"wall-{run}", VPA_CLOCK="wall", VPA_WALL_TICK_SECONDS="0.5")
    procs = [ServiceProcess("detector", env, tmp_path), ServiceProcess("notifier", env, tmp_path)]
    store = await PostgresTaskStore.connect(url)
    vpa = f"V-wall-{run}"
    try:
        before = datetime.now(timezone.utc) - timedelta(seconds=1)
        await produce_envelopes([{
            "event_id": f"wall-{run}", "type": "vpa.absence_registered", "occurred_at": "2020-01-01T09:00:00+01:00",
            "vpa_id": vpa, "data": {"absence_id": "W", "starts_on": "2020-01-01", "ends_on": "2020-02-01"}}])
        task = await wait_for(lambda: store.get(f"case:absence:{vpa}:W"), lambda t: t is not None, timeout=120)
        assert task is not None, procs[0].log_tail()
        created = datetime.fromisoformat(task["created_at"])
        assert before.replace(microsecond=0) <= created <= datetime.now(timezone.utc) + timedelta(seconds=1)
        # Later records are processed while the worker keeps advancing by the wall clock.
        await produce_envelopes([{
            "event_id": f"wall-{run}-2", "type": "vpa.absence_registered", "vpa_id": vpa,
            "occurred_at": datetime.now(timezone.utc).isoformat(),
            "data": {"absence_id": "W2", "starts_on": "2020-03-01", "ends_on": "2020-04-01"}}])
        second = await wait_for(lambda: store.get(f"case:absence:{vpa}:W2"), lambda t: t is not None, timeout=60)
        assert second is not None, procs[0].log_tail()
        assert procs[0].proc.poll() is None, procs[0].log_tail()
        assert "Traceback" not in procs[0].log_path.read_text(errors="replace"), procs[0].log_tail()
    finally:
        for p in procs:
            p.stop()
        await store.close()
