"""Builders shared by the reminders and handover tests: envelopes through the real decoder."""
from __future__ import annotations

import itertools
import json
from typing import Optional

from services.core.roster import apply_roster_event, roster_key
from services.engine.decode import Decoded, decode

_ids = itertools.count(1)
SYS = {"initials": "SYS", "role": "system"}


def envelope(type_: str, data: Optional[dict] = None, *, at: str = "2026-11-26T09:00:00+01:00",
             vpa_id: Optional[str] = None, actor: Optional[dict] = None, event_id: Optional[str] = None):
    raw = {"event_id": event_id or f"t{next(_ids)}", "type": type_, "occurred_at": at, "vpa_id": vpa_id,
           "actor": actor, "schema_version": 1, "data": data or {}}
    outcome = decode(json.dumps(raw))
    assert isinstance(outcome, Decoded), outcome
    return outcome.envelope


def member(initials: str, role: str = "at", deputy: Optional[str] = None, active: bool = True, **kw):
    return envelope("roster.member_upserted", {"initials": initials, "name": f"Member {initials}", "role": role,
                                               "deputy": deputy, "active": active}, **kw)


def absence(absence_id: str, initials: str, starts_on: str, ends_on: Optional[str], kind: str = "vacation", **kw):
    return envelope("roster.absence_registered", {"absence_id": absence_id, "initials": initials, "kind": kind,
                                                  "starts_on": starts_on, "ends_on": ends_on}, **kw)


def absence_ended(absence_id: str, initials: str, **kw):
    return envelope("roster.absence_ended", {"absence_id": absence_id, "initials": initials}, **kw)


def apply(roster: dict, *envs) -> dict:
    for env in envs:
        key = roster_key(env)
        roster[key] = apply_roster_event(roster.get(key), env)
    return roster


def roster_of(*envs) -> dict:
    return apply({}, *envs)
