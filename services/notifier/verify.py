"""``vpa verify``: does the dashlet store hold what the pipeline decided?

Two references, each compared task by task with the store:

* the compacted ``dashlet.tasks`` topic: the highest version of every task that the notifier can
  store (``parse_task``; versions it refuses are in ``vpa.dlq``, so they are counted, not expected);
* with input files, ``vpa replay`` of them (the embedded runner; DESIGN 5.26 says the Kafka runner
  must end where it ends).

Drift is reported per task: *missing* (in the reference, not in the store: lost), *extra* (in the
store only), *older* or *newer* version than the reference (newer: an input applied twice, or a
writer the pipeline does not know), and *fields* (the fields the AT sees differ). The comparison is
pure (``compare``) so it is tested on plain data; reading the topic and the store are thin shells.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Mapping, Optional

from schemas.topics import Topic
from services.notifier.validation import parse_task

# What the AT sees of a task (issue 9): the fields on which the Kafka runner must agree with replay
# (history, created_at and updated_at are bookkeeping of when, not what).
COMPARED_FIELDS: tuple[str, ...] = ("task_id", "tab", "kind", "stage", "vpa_id", "status", "priority", "reasons",
                                    "owner", "assignee", "due_at")


class DriftKind(StrEnum):
    missing = "missing"  # in the reference, not in the store
    extra = "extra"  # in the store, not in the reference
    older = "older"  # the store holds an older version than the reference
    newer = "newer"  # the store holds a newer version than the reference
    fields = "fields"  # the compared fields differ
    history = "history"  # the store's history has fewer entries than the task has versions (one was lost)


class Reference(StrEnum):
    topic = "topic"
    replay = "replay"
    store = "store"  # the store against itself


@dataclass(frozen=True)
class Drift:
    reference: Reference
    task_id: str
    kind: DriftKind
    detail: str

    def line(self) -> str:
        return f"{self.reference.value:6} {self.kind.value:7} {self.task_id}: {self.detail}"


def comparable(task: Mapping[str, Any]) -> dict:
    out = {k: task.get(k) for k in COMPARED_FIELDS}
    out["reasons"] = sorted(out["reasons"] or [])
    return out


def compare(reference: Reference, want: Mapping[str, Mapping], store: Mapping[str, Mapping], *,
            versions: bool = True) -> list[Drift]:
    """Drift of ``store`` against ``want`` (both task_id -> task), sorted by task_id.

    With ``versions`` a differing version is drift of its own (older/newer) and the fields are only
    compared when the versions agree; without, only the fields count."""
    out: list[Drift] = []
    where = reference.value
    for task_id in sorted(set(want) | set(store)):
        w, s = want.get(task_id), store.get(task_id)
        if s is None:
            out.append(Drift(reference, task_id, DriftKind.missing, f"version {w['version']} in {where}, not in the store"))
            continue
        if w is None:
            out.append(Drift(reference, task_id, DriftKind.extra, f"version {s['version']} in the store, not in {where}"))
            continue
        if versions and s["version"] != w["version"]:
            kind = DriftKind.older if s["version"] < w["version"] else DriftKind.newer
            out.append(Drift(reference, task_id, kind, f"version {s['version']} in the store, {w['version']} in {where}"))
            continue
        cw, cs = comparable(w), comparable(s)
        if cw != cs:
            diffs = ", ".join(f"{k}: store {cs[k]!r}, {where} {cw[k]!r}" for k in COMPARED_FIELDS if cw[k] != cs[k])
            out.append(Drift(reference, task_id, DriftKind.fields, diffs))
    return out


@dataclass
class TopicRead:
    """The latest storable version of every task on ``dashlet.tasks``, as the notifier keeps it:
    a null value (a tombstone) deletes the task of its key, an erase marker every task of its VPA."""

    latest: dict[str, dict] = field(default_factory=dict)
    records: int = 0
    tombstones: int = 0  # null values: the task of the key deleted (retention, erasure)
    erasures: int = 0  # erase markers: every task of the VPA deleted
    refused: int = 0  # versions the notifier cannot store (in vpa.dlq with the reason)
    repeated: int = 0  # a version of a task seen before (at-least-once delivery: the store ignores it)
    _seen: set = field(default_factory=set, repr=False)
    _erased: dict = field(default_factory=dict, repr=False)  # vpa_id -> timestamp (ms) of its last marker
    _stamp: dict = field(default_factory=dict, repr=False)  # task_id -> timestamp (ms) of its latest version

    def take(self, value: Optional[bytes], key: Optional[bytes] = None, timestamp_ms: int = 0) -> None:
        from services.broker.topics import erased_vpa

        self.records += 1
        vpa_id = erased_vpa(key, value)
        if vpa_id is not None:
            self.erasures += 1
            self._erased[vpa_id] = max(timestamp_ms, self._erased.get(vpa_id, 0))
            return
        if value is None:
            self.tombstones += 1
            if key is not None:
                self.latest.pop(key.decode(errors="replace"), None)
            return
        task = parse_task(value)
        if not isinstance(task, dict):
            self.refused += 1
            return
        version = (task["task_id"], task["version"])
        if version in self._seen:
            self.repeated += 1
        self._seen.add(version)
        held = self.latest.get(task["task_id"])
        if held is None or task["version"] > held["version"]:
            self.latest[task["task_id"]] = task
            self._stamp[task["task_id"]] = timestamp_ms

    def finish(self) -> "TopicRead":
        """Apply the erase markers: a marker sits on a partition of its own, so it removes every
        version of its VPA written before it, whichever partition holds them."""
        for task_id, task in list(self.latest.items()):
            erased_at = self._erased.get(task.get("vpa_id"))
            if erased_at is not None and self._stamp.get(task_id, 0) <= erased_at:
                del self.latest[task_id]
        return self


@dataclass
class Report:
    store_tasks: int
    topic: TopicRead
    replay_tasks: Optional[int]
    replay_versions: bool
    drift: list[Drift]

    @property
    def ok(self) -> bool:
        return not self.drift

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for d in self.drift:
            per = out.setdefault(d.reference.value, {})
            per[d.kind.value] = per.get(d.kind.value, 0) + 1
        return out

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "store": {"tasks": self.store_tasks},
            "topic": {"records": self.topic.records, "tasks": len(self.topic.latest),
                      "tombstones": self.topic.tombstones,
                      "erasures": self.topic.erasures, "refused": self.topic.refused,
                      "repeated": self.topic.repeated},
            "replay": None if self.replay_tasks is None else {"tasks": self.replay_tasks,
                                                               "versions_compared": self.replay_versions},
            "counts": self.counts(),
            "drift": [{**asdict(d), "reference": d.reference.value, "kind": d.kind.value} for d in self.drift],
        }

    def lines(self, limit: int = 200) -> list[str]:
        t = self.topic
        head = (f"store: {self.store_tasks:,} tasks; {Topic.tasks}: {t.records:,} records, {len(t.latest):,} tasks "
                f"({t.repeated:,} versions sent again, {t.refused:,} the notifier refuses, {t.tombstones:,} tombstones, "
                f"{t.erasures:,} erasures)")
        if self.replay_tasks is not None:
            head += f"; replay: {self.replay_tasks:,} tasks"
        out = [head]
        if self.ok:
            out.append("no drift")
            return out
        summary = "; ".join(f"{ref}: " + ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items()))
                            for ref, kinds in sorted(self.counts().items()))
        out.append(f"drift in {len({d.task_id for d in self.drift}):,} tasks ({summary})")
        out += [d.line() for d in self.drift[:limit]]
        if len(self.drift) > limit:
            out.append(f"... and {len(self.drift) - limit:,} more (--json lists them all)")
        return out


def history_gaps(stored: Mapping[str, Mapping]) -> list[Drift]:
    """Tasks whose history has fewer entries than versions: a version reached the store without
    its history entry, or never (every version carries the entry of its own change)."""
    out = []
    for task_id, task in sorted(stored.items()):
        entries = len(task.get("history") or [])
        if entries < task["version"]:
            out.append(Drift(Reference.store, task_id, DriftKind.history,
                             f"version {task['version']} with {entries} history entries"))
    return out


def build_report(store: Iterable[dict], topic: TopicRead, replay: Optional[Iterable[dict]],
                 replay_versions: bool = True) -> Report:
    stored = {t["task_id"]: t for t in store}
    drift = compare(Reference.topic, topic.latest, stored, versions=True) + history_gaps(stored)
    replayed = None
    if replay is not None:
        want = {t["task_id"]: t for t in replay}
        replayed = len(want)
        drift += compare(Reference.replay, want, stored, versions=replay_versions)
    return Report(len(stored), topic, replayed, replay_versions, drift)


# ---- the shells: the topic and the store --------------------------------------------------------------


async def read_topic(cfg: Any, topic: str = Topic.tasks, idle_timeout: float = 30.0) -> TopicRead:
    """Read ``topic`` (a KafkaConfig's cluster) from the beginning to the end offsets of now."""
    from services.broker.client import iter_retained, partitions_of

    if not await partitions_of(cfg, topic, wait=5.0):
        raise RuntimeError(f"topic {topic} does not exist")
    out = TopicRead()
    try:
        async for records in iter_retained(cfg, [topic], idle_timeout):
            for rec in records:
                out.take(rec.value, rec.key, rec.timestamp_ms)
    except TimeoutError as exc:
        raise RuntimeError(str(exc)) from None
    return out.finish()


async def read_store(database_url: Optional[str], data_dir: str) -> list[dict]:
    from services.store.postgres import open_store

    store = await open_store(database_url, data_dir)
    try:
        return await store.all()
    finally:
        await store.close()


async def verify(kafka_cfg: Any, database_url: Optional[str], data_dir: str,
                 replay: Optional[Iterable[dict]] = None, replay_versions: bool = True) -> Report:
    topic = await read_topic(kafka_cfg)
    store = await read_store(database_url, data_dir)  # after the topic: what was written meanwhile is in both
    return build_report(store, topic, replay, replay_versions)


def render(report: Report, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.to_json(), ensure_ascii=False, indent=1) + "\n"
    return "\n".join(report.lines()) + "\n"
