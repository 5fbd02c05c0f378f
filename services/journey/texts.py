"""German texts for the Journey tab, taken from the process description (seeds/000_*.txt,
"VPA-Journey Schritte und Vorgehen"). The dashlet is internal, so classes may be named here."""
from __future__ import annotations

from datetime import date
from typing import Any, Optional

from services.core.evidence import fact
from services.core.german import day

TITLES = {
    "NEW_0_3": "NEU in 0-3 Monate: neuer VPA, der noch geboardet wird",
    "NEW_3_6": "NEU in 3-6 Monate: Buddy vereinbart Check-in Call mit VPA",
    "NEW_6_9": "NEU in 6-9 Monate: Klasse prüfen",
    "NEW_9_12": "NEU in 9-12 Monate: Klasse prüfen",
    "NEW_GT_12": "NEU in > 12 Monate: VPA Manager informieren",
}

_ACTIONS = {
    "NEW_0_3": "Neuer VPA, der noch geboardet wird. Neu-Flag nach dem Onboarding-Call entfernen.",
    "NEW_3_6": "Buddy vereinbart einen Check-in Call mit dem VPA. Neu-Flag entfernen, wenn der Termin "
               "vereinbart wurde.",
    "NEW_GT_12": "VPA Manager informieren. Der VPA Manager entfernt das Flag, wenn der Assistent kontaktiert "
                 "wurde.",
}

_CLASS_ACTIONS = {
    "measures_needed": "Klasse C oder D: Maßnahmen mit dem VPA Manager besprechen. Flag entfernen, wenn die "
                       "Maßnahmen mit dem Assistenten besprochen wurden.",
    "class_ok": "Klasse A oder B: Klasse geprüft, keine Maßnahmen nötig. Flag entfernen, wenn die Klasse "
                "geprüft wurde.",
    "class_unknown": "Klasse unbekannt: Klasse prüfen und bei D und C Maßnahmen mit dem VPA Manager besprechen. "
                     "Flag entfernen, wenn die Maßnahmen mit dem Assistenten besprochen wurden.",
}


def title(stage: str) -> str:
    return TITLES[stage]


def action(stage: str, reasons: list[str]) -> str:
    if stage in _ACTIONS:
        return _ACTIONS[stage]
    return " ".join(_CLASS_ACTIONS[r] for r in reasons if r in _CLASS_ACTIONS)


HISTORY = {
    "opened": "Journey-Schritt eröffnet",
    "reopened": "Journey-Schritt erneut eröffnet",
    "onboarding": "Onboarding-Call durchgeführt: Neu-Flag entfernt",
    "offboarded": "VPA ausgeschieden, Aufgabe abgebrochen",
    "profile": "Profil aktualisiert",
}


def checkin_cleared(scheduled_for: str, buddy: Optional[str]) -> str:
    with_buddy = f" mit Buddy {buddy}" if buddy else ""
    return f"Check-in Call{with_buddy} für {scheduled_for} vereinbart: Neu-Flag entfernt"


def cleared(note: Optional[str]) -> str:
    return f"Flag entfernt: {note}" if note else "Flag entfernt"


def changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """History text for an update of an open task (assignee, reasons, name)."""
    parts = []
    if "owner" in new and old.get("owner") != new["owner"]:
        parts.append(f"AT-Zuständigkeit an {new['owner']} (vorher {old.get('owner')})")
    if "assignee" in new and old.get("assignee") != new["assignee"]:
        parts.append(f"Zugewiesen an {new['assignee']} (vorher {old.get('assignee')})")
    if "reasons" in new and old.get("reasons") != new["reasons"]:
        parts.append("Klasse geändert: " + (", ".join(new["reasons"]) or "kein Grund"))
    if "vpa_name" in new and old.get("vpa_name") != new["vpa_name"]:
        parts.append(f"Name geändert: {new['vpa_name']}")
    return "; ".join(parts) or HISTORY["profile"]


def manager_repicked(assignee: Optional[str], fallback: bool) -> str:
    if fallback:
        return f"Kein VPA Manager verfügbar: zugewiesen an {assignee}"
    return f"VPA Manager neu zugeteilt: {assignee}"


# ---- evidence ("Warum") ------------------------------------------------------------------------

STAGE_LABELS = {"NEW_0_3": "NEU 0-3 Monate", "NEW_3_6": "NEU 3-6 Monate", "NEW_6_9": "NEU 6-9 Monate",
                "NEW_9_12": "NEU 9-12 Monate", "NEW_GT_12": "NEU > 12 Monate"}


def tenure_fact(stage: str, started_on: date, stage_starts: date, months: int,
                event_id: Optional[str]) -> dict[str, Any]:
    return fact("tenure", f"Dabei seit {day(started_on)}: die Stufe {STAGE_LABELS[stage]} beginnt nach "
                          f"{months} Monaten, am {day(stage_starts)}.", event_id)


def class_fact(reason: str) -> dict[str, Any]:
    # Named by the reason, not the class: C -> D keeps the reason and so the fact (no new version).
    text = {
        "measures_needed": "Klasse C oder D: Maßnahmen mit dem VPA Manager besprechen.",
        "class_ok": "Klasse A oder B: keine Maßnahmen nötig.",
        "class_unknown": "Klasse unbekannt: Klasse prüfen.",
    }[reason]
    return fact(reason, text)


def assignee_fact(stage: str, assignee: Optional[str], fallback: bool, vpa_id: str) -> Optional[dict[str, Any]]:
    """Why this person works the stage (DESIGN 2.3): buddy, VPA Manager pick, or the AT owner."""
    if stage == "NEW_3_6":
        if fallback:
            return fact("assignee", f"Kein Buddy eingetragen: der AT-Owner {assignee} übernimmt.")
        return fact("assignee", f"Der Buddy {assignee} vereinbart den Check-in Call.")
    if stage == "NEW_GT_12":
        if fallback:
            return fact("assignee", f"Kein VPA Manager verfügbar: der AT-Owner {assignee} übernimmt.")
        return fact("assignee", f"VPA Manager {assignee} ist zuständig (solche Flags werden gleichmäßig auf die "
                                "anwesenden VPA Manager verteilt).")
    return None
