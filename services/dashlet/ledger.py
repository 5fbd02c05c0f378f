"""Which command event_ids the API has passed on, so a repeat is answered as one and has no effect.

The services ignore a repeated event_id (DESIGN 4.2), so a 202 for it would promise a change
that never happens (DESIGN 4.8). With the PostgreSQL store the ledger is a table in the same
database (``dashlet_commands``, migration 002), shared by every dashlet process and kept across
restarts; otherwise an in-memory set bounded to the most recent ids.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any


class MemoryLedger:
    def __init__(self, capacity: int = 200_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    async def seen(self, event_id: str) -> bool:
        return event_id in self._ids

    async def claim(self, event_id: str) -> bool:
        """True when the id is new (and is now taken); False when it was passed on before."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    async def release(self, event_id: str) -> None:
        """The command never left (the command path failed): the id may be used again."""
        self._ids.pop(event_id, None)


class PostgresLedger:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def seen(self, event_id: str) -> bool:
        return bool(await self._pool.fetchval("SELECT true FROM dashlet_commands WHERE event_id = $1", event_id))

    async def claim(self, event_id: str) -> bool:
        taken = await self._pool.fetchval(
            "INSERT INTO dashlet_commands (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", event_id)
        return bool(taken)

    async def release(self, event_id: str) -> None:
        await self._pool.execute("DELETE FROM dashlet_commands WHERE event_id = $1", event_id)


def ledger_for(store: Any) -> Any:
    from services.store.postgres import PostgresTaskStore

    if isinstance(store, PostgresTaskStore):
        return PostgresLedger(store._pool)  # noqa: SLF001 - same database, see query.reader_for
    return MemoryLedger()
