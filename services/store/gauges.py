"""Open work as Prometheus gauges, read from the dashlet store every few seconds (DESIGN 1: ops).

What the alerts need to know about the AT's work, computed from the store alone:
``vpa_open_tasks{tab,status}``, ``vpa_oldest_open_task_age_seconds{tab}``,
``vpa_open_tasks_older_than_working_day{tab}``, ``vpa_reminders_due{state}`` and
``vpa_handovers_in_force{tab}``.

A task is *actionable* from its creation, or from its ``due_at`` when that lies later and has
passed (an inactivity case waits for its follow-up, a reminder for its due time). It is *older
than one working day* when it has been actionable for 24 hours of wall-clock time on working days
(Settings.working_days without holidays): a case opened Friday 10:00 counts from Monday 10:00 on.
A reminder is *overdue* once it has been due for longer than the longest shift: a whole shift went
by without it being worked; before that it is *due*.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any, Awaitable, Callable

from schemas.task import Status, Tab
from services.config.settings import Settings
from services.core.timeutil import at_local, is_working_day
from services.ops import metrics

log = logging.getLogger("vpa.store_gauges")
LIVE = (Status.waiting.value, Status.open.value)
_LOOKBACK_DAYS = 400  # a year of non-working days in a row would be a misconfiguration


def working_day_cutoff(now: datetime, s: Settings) -> datetime:
    """The instant from which exactly one working day (24 h of working-day wall time) runs to ``now``."""
    local = now.astimezone(s.tz).replace(tzinfo=None)
    remaining, end, day = timedelta(days=1), local, local.date()
    for _ in range(_LOOKBACK_DAYS):
        start = datetime.combine(day, time(0))
        if is_working_day(day, s.working_days, s.holidays):
            if end - start >= remaining:
                cutoff = end - remaining
                return at_local(cutoff.date(), cutoff.time(), s.tz)
            remaining -= end - start
        day, end = day - timedelta(days=1), start
    return at_local(end.date(), end.time(), s.tz)


def longest_shift(s: Settings) -> timedelta:
    """Length of the longest shift; one whose end is not after its start runs over midnight."""
    def length(start: time, end: time) -> timedelta:
        minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
        return timedelta(minutes=minutes if minutes > 0 else minutes + 24 * 60)

    return max(length(start, end) for start, end in s.shifts)


@dataclass
class OpenWork:
    """The figures behind the gauges, one reading of the store."""

    tasks: dict[tuple[str, str], int] = field(default_factory=dict)  # (tab, status) -> count
    oldest_open_age_seconds: dict[str, float] = field(default_factory=dict)
    older_than_working_day: dict[str, int] = field(default_factory=dict)
    handovers: dict[str, int] = field(default_factory=dict)
    reminders_due: int = 0
    reminders_overdue: int = 0


# $1 now, $2 one working day before now, $3 now minus the longest shift
_QUERY = """
WITH live AS (
    SELECT tab, status, owner, assignee, due_at,
           CASE WHEN due_at IS NOT NULL AND due_at <= $1
                THEN GREATEST(due_at, (doc->>'created_at')::timestamptz)
                ELSE (doc->>'created_at')::timestamptz END AS actionable_since
    FROM tasks WHERE status IN ('waiting', 'open')
)
SELECT tab, status, count(*) AS tasks,
       min(actionable_since) FILTER (WHERE status = 'open') AS oldest_open_since,
       count(*) FILTER (WHERE status = 'open' AND actionable_since < $2) AS older_than_working_day,
       count(*) FILTER (WHERE tab = 'reminders' AND due_at <= $1 AND due_at >= $3) AS reminders_due,
       count(*) FILTER (WHERE tab = 'reminders' AND due_at < $3) AS reminders_overdue,
       count(*) FILTER (WHERE assignee IS NOT NULL AND assignee IS DISTINCT FROM owner) AS handovers
FROM live GROUP BY tab, status
"""


async def read_open_work(conn: Any, now: datetime, s: Settings) -> OpenWork:
    """One query on ``conn`` (an asyncpg connection or pool on the store's schema)."""
    rows = await conn.fetch(_QUERY, now, working_day_cutoff(now, s), now - longest_shift(s))
    work = OpenWork()
    for r in rows:
        tab = r["tab"]
        work.tasks[(tab, r["status"])] = r["tasks"]
        work.older_than_working_day[tab] = work.older_than_working_day.get(tab, 0) + r["older_than_working_day"]
        work.handovers[tab] = work.handovers.get(tab, 0) + r["handovers"]
        work.reminders_due += r["reminders_due"]
        work.reminders_overdue += r["reminders_overdue"]
        if r["oldest_open_since"] is not None:
            age = max(0.0, (now - r["oldest_open_since"]).total_seconds())
            work.oldest_open_age_seconds[tab] = max(age, work.oldest_open_age_seconds.get(tab, 0.0))
    return work


def publish(work: OpenWork) -> None:
    """Set every gauge, zeros included, so a tab whose work is done shows 0 rather than its last value."""
    for tab in (t.value for t in Tab):
        for status in LIVE:
            metrics.OPEN_TASKS.labels(tab, status).set(work.tasks.get((tab, status), 0))
        metrics.OLDEST_OPEN_TASK_AGE.labels(tab).set(work.oldest_open_age_seconds.get(tab, 0.0))
        metrics.STALE_OPEN_TASKS.labels(tab).set(work.older_than_working_day.get(tab, 0))
        metrics.HANDOVERS.labels(tab).set(work.handovers.get(tab, 0))
    metrics.REMINDERS_DUE.labels("due").set(work.reminders_due)
    metrics.REMINDERS_DUE.labels("overdue").set(work.reminders_overdue)


class StoreGaugePoller:
    """Keeps one connection to the store and refreshes the gauges from it; never raises."""

    def __init__(self, url: Callable[[], Awaitable[str]], settings: Settings,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._url, self._settings, self._now = url, settings, now
        self._conn: Any = None

    async def refresh(self) -> bool:
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(await self._url())
            publish(await read_open_work(self._conn, self._now(), self._settings))
            return True
        except Exception as exc:  # noqa: BLE001 - a metrics read must never stop the notifier
            metrics.OPEN_WORK_READ_ERRORS.inc()
            log.warning("reading open work from the store failed: %s", exc)
            await self.close()
            return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                conn.terminate()


def store_url(database_url: str | None, data_dir: str) -> Callable[[], Awaitable[str]]:
    """The store's URL; without one, that of the embedded PostgreSQL the notifier runs in ``data_dir``."""
    async def url() -> str:
        if database_url:
            return database_url
        from services.store import embedded_pg

        return await asyncio.to_thread(embedded_pg.start, data_dir)

    return url
