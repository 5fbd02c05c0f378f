"""German texts for the Reminders tab, taken from the process description (seeds/000_*.txt):
"Reminder bearbeiten … Entferne den Reminder, wenn der Fall gelöst und die VPA-Akte gepflegt ist.
Reminder werden von AT-Kollegen übernommen, wenn ursprünglicher Bearbeiter im Urlaub/krank ist."
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Any, Optional
from zoneinfo import ZoneInfo

from schemas.envelope import Envelope
from services.core.evidence import fact
from services.core.german import moment

ACTION = ("Reminder bearbeiten. Entferne den Reminder, wenn der Fall gelöst und die VPA-Akte "
          "gepflegt ist.")
FOLLOW_UP_ACTION = ("Prüfen, ob der VPA wieder aktiv wurde. Falls nicht, dessen Aufgabenliste prüfen und ggf. "
                    "anschreiben, ob alles in Ordnung ist. Entferne den Reminder, wenn der Fall gelöst und "
                    "die VPA-Akte gepflegt ist.")


CASE_KINDS = {"absence": "Abwesenheit", "schedule_change": "Zeitplanung geändert", "class_change": "Klassenwechsel",
              "inactive": "Inaktivität"}


def title(note: Optional[str], case_task_id: Optional[str]) -> str:
    if note:
        return f"Reminder: {note}"
    if case_task_id and case_task_id.startswith("case:inactive:"):
        return "Reminder: prüfen, ob der VPA wieder aktiv wurde"
    if case_task_id:
        return f"Reminder zum Fall: {CASE_KINDS.get(case_task_id.split(':')[1], 'Fall')}"
    return "Reminder"


def action(case_task_id: Optional[str]) -> str:
    if case_task_id and case_task_id.startswith("case:inactive:"):
        return FOLLOW_UP_ACTION
    return ACTION


def set_(owner: str, due: str) -> str:
    return f"Reminder für {owner} gesetzt, fällig am {due}"


def rescheduled(due: str) -> str:
    return f"Reminder neu terminiert auf {due}"


DUE = "Reminder fällig"
COMPLETED = "Reminder erledigt: Fall gelöst und VPA-Akte gepflegt"
OFFBOARDED = "VPA ausgeschieden, Reminder abgebrochen"
PROFILE = "Profil aktualisiert"


DONE_WITH_CASE = "Fall gelöst und VPA-Akte gepflegt: Reminder mit dem Fall erledigt"


def closed_by_itself(note: Optional[str]) -> str:
    """The automatic inactivity reminder of a case that closed by itself (the detector's note says why)."""
    return note or "Fall hat sich von selbst erledigt: automatischer Reminder entfällt"


def with_assignment(change: str, assignment_text: Optional[str]) -> str:
    """One history entry for a change that also moved the assignee."""
    return f"{change}; {assignment_text}" if assignment_text else change


def reassign_cause(local: time) -> str:
    """What made the runner re-evaluate: the day changed (an absence starts or ended) or the roster."""
    return "Tageswechsel" if local == time(0) else "Dienstplan geändert"


# ---- evidence ("Warum") ------------------------------------------------------------------------

def set_facts(env: Envelope[Any], owner: str, due_at: datetime, case_task_id: Optional[str],
              tz: ZoneInfo) -> list[dict[str, Any]]:
    """Who set the reminder and for whom, its case, when it is due."""
    actor = env.actor
    if actor is None or actor.role.value == "system":
        who = f"Automatisch gesetzt am {moment(env.occurred_at, tz)} für {owner}"
        if case_task_id and case_task_id.startswith("case:inactive:"):
            who += " (Follow-up: der VPA ist inaktiv geworden)"
    else:
        who = f"Gesetzt von {actor.initials} am {moment(env.occurred_at, tz)} für {owner}"
    out = [fact("set", who + ".", env.event_id)]
    if case_task_id:
        kind = CASE_KINDS.get(case_task_id.split(":")[1] if ":" in case_task_id else "", "Fall")
        out.append(fact("case", f"Gehört zu einem Fall dieses VPA ({kind}).", env.event_id))
    out.append(fact("due", f"Fällig am {moment(due_at, tz)}.", env.event_id))
    return out


def rescheduled_fact(env: Envelope[Any], due_at: datetime, tz: ZoneInfo) -> dict[str, Any]:
    by = env.actor.initials if env.actor else "System"
    return fact("due", f"Fällig am {moment(due_at, tz)} (verschoben von {by} am {moment(env.occurred_at, tz)}).",
                env.event_id)
