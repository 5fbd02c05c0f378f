"""The roster's indexes (issue 11): who is present on a day and whose deputy a member is, kept up
to date one member at a time, equal a full scan of the roster after every change."""
from __future__ import annotations

import random
from datetime import date, timedelta

from services.core.roster import Roster, is_present


def scan(roster: dict, on: date) -> tuple:
    present = frozenset(i for i, m in roster.items() if is_present(m, on))
    return (present, tuple(sorted(i for i in present if roster[i].get("role") == "at")),
            tuple(sorted(i for i in present if roster[i].get("role") == "vpa_manager")))


def test_presence_and_deputies_equal_a_full_scan_after_every_change():
    rnd = random.Random(5)
    roster, plain = Roster(), {}
    start = date(2026, 3, 2)
    days = [start + timedelta(days=n) for n in range(12)]  # more days than the roster keeps
    names = [f"M{chr(65 + n)}" for n in range(14)]
    for step in range(800):
        initials = rnd.choice(names)
        old = plain.get(initials) or {"initials": initials, "known": True, "active": True, "role": "at",
                                      "deputy": None, "absences": {}}
        member = {**old, "absences": dict(old["absences"])}
        pick = rnd.random()
        if pick < 0.2:
            member["role"] = rnd.choice(["at", "vpa_manager", "assistant_lead"])
        elif pick < 0.35:
            member["deputy"] = rnd.choice(names + [None])
        elif pick < 0.45:
            member["active"] = not member["active"]
        elif pick < 0.6 and member["absences"]:
            aid = rnd.choice(sorted(member["absences"]))
            member["absences"][aid] = {**member["absences"][aid], "ended": True}
        else:
            first = start + timedelta(days=rnd.randrange(12))
            last = first + timedelta(days=rnd.randrange(4))
            member["absences"][f"a{step}"] = {"kind": "sick", "starts_on": first.isoformat(),
                                              "ends_on": last.isoformat(), "ended": False}
        roster[initials] = plain[initials] = member
        for on in rnd.sample(days, 3):
            assert roster.present_on(on) == scan(plain, on), (step, on)
        changed = set(rnd.sample(names, 2))
        assert roster.deputies_of(changed) == {i for i, m in plain.items() if m.get("deputy") in changed}
    assert Roster(plain).deputies_of(names) == {i for i, m in plain.items() if m.get("deputy")}
