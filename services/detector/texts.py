"""German texts for the Cases tab, taken from the process description (seeds/000_*.txt)."""
from __future__ import annotations

ACTIONS = {
    "long": "Länger als 3 Wochen abwesend: auf den Assistenten zugehen und klären, ob etwas Besonderes "
            "ansteht. Längere Abwesenheiten müssen besonders gut vorbereitet werden.",
    "frequent": "Häufige Abwesenheiten: auf den Assistenten zugehen und eine konstante Kundenbetreuung "
                "sicherstellen.",
    "short_notice": "Kurzfristig eingetragene Abwesenheit: mit dem VPA klären, ob er bereits alles "
                    "vorbereitet hat.",
}


def action_for(reasons: list[str]) -> str:
    return " ".join(ACTIONS[r] for r in reasons if r in ACTIONS)


def absence_title(starts_on: str, ends_on: str, days: int) -> str:
    return f"Abwesenheit eingetragen: {starts_on} bis {ends_on} ({days} Tage)"


HISTORY = {
    "opened": "Fall eröffnet",
    "updated": "Fall aktualisiert",
    "reopened": "Fall erneut geöffnet",
    "cancelled": "Abwesenheit storniert, Fall abgebrochen",
    "resolved": "Fall gelöst",
    "offboarded": "VPA ausgeschieden, Aufgabe abgebrochen",
    "profile": "Profil aktualisiert",
}
