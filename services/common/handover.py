"""HandoverPolicy (DESIGN 2.2, 5.7 to 5.11): who works a task while its owner is away.

One pure function for cases and reminders alike: the owner if present; else the owner's
deputy if present (any role); else a present AT member picked by rendezvous hashing on the
task's key (even spread, no global count, minimal movement when someone leaves or returns);
else the owner, flagged ``handover_unavailable``. An owner not in the roster is never handed over.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable, Mapping, Optional

from services.common.ids import rendezvous_pick
from services.common.processor import role_token
from services.common.roster import is_present

HANDOVER = "handover"
UNAVAILABLE = "handover_unavailable"
FLAGS = (HANDOVER, UNAVAILABLE)


@dataclass(frozen=True)
class Assignment:
    assignee: Optional[str]
    flag: Optional[str] = None  # HANDOVER, UNAVAILABLE or None


def assign(owner: Optional[str], key: str, roster: Mapping[str, dict], on: date) -> Assignment:
    member = roster.get(owner) if owner else None
    if member is None or not member.get("known"):
        return Assignment(owner)
    if is_present(member, on):
        return Assignment(owner)
    deputy = member.get("deputy")
    if deputy and deputy != owner and is_present(roster.get(deputy), on):
        return Assignment(deputy, HANDOVER)
    candidates = [i for i, m in roster.items() if i != owner and m.get("role") == "at" and is_present(m, on)]
    pick = rendezvous_pick(key, sorted(candidates))
    if pick:
        return Assignment(pick, HANDOVER)
    return Assignment(owner, UNAVAILABLE)


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


def handover_dependencies(owner: Optional[str], tasks: Iterable[dict]) -> set[str]:
    """Roster facts the policy reads for these tasks (see ``Processor.roster_dependencies``):
    the owner's record while any of them is live, and the set of present AT members while one is
    handed over or flagged (someone arriving may win the rendezvous pick)."""
    deps: set[str] = set()
    for task in tasks:
        if task["status"] not in ("waiting", "open"):
            continue
        if owner:
            deps.add(owner)
        if any(r in FLAGS for r in task["reasons"]):
            deps.add(role_token("at"))
    return deps
