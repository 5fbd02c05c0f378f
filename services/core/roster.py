"""The AT roster (``at.roster``): members, roles, deputies and their absences. Pure functions.

Each partition engine holds one roster mapping (initials -> member dict) that every processor
reads through ``Context.roster``; every partition of a service reads the whole roster topic.
"""
from __future__ import annotations

from collections import OrderedDict
from datetime import date, timedelta
from typing import Any, Iterable, Mapping, Optional

from schemas.envelope import Envelope

PRESENCE_DAYS = 8  # days whose presence a Roster keeps up to date (today, yesterday, a few more)


class Roster(dict[str, Any]):
    """initials -> member record, with a version that grows with every change (``roster[i] = m``),
    and two indexes kept up to date one member at a time, so that a roster event costs the member
    it changed, not the whole roster: who is present on a day (``present_on``) and whose deputy a
    member is (``deputies_of``). Records are replaced, never changed in place."""

    version = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._days: "OrderedDict[date, _DayPresence]" = OrderedDict()
        self._deputy_of: dict[str, set[str]] = {}  # deputy -> members whose deputy it is
        for initials, member in self.items():
            self._index_deputy(initials, None, member)

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        old = self.get(key)
        super().__setitem__(key, value)
        self.version += 1
        self._index_deputy(key, old, value)
        for day in self._days.values():
            day.update(key, value)

    def __delitem__(self, key: str) -> None:
        old = self.get(key)
        super().__delitem__(key)
        self.version += 1
        self._index_deputy(key, old, None)
        for day in self._days.values():
            day.update(key, None)

    def present_on(self, on: date) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
        """(every present member, the present AT members sorted, the present VPA Managers sorted)."""
        day = self._days.get(on)
        if day is None:
            day = self._days[on] = _DayPresence(on, self)
            if len(self._days) > PRESENCE_DAYS:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(on)
        return day.answer()

    def deputies_of(self, initials: Iterable[str]) -> set[str]:
        """The members whose deputy is one of ``initials``."""
        out: set[str] = set()
        for i in initials:
            out |= self._deputy_of.get(i, set())
        return out

    def _index_deputy(self, initials: str, old: Optional[dict[str, Any]], new: Optional[dict[str, Any]]) -> None:
        was, now = (old or {}).get("deputy"), (new or {}).get("deputy")
        if was == now:
            return
        if was is not None:
            members = self._deputy_of.get(was, set())
            members.discard(initials)
            if not members:
                self._deputy_of.pop(was, None)
        if now is not None:
            self._deputy_of.setdefault(now, set()).add(initials)


class _DayPresence:
    """Who is present on one day, and in which role; the sorted answer is rebuilt after a change."""

    def __init__(self, on: date, roster: Mapping[str, dict[str, Any]]) -> None:
        self.on = on
        self.roles = {i: m.get("role") for i, m in roster.items() if is_present(m, on)}
        self._answer: Optional[tuple[Any, ...]] = None

    def update(self, initials: str, member: Optional[dict[str, Any]]) -> None:
        if is_present(member, self.on):
            role = member.get("role")  # type: ignore[union-attr]
            if initials in self.roles and self.roles[initials] == role:
                return
            self.roles[initials] = role
        elif self.roles.pop(initials, 0) == 0:
            return
        self._answer = None

    def answer(self) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
        if self._answer is None:
            roles = self.roles
            self._answer = (frozenset(roles), tuple(sorted(i for i in roles if roles[i] == "at")),
                            tuple(sorted(i for i in roles if roles[i] == "vpa_manager")))
        return self._answer


def empty_member(initials: str) -> dict[str, Any]:
    return {"initials": initials, "name": None, "role": None, "deputy": None, "active": False,
            "known": False, "absences": {}}


def apply_roster_event(member: Optional[dict[str, Any]], env: Envelope[Any]) -> dict[str, Any]:
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


def roster_key(env: Envelope[Any]) -> str:
    initials: str = env.data.initials
    return initials


def is_active_member(roster: Mapping[str, dict[str, Any]], initials: Optional[str]) -> bool:
    m = roster.get(initials) if initials else None
    return bool(m and m.get("known") and m.get("active"))


def is_present(member: Optional[dict[str, Any]], on: date) -> bool:
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


def has_boundary_on(roster: Mapping[str, dict[str, Any]], on: date) -> bool:
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
