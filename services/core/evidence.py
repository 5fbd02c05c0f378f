"""Evidence on a task (the dashlet's "Warum"): the facts that made it, in German. Pure functions.

An item is ``{"code", "text", "event_id"}`` (schemas.task.Evidence). A fact that fired a reason
carries that reason's code, so an update that keeps the reason can keep the fact that fired it.
Texts are internal (the dashlet may name classes); nothing here reaches a message draft.

Evidence is a task field, so a changed text is a new version (DESIGN 5.25). To keep versions
where they were, every fact is built from data that also sets another field, and an unchanged
fact keeps the ``event_id`` it was first seen with (``merge``).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterable, Mapping, Optional

from services.core.german import day
from services.core.handover import FLAGS, HANDOVER, UNAVAILABLE, Assignment
from services.core.roster import is_present

ABSENCE_KINDS = {"vacation": "Urlaub", "sick": "krank"}


def fact(code: str, text: str, event_id: Optional[str] = None) -> dict[str, Any]:
    return {"code": code, "text": text, "event_id": event_id}


def days(n: int) -> str:
    return f"{n} Tag" if abs(n) == 1 else f"{n} Tage"


def days_dative(n: int) -> str:
    """``von 21 Tagen``, ``in den 90 Tagen``."""
    return f"{n} Tag" if abs(n) == 1 else f"{n} Tagen"


def merge(old: Optional[list[dict[str, Any]]], fresh: Iterable[dict[str, Any]],
          reasons: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The evidence after an update: the fresh facts, where an identical old fact (same code and
    text) keeps its first ``event_id``; plus old facts that fired a reason the task still has and
    the fresh facts do not explain (reasons merge and never drop, DESIGN 5.15)."""
    old = [e for e in old or [] if e["code"] not in FLAGS]
    fresh = list(fresh)
    same = {(e["code"], e["text"]): e for e in old}
    out = [same.get((e["code"], e["text"]), e) for e in fresh]
    explained = {e["code"] for e in out}
    kept = set(reasons) - explained
    return [e for e in old if e["code"] in kept] + out


def with_handover(evidence: Optional[list[dict[str, Any]]],
                  handover: list[dict[str, Any]]) -> Optional[list[dict[str, Any]]]:
    """The evidence with its handover facts replaced (they follow the assignee, kept last).

    A task without evidence (written before evidence existed) stays without while nothing is
    handed over, so a re-evaluation does not make a new version of it."""
    if evidence is None and not handover:
        return None
    return [e for e in evidence or [] if e["code"] not in FLAGS] + handover


def _away_why(member: Optional[dict[str, Any]], on: date) -> str:
    """Why a roster member is not available on ``on``, in a few words."""
    if member is None or not member.get("known"):
        return "nicht im Dienstplan"
    if not member.get("active"):
        return "nicht aktiv im Dienstplan"
    for a in (member.get("absences") or {}).values():
        if a.get("ended"):
            continue
        start = date.fromisoformat(a["starts_on"])
        end = date.fromisoformat(a["ends_on"]) if a.get("ends_on") else None
        if start <= on and (end is None or on <= end):
            kind = ABSENCE_KINDS.get(a.get("kind"), "abwesend")
            until = f"bis {day(end)}" if end else "ohne Enddatum"
            return f"{kind} seit {day(start)}, {until}"
    return "abwesend"


def handover(a: Assignment, owner: Optional[str], key: str, roster: Mapping[str, dict[str, Any]],
             on: date) -> list[dict[str, Any]]:
    """Why the assignee differs from the owner (DESIGN 2.2): who is away and why, and whether the
    deputy or a rendezvous pick took over. Empty when the owner works the task."""
    if a.flag is None or owner is None:
        return []
    member = roster.get(owner) or {}
    away = f"{owner} ist abwesend ({_away_why(member, on)})"
    deputy = member.get("deputy")
    if a.flag == UNAVAILABLE:
        return [fact(UNAVAILABLE, f"{away}; niemand ist verfügbar: die Aufgabe bleibt bei {owner}.")]
    assert a.flag == HANDOVER
    if deputy and a.assignee == deputy:
        return [fact(HANDOVER, f"{away}: übernommen von der Vertretung {deputy}.")]
    if deputy and deputy != owner:
        why_not = f"die Vertretung {deputy} ist {_deputy_why(roster.get(deputy), on)}"
    else:
        why_not = "es ist keine Vertretung eingetragen"
    return [fact(HANDOVER, f"{away}; {why_not}: {a.assignee} übernimmt (solche Aufgaben werden gleichmäßig auf "
                           "die anwesenden AT-Mitglieder verteilt).")]


def _deputy_why(member: Optional[dict[str, Any]], on: date) -> str:
    if is_present(member, on):  # cannot happen for a rendezvous pick; kept total for safety
        return "anwesend"
    return f"selbst nicht verfügbar ({_away_why(member, on)})"
