"""Timers live in the per-VPA state, so they survive a killed service: a reminder set before
the kill falls due after the restart, when stream time passes it (issue 3/4 "timers survive")."""
from __future__ import annotations

import signal
import uuid

import pytest

from tests.integration.pipeline import (
    ServiceProcess, fresh_database, groups_stable, produce_envelopes, recreate_topics, service_env,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def env(run: str, n: str, type_: str, at: str, vpa: str | None, data: dict, actor: dict | None = None) -> dict:
    return {"event_id": f"rs-{run}-{n}", "type": type_, "occurred_at": at, "vpa_id": vpa, "actor": actor,
            "schema_version": 1, "data": data}


async def test_reminder_timer_fires_after_the_service_was_killed(database_url, tmp_path):
    from services.store.postgres import PostgresTaskStore

    run = uuid.uuid4().hex[:8]
    await recreate_topics()
    url = await fresh_database(database_url)
    environ = service_env(url, f"rs-{run}", VPA_SESSION_TIMEOUT_SECONDS="10")
    detector = ServiceProcess("detector", environ, tmp_path)  # the reminders service follows it
    reminders = ServiceProcess("reminders", environ, tmp_path)
    notifier = ServiceProcess("notifier", environ, tmp_path)
    store = await PostgresTaskStore.connect(url)
    vpa = f"V-rs-{run}"
    task_id = f"reminder:rs-{run}"
    try:
        assert await groups_stable([f"rs-{run}-{s}" for s in ("detector", "reminders", "notifier")])
        # All at once: the roster, the registration and the command are merged in time order.
        await produce_envelopes([
            env(run, "m", "roster.member_upserted", "2026-11-02T08:00:00+01:00", None,
                {"initials": "RSA", "name": "Rita Sand", "role": "at", "deputy": None, "active": True}),
            env(run, "reg", "vpa.registered", "2026-11-02T08:30:00+01:00", vpa,
                {"name": "Nina Berg", "started_on": "2025-01-01", "at_owner": "RSA"}),
            env(run, "set", "cmd.reminder.set", "2026-11-02T09:00:00+01:00", vpa,
                {"reminder_id": f"rs-{run}", "due_at": "2026-11-03T10:00:00+01:00", "owner": "RSA",
                 "note": "Nachfassen"}, actor={"initials": "RSA", "role": "at"})])
        task = await wait_for(lambda: store.get(task_id), lambda t: t is not None, timeout=120)
        assert task is not None, reminders.log_tail()
        assert task["status"] == "waiting"

        reminders.stop(signal.SIGKILL)
        reminders = ServiceProcess("reminders", environ, tmp_path)
        await produce_envelopes([env(run, "tick", "clock.tick", "2026-11-03T10:30:00+01:00", None, {})])
        task = await wait_for(lambda: store.get(task_id), lambda t: t and t["status"] == "open", timeout=120)
        assert task["status"] == "open", reminders.log_tail()
    finally:
        for p in (detector, reminders, notifier):
            p.stop()
        await store.close()
