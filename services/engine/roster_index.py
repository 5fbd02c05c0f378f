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
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Iterable, Mapping, NamedTuple, Optional

from services.core.ids import rendezvous_rank
from services.core.processor import ANY_ROSTER_CHANGE, PICK, role_token


@dataclass(frozen=True)
class MemberChange:
    """One member's change as the policy sees it: role and presence before and after."""

    initials: str
    old_role: Optional[str]
    new_role: Optional[str]
    was_present: bool
    is_present: bool

    def came(self, role: str) -> bool:
        return self.is_present and self.new_role == role and not (self.was_present and self.old_role == role)

    def left(self, role: str) -> bool:
        return self.was_present and self.old_role == role and not (self.is_present and self.new_role == role)


class _Pick(NamedTuple):
    held: tuple[bytes, str]  # the assignee's rank for the key, and the assignee (ids.rendezvous_rank)
    refs: set[Any]
    owner: str


class DependencyIndex:
    def __init__(self) -> None:
        self._by_token: dict[str, set[Any]] = defaultdict(set)
        self._tokens: dict[object, frozenset[str]] = {}
        # rendezvous picks: role -> assignee -> key -> (its rank for that assignee, the refs picked
        # so, the owner whose deputy would go first: "" for none, or when refs disagree)
        self._picks: dict[str, dict[str, dict[str, _Pick]]] = defaultdict(lambda: defaultdict(dict))

    def update(self, ref: object, tokens: Iterable[str]) -> None:
        new = frozenset(tokens)
        old = self._tokens.get(ref, frozenset())
        if new == old:
            return
        for t in old - new:
            if t.startswith(PICK):
                self._drop_pick(t, ref)
                continue
            refs = self._by_token.get(t)
            if refs is not None:
                refs.discard(ref)
                if not refs:
                    del self._by_token[t]
        for t in new - old:
            if t.startswith(PICK):
                role, assignee, owner, key = t[len(PICK):].split("\x00", 3)
                picks = self._picks[role][assignee]
                entry = picks.get(key)
                if entry is None:
                    entry = picks[key] = _Pick(rendezvous_rank(key, assignee), set(), owner)
                elif entry.owner != owner:
                    picks[key] = entry = entry._replace(owner="")
                entry.refs.add(ref)
                continue
            self._by_token[t].add(ref)
        if new:
            self._tokens[ref] = new
        else:
            self._tokens.pop(ref, None)

    def _drop_pick(self, token: str, ref: object) -> None:
        role, assignee, _, key = token[len(PICK):].split("\x00", 3)
        by_assignee = self._picks.get(role, {})
        entry = by_assignee.get(assignee, {}).get(key)
        if entry is None:
            return
        entry.refs.discard(ref)
        if not entry.refs:
            del by_assignee[assignee][key]
            if not by_assignee[assignee]:
                del by_assignee[assignee]

    def affected(self, changes: Iterable[MemberChange], roster: Mapping[str, dict[str, Any]]) -> list[Any]:
        """What these members' changes can affect, sorted: the tasks of the members (and of those
        whose deputy they are), the picks a member leaving held or a member arriving would win,
        and what waits for any member of a role to arrive or leave."""
        changes = list(changes)
        changed = {c.initials for c in changes}
        tokens = set(changed) | {ANY_ROSTER_CHANGE}
        deputies_of = getattr(roster, "deputies_of", None)  # a roster.Roster keeps an index
        tokens |= (deputies_of(changed) if deputies_of is not None
                   else {initials for initials, m in roster.items() if m.get("deputy") in changed})
        refs: set[Any] = set()
        for c in changes:
            for role in ("at", "vpa_manager"):
                if c.came(role) or c.left(role):
                    tokens.add(role_token(role))
                picks = self._picks.get(role, {})
                if c.left(role):
                    for _, picked, _ in picks.get(c.initials, {}).values():
                        refs |= picked
                if c.came(role):
                    for assignee, keys in picks.items():
                        for key, (held, picked, owner) in keys.items():
                            if owner and (roster.get(owner) or {}).get("deputy") == assignee:
                                continue  # the owner's deputy has it: nobody arriving goes before
                            if rendezvous_rank(key, c.initials) > held:
                                refs |= picked
        for t in tokens:
            refs |= self._by_token.get(t, set())
        return sorted(refs)


class BoundaryIndex:
    """The boundary dates of a roster, kept up to date one member at a time: a roster event costs
    the changed member's absences, not the whole roster's (``boundary_dates`` and
    ``members_with_boundary_on`` computed incrementally)."""

    def __init__(self, roster: Mapping[str, dict[str, Any]] = {}) -> None:  # noqa: B006 - read only
        self._of: dict[str, frozenset[date]] = {}  # member -> its boundary dates
        self._on: dict[date, set[str]] = {}  # date -> members with a boundary on it
        self.dates: list[date] = []  # sorted keys of _on
        self.version = 0  # grows with every change of the dates (a reader may keep an answer until then)
        for initials, member in roster.items():
            self.update(initials, member)

    def update(self, initials: str, member: Optional[dict[str, Any]]) -> None:
        new = frozenset(_member_boundaries(member))
        old = self._of.get(initials, frozenset())
        if new == old:
            return
        self.version += 1
        for day in old - new:
            members = self._on[day]
            members.discard(initials)
            if not members:
                del self._on[day]
                del self.dates[bisect.bisect_left(self.dates, day)]
        for day in new - old:
            if day not in self._on:
                self._on[day] = set()
                bisect.insort(self.dates, day)
            self._on[day].add(initials)
        if new:
            self._of[initials] = new
        else:
            self._of.pop(initials, None)

    def next_after(self, day: date) -> Optional[date]:
        return next_boundary_after(self.dates, day)

    def members_on(self, day: date) -> set[str]:
        return set(self._on.get(day, ()))


def _member_boundaries(member: Optional[dict[str, Any]]) -> Iterable[date]:
    for a in (member or {}).get("absences", {}).values():
        if a.get("ended"):
            continue
        yield date.fromisoformat(a["starts_on"])
        if a.get("ends_on"):
            yield date.fromisoformat(a["ends_on"]) + timedelta(days=1)


def boundary_dates(roster: Mapping[str, dict[str, Any]]) -> list[date]:
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


def members_with_boundary_on(roster: Mapping[str, dict[str, Any]], day: date) -> set[str]:
    iso, before = day.isoformat(), (day - timedelta(days=1)).isoformat()
    return {initials for initials, m in roster.items()
            for a in m.get("absences", {}).values()
            if not a.get("ended") and (a["starts_on"] == iso or a.get("ends_on") == before)}


def policy_view(member: Optional[dict[str, Any]], day: date) -> tuple[Any, ...]:
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
