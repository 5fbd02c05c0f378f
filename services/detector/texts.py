"""German texts for the Cases tab, taken from the process description (seeds/000_*.txt).

These texts are internal (the dashlet may show classes). Texts meant for the assistant live in
``drafts.py`` and pass its guard.
"""
from __future__ import annotations

from datetime import date

from services.core import german

ACTIONS = {
    # absence
    "long": "Länger als 3 Wochen abwesend: auf den Assistenten zugehen und klären, ob etwas Besonderes "
            "ansteht. Längere Abwesenheiten müssen besonders gut vorbereitet werden.",
    "frequent": "Häufige Abwesenheiten: auf den Assistenten zugehen und eine konstante Kundenbetreuung "
                "sicherstellen.",
    "short_notice": "Kurzfristig eingetragene Abwesenheit: mit dem VPA klären, ob er bereits alles "
                    "vorbereitet hat.",
    # schedule_change
    "new_vpa_no_orders": "N-VPA nimmt keine Aufträge oder Neukunden mehr an (z. B. will direkt nach dem "
                         "Onboarding keine Aufträge): auf den Assistenten zugehen.",
    "priority_check": "A- oder B-VPA hat die Zeitplanung geändert: prüfen und mit dem VPA Manager abstimmen, "
                      "ob der VPA Prio bekommen soll.",
    "review": "Zeitplanung geändert: auf Auffälligkeiten prüfen und bei Auffälligkeiten auf den Assistenten "
              "zugehen.",
    # class_change
    "negative": "Klasse hat sich verschlechtert: Ursachen prüfen und ggf. auf den Assistenten zugehen.",
    "positive": "Klasse hat sich verbessert: den Assistenten ggf. für die tolle Entwicklung loben "
                "(Achtung: Klassen gegenüber Assistenten nie nennen!).",
    "rising_star": "Rising Star: den Assistenten ggf. für die tolle Entwicklung loben "
                   "(Achtung: Klassen gegenüber Assistenten nie nennen!).",
    # both at once: the praise once
    "positive+rising_star": "Klasse hat sich verbessert, und der VPA ist ein Rising Star: den Assistenten ggf. "
                            "für die tolle Entwicklung loben (Achtung: Klassen gegenüber Assistenten nie nennen!).",
    # inactive
    "follow_up": "VPA ist für den Folgetag auf Reminder gesetzt: zur Follow-up-Zeit prüfen, ob er wieder "
                 "aktiv wurde.",
    "active_again": "VPA ist wieder aktiv geworden: nichts weiter zu tun.",
    "active_on_mobile": "VPA war in der mobilen App aktiv (dort ändert sich der Inaktiv-Status nicht): "
                        "kein Kontakt nötig.",
    "part_time_no_contact": "Teilzeit-VPA ohne Kundenmeldung: Teilzeit-VPAs schreiben wir nur im Notfall an, "
                            "kein Kontakt nötig.",
    "contact_needed": "VPA ist nicht wieder aktiv geworden: Aufgabenliste des VPA prüfen und ggf. anschreiben, "
                      "ob alles in Ordnung ist.",
    "customer_complaint": "Ein Kunde hat sich gemeldet: den Assistenten anschreiben (auch Teilzeit-VPAs im "
                          "Notfall).",
    "verify_mobile_activity": "Assistent nutzt die mobile App, dort ändert sich der Inaktiv-Status nicht: "
                              "Aktivität genau prüfen, bevor der Assistent kontaktiert wird.",
}


def action_for(reasons: list[str]) -> str:
    if "positive" in reasons and "rising_star" in reasons:  # one praise, not two
        reasons = [("positive+rising_star" if r == "positive" else r) for r in reasons if r != "rising_star"]
    seen: list[str] = []
    for r in reasons:
        text = ACTIONS.get(r)
        if text and text not in seen:
            seen.append(text)
    return " ".join(seen)


def absence_title(starts_on: date, ends_on: date, days: int) -> str:
    return f"Abwesenheit eingetragen: {german.day_range(starts_on, ends_on)} ({days} {'Tag' if days == 1 else 'Tage'})"


def _yes_no(flag: bool) -> str:
    return "ja" if flag else "nein"


def schedule_title(accepts_new_customers: bool, accepts_orders: bool) -> str:
    return (f"VPA hat Zeitplanung geändert (Neukunden: {_yes_no(accepts_new_customers)}, "
            f"Aufträge: {_yes_no(accepts_orders)})")


def class_title(new: str, previous: str | None, rising_star: bool) -> str:
    title = f"Klasse geändert: {previous or 'unbekannt'} → {new}"
    return title + " (Rising Star)" if rising_star else title


def inactive_title(local_day: date) -> str:
    return f"VPA ist inaktiv geworden (am {german.day(local_day)})"


REMINDER_NOTE = "VPA ist inaktiv geworden: prüfen, ob er wieder aktiv wurde (automatischer Reminder)."

HISTORY = {
    "opened": "Fall eröffnet",
    "updated": "Fall aktualisiert",
    "reopened": "Fall erneut geöffnet",
    "cancelled": "Abwesenheit storniert, Fall abgebrochen",
    "resolved": "Fall gelöst",
    "offboarded": "VPA ausgeschieden, Aufgabe abgebrochen",
    "profile": "Profil aktualisiert",
    "follow_up_waiting": "Fall eröffnet: wartet bis zur Follow-up-Zeit",
    "decided_closed": "Follow-up-Zeit erreicht: Fall hat sich erledigt",
    "decided_open": "Follow-up-Zeit erreicht: Kontakt nötig",
    "complaint": "Kundenmeldung während der Inaktivität: Fall sofort geöffnet",
    "complaint_added": "Kundenmeldung während der Inaktivität hinzugefügt",
}

def resolved(note: str | None) -> str:
    """History of a case resolved by a person, with the note they gave."""
    return f"{HISTORY['resolved']}: {note}" if note else HISTORY["resolved"]


RESOLVE_NOTE = {
    "decided": "Fall hat sich von selbst erledigt: Follow-up-Reminder entfällt",
    "offboarded": "VPA ausgeschieden: Follow-up-Reminder entfällt",
}
