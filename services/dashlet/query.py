"""``GET /api/tasks``: the typed query (also the OpenAPI parameters) and the readers that answer it.

Filtering, sorting and paging happen in the store's query (SQL for PostgreSQL), never in the
browser, so no open task is hidden behind done ones and ``shift=current`` filters before it pages.
"""
from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Optional

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.base import Initials
from schemas.task import Status, Tab, Task
from services.core.timeutil import parse

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000
# Text that PostgreSQL can hold: no NUL, no other control character (a filter never needs one).
SAFE_TEXT = r"^[^\x00-\x1f\x7f]+$"
VpaIdFilter = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=SAFE_TEXT)]
TaskId = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=SAFE_TEXT)]
FIRST_YEAR, LAST_YEAR = 1900, 2999  # datetimes outside are typos or attacks, never business dates


def check_year(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"Jahr {value.year} liegt außerhalb von {FIRST_YEAR} bis {LAST_YEAR}")
    return value


class TaskSort(str, Enum):
    due = "due"            # due_at (none last), then task_id
    priority = "priority"  # high, normal, low; then as ``due``


class ShiftFilter(str, Enum):
    current = "current"


class TaskQuery(BaseModel):
    """Query parameters of ``GET /api/tasks``. ``status`` may repeat (any of them)."""

    model_config = ConfigDict(extra="forbid")

    tab: Optional[Tab] = Field(None, description="Reiter: cases, reminders oder journey")
    status: Optional[list[Status]] = Field(None, description="einer der Status (wiederholbar)")
    assignee: Optional[Initials] = Field(None, description="Kürzel der zuständigen Person")
    vpa_id: Optional[VpaIdFilter] = None
    due_before: Optional[AwareDatetime] = Field(None, description="fällig vor diesem Zeitpunkt (RFC 3339 mit Offset)")
    shift: Optional[ShiftFilter] = Field(
        None, description="current: nur wartende/offene Aufgaben, fällig bis zum Ende der laufenden Schicht")
    sort: TaskSort = Field(TaskSort.due, description="due: nach Fälligkeit; priority: nach Priorität, dann Fälligkeit")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    after: Optional[Annotated[str, StringConstraints(min_length=1, max_length=600, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]] = Field(
        None, description="Weiterblättern ab dieser Stelle (next_after der vorigen Seite; nicht mit offset)")

    @field_validator("due_before")
    @classmethod
    def _plausible_year(cls, v: Optional[datetime]) -> Optional[datetime]:
        return v if v is None else check_year(v)


class TaskPage(BaseModel):
    """One page of ``GET /api/tasks``."""

    items: list[Task]
    limit: int
    offset: int
    total: int = Field(description="wie viele Aufgaben die Filter insgesamt treffen")
    next_offset: Optional[int]
    next_after: Optional[str] = Field(None, description="für die nächste Seite als after (schneller als offset)")
    shift: Optional[list[AwareDatetime]] = Field(
        None, description="Beginn und Ende der Schicht (nur mit shift=current): der laufenden, zwischen Schichten "
                          "der nächsten (dann shift_next true)")
    shift_next: Optional[bool] = Field(None, description="true: zwischen Schichten, shift ist die nächste")


@dataclass(frozen=True)
class Selection:
    """What to read: the query resolved against the clock (the shift window, if any)."""

    tab: Optional[str] = None
    statuses: Optional[tuple[str, ...]] = None
    assignee: Optional[str] = None
    vpa_id: Optional[str] = None
    due_before: Optional[datetime] = None  # due_at < due_before
    due_by: Optional[datetime] = None      # due_at <= due_by (end of the shift)
    sort: TaskSort = TaskSort.due
    limit: int = 100
    offset: int = 0
    after: Optional["Cursor"] = None  # keyset: only tasks after this place of the sort order


PRIORITY_ORDER = {"high": 0, "normal": 1, "low": 2}


@dataclass(frozen=True)
class Cursor:
    """A place in a list's sort order: (priority rank, due_at or None, task_id). A page that goes
    on from it reads only the rows after it on the index, however deep into the list it is."""

    rank: int
    due_at: Optional[datetime]
    task_id: str

    @classmethod
    def of(cls, task: dict, sort: "TaskSort") -> "Cursor":
        rank = PRIORITY_ORDER.get(task["priority"], 3) if sort is TaskSort.priority else 0
        return cls(rank, parse(task["due_at"]) if task.get("due_at") else None, task["task_id"])

    def encode(self) -> str:
        raw = json.dumps([self.rank, self.due_at.isoformat() if self.due_at else None, self.task_id])
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Raises ValueError for anything that is not a cursor this server wrote."""
        try:
            rank, due, task_id = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
            cursor = cls(int(rank), datetime.fromisoformat(due) if due is not None else None, str(task_id))
        except (ValueError, TypeError, UnicodeError) as exc:
            raise ValueError("after: keine gültige Stelle einer Liste") from exc
        bad = (not 0 <= cursor.rank <= 3 or not 1 <= len(cursor.task_id) <= 300
               or not re.match(SAFE_TEXT, cursor.task_id)
               or (cursor.due_at is not None and (cursor.due_at.tzinfo is None
                                                  or not FIRST_YEAR <= cursor.due_at.year <= LAST_YEAR)))
        if bad:
            raise ValueError("after: keine gültige Stelle einer Liste")
        return cursor

    def key(self) -> tuple:
        return self.rank, self.due_at.timestamp() if self.due_at else float("inf"), self.task_id


class PostgresTaskReader:
    """Reads the notifier's ``tasks`` table (DESIGN 3: the dashlet reads, the notifier writes)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def page(self, sel: Selection) -> tuple[list[dict], int]:
        where, args = [], []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if sel.tab is not None:
            where.append(f"tab = {arg(sel.tab)}")
        if sel.statuses is not None:
            where.append(f"status = ANY({arg(list(sel.statuses))}::text[])"
                         if len(sel.statuses) != 1 else f"status = {arg(sel.statuses[0])}")
        if sel.assignee is not None:
            where.append(f"assignee = {arg(sel.assignee)}")
        if sel.vpa_id is not None:
            where.append(f"vpa_id = {arg(sel.vpa_id)}")
        if sel.due_before is not None:
            where.append(f"due_at < {arg(sel.due_before)}")
        if sel.due_by is not None:
            where.append(f"due_at <= {arg(sel.due_by)}")
        order = "due_at NULLS LAST, task_id"
        rank = "CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 WHEN 'low' THEN 2 ELSE 3 END"
        if sel.sort is TaskSort.priority:
            order = f"{rank}, " + order
        if sel.after is not None:
            c = sel.after
            if c.due_at is None:
                after_due = f"(due_at IS NULL AND task_id > {arg(c.task_id)})"
            else:
                d = arg(c.due_at)
                after_due = f"(due_at > {d} OR (due_at = {d} AND task_id > {arg(c.task_id)}) OR due_at IS NULL)"
            if sel.sort is TaskSort.priority:
                r = arg(c.rank)
                after_due = f"({rank} > {r} OR ({rank} = {r} AND {after_due}))"
            keyset = after_due
        else:
            keyset = None
        filters = f"WHERE {' AND '.join(where)}" if where else ""
        # The page's rows first (a top-N sort over the index's columns: only the page's documents
        # are read), the total by a count of its own over the same filters (an index-only scan).
        # count(*) OVER () read every matching document to sort and count it (80 MB spilled for
        # an unfiltered list of 58k tasks; issue 27). One round trip for both.
        page_filters = f"WHERE {' AND '.join(where + [keyset])}" if keyset else filters
        sql = (f"WITH page AS (SELECT doc, due_at, task_id, priority FROM tasks {page_filters} ORDER BY {order}"
               f" LIMIT {arg(sel.limit)} OFFSET {arg(sel.offset)})"
               f" SELECT (SELECT count(*) FROM tasks {filters}) AS total,"
               f" ARRAY(SELECT doc FROM page ORDER BY {order}) AS docs")
        row = await self._pool.fetchrow(sql, *args)
        return [_ordered(d) for d in row["docs"]], row["total"]

    async def assigned(self, initials: str) -> list[dict]:
        rows = await self._pool.fetch("SELECT doc FROM tasks WHERE assignee = $1 AND status = ANY('{waiting,open}') "
                                      "ORDER BY due_at NULLS LAST, task_id", initials)
        return [_ordered(r["doc"]) for r in rows]

    async def done_by(self, initials: str, since: datetime) -> int:
        """Tasks closed (done or cancelled) by ``initials`` since ``since``: its last change was theirs."""
        return await self._pool.fetchval(
            "SELECT count(*) FROM tasks WHERE status = ANY('{done,cancelled}') AND updated_at >= $1 "
            "AND doc->'history'->-1->>'by' = $2", since, initials)

    async def live_assigned(self) -> list[dict]:
        rows = await self._pool.fetch("SELECT doc FROM tasks WHERE status = ANY('{waiting,open}') "
                                      "AND assignee IS NOT NULL")
        return [_ordered(r["doc"]) for r in rows]


class MemoryTaskReader:
    """The same semantics over any store's ``all()`` (the in-memory store of tests and replay)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def page(self, sel: Selection) -> tuple[list[dict], int]:
        def keep(t: dict) -> bool:
            due = parse(t["due_at"]) if t.get("due_at") else None
            return ((sel.tab is None or t["tab"] == sel.tab)
                    and (sel.statuses is None or t["status"] in sel.statuses)
                    and (sel.assignee is None or t.get("assignee") == sel.assignee)
                    and (sel.vpa_id is None or t["vpa_id"] == sel.vpa_id)
                    and (sel.due_before is None or (due is not None and due < sel.due_before))
                    and (sel.due_by is None or (due is not None and due <= sel.due_by)))

        rows = [t for t in await self._store.all() if keep(t)]

        def key(t: dict) -> tuple:
            due = parse(t["due_at"]).timestamp() if t.get("due_at") else float("inf")
            rank = PRIORITY_ORDER.get(t["priority"], 3) if sel.sort is TaskSort.priority else 0
            return rank, due, t["task_id"]

        rows.sort(key=key)
        total = len(rows)
        if sel.after is not None:
            rows = [t for t in rows if key(t) > sel.after.key()]
        return [copy.deepcopy(t) for t in rows[sel.offset:sel.offset + sel.limit]], total

    async def assigned(self, initials: str) -> list[dict]:
        return [t for t in await self._store.all() if t.get("assignee") == initials and t["status"] in ("waiting", "open")]

    async def done_by(self, initials: str, since: datetime) -> int:
        return sum(1 for t in await self._store.all() if t["status"] in ("done", "cancelled")
                   and parse(t["updated_at"]) >= since and t["history"] and t["history"][-1]["by"] == initials)

    async def live_assigned(self) -> list[dict]:
        return [t for t in await self._store.all() if t["status"] in ("waiting", "open") and t.get("assignee")]


def _ordered(doc: dict) -> dict:
    from services.store.postgres import ordered

    return ordered(doc)


def reader_for(store: Any) -> Any:
    """The reader of a store: SQL on the PostgreSQL store's pool, else over ``all()``."""
    from services.store.postgres import PostgresTaskStore

    if isinstance(store, PostgresTaskStore):
        # The store exposes no public pool; the dashlet reads the same database with its own
        # queries (filters, sort and counts the store's ``list`` does not offer).
        return PostgresTaskReader(store._pool)  # noqa: SLF001
    return MemoryTaskReader(store)
