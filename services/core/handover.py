"""HandoverPolicy (DESIGN 2.2, 5.7 to 5.11): who works a task while its owner is away.

One pure function for cases and reminders alike: the owner if present; else the owner's
deputy if present (any role); else a present AT member picked by rendezvous hashing on the
task's key (even spread, no global count, minimal movement when someone leaves or returns);
else the owner, flagged ``handover_unavailable``. An owner not in the roster is never handed over.
"""
from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from itertools import chain
from typing import Any, Callable, Iterable, Mapping, Optional

from services.core.ids import rendezvous_ranks
from services.core.processor import pick_token, role_token
from services.core.roster import Roster, is_present

HANDOVER = "handover"
UNAVAILABLE = "handover_unavailable"
FLAGS = (HANDOVER, UNAVAILABLE)


@dataclass(frozen=True)
class Assignment:
    assignee: Optional[str]
    flag: Optional[str] = None  # HANDOVER, UNAVAILABLE or None


def assign(owner: Optional[str], key: str, roster: Mapping[str, dict[str, Any]], on: date) -> Assignment:
    member = roster.get(owner) if owner else None
    if member is None or not member.get("known"):
        return Assignment(owner)
    present, present_at = presence(roster, on)
    if owner in present:
        return Assignment(owner)
    deputy = member.get("deputy")
    if deputy and deputy != owner and deputy in present:
        return Assignment(deputy, HANDOVER)
    pick = _pick(key, present_at, owner)
    if pick:
        return Assignment(pick, HANDOVER)
    return Assignment(owner, UNAVAILABLE)


# Who is present on a day is asked for every task a re-evaluation touches. The engine's roster is a
# ``roster.Roster``, which keeps that answer up to date member by member; for any other mapping it
# is computed once per roster state and day, the identities of the member records naming the state
# (records are replaced, never changed in place: ``roster.apply_roster_event``). A cached entry
# holds what it was keyed on, so no identity is reused while it is cached.
_PRESENCE: "OrderedDict[tuple[Any, ...], tuple[Any, tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]]]" = \
    OrderedDict()
_PRESENCE_SIZE = 64


def presence(roster: Mapping[str, dict[str, Any]], on: date) -> tuple[frozenset[str], tuple[str, ...]]:
    """(initials of every present member, sorted initials of the present AT members) on ``on``."""
    present, present_at, _ = _presence(roster, on)
    return present, present_at


def present_managers(roster: Mapping[str, dict[str, Any]], on: date) -> tuple[str, ...]:
    """Sorted initials of the VPA Managers present on ``on``."""
    return _presence(roster, on)[2]


def pick_among(key: str, candidates: tuple[str, ...]) -> Optional[str]:
    """The rendezvous pick for ``key`` among ``candidates`` (a sorted tuple; cached)."""
    return _pick(key, candidates, None)


def _presence(roster: Mapping[str, dict[str, Any]],
              on: date) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
    if isinstance(roster, Roster):
        return roster.present_on(on)
    members = tuple(roster.items())
    key = (on, tuple(id(m) for _, m in members))
    hit = _PRESENCE.get(key)
    if hit is not None:
        _PRESENCE.move_to_end(key)
        return hit[1]
    present = frozenset(i for i, m in roster.items() if is_present(m, on))
    answer = (present, tuple(sorted(i for i in present if roster[i].get("role") == "at")),
              tuple(sorted(i for i in present if roster[i].get("role") == "vpa_manager")))
    _PRESENCE[key] = (members, answer)
    if len(_PRESENCE) > _PRESENCE_SIZE:
        _PRESENCE.popitem(last=False)
    return answer


# Rendezvous picks kept per key: the best two (rank, initials) among the candidates they were
# made among. A pick scores every candidate, and a large company has thousands of AT members, so
# a task re-evaluated after the team changed costs only the members who arrived since: the best
# two of a bigger set are the best two of the kept ones and the newcomers while both kept ones
# stay (when one left, the pick is made again over everyone).
_Ranked = tuple[bytes, str]  # ids.rendezvous_ranks
_PICKS: "OrderedDict[str, tuple[tuple[str, ...], frozenset[str], list[_Ranked]]]" = OrderedDict()
_PICKS_SIZE = 1 << 16
_MEMBERS: "OrderedDict[int, tuple[tuple[str, ...], frozenset[str]]]" = OrderedDict()


def _pick(key: str, candidates: tuple[str, ...], excluded: Optional[str]) -> Optional[str]:
    """The pick for ``key`` among ``candidates`` without ``excluded`` (the absent owner)."""
    kept = _PICKS.get(key)
    if kept is None or kept[0] is not candidates:
        members = _members_of(candidates)
        if kept is not None and all(name in members for _, name in kept[2]):
            top = _best_two(key, members - kept[1], kept[2])
        else:
            top = _best_two(key, members, [])
        kept = _PICKS[key] = (candidates, members, top)
        if len(_PICKS) > _PICKS_SIZE:
            _PICKS.popitem(last=False)
    else:
        _PICKS.move_to_end(key)
    for _, name in kept[2]:
        if name != excluded:
            return name
    return None


def _best_two(key: str, names: Iterable[str], top: list[_Ranked]) -> list[_Ranked]:
    return heapq.nlargest(2, chain(top, rendezvous_ranks(key, names)))


def _members_of(candidates: tuple[str, ...]) -> frozenset[str]:
    """The set of a candidates tuple; the tuples of a day's presence are reused, so kept by identity
    (a kept entry holds its tuple: no identity is reused while it is kept)."""
    hit = _MEMBERS.get(id(candidates))
    if hit is not None and hit[0] is candidates:
        return hit[1]
    members = frozenset(candidates)
    _MEMBERS[id(candidates)] = (candidates, members)
    if len(_MEMBERS) > 16:
        _MEMBERS.popitem(last=False)
    return members


def with_flag(reasons: list[str], flag: Optional[str]) -> list[str]:
    """The reasons with the handover flag replaced by ``flag`` (kept last)."""
    base = [r for r in reasons if r not in FLAGS]
    return base + [flag] if flag else base


def describe(a: Assignment, owner: Optional[str]) -> str:
    """German history text for a change of assignee."""
    if a.flag == HANDOVER:
        return f"Übergabe an {a.assignee}: {owner} ist abwesend"
    if a.flag == UNAVAILABLE:
        return f"{owner} ist abwesend, niemand verfügbar: bleibt bei {owner}"
    return f"Zurück bei {owner}"


def handover_dependencies(owner: Optional[str], tasks: Iterable[dict[str, Any]],
                          key_of: Callable[[dict[str, Any]], str] = lambda task: task["task_id"]) -> set[str]:
    """Roster facts the policy reads for these tasks (see ``Processor.roster_dependencies``): the
    owner's record (and through it the deputy's) while any of them is live; for a task handed over
    to someone other than a present owner, the pick (``pick_token``: its assignee leaving, or a
    higher-scoring AT member arriving); for one nobody could take, any AT member arriving."""
    deps: set[str] = set()
    for task in tasks:
        if task["status"] not in ("waiting", "open"):
            continue
        if owner:
            deps.add(owner)
        if UNAVAILABLE in task["reasons"]:
            deps.add(role_token("at"))
        elif HANDOVER in task["reasons"] and task.get("assignee") and task["assignee"] != owner:
            deps.add(pick_token(task["assignee"], key_of(task), owner=owner))
    return deps
