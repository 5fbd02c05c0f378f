"""The open-work gauges read from a real PostgreSQL store (services/store/gauges.py)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.config.settings import Settings
from services.store.gauges import StoreGaugePoller, read_open_work
from tests.unit.store.test_store_rules import make_task

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # a Wednesday; one working day back: Tue 10:00


def task(task_id: str, tab: str = "cases", status: str = "open", created: str = "2026-11-25T09:00:00+01:00",
         due: str | None = None, owner: str = "AB", assignee: str = "AB") -> dict:
    kind = {"cases": "absence", "reminders": "reminder", "journey": "journey"}[tab]
    extra = {"stage": "NEW_0_3"} if tab == "journey" else {}
    return make_task(task_id, tab=tab, kind=kind, status=status, created_at=created, due_at=due,
                     owner=owner, assignee=assignee, **extra)


@pytest.fixture
async def conn(database_url, pg_schema, pg_store):
    connection = await asyncpg.connect(database_url, server_settings={"search_path": pg_schema})
    yield connection
    await connection.close()


async def test_counts_ages_and_staleness_per_tab(pg_store, conn):
    await pg_store.apply([
        # cases: open ones at, just before and after the cutoff; waiting and finished ones
        task("c-stale", created="2026-11-24T09:59:59+01:00"),
        task("c-boundary", created="2026-11-24T10:00:00+01:00"),  # exactly one working day: not more
        task("c-fresh", created="2026-11-25T08:00:00+01:00", assignee="CD"),  # handed over
        task("c-waiting", status="waiting", created="2026-11-20T09:00:00+01:00", due="2026-11-26T09:00:00+01:00"),
        task("c-done", status="done", created="2026-11-01T09:00:00+01:00"),
        task("c-cancelled", status="cancelled", created="2026-11-01T09:00:00+01:00"),
        # an inactivity case created long ago that only became actionable at its follow-up
        task("c-followed-up", created="2026-11-20T09:00:00+01:00", due="2026-11-24T12:00:00+01:00"),
        # journey
        task("j-1", tab="journey", created="2026-11-18T06:00:00+01:00"),
    ])
    work = await read_open_work(conn, NOW, Settings())
    assert work.tasks == {("cases", "open"): 4, ("cases", "waiting"): 1, ("journey", "open"): 1}
    assert work.older_than_working_day == {"cases": 1, "journey": 1}
    assert work.oldest_open_age_seconds["cases"] == (NOW - datetime(2026, 11, 24, 9, 59, 59, tzinfo=BERLIN)).total_seconds()
    assert work.oldest_open_age_seconds["journey"] == 7 * 86400 + 4 * 3600
    assert work.handovers == {"cases": 1, "journey": 0}


async def test_reminders_due_and_overdue_by_the_longest_shift(pg_store, conn):
    # longest shift 6 h: due at or after 04:00 is due, before it overdue (now 10:00)
    await pg_store.apply([
        task("r-overdue", tab="reminders", created="2026-11-24T08:00:00+01:00", due="2026-11-25T03:59:59+01:00"),
        task("r-due-edge", tab="reminders", created="2026-11-24T08:00:00+01:00", due="2026-11-25T04:00:00+01:00"),
        task("r-due-now", tab="reminders", created="2026-11-24T08:00:00+01:00", due="2026-11-25T10:00:00+01:00"),
        task("r-future", tab="reminders", status="waiting", created="2026-11-24T08:00:00+01:00",
             due="2026-11-25T10:00:01+01:00", owner="AB", assignee="EF"),
        task("r-done", tab="reminders", status="done", created="2026-11-01T08:00:00+01:00",
             due="2026-11-02T08:00:00+01:00"),
    ])
    work = await read_open_work(conn, NOW, Settings())
    assert (work.reminders_due, work.reminders_overdue) == (2, 1)
    assert work.tasks == {("reminders", "open"): 3, ("reminders", "waiting"): 1}
    assert work.handovers == {"reminders": 1}
    # an open reminder counts from its due time
    assert work.oldest_open_age_seconds["reminders"] == 6 * 3600 + 1


async def test_poller_publishes_and_survives_a_broken_store(database_url, pg_schema, pg_store):
    await pg_store.apply([task("c-1"), task("r-1", tab="reminders", due="2026-11-25T09:00:00+01:00")])
    url = f"{database_url}{'&' if '?' in database_url else '?'}search_path={pg_schema}"

    async def good_url() -> str:
        return url

    poller = StoreGaugePoller(good_url, Settings(), now=lambda: NOW)
    try:
        assert await poller.refresh()
        assert REGISTRY.get_sample_value("vpa_open_tasks", {"tab": "cases", "status": "open"}) == 1
        assert REGISTRY.get_sample_value("vpa_reminders_due", {"state": "due"}) == 1
    finally:
        await poller.close()

    async def bad_url() -> str:
        return "postgresql://nobody@127.0.0.1:1/none"

    errors = REGISTRY.get_sample_value("vpa_open_work_read_errors_total")
    broken = StoreGaugePoller(bad_url, Settings(), now=lambda: NOW)
    assert not await broken.refresh()
    assert REGISTRY.get_sample_value("vpa_open_work_read_errors_total") == errors + 1
