"""Which VPAs a roster change can affect, so re-evaluation touches those and no others.

Each processor says, per state, which roster facts its ``reassign`` reads
(``Processor.roster_dependencies``). This index inverts that (token -> slot keys). A change of
member M then concerns: M itself, the members whose deputy M is (their handed-over tasks may go
to or leave M), and the role M had or has (rendezvous picks among present AT members or VPA
Managers). The cost of a roster change is the number of VPAs it concerns, not the company's size.

It also knows on which local dates a roster absence starts or has just ended (DESIGN 5.8): the
only midnights at which anything is re-evaluated, so a jump of the clock over years costs work
for those dates only.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import date, timedelta
from typing import Iterable, Mapping, Optional

from services.common.processor import ANY_ROSTER_CHANGE, role_token


class DependencyIndex:
    def __init__(self) -> None:
        self._by_token: dict[str, set[str]] = defaultdict(set)
        self._tokens: dict[str, frozenset[str]] = {}

    def update(self, slot_key: str, tokens: Iterable[str]) -> None:
        new = frozenset(tokens)
        old = self._tokens.get(slot_key, frozenset())
        if new == old:
            return
        for t in old - new:
            keys = self._by_token.get(t)
            if keys is not None:
                keys.discard(slot_key)
                if not keys:
                    del self._by_token[t]
        for t in new - old:
            self._by_token[t].add(slot_key)
        if new:
            self._tokens[slot_key] = new
        else:
            self._tokens.pop(slot_key, None)

    def affected(self, members: Iterable[str], roster: Mapping[str, dict], roles: Iterable[Optional[str]]) -> list[str]:
        """Slot keys a change of ``members`` (who had or have ``roles``) can affect, sorted."""
        changed = set(members)
        tokens = set(changed) | {ANY_ROSTER_CHANGE}
        tokens |= {initials for initials, m in roster.items() if m.get("deputy") in changed}
        tokens |= {role_token(r) for r in roles if r}
        keys: set[str] = set()
        for t in tokens:
            keys |= self._by_token.get(t, set())
        return sorted(keys)


def boundary_dates(roster: Mapping[str, dict]) -> list[date]:
    """Sorted local dates whose midnight starts or ends (the day after ``ends_on``) an absence."""
    dates: set[date] = set()
    for member in roster.values():
        for a in member.get("absences", {}).values():
            if a.get("ended"):
                continue
            dates.add(date.fromisoformat(a["starts_on"]))
            if a.get("ends_on"):
                dates.add(date.fromisoformat(a["ends_on"]) + timedelta(days=1))
    return sorted(dates)


def next_boundary_after(dates: list[date], day: date) -> Optional[date]:
    i = bisect.bisect_right(dates, day)
    return dates[i] if i < len(dates) else None


def members_with_boundary_on(roster: Mapping[str, dict], day: date) -> set[str]:
    iso, before = day.isoformat(), (day - timedelta(days=1)).isoformat()
    return {initials for initials, m in roster.items()
            for a in m.get("absences", {}).values()
            if not a.get("ended") and (a["starts_on"] == iso or a.get("ends_on") == before)}


def policy_view(member: Optional[dict], day: date) -> tuple:
    """What the handover policy (and the facts it explains itself with) reads of a member on
    ``day``: a roster change that leaves this as it was re-evaluates nothing today. A change for
    a later day (an absence registered ahead) is re-evaluated at its boundary midnight."""
    if not member:
        return ()
    iso = day.isoformat()
    covering = tuple(sorted(
        (absence_id, a.get("kind"), a["starts_on"], a.get("ends_on"))
        for absence_id, a in member.get("absences", {}).items()
        if not a.get("ended") and a["starts_on"] <= iso and (not a.get("ends_on") or iso <= a["ends_on"])))
    return (member.get("known"), member.get("active"), member.get("role"), member.get("deputy"),
            member.get("name"), covering)
