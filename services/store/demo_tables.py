"""The demo's own tables, beside the task store: what it needs to rebuild its runner at start.

``demo_state`` keeps the demo's parameters (company size, seed, first day, when it went live, the
login tokens); ``demo_inputs`` keeps every command accepted from the API, with the occurred_at the
server stamped, in the order it was handled. The simulated company is deterministic, so parameters
plus this log give back exactly the runner the demo had when it stopped (DESIGN 3 "Determinism").
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Optional

import asyncpg

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demo_state (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS demo_inputs (
    seq         bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    raw         bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
"""
# One demo per database: a second one would write the same tasks from another runner.
_LOCK_KEY = 0x76706164656D6F  # "vpademo"


def _names(raw: bytes, vpa_ids: set[str]) -> bool:
    """The command is about one of ``vpa_ids`` (or names one anywhere in its text)."""
    try:
        if json.loads(raw).get("vpa_id") in vpa_ids:
            return True
    except (ValueError, AttributeError):
        pass
    text = raw.decode("utf-8", "replace")
    return any(v in text for v in vpa_ids)


class DemoBusy(Exception):
    """Another ``vpa demo`` holds this database."""


class DemoStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn  # one connection, held for the demo's lifetime with the advisory lock
        self._lock = asyncio.Lock()  # a connection runs one query at a time

    @classmethod
    async def open(cls, url: str) -> "DemoStore":
        conn = await asyncpg.connect(url)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                raise DemoBusy("another vpa demo is running on this database")
            await conn.execute(_SCHEMA)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def params(self) -> Optional[dict]:
        async with self._lock:
            value = await self._conn.fetchval("SELECT value::text FROM demo_state WHERE key = 'params'")
        return json.loads(value) if value else None

    async def save_params(self, params: dict) -> None:
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO demo_state (key, value) VALUES ('params', $1::jsonb)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", json.dumps(params))

    async def inputs(self) -> list[tuple[datetime, bytes]]:
        async with self._lock:
            rows = await self._conn.fetch("SELECT occurred_at, raw FROM demo_inputs ORDER BY seq")
        return [(r["occurred_at"], bytes(r["raw"])) for r in rows]

    async def append(self, occurred_at: datetime, raw: bytes) -> None:
        async with self._lock:
            await self._conn.execute("INSERT INTO demo_inputs (occurred_at, raw) VALUES ($1, $2)", occurred_at, raw)

    async def erased(self) -> list[str]:
        """Hashes of the VPAs this demo has erased (``vpa erase``): left out of its simulation."""
        async with self._lock:
            value = await self._conn.fetchval("SELECT value::text FROM demo_state WHERE key = 'erased'")
        return json.loads(value) if value else []

    async def forget(self, vpa_ids: set[str], erased: list[str]) -> int:
        """The logged commands naming one of ``vpa_ids`` go, and ``erased`` is kept (one transaction)."""
        async with self._lock, self._conn.transaction():
            rows = await self._conn.fetch("SELECT seq, raw FROM demo_inputs")
            gone = [r["seq"] for r in rows if _names(bytes(r["raw"]), vpa_ids)]
            await self._conn.execute("DELETE FROM demo_inputs WHERE seq = ANY($1::bigint[])", gone)
            await self._conn.execute(
                "INSERT INTO demo_state (key, value) VALUES ('erased', $1::jsonb)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", json.dumps(erased))
        return len(gone)

    async def task_versions(self) -> dict[str, int]:
        async with self._lock:
            rows = await self._conn.fetch("SELECT task_id, version FROM tasks")
        return {r["task_id"]: r["version"] for r in rows}

    async def has_tasks(self) -> bool:
        async with self._lock:
            return bool(await self._conn.fetchval("SELECT EXISTS (SELECT 1 FROM tasks)"))

    async def open_counts(self, shift_end: Optional[datetime]) -> dict[str, int]:
        """Waiting or open tasks per tab, and reminders due by the end of the current shift."""
        async with self._lock:
            rows = await self._conn.fetch(
                "SELECT tab, count(*) AS n,"
                " count(*) FILTER (WHERE tab = 'reminders' AND due_at <= $1) AS due"
                " FROM tasks WHERE status IN ('waiting', 'open') GROUP BY tab", shift_end)
        counts = {r["tab"]: r["n"] for r in rows}
        counts["due_this_shift"] = sum(r["due"] for r in rows)
        return counts

    async def reset(self) -> None:
        """Forget everything: tasks, their versions, the input log and the parameters."""
        async with self._lock, self._conn.transaction():
            await self._conn.execute("TRUNCATE tasks, task_versions, demo_inputs")
            await self._conn.execute("DELETE FROM demo_state")

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()
