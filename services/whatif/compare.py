"""``vpa whatif`` (issue 23): the same history replayed with the current business-rule settings and
with changed ones, and how the AT's work would differ.

Every task is a deterministic function of the event history (``vpa replay``), so a change of a
threshold can be tried against the company's own past before it is switched on. This module is
the comparison (plain data in, plain data out); ``services.app.entrypoints.whatif`` wires it to the
replay and the settings.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Mapping, Optional
from zoneinfo import ZoneInfo

from services.core.timeutil import parse

# The settings that are business rules (DESIGN 2; README "Configuration"): only these may be set.
RULE_SETTINGS = {
    "VPA_LONG_ABSENCE_DAYS": "lange Abwesenheit ab (Tage)",
    "VPA_FREQUENT_ABSENCE_COUNT": "häufige Abwesenheit: Anzahl",
    "VPA_FREQUENT_ABSENCE_WINDOW_DAYS": "häufige Abwesenheit: Zeitraum (Tage)",
    "VPA_SHORT_NOTICE_DAYS": "kurzfristig: höchstens Tage vor Beginn",
    "VPA_FOLLOW_UP_TIME": "Nachfassen um (Uhrzeit)",
    "VPA_MONDAY_FOLLOW_UP_TIME": "Nachfassen montags um (Uhrzeit)",
    "VPA_COMPLAINT_WINDOW_DAYS": "Beschwerden zählen (Tage)",
    "VPA_NEW_VPA_MONTHS": "N-VPA bis (Monate)",
    "VPA_SHIFTS": "Schichten",
    "VPA_WORKING_DAYS": "Arbeitstage (0 = Montag … 6 = Sonntag)",
    "VPA_HOLIDAYS": "Feiertage (JJJJ-MM-TT, mit Komma getrennt)",
    "VPA_JOURNEY_SWEEP_TIME": "Journey-Prüfung um (Uhrzeit)",
    "VPA_JOURNEY_GRACE_DAYS": "Journey: erste Tage (Tage)",
}
COMPARED = ("status", "reasons", "priority", "due_at", "assignee")
REASON_LABELS = {
    "long": "lange Abwesenheiten", "frequent": "häufige Abwesenheiten", "short_notice": "kurzfristige Abwesenheiten",
    "class_drop": "Klassen-Abstiege", "rising_star": "Rising Stars", "schedule_new_vpa": "Kalenderänderungen von N-VPAs",
    "schedule_ab_vpa": "Kalenderänderungen von A/B-VPAs", "follow_up": "Inaktivitäten",
    "handover": "Übergaben an Vertretungen", "handover_unavailable": "Übergaben ohne Vertretung",
}
LIVE = ("waiting", "open")
SAMPLE = 20


class WhatIfError(ValueError):
    """A --set the what-if cannot take; the message says why (German and the setting's own)."""


def rule_changes(pairs: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as a mapping; only business-rule settings."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise WhatIfError(f"--set {pair!r}: erwartet NAME=WERT, z. B. VPA_LONG_ABSENCE_DAYS=28")
        if name not in RULE_SETTINGS:
            raise WhatIfError(f"--set {name}: keine Geschäftsregel; erlaubt sind {', '.join(sorted(RULE_SETTINGS))}")
        out[name] = value.strip()
    if not out:
        raise WhatIfError("mindestens ein --set NAME=WERT")
    return out


def settings_pair(env: Mapping[str, str], changes: Mapping[str, str]) -> tuple[Any, Any]:
    """(current, changed) settings; a bad value raises the settings' own ConfigError."""
    from services.config.settings import Settings

    return Settings.from_env(env), Settings.from_env({**env, **changes})


# ---- the comparison ------------------------------------------------------------------------

def _week(t: datetime, tz: ZoneInfo) -> str:
    y, w, _ = t.astimezone(tz).isocalendar()
    return f"{y}-W{w:02d}"


def _closed_on(task: dict, tz: ZoneInfo) -> Optional[date]:
    return None if task["status"] in LIVE else parse(task["updated_at"]).astimezone(tz).date()


@dataclass
class Side:
    """What one run's tasks say about the work: created per week and tab (and by reason), and per
    member the tasks assigned and the most open at once (by day)."""

    created: dict = field(default_factory=lambda: defaultdict(Counter))   # week -> tab -> n
    reasons: dict = field(default_factory=lambda: defaultdict(Counter))   # week -> reason -> n (cases)
    assigned: Counter = field(default_factory=Counter)                    # initials -> n
    peak: Counter = field(default_factory=Counter)                        # initials -> most open at once


def side_of(tasks: Iterable[dict], tz: ZoneInfo, since: Optional[datetime], until: Optional[datetime]) -> Side:
    s = Side()
    changes: dict[str, Counter] = defaultdict(Counter)  # initials -> day -> +/- open
    for t in tasks:
        created = parse(t["created_at"])
        if (since and created < since) or (until and created >= until):
            continue
        week = _week(created, tz)
        s.created[week][t["tab"]] += 1
        if t["tab"] == "cases":
            for r in t.get("reasons") or []:
                s.reasons[week][r] += 1
        who = t.get("assignee")
        if who:
            s.assigned[who] += 1
            changes[who][created.astimezone(tz).date()] += 1
            closed = _closed_on(t, tz)
            if closed is not None:
                changes[who][closed] -= 1
    for who, by_day in changes.items():
        running = peak = 0
        for day in sorted(by_day):
            running += by_day[day]
            peak = max(peak, running)
        s.peak[who] = peak
    return s


def _comparable(t: dict) -> dict:
    return {k: sorted(t.get(k) or []) if k == "reasons" else t.get(k) for k in COMPARED}


def _why(t: Optional[dict]) -> Optional[dict]:
    if t is None:
        return None
    return {"status": t["status"], "reasons": t.get("reasons") or [], "priority": t["priority"],
            "due_at": t.get("due_at"), "assignee": t.get("assignee"), "title": t.get("title"),
            "warum": [e.get("text") for e in t.get("evidence") or []]}


def compare(base: list[dict], changed: list[dict], tz: ZoneInfo, changes: Mapping[str, str],
            since: Optional[datetime] = None, until: Optional[datetime] = None) -> dict:
    """The report (plain data): the one-line summary, per week and tab, per member, differences."""
    b, c = side_of(base, tz, since, until), side_of(changed, tz, since, until)
    weeks = sorted(set(b.created) | set(c.created))
    tabs = ("cases", "reminders", "journey")
    per_week = [{"week": w, **{tab: [b.created[w][tab], c.created[w][tab]] for tab in tabs},
                 "reasons": {r: [b.reasons[w][r], c.reasons[w][r]]
                             for r in sorted(set(b.reasons[w]) | set(c.reasons[w]))
                             if b.reasons[w][r] != c.reasons[w][r]}} for w in weeks]
    members = [{"initials": m, "assigned": [b.assigned[m], c.assigned[m]], "peak": [b.peak[m], c.peak[m]]}
               for m in sorted(set(b.assigned) | set(c.assigned))]
    by_b, by_c = {t["task_id"]: t for t in base}, {t["task_id"]: t for t in changed}

    def inside(t: dict) -> bool:
        created = parse(t["created_at"])
        return not ((since and created < since) or (until and created >= until))

    diffs = []
    for task_id in sorted(set(by_b) | set(by_c)):
        x, y = by_b.get(task_id), by_c.get(task_id)
        if not inside(x or y):
            continue
        if x is None or y is None:
            kind, fields = ("only_changed" if x is None else "only_current"), []
        else:
            cx, cy = _comparable(x), _comparable(y)
            fields = [k for k in COMPARED if cx[k] != cy[k]]
            if not fields:
                continue
            kind = "differs"
        diffs.append({"task_id": task_id, "kind": kind, "fields": fields, "current": _why(x), "changed": _why(y)})
    cases_b = sum(b.created[w]["cases"] for w in weeks)
    cases_c = sum(c.created[w]["cases"] for w in weeks)
    reasons_delta = Counter()
    for w in weeks:
        for r in set(b.reasons[w]) | set(c.reasons[w]):
            reasons_delta[r] += c.reasons[w][r] - b.reasons[w][r]
    member_delta = {m["initials"]: m["assigned"][1] - m["assigned"][0] for m in members
                    if m["assigned"][1] != m["assigned"][0]}
    report = {
        "changes": dict(changes), "weeks": per_week, "members": members,
        "totals": {"cases": [cases_b, cases_c], **{tab: [sum(b.created[w][tab] for w in weeks),
                                                         sum(c.created[w][tab] for w in weeks)] for tab in tabs[1:]}},
        "reasons_delta": {r: n for r, n in sorted(reasons_delta.items()) if n},
        "members_delta": member_delta,
        "differences": {"count": len(diffs), "by_kind": dict(Counter(d["kind"] for d in diffs)),
                        "sample": diffs[:SAMPLE]},
    }
    report["summary"] = summary(report, len(weeks))
    return report


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else ("±0" if n == 0 else f"−{-n}")


def summary(report: dict, weeks: int) -> str:
    """One line first: "+38 Fälle in 12 Wochen (+11 %), davon 31 lange Abwesenheiten; AB +9, CD +7"."""
    before, after = report["totals"]["cases"]
    delta = after - before
    share = f" ({'+' if delta >= 0 else '−'}{abs(delta) / before:.0%})".replace("%", " %") if before else ""
    line = f"{_signed(delta)} {'Fall' if abs(delta) == 1 else 'Fälle'} in {weeks} Woche{'' if weeks == 1 else 'n'}{share}"
    if report["reasons_delta"]:
        reason, n = max(report["reasons_delta"].items(), key=lambda kv: (abs(kv[1]), kv[0]))
        line += f", davon {_signed(n)} {REASON_LABELS.get(reason, reason)}"
    top = sorted(report["members_delta"].items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:5]
    if top:
        line += "; " + ", ".join(f"{m} {_signed(n)}" for m, n in top) + (" …" if len(report["members_delta"]) > 5 else "")
    if not report["differences"]["count"]:
        line += " — keine Aufgabe ändert sich"
    return line


def render_text(report: dict) -> str:
    out = [report["summary"], ""]
    out.append("Geändert: " + ", ".join(f"{k}={v} ({RULE_SETTINGS.get(k, k)})" for k, v in report["changes"].items()))
    out += ["", "Woche      Fälle (jetzt → geändert)  Reminder        Journey"]
    for w in report["weeks"]:
        out.append(f"{w['week']}   {w['cases'][0]:>5} → {w['cases'][1]:<5} {_signed(w['cases'][1] - w['cases'][0]):>6}"
                   f"   {w['reminders'][0]:>5} → {w['reminders'][1]:<5}  {w['journey'][0]:>4} → {w['journey'][1]:<4}")
    out += ["", "Kürzel  zugewiesen (jetzt → geändert)  höchstens offen"]
    for m in report["members"]:
        if m["assigned"][0] != m["assigned"][1] or m["peak"][0] != m["peak"][1]:
            out.append(f"{m['initials']:<6}  {m['assigned'][0]:>5} → {m['assigned'][1]:<5} {_signed(m['assigned'][1] - m['assigned'][0]):>6}"
                       f"   {m['peak'][0]:>4} → {m['peak'][1]:<4}")
    d = report["differences"]
    out += ["", f"{d['count']} Aufgaben anders ({', '.join(f'{k}: {n}' for k, n in sorted(d['by_kind'].items())) or '–'});"
                f" die ersten {len(d['sample'])}:"]
    for x in d["sample"]:
        out.append(f"- {x['task_id']}: " + {"only_changed": "nur mit der Änderung", "only_current": "nur heute",
                                            "differs": "anders: " + ", ".join(x["fields"])}[x["kind"]])
        for side, label in (("current", "heute"), ("changed", "geändert")):
            t = x[side]
            if t is not None:
                out.append(f"    {label}: {t['status']}, {', '.join(t['reasons']) or '–'}; Warum: "
                           + (" / ".join(w for w in t["warum"] if w) or "–"))
    return "\n".join(out) + "\n"


def dumps(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1) + "\n"
