"""The dashlet task store (DESIGN.md 3 "Store", 4.6); the notifier is its only writer.

A task is a plain dict in the shape of 4.6. Writes are versioned upserts: a version is applied
only when it is newer than the stored one, so Kafka redeliveries and out-of-order versions are
harmless. ``MemoryTaskStore`` (embedded runner, ``vpa replay``) and ``PostgresTaskStore`` have the
same semantics; both offer a live feed of changed tasks for the dashlet's server-sent events.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol

import asyncpg

from schemas.task import TASK_FIELDS, HistoryEntry
from services.core.tasks import fold
from services.store import projection

log = logging.getLogger("vpa.store")

CHANNEL = "dashlet_tasks"
MIGRATIONS = Path(__file__).with_name("migrations")
HISTORY_FIELDS: tuple[str, ...] = tuple(HistoryEntry.model_fields)
QUEUE_SIZE = 1000  # per live-feed subscriber
_LOCK_KEY = 0x64617368_6C6574  # any constant; every migrator of the database takes the same one
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def newer(existing_version: Optional[int], incoming_version: int) -> bool:
    """Apply a version only when nothing is stored or it is strictly greater (equal = redelivery)."""
    return existing_version is None or incoming_version > existing_version


def latest_versions(tasks: Iterable[dict]) -> list[dict]:
    """The highest version of each task in a batch (first seen among equals), sorted by task_id.

    Postgres cannot update a row twice in one INSERT ... ON CONFLICT, and the lower versions would
    lose anyway. The sort makes concurrent writers lock rows in the same order (no deadlocks).
    """
    best: dict[str, dict] = {}
    for task in tasks:
        held = best.get(task["task_id"])
        if newer(None if held is None else held["version"], task["version"]):
            best[task["task_id"]] = task
    return [best[k] for k in sorted(best)]


def _keys_in_order(d: dict, order: tuple[str, ...]) -> dict:
    out = {k: d[k] for k in order if k in d}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


def ordered(task: dict) -> dict:
    """The task with its keys (and its history entries' keys) in the order of DESIGN 4.6.

    jsonb sorts keys its own way; readers should see the shape the producer wrote.
    """
    out = _keys_in_order(task, TASK_FIELDS)
    if isinstance(out.get("history"), list):
        out["history"] = [_keys_in_order(h, HISTORY_FIELDS) if isinstance(h, dict) else h
                          for h in out["history"]]
    return out


def _check_page(due_before: Optional[datetime], limit: int, offset: int) -> None:
    if due_before is not None and due_before.utcoffset() is None:
        raise ValueError("due_before needs a UTC offset")  # a naive time has no single instant
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")


class TaskStore(Protocol):
    async def apply(self, tasks: list[dict]) -> list[str]: ...
    async def get(self, task_id: str) -> Optional[dict]: ...
    async def list(self, *, tab: Optional[str] = None, status: Optional[str] = None,
                   assignee: Optional[str] = None, vpa_id: Optional[str] = None,
                   due_before: Optional[datetime] = None, limit: int = 100, offset: int = 0) -> list[dict]: ...
    async def all(self) -> list[dict]: ...
    async def delete(self, task_ids: list[str]) -> int: ...
    async def subscribe(self) -> asyncio.Queue: ...
    async def unsubscribe(self, queue: asyncio.Queue) -> None: ...
    async def close(self) -> None: ...


class _Fanout:
    """Subscriber queues of the live feed; each gets every changed task once (one shared, read-only copy)."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue] = set()

    def add(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.queues.add(queue)
        return queue

    def publish(self, task: dict) -> None:
        shared = copy.deepcopy(task)  # one copy for every subscriber: they only read it
        for queue in self.queues:
            if queue.full():  # a stalled client loses its oldest change instead of growing memory
                queue.get_nowait()
            queue.put_nowait(shared)


_EPOCH = "1970-01-01T00:00:00+00:00"


def _matches(profile: dict, q: str) -> bool:
    """The search: a VPA id that starts with ``q`` or a name that contains it (any case)."""
    q = q.strip().lower()
    return bool(q) and (profile["vpa_id"].lower().startswith(q) or q in (profile.get("name") or "").lower())


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def erasure_hash(vpa_id: str) -> str:
    """The erasure record's key: the VPA id's SHA-256 (the record names no one)."""
    return hashlib.sha256(vpa_id.encode("utf-8")).hexdigest()


class MemoryTaskStore:
    """In-process store with the semantics of ``PostgresTaskStore`` (embedded runner, replay)."""

    def __init__(self) -> None:
        self._tasks: dict[str, dict] = {}
        self._fanout = _Fanout()
        self._profiles: dict[str, dict] = {}
        self._events: dict[str, dict[str, tuple[str, str, str]]] = {}  # vpa -> event_id -> (at, type, text)
        self._members: dict[str, dict] = {}
        self._erasures: set[str] = set()

    # ---- the read model beside the tasks (projection.py) ----------------------------------------

    async def apply_upstream(self, envelopes: list[Any], tz: Any) -> None:
        for env in envelopes:
            if env.type in projection.ROSTER_TYPES:
                initials = env.data.initials
                self._members[initials] = projection.member_after(self._members.get(initials), env)
                continue
            p = projection.profile_after(self._profiles.get(env.vpa_id), env)
            if p is not None:
                self._profiles[env.vpa_id] = p
            events = self._events.setdefault(env.vpa_id, {})
            events[env.event_id] = (env.occurred_at.isoformat(), env.type, projection.event_text(env, tz))
            if len(events) > projection.EVENTS_KEPT:
                for old in sorted(events, key=lambda e: (events[e][0], e))[:len(events) - projection.EVENTS_KEPT]:
                    del events[old]

    async def vpa_profile(self, vpa_id: str) -> Optional[dict]:
        p = self._profiles.get(vpa_id)
        return copy.deepcopy(p) if p else None

    async def vpa_events(self, vpa_id: str, limit: int = 20) -> list[dict]:
        events = self._events.get(vpa_id, {})
        newest = sorted(events.items(), key=lambda kv: (kv[1][0], kv[0]), reverse=True)[:limit]
        return [{"event_id": e, "occurred_at": at, "type": t, "text": text} for e, (at, t, text) in newest]

    async def search_vpas(self, q: str, limit: int = 20) -> list[dict]:
        found = [p for p in self._profiles.values() if _matches(p, q)]
        found.sort(key=lambda p: (not p["vpa_id"].upper().startswith(q.upper()), (p.get("name") or "").lower(),
                                  p["vpa_id"]))
        return [copy.deepcopy(p) for p in found[:limit]]

    async def known_vpa(self, vpa_id: str) -> bool:
        return vpa_id in self._profiles or any(t["vpa_id"] == vpa_id for t in self._tasks.values())

    async def roster_members(self) -> dict[str, dict]:
        return copy.deepcopy(self._members)

    async def tasks_of_vpa(self, vpa_id: str) -> list[dict]:
        return [copy.deepcopy(t) for k, t in sorted(self._tasks.items()) if t["vpa_id"] == vpa_id]

    async def reminders_of_cases(self, case_task_ids: list[str]) -> list[dict]:
        wanted = set(case_task_ids)
        return [copy.deepcopy(t) for k, t in sorted(self._tasks.items())
                if t["tab"] == "reminders" and t.get("case_task_id") in wanted]

    async def apply(self, tasks: list[dict]) -> list[str]:
        changed: list[str] = []
        for task in sorted(tasks, key=lambda t: (t["task_id"], t["version"])):  # each adds its history entry
            held = self._tasks.get(task["task_id"])
            if newer(None if held is None else held["version"], task["version"]):
                doc = ordered(copy.deepcopy(fold(held, task)))  # the caller may keep mutating its dict
                self._tasks[doc["task_id"]] = doc
                changed.append(doc["task_id"])
        for task_id in sorted(set(changed)):
            self._fanout.publish(self._tasks[task_id])
        return sorted(set(changed))

    async def get(self, task_id: str) -> Optional[dict]:
        task = self._tasks.get(task_id)
        return copy.deepcopy(task) if task is not None else None

    async def list(self, *, tab: Optional[str] = None, status: Optional[str] = None,
                   assignee: Optional[str] = None, vpa_id: Optional[str] = None,
                   due_before: Optional[datetime] = None, limit: int = 100, offset: int = 0) -> list[dict]:
        _check_page(due_before, limit, offset)
        wanted = {k: v for k, v in (("tab", tab), ("status", status), ("assignee", assignee),
                                    ("vpa_id", vpa_id)) if v is not None}
        rows = [t for t in self._tasks.values() if all(t.get(k) == v for k, v in wanted.items())
                and (due_before is None or (t.get("due_at") is not None and _instant(t["due_at"]) < due_before))]
        # Same order as Postgres: due_at as an instant, nulls last, then task_id.
        rows.sort(key=lambda t: (t.get("due_at") is None, _instant(t.get("due_at") or _EPOCH), t["task_id"]))
        return [copy.deepcopy(t) for t in rows[offset:offset + limit]]

    async def all(self) -> list[dict]:
        return [copy.deepcopy(self._tasks[k]) for k in sorted(self._tasks)]

    async def task_ids_of(self, vpa_id: str) -> list[str]:
        return sorted(t for t, doc in self._tasks.items() if doc.get("vpa_id") == vpa_id)

    async def erase_vpa(self, vpa_id: str) -> int:
        self._profiles.pop(vpa_id, None)
        self._events.pop(vpa_id, None)
        self._erasures.add(erasure_hash(vpa_id))
        return await self.delete(await self.task_ids_of(vpa_id))

    async def erasures(self) -> set[str]:
        return set(self._erasures)

    async def command_side(self) -> "MemoryTaskStore":
        return self  # in process: no connections to wait for

    def feed_stats(self) -> dict[str, int]:
        return {"listeners": 0, "readers": 0, "subscribers": len(self._fanout.queues)}

    async def delete(self, task_ids: list[str]) -> int:
        """Erasure: the tasks and everything kept of them leave the store (and the live feed hears of it)."""
        gone = [t for t in task_ids if self._tasks.pop(t, None) is not None]
        for t in gone:
            self._fanout.publish({"task_id": t, "erased": True})
        return len(gone)

    async def subscribe(self) -> asyncio.Queue:
        return self._fanout.add()

    async def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._fanout.queues.discard(queue)

    async def close(self) -> None:
        self._fanout.queues.clear()


# One statement, so one round trip and one implicit transaction for a whole batch: upsert the
# rows that are newer, keep each applied version, and NOTIFY (delivered on commit only).
# A version carries the history entry of its own change (services.core.tasks): the stored
# history is the stored one plus the entries of every version in the batch above the stored
# version, in version order (the stored row is read in the statement's snapshot; one notifier
# owns a task's partition of dashlet.tasks, so no other writer adds a version in between). A version that carries its whole history (N entries for version N,
# as every version did before history left the services' state) replaces it.
_UPSERT_TEMPLATE = f"""
WITH batch AS (
    SELECT DISTINCT ON (doc->>'task_id', (doc->>'version')::int)
           doc->>'task_id' AS task_id, (doc->>'version')::int AS version, doc
    FROM jsonb_array_elements({{input}}) WITH ORDINALITY AS x(doc, n)
    ORDER BY doc->>'task_id', (doc->>'version')::int, n
), deltas AS (  -- per task: its versions' own history entries, in version order
    SELECT task_id, jsonb_agg(jsonb_build_object('v', version, 'h', doc->'history') ORDER BY version) AS deltas
    FROM batch GROUP BY task_id
), latest AS (
    SELECT DISTINCT ON (task_id) task_id, version, doc FROM batch ORDER BY task_id, version DESC
), docs AS MATERIALIZED (  -- computed once, not once per column that reads it
    SELECT l.task_id, l.version,
           CASE WHEN jsonb_array_length(l.doc->'history') >= l.version THEN l.doc
                ELSE jsonb_set(l.doc, '{{{{history}}}}', coalesce(s.doc->'history', '[]'::jsonb) || (
                    SELECT coalesce(jsonb_agg(h.e ORDER BY (d->>'v')::int, h.i), '[]'::jsonb)
                    FROM jsonb_array_elements(dl.deltas) AS d, jsonb_array_elements(d->'h') WITH ORDINALITY AS h(e, i)
                    WHERE (d->>'v')::int > coalesce(s.version, 0))) END AS doc
    -- the stored row by its primary key, one probe per task (a join through another CTE made
    -- the planner scan that CTE once per task: half of a batch's time went there)
    FROM latest l JOIN deltas dl USING (task_id) LEFT JOIN tasks s ON s.task_id = l.task_id
    WHERE s.version IS NULL OR s.version < l.version
), written AS (
    INSERT INTO tasks AS t (task_id, tab, kind, stage, vpa_id, status, priority, owner, assignee,
                            due_at, version, updated_at, doc)
    SELECT task_id, doc->>'tab', doc->>'kind', doc->>'stage', doc->>'vpa_id', doc->>'status',
           doc->>'priority', doc->>'owner', doc->>'assignee', (doc->>'due_at')::timestamptz,
           version, (doc->>'updated_at')::timestamptz, doc
    FROM docs
    ORDER BY task_id
    ON CONFLICT (task_id) DO UPDATE SET
        tab = EXCLUDED.tab, kind = EXCLUDED.kind, stage = EXCLUDED.stage, vpa_id = EXCLUDED.vpa_id,
        status = EXCLUDED.status, priority = EXCLUDED.priority, owner = EXCLUDED.owner,
        assignee = EXCLUDED.assignee, due_at = EXCLUDED.due_at, version = EXCLUDED.version,
        updated_at = EXCLUDED.updated_at, doc = EXCLUDED.doc
    WHERE t.version < EXCLUDED.version
    RETURNING t.task_id, t.version, t.doc
), kept AS (
    INSERT INTO task_versions (task_id, version, doc)
    SELECT task_id, version, doc FROM written
    ON CONFLICT DO NOTHING
)
SELECT task_id,
       pg_notify('{CHANNEL}', json_build_object('task_id', task_id, 'version', version)::text)
FROM written
"""
_UPSERT = _UPSERT_TEMPLATE.format(input="$1::jsonb")  # the batch as Python objects (the jsonb codec)
_UPSERT_RAW = _UPSERT_TEMPLATE.format(input="$1::text::jsonb")  # the batch as one JSON text


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so callers never handle JSON text.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def migrate(conn: asyncpg.Connection, schema: Optional[str] = None) -> list[str]:
    """Apply the pending ``migrations/*.sql`` in name order; returns the names applied.

    One transaction under a transaction-scoped advisory lock: processes starting at once apply
    each file exactly once, and a failing file leaves nothing half applied.
    """
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        if schema:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.name not in done:
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
                applied.append(path.name)
    return applied


class PostgresTaskStore:
    """The dashlet store in PostgreSQL; create it with ``await PostgresTaskStore.connect(url)``."""

    def __init__(self, pool: asyncpg.Pool, url: str, connect_kwargs: dict, applied: list[str]) -> None:
        self._pool, self._url, self._connect_kwargs = pool, url, connect_kwargs
        self.migrations_applied = applied
        self._callbacks: list[Callable[[dict], Any]] = []
        self._listener: Optional[asyncpg.Connection] = None
        self._listener_lock = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        self._fanout = _Fanout()
        self._changes: Optional[asyncio.Queue] = None
        self._feed_lock = asyncio.Lock()
        self._command_side: Optional["PostgresTaskStore"] = None
        self._closed = False

    async def command_side(self, size: int = 2) -> "PostgresTaskStore":
        """The same store over a small pool of its own, for the command path (the ledger, the
        checks before a command, the demo's writes): a command never waits for a connection that
        list reads hold (issue 27)."""
        if self._command_side is None:
            pool = await asyncpg.create_pool(self._url, min_size=1, max_size=size, init=_init_connection,
                                             **self._connect_kwargs)
            self._command_side = PostgresTaskStore(pool, self._url, self._connect_kwargs, [])
        return self._command_side

    @classmethod
    async def connect(cls, url: str, *, schema: Optional[str] = None,
                      min_size: int = 1, max_size: int = 4) -> "PostgresTaskStore":
        """Open a pool and apply migrations; ``schema`` (created if missing) isolates tests."""
        if schema is not None and not _SCHEMA.match(schema):
            raise ValueError(f"bad schema name {schema!r}")
        kwargs: dict = {"server_settings": {"search_path": schema}} if schema else {}
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                         init=_init_connection, **kwargs)
        try:
            async with pool.acquire() as conn:
                applied = await migrate(conn, schema)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url, kwargs, applied)

    async def apply(self, tasks: list[dict]) -> list[str]:
        """Write a batch of task versions (any order, repeats allowed); returns the task ids changed."""
        if not tasks:
            return []
        rows = await self._pool.fetch(_UPSERT, tasks)
        return sorted(r["task_id"] for r in rows)

    async def apply_raw(self, docs: list[bytes]) -> list[str]:
        """``apply`` for task versions as the JSON bytes they arrived in (validated by the caller):
        PostgreSQL parses them, so nothing is decoded and encoded again on the way."""
        if not docs:
            return []
        text = b"[" + b",".join(docs) + b"]"
        rows = await self._pool.fetch(_UPSERT_RAW, text.decode("utf-8"))
        return sorted(r["task_id"] for r in rows)

    # ---- the read model beside the tasks (projection.py) ----------------------------------------

    async def apply_upstream(self, envelopes: list[Any], tz: Any) -> None:
        """Fold the upstream's envelopes into profiles, recent events and roster members: one
        transaction per batch (the notifier is the only writer of each VPA's and member's rows)."""
        if not envelopes:
            return
        vpas = sorted({e.vpa_id for e in envelopes if e.type not in projection.ROSTER_TYPES})
        initials = sorted({e.data.initials for e in envelopes if e.type in projection.ROSTER_TYPES})
        async with self._pool.acquire() as conn, conn.transaction():
            profiles = {r["vpa_id"]: r["doc"] for r in await conn.fetch(
                "SELECT vpa_id, doc FROM vpa_profiles WHERE vpa_id = ANY($1::text[])", vpas)} if vpas else {}
            members = {r["initials"]: r["doc"] for r in await conn.fetch(
                "SELECT initials, doc FROM roster_members WHERE initials = ANY($1::text[])", initials)} \
                if initials else {}
            changed_profiles: set[str] = set()
            changed_members: set[str] = set()
            events: list[tuple] = []
            for env in envelopes:
                if env.type in projection.ROSTER_TYPES:
                    members[env.data.initials] = projection.member_after(members.get(env.data.initials), env)
                    changed_members.add(env.data.initials)
                    continue
                p = projection.profile_after(profiles.get(env.vpa_id), env)
                if p is not None:
                    profiles[env.vpa_id] = p
                    changed_profiles.add(env.vpa_id)
                events.append((env.vpa_id, env.event_id, env.occurred_at, env.type, projection.event_text(env, tz)))
            if changed_profiles:
                await conn.executemany(
                    "INSERT INTO vpa_profiles (vpa_id, name_lc, as_of, doc) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (vpa_id) DO UPDATE SET name_lc = EXCLUDED.name_lc, as_of = EXCLUDED.as_of, "
                    "doc = EXCLUDED.doc",
                    [(v, (profiles[v].get("name") or "").lower(), profiles[v]["as_of"], profiles[v])
                     for v in sorted(changed_profiles)])
            if changed_members:
                await conn.executemany(
                    "INSERT INTO roster_members (initials, doc) VALUES ($1, $2) "
                    "ON CONFLICT (initials) DO UPDATE SET doc = EXCLUDED.doc",
                    [(i, members[i]) for i in sorted(changed_members)])
            if events:
                await conn.executemany(
                    "INSERT INTO vpa_events (vpa_id, event_id, occurred_at, type, text) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT DO NOTHING", events)
                await conn.execute(
                    "DELETE FROM vpa_events e USING (SELECT vpa_id, event_id, row_number() OVER (PARTITION BY vpa_id "
                    "ORDER BY occurred_at DESC, event_id DESC) AS n FROM vpa_events WHERE vpa_id = ANY($1::text[])) o "
                    "WHERE e.vpa_id = o.vpa_id AND e.event_id = o.event_id AND o.n > $2",
                    sorted({e[0] for e in events}), projection.EVENTS_KEPT)

    async def vpa_profile(self, vpa_id: str) -> Optional[dict]:
        return await self._pool.fetchval("SELECT doc FROM vpa_profiles WHERE vpa_id = $1", vpa_id)

    async def vpa_events(self, vpa_id: str, limit: int = 20) -> list[dict]:
        rows = await self._pool.fetch(
            "SELECT event_id, occurred_at, type, text FROM vpa_events WHERE vpa_id = $1 "
            "ORDER BY occurred_at DESC, event_id DESC LIMIT $2", vpa_id, limit)
        return [{"event_id": r["event_id"], "occurred_at": r["occurred_at"].isoformat(), "type": r["type"],
                 "text": r["text"]} for r in rows]

    async def search_vpas(self, q: str, limit: int = 20) -> list[dict]:
        q = q.strip().lower()
        if not q:
            return []
        rows = await self._pool.fetch(
            "SELECT doc FROM vpa_profiles WHERE starts_with(lower(vpa_id), $1) OR strpos(name_lc, $1) > 0 "
            "ORDER BY NOT starts_with(lower(vpa_id), $1), name_lc, vpa_id LIMIT $2", q, limit)
        return [r["doc"] for r in rows]

    async def known_vpa(self, vpa_id: str) -> bool:
        return bool(await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM vpa_profiles WHERE vpa_id = $1) OR "
            "EXISTS (SELECT 1 FROM tasks WHERE vpa_id = $1)", vpa_id))

    async def roster_members(self) -> dict[str, dict]:
        return {r["initials"]: r["doc"] for r in await self._pool.fetch("SELECT initials, doc FROM roster_members")}

    async def tasks_of_vpa(self, vpa_id: str) -> list[dict]:
        rows = await self._pool.fetch("SELECT doc FROM tasks WHERE vpa_id = $1 ORDER BY task_id", vpa_id)
        return [ordered(r["doc"]) for r in rows]

    async def reminders_of_cases(self, case_task_ids: list[str]) -> list[dict]:
        if not case_task_ids:
            return []
        rows = await self._pool.fetch(
            "SELECT doc FROM tasks WHERE tab = 'reminders' AND doc->>'case_task_id' = ANY($1::text[]) "
            "ORDER BY task_id", case_task_ids)
        return [ordered(r["doc"]) for r in rows]

    async def get(self, task_id: str) -> Optional[dict]:
        doc = await self._pool.fetchval("SELECT doc FROM tasks WHERE task_id = $1", task_id)
        return ordered(doc) if doc is not None else None

    async def list(self, *, tab: Optional[str] = None, status: Optional[str] = None,
                   assignee: Optional[str] = None, vpa_id: Optional[str] = None,
                   due_before: Optional[datetime] = None, limit: int = 100, offset: int = 0) -> list[dict]:
        _check_page(due_before, limit, offset)
        # Only the filters given go into the SQL, so each combination gets a plan using its index.
        where, args = [], []
        for column, value in (("tab", tab), ("status", status), ("assignee", assignee),
                              ("vpa_id", vpa_id), ("due_before", due_before)):
            if value is not None:
                args.append(value)
                where.append(f"due_at < ${len(args)}" if column == "due_before" else f"{column} = ${len(args)}")
        args += [limit, offset]
        sql = (f"SELECT doc FROM tasks {'WHERE ' + ' AND '.join(where) if where else ''}"
               f" ORDER BY due_at NULLS LAST, task_id LIMIT ${len(args) - 1} OFFSET ${len(args)}")
        return [ordered(r["doc"]) for r in await self._pool.fetch(sql, *args)]

    async def all(self) -> list[dict]:
        return [ordered(r["doc"]) for r in await self._pool.fetch("SELECT doc FROM tasks ORDER BY task_id")]

    async def delete(self, task_ids: list[str]) -> int:
        """Erasure: the tasks and every version kept of them leave the store (one transaction)."""
        if not task_ids:
            return 0
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("DELETE FROM task_versions WHERE task_id = ANY($1::text[])", task_ids)
                status = await conn.execute("DELETE FROM tasks WHERE task_id = ANY($1::text[])", task_ids)
                await _notify_erased(conn, task_ids)
        return int(status.split()[-1])

    async def task_ids_of(self, vpa_id: str) -> list[str]:
        return [r["task_id"] for r in await self._pool.fetch(
            "SELECT task_id FROM tasks WHERE vpa_id = $1 ORDER BY task_id", vpa_id)]

    async def erase_vpa(self, vpa_id: str) -> int:
        """Every task of ``vpa_id`` and its versions, its profile and recent events (``vpa erase``),
        in one transaction with the erasure record (by hash: ``erasure_hash``); returns the tasks
        removed. Running it again is harmless."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM vpa_profiles WHERE vpa_id = $1", vpa_id)
            await conn.execute("DELETE FROM vpa_events WHERE vpa_id = $1", vpa_id)
            ids = [r["task_id"] for r in await conn.fetch("SELECT task_id FROM tasks WHERE vpa_id = $1", vpa_id)]
            await conn.execute("DELETE FROM task_versions WHERE task_id = ANY($1::text[])", ids)
            status = await conn.execute("DELETE FROM tasks WHERE task_id = ANY($1::text[])", ids)
            await _notify_erased(conn, ids)
            await conn.execute("INSERT INTO erasures (vpa_hash) VALUES ($1) ON CONFLICT DO NOTHING",
                               erasure_hash(vpa_id))
        return int(status.split()[-1])

    async def erasures(self) -> set[str]:
        """The hashes of every VPA erased with ``vpa erase``."""
        return {r["vpa_hash"] for r in await self._pool.fetch("SELECT vpa_hash FROM erasures")}

    async def versions(self, task_id: str) -> list[dict]:
        """Every applied version of a task, oldest first (its history of changes)."""
        rows = await self._pool.fetch("SELECT doc FROM task_versions WHERE task_id = $1 ORDER BY version", task_id)
        return [ordered(r["doc"]) for r in rows]

    # -- live feed ---------------------------------------------------------------------------

    async def listen(self, callback: Callable[[dict], Any]) -> Callable[[], None]:
        """Call ``callback({"task_id", "version"})`` for each committed change by any writer.

        Returns a function that stops the calls. Changes committed while the listening
        connection is down are not replayed; readers catch up with ``list``.
        """
        await self._ensure_listener()
        self._callbacks.append(callback)

        def stop() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        return stop

    async def subscribe(self) -> asyncio.Queue:
        """A queue receiving each changed task (the full document of that version). However many
        subscribe, and however concurrently: one listener, one reader (``_pump``)."""
        async with self._feed_lock:
            if self._changes is None:
                changes: asyncio.Queue = asyncio.Queue()
                await self.listen(changes.put_nowait)
                self._changes = changes
                self._spawn(self._pump())
            return self._fanout.add()

    def feed_stats(self) -> dict[str, int]:
        """Listeners, readers and subscribers of the live feed (for tests and metrics)."""
        return {"listeners": len(self._callbacks), "readers": int(self._changes is not None),
                "subscribers": len(self._fanout.queues)}

    async def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._fanout.queues.discard(queue)

    async def _ensure_listener(self) -> None:
        async with self._listener_lock:
            if self._listener is None or self._listener.is_closed():
                # A connection of its own: pooled connections drop their listeners on release.
                conn = await asyncpg.connect(self._url, **self._connect_kwargs)
                await conn.add_listener(CHANNEL, self._on_notify)
                conn.add_termination_listener(self._on_listener_lost)
                self._listener = conn

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        try:
            change = json.loads(payload)
            change = {"task_id": str(change["task_id"]), "version": int(change["version"])}  # version 0: erased
        except (ValueError, TypeError, KeyError):  # someone else's NOTIFY on our channel
            log.warning("ignoring notification %r on %s", payload[:200], channel)
            return
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:  # noqa: BLE001 - one bad subscriber must not starve the others
                log.exception("task change callback failed")

    def _on_listener_lost(self, conn: Any) -> None:
        if not self._closed:
            log.warning("lost the LISTEN connection; reconnecting")
            self._spawn(self._relisten())

    async def _relisten(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                await self._ensure_listener()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("LISTEN reconnect failed, retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _pump(self) -> None:
        """Turn notifications into full task documents, a drained burst per query."""
        assert self._changes is not None
        while True:
            changes = [await self._changes.get()]
            while not self._changes.empty() and len(changes) < 500:
                changes.append(self._changes.get_nowait())
            if not self._fanout.queues:
                continue
            for gone in [c for c in changes if c["version"] == 0]:  # erased: the pages drop it
                self._fanout.publish({"task_id": gone["task_id"], "erased": True})
            changes = [c for c in changes if c["version"] != 0]
            if not changes:
                continue
            try:
                rows = await self._pool.fetch(
                    "SELECT v.doc FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS c(task_id, version, n)"
                    " JOIN task_versions v USING (task_id, version) ORDER BY c.n",
                    [c["task_id"] for c in changes], [c["version"] for c in changes])
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("could not read %d changed tasks for the live feed", len(changes))
                continue
            for row in rows:
                self._fanout.publish(ordered(row["doc"]))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._fanout.queues.clear()
        if self._command_side is not None:
            await self._command_side.close()
        await self._pool.close()


async def _notify_erased(conn: Any, task_ids: list[str]) -> None:
    """The live feed hears of erased tasks (version 0), so open pages drop them (delivered on commit)."""
    if task_ids:
        await conn.execute(f"SELECT pg_notify('{CHANNEL}', json_build_object('task_id', t, 'version', 0)::text) "
                           "FROM unnest($1::text[]) AS t", task_ids)


async def open_store(database_url: Optional[str], data_dir: str) -> PostgresTaskStore:
    """The store at ``database_url``; without one, an embedded PostgreSQL in ``data_dir``."""
    if not database_url:
        from services.store import embedded_pg

        database_url = await asyncio.to_thread(embedded_pg.start, data_dir)  # initdb/pg_ctl block
    return await PostgresTaskStore.connect(database_url)
