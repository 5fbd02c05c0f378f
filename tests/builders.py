"""The one place that builds what the tests feed in: envelopes (as a dict, a JSON line, bytes, a
decoded ``Envelope`` or a Kafka ``Record``) and the facts the rules are about, with the contract's
defaults (DESIGN 4.2 to 4.5). Event ids are given, or numbered in call order (``t1``, ``t2`` ...).
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Optional

from schemas.envelope import topic_for_type
from services.broker.client import Record
from services.engine.decode import Decoded, decode

AT = "2026-11-26T09:00:00+01:00"
SYS = {"initials": "SYS", "role": "system"}
_ids = itertools.count(1)


def record(type_: str, data: Optional[dict[str, Any]] = None, *, at: str = AT, vpa_id: Optional[str] = None,
           actor: Optional[dict[str, str]] = None, event_id: Optional[str] = None) -> dict[str, Any]:
    """An envelope as a dict, as a producer writes it."""
    return {"event_id": event_id or f"t{next(_ids)}", "type": type_, "occurred_at": at, "vpa_id": vpa_id,
            "actor": actor, "schema_version": 1, "data": data or {}}


def line(type_: str, data: Optional[dict[str, Any]] = None, **kw: Any) -> str:
    """The envelope as one JSONL line (``vpa replay``'s input)."""
    return json.dumps(record(type_, data, **kw))


def raw(type_: str, data: Optional[dict[str, Any]] = None, **kw: Any) -> bytes:
    return line(type_, data, **kw).encode()


def decoded(type_: str, data: Optional[dict[str, Any]] = None, **kw: Any) -> Any:
    """The envelope through the real decoder (what a rule is handed)."""
    outcome = decode(line(type_, data, **kw))
    assert isinstance(outcome, Decoded), outcome
    return outcome.envelope


def as_kwargs(envelope: dict[str, Any]) -> dict[str, Any]:
    """A built envelope as the arguments of ``record``/``decoded`` (to decode a fact built here)."""
    return {"type_": envelope["type"], "data": envelope["data"], "at": envelope["occurred_at"],
            "vpa_id": envelope["vpa_id"], "actor": envelope["actor"], "event_id": envelope["event_id"]}


def kafka_record(envelope: dict[str, Any], offset: int = 0, partition: int = 0, topic: Optional[str] = None,
                 timestamp_ms: int = 0) -> Record:
    """The envelope as a consumer gets it: on its topic, keyed like the contract says (DESIGN 4.1)."""
    topic = topic or topic_for_type(envelope["type"]) or "vpa.events"
    key = envelope["vpa_id"] if envelope.get("vpa_id") else (envelope.get("data") or {}).get("initials")
    return Record(topic, partition, offset, key.encode() if key else None, json.dumps(envelope).encode(), timestamp_ms)


# ---- the platform's facts ------------------------------------------------------------------------

def registered(vpa_id: str = "V-1", *, owner: str = "AB", name: str = "Anna Schmidt", started_on: str = "2025-01-15",
               **kw: Any) -> dict[str, Any]:
    extra = {k: kw.pop(k) for k in ("part_time", "uses_mobile_app", "buddy", "class") if k in kw}
    return record("vpa.registered", {"name": name, "started_on": started_on, "at_owner": owner, **extra},
                  vpa_id=vpa_id, **kw)


def vpa_absence(absence_id: str, starts_on: str, ends_on: str, vpa_id: str = "V-1", **kw: Any) -> dict[str, Any]:
    return record("vpa.absence_registered", {"absence_id": absence_id, "starts_on": starts_on, "ends_on": ends_on},
                  vpa_id=vpa_id, **kw)


def activity(vpa_id: str = "V-1", channel: str = "web", **kw: Any) -> dict[str, Any]:
    return record("vpa.activity_seen", {"channel": channel}, vpa_id=vpa_id, **kw)


def activity_status(status: str, vpa_id: str = "V-1", **kw: Any) -> dict[str, Any]:
    return record("vpa.activity_status_changed", {"status": status}, vpa_id=vpa_id, **kw)


# ---- the AT roster ---------------------------------------------------------------------------------

def member(initials: str, *, role: str = "at", deputy: Optional[str] = None, active: bool = True,
           name: Optional[str] = None, **kw: Any) -> dict[str, Any]:
    return record("roster.member_upserted", {"initials": initials, "name": name or f"Member {initials}",
                                             "role": role, "deputy": deputy, "active": active}, **kw)


def roster_absence(absence_id: str, initials: str, starts_on: str, ends_on: Optional[str], kind: str = "vacation",
                   **kw: Any) -> dict[str, Any]:
    return record("roster.absence_registered", {"absence_id": absence_id, "initials": initials, "kind": kind,
                                                "starts_on": starts_on, "ends_on": ends_on}, **kw)


def roster_absence_ended(absence_id: str, initials: str, **kw: Any) -> dict[str, Any]:
    return record("roster.absence_ended", {"absence_id": absence_id, "initials": initials}, **kw)


# ---- commands ---------------------------------------------------------------------------------------

def command(type_: str, vpa_id: str, data: dict[str, Any], *, by: str = "AB", role: str = "at",
            **kw: Any) -> dict[str, Any]:
    """A person's command (``by``, ``role``); ``actor=SYS`` for the system's."""
    kw.setdefault("actor", {"initials": by, "role": role})
    return record(type_, data, vpa_id=vpa_id, **kw)
