"""The AT roster (``at.roster``): members, roles, deputies and their absences. Pure functions.

Each runner holds one roster mapping (initials -> member dict) that every processor reads
through ``Context.roster``; in the Kafka runner it is a faust GlobalTable, so every worker of a
service sees the whole roster.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Mapping, Optional

from schemas.envelope import Envelope


class Roster(dict):
    """initials -> member record, with a version that grows with every change (``roster[i] = m``),
    so what is derived from the roster (who is present on a day) can be computed once per
    version (``handover.presence``)."""

    version = 0

    def __setitem__(self, key: str, value: dict) -> None:
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.version += 1


def empty_member(initials: str) -> dict:
    return {"initials": initials, "name": None, "role": None, "deputy": None, "active": False,
            "known": False, "absences": {}}


def apply_roster_event(member: Optional[dict], env: Envelope) -> dict:
    """Return the new record of the member the event is about (the event's ``initials``)."""
    d = env.data
    m = dict(member) if member else empty_member(d.initials)
    m["absences"] = dict(m.get("absences", {}))
    if env.type == "roster.member_upserted":
        m.update(name=d.name, role=d.role, deputy=d.deputy, active=d.active, known=True)
    elif env.type == "roster.absence_registered":
        m["absences"][d.absence_id] = {
            "kind": d.kind.value, "starts_on": d.starts_on.isoformat(),
            "ends_on": d.ends_on.isoformat() if d.ends_on else None, "ended": False,
        }
    elif env.type == "roster.absence_ended":
        if d.absence_id in m["absences"]:
            m["absences"][d.absence_id] = {**m["absences"][d.absence_id], "ended": True}
    return m


def roster_key(env: Envelope) -> str:
    return env.data.initials


def is_active_member(roster: Mapping[str, dict], initials: Optional[str]) -> bool:
    m = roster.get(initials) if initials else None
    return bool(m and m.get("known") and m.get("active"))


def is_present(member: Optional[dict], on: date) -> bool:
    """Active and not absent on the local date ``on`` (DESIGN 5.8)."""
    if not member or not member.get("known") or not member.get("active"):
        return False
    day = on.isoformat()  # ISO dates (years 1900 to 2999) compare as strings in date order
    for a in member.get("absences", {}).values():
        if a["ended"]:
            continue
        if a["starts_on"] <= day and (not a["ends_on"] or day <= a["ends_on"]):
            return False
    return True


def has_boundary_on(roster: Mapping[str, dict], on: date) -> bool:
    """Does any absence start on ``on`` or end the day before (DESIGN 5.8 boundary timers)?"""
    for m in roster.values():
        for a in m.get("absences", {}).values():
            if a["ended"]:
                continue
            if a["starts_on"] == on.isoformat():
                return True
            if a["ends_on"] and date.fromisoformat(a["ends_on"]) + timedelta(days=1) == on:
                return True
    return False
