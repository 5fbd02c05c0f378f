"""Why a case exists (the dashlet's "Warum"), built from the facts the rules used. Pure functions.

Each builder takes the reasons the rule found, so the evidence always agrees with the reasons:
a fact that fired a reason carries that reason's code. Internal texts (classes may be named).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable, Optional

from services.config.settings import Settings
from services.core.evidence import days, days_dative, fact
from services.core.german import day, moment
from services.core.timeutil import local_date, months_between
from services.detector.absence_rules import AbsenceFacts
from services.detector.state import ComplaintFacts, InactivityTrack


def _yes_no(flag: bool) -> str:
    return "ja" if flag else "nein"


# ---- absences ----------------------------------------------------------------------------------

def absence(a: AbsenceFacts, in_window: int, registered_on: date, note: Optional[str], reasons: Iterable[str],
            s: Settings, event_id: str) -> list[dict[str, Any]]:
    """Dates, length against the long-absence threshold, count in the window, notice in days."""
    reasons = set(reasons)
    why = f", Grund: {note}" if note else ""
    out = [fact("absence_dates", f"Abwesenheit {day(a.starts_on)} bis {day(a.ends_on)} ({days(a.days)}), "
                                 f"eingetragen am {day(registered_on)}{why}.", event_id)]
    if "long" in reasons:
        out.append(fact("long", f"{days(a.days)}: länger als die Schwelle von {days_dative(s.long_absence_days)} "
                                "(lange Abwesenheit).", event_id))
    else:
        out.append(fact("absence_length", f"{days(a.days)}: nicht länger als die Schwelle von "
                                          f"{days_dative(s.long_absence_days)}.", event_id))
    window = (f"die {in_window}. nicht stornierte Abwesenheit mit Beginn in den "
              f"{days_dative(s.frequent_absence_window_days)} bis {day(a.starts_on)}")
    if "frequent" in reasons:
        out.append(fact("frequent", f"Das ist {window} (häufig ab der {s.frequent_absence_count}.).", event_id))
    else:
        out.append(fact("absence_count", f"Das ist {window} (häufig erst ab der {s.frequent_absence_count}.).",
                        event_id))
    notice = (a.starts_on - registered_on).days
    limit = days(s.short_notice_days)
    if a.ends_on < registered_on:
        out.append(fact("absence_notice", "Bei der Eintragung schon vorbei: nicht kurzfristig.", event_id))
    elif "short_notice" in reasons:
        lead = f"{days(notice)} Vorlauf" if notice >= 0 else f"begann {days(-notice)} vor der Eintragung"
        out.append(fact("short_notice", f"{lead[0].upper()}{lead[1:]}: kurzfristig (höchstens {limit} Vorlauf).",
                        event_id))
    else:
        out.append(fact("absence_notice", f"{days(notice)} Vorlauf: nicht kurzfristig (kurzfristig bei höchstens "
                                          f"{limit}).", event_id))
    return out


# ---- schedule changes --------------------------------------------------------------------------

def schedule(accepts_new_customers: bool, accepts_orders: bool, started_on: Optional[date],
             vpa_class: Optional[str], on: date, reasons: Iterable[str], s: Settings,
             event_id: str) -> list[dict[str, Any]]:
    reasons = set(reasons)
    out = [fact("schedule", f"Zeitplanung geändert am {day(on)}: Neukunden {_yes_no(accepts_new_customers)}, "
                            f"Aufträge {_yes_no(accepts_orders)}.", event_id)]
    if started_on is None:
        out.append(fact("tenure", "Startdatum unbekannt: kein N-VPA.", event_id))
    else:
        months = max(months_between(started_on, on), 0)
        since = "seit weniger als einem Monat" if months == 0 else (
            "seit 1 Monat" if months == 1 else f"seit {months} Monaten")
        tenure = f"Dabei seit {day(started_on)} ({since})"
        if "new_vpa_no_orders" in reasons:
            stopped = " und ".join(w for w, ok in (("Neukunden", accepts_new_customers), ("Aufträge", accepts_orders))
                                   if not ok)
            out.append(fact("new_vpa_no_orders", f"{tenure}: neuer VPA (die ersten {s.new_vpa_months} Monate), nimmt "
                                                 f"keine {stopped} mehr an.", event_id))
        elif months < s.new_vpa_months:
            out.append(fact("tenure", f"{tenure}: neuer VPA (die ersten {s.new_vpa_months} Monate).", event_id))
        else:
            out.append(fact("tenure", f"{tenure}: kein neuer VPA mehr.", event_id))
    if "priority_check" in reasons:
        out.append(fact("priority_check", f"Klasse {vpa_class}: bei A- und B-VPAs mit dem VPA Manager abstimmen, "
                                          "ob der VPA Prio bekommt.", event_id))
    else:
        known = f"Klasse {vpa_class}" if vpa_class else "Klasse unbekannt"
        out.append(fact("class", f"{known}: kein Prio-Check (nur bei A und B).", event_id))
    if "review" in reasons:
        out.append(fact("review", "Kein besonderer Grund: auf Auffälligkeiten prüfen.", event_id))
    return out


# ---- class changes -----------------------------------------------------------------------------

def class_change(new: str, previous: Optional[str], previous_from_event: bool, reasons: Iterable[str],
                 event_id: str) -> list[dict[str, Any]]:
    reasons = set(reasons)
    source = "" if previous_from_event or previous is None else " (vorher: die zuletzt bekannte Klasse)"
    out = [fact("class_change", f"Klasse {previous or 'unbekannt'} → {new}{source}.", event_id)]
    if "negative" in reasons:
        out.append(fact("negative", f"Verschlechtert von {previous} auf {new}.", event_id))
    if "positive" in reasons:
        out.append(fact("positive", f"Verbessert von {previous} auf {new}.", event_id))
    if "rising_star" in reasons:
        out.append(fact("rising_star", "Rising-Star-Flag neu gesetzt.", event_id))
    return out


# ---- inactivity --------------------------------------------------------------------------------

def inactivity_opened(inactive_at: datetime, follow_up: datetime, s: Settings, event_id: str) -> list[dict[str, Any]]:
    """When the VPA went inactive, and why the follow-up is when it is (Monday afternoon)."""
    tz = s.tz
    on, follow_day = local_date(inactive_at, tz), local_date(follow_up, tz)
    why = f"nächster Arbeitstag nach {day(on)}"
    if (follow_day - on).days > 1:
        why += " (Wochenende oder Feiertag dazwischen)"
    if follow_day.weekday() == 0:
        why += (f"; montags erst um {s.monday_follow_up_time:%H:%M}, weil viele Assistenten am Wochenende "
                "inaktiv sind und Montage am Nachmittag geprüft werden")
    else:
        why += f", um {s.follow_up_time:%H:%M}"
    return [fact("inactive", f"Als inaktiv gemeldet am {moment(inactive_at, tz)}.", event_id),
            fact("follow_up", f"Follow-up am {moment(follow_up, tz)}: {why}.", event_id)]


def activity(track: InactivityTrack) -> list[dict[str, Any]]:
    """What activity was seen since the inactivity (the decision's first question)."""
    if track.get("web"):
        return [fact("active_again", "Seit der Inaktivität Aktivität im Web gesehen.", track.get("web_event"))]
    if track.get("status_active"):
        return [fact("active_again", "Seit der Inaktivität wieder als aktiv gemeldet.", track.get("active_event"))]
    if track.get("mobile"):
        return [fact("active_on_mobile", "Seit der Inaktivität nur Aktivität in der mobilen App gesehen (dort "
                                         "ändert sich der Inaktiv-Status nicht).", track.get("mobile_event"))]
    return [fact("no_activity", "Bis zum Follow-up keine Aktivität gesehen (weder Web noch mobile App, Status "
                                "nicht wieder aktiv).")]


def complaint(at: datetime, summary: Optional[str], s: Settings, event_id: Optional[str]) -> dict[str, Any]:
    said = f": „{summary}“" if summary else ""
    return fact("customer_complaint", f"Kundenmeldung am {moment(at, s.tz)}{said}.", event_id)


def decision(track: InactivityTrack, reasons: Iterable[str], part_time: bool,
             complaints: list[tuple[datetime, ComplaintFacts]], s: Settings) -> list[dict[str, Any]]:
    """The facts of the follow-up decision; ``complaints`` are those inside its window."""
    reasons = set(reasons)
    out = activity(track)
    if reasons & {"active_again", "active_on_mobile"}:
        return out
    if complaints:
        out += [complaint(at, info.get("summary"), s, info.get("event_id")) for at, info in complaints]
    else:
        out.append(fact("no_complaint", f"Keine Kundenmeldung in den {days_dative(s.complaint_window_days)} bis zum "
                                        "Follow-up."))
    if "part_time_no_contact" in reasons:
        out.append(fact("part_time_no_contact", "Teilzeit-VPA ohne Kundenmeldung: Teilzeit-VPAs schreiben wir nur "
                                                "im Notfall an."))
    elif part_time:
        out.append(fact("part_time", "Teilzeit-VPA, aber ein Kunde hat sich gemeldet: das ist ein Notfall."))
    if "verify_mobile_activity" in reasons:
        out.append(mobile_app())
    return out


def reopened(at: datetime, s: Settings, event_id: Optional[str]) -> dict[str, Any]:
    """Why a case the follow-up had closed (part-time, no contact) is open again."""
    return fact("reopened", f"Wieder geöffnet am {moment(at, s.tz)}: zur Follow-up-Zeit als Teilzeit ohne "
                            "Kontakt geschlossen, dann kam während der Inaktivität eine Kundenmeldung.", event_id)


def mobile_app() -> dict[str, Any]:
    return fact("verify_mobile_activity", "Nutzt die mobile App: dort ändert sich der Inaktiv-Status nicht, also "
                                          "Aktivität genau prüfen.")
