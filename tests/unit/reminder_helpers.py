"""Builders shared by the reminders and handover tests: envelopes through the real decoder."""
from __future__ import annotations

from typing import Optional

from services.core.roster import apply_roster_event, roster_key
from tests import builders
from tests.builders import AT, as_kwargs, decoded


def envelope(type_: str, data: Optional[dict] = None, *, at: str = AT, vpa_id: Optional[str] = None,
             actor: Optional[dict] = None, event_id: Optional[str] = None):
    return decoded(type_, data, at=at, vpa_id=vpa_id, actor=actor, event_id=event_id)


def member(initials: str, role: str = "at", deputy: Optional[str] = None, active: bool = True, **kw):
    return decoded(**as_kwargs(builders.member(initials, role=role, deputy=deputy, active=active, **kw)))


def absence(absence_id: str, initials: str, starts_on: str, ends_on: Optional[str], kind: str = "vacation", **kw):
    return decoded(**as_kwargs(builders.roster_absence(absence_id, initials, starts_on, ends_on, kind, **kw)))


def absence_ended(absence_id: str, initials: str, **kw):
    return decoded(**as_kwargs(builders.roster_absence_ended(absence_id, initials, **kw)))


def apply(roster: dict, *envs) -> dict:
    for env in envs:
        key = roster_key(env)
        roster[key] = apply_roster_event(roster.get(key), env)
    return roster


def roster_of(*envs) -> dict:
    return apply({}, *envs)
