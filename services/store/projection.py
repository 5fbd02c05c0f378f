"""The dashlet's read model beside the tasks (issue 20): each VPA's profile and recent events, and
the AT roster. Pure functions over envelopes; the notifier (Kafka) and the demo (embedded) feed
them the upstream's valid envelopes and write the result into the store.

* A profile comes from ``vpa.registered`` and ``vpa.profile_updated`` (the same rules as the
  services: ``services.core.profile``), ``vpa.class_changed`` (the class; internal, the dashlet may
  show it) and ``vpa.offboarded``. An envelope older than the profile's last one changes nothing
  (a redelivered or late event never turns a profile back).
* A VPA's recent events: one German line per event, the newest ``EVENTS_KEPT``.
* The roster: each member's record as the services keep it (``services.core.roster``).
"""
from __future__ import annotations

from typing import Optional
from zoneinfo import ZoneInfo

from schemas.envelope import Envelope
from services.core import german, profile as profiles
from services.core.roster import apply_roster_event

EVENTS_KEPT = 50
PROFILE_TYPES = frozenset({"vpa.registered", "vpa.profile_updated", "vpa.class_changed", "vpa.offboarded"})
ROSTER_TYPES = frozenset({"roster.member_upserted", "roster.absence_registered", "roster.absence_ended"})


def relevant(env: Envelope) -> bool:
    return env.type in ROSTER_TYPES or (env.type.startswith("vpa.") and env.vpa_id is not None)


def profile_after(profile: Optional[dict], env: Envelope) -> Optional[dict]:
    """The profile after ``env``; None when ``env`` does not change it."""
    if env.type not in PROFILE_TYPES:
        return None
    at = env.occurred_at.isoformat()
    if profile is not None and profile.get("as_of", "") > at and env.type != "vpa.registered":
        return None  # older than what the profile says: a late or repeated event
    p = dict(profile or {"vpa_id": env.vpa_id})
    d = env.data
    if env.type == "vpa.registered":
        p.update(profiles.from_registration(d, p), offboarded_at=None)
    elif env.type == "vpa.profile_updated":
        profiles.apply_update(p, d)
    elif env.type == "vpa.class_changed":
        p.update({"class": d.vpa_class.value, "rising_star": bool(d.rising_star)})
    elif env.type == "vpa.offboarded":
        p["offboarded_at"] = at
    p["as_of"] = max(at, p.get("as_of", ""))
    return p


_ABSENCE_KINDS = {"vacation": "Urlaub", "sick": "krank"}


def event_text(env: Envelope, tz: ZoneInfo) -> str:
    """One German line for the VPA page's recent events."""
    d, t = env.data, env.type
    if t == "vpa.registered":
        return f"Registriert (Start {german.day(d.started_on)}, Owner {d.at_owner})"
    if t == "vpa.profile_updated":
        return "Profil geändert: " + ", ".join(sorted(d.model_fields_set))
    if t == "vpa.schedule_changed":
        return (f"Zeitplanung geändert: Neukunden {'ja' if d.accepts_new_customers else 'nein'}, "
                f"Aufträge {'ja' if d.accepts_orders else 'nein'}")
    if t == "vpa.absence_registered":
        return f"Abwesenheit eingetragen: {german.day_range(d.starts_on, d.ends_on)}"
    if t == "vpa.absence_cancelled":
        return "Abwesenheit storniert"
    if t == "vpa.class_changed":
        star = " (Rising Star)" if d.rising_star else ""
        return f"Klasse {d.previous.value if d.previous else 'unbekannt'} → {d.vpa_class.value}{star}"
    if t == "vpa.activity_status_changed":
        return "Als inaktiv gemeldet" if d.status.value == "inactive" else "Wieder als aktiv gemeldet"
    if t == "vpa.activity_seen":
        return "Aktiv in der App" if d.channel.value == "mobile" else "Aktiv im Web"
    if t == "vpa.customer_complaint":
        return f"Kundenmeldung: {d.summary}" if d.summary else "Kundenmeldung"
    if t == "vpa.onboarding_call_completed":
        return "Onboarding-Call geführt"
    if t == "vpa.checkin_call_scheduled":
        return f"Check-in Call vereinbart für {german.moment(d.scheduled_for, tz)}"
    if t == "vpa.offboarded":
        return "Ausgeschieden"
    return t


def member_after(member: Optional[dict], env: Envelope) -> dict:
    return apply_roster_event(member, env)
