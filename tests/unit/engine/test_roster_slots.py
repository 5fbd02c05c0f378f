"""The roster in the Kafka runner's state (issue 11): one slot per AT member, so a roster event
writes the member it changed and never the whole roster (one record of it passed Kafka's 1 MB
limit at 100,000 VPAs); a restarted worker has the same roster, boundaries and duplicates as the
one before it; and the boundary midnights are kept up to date per member, not by a full scan."""
from __future__ import annotations

import json
import random
from datetime import date, timedelta

from services.detector.service import Detector
from services.engine.records import MEMBER_PREFIX, ROSTER_SLOT
from services.engine.roster_index import BoundaryIndex, boundary_dates, members_with_boundary_on
from tests import builders
from tests.unit.runner_drivers import WorkerRunner

AT = "2026-03-02T05:00:00+01:00"


def env(eid: str, type_: str, data: dict, at: str = AT) -> str:
    return builders.line(type_, data, at=at, event_id=eid)


def upsert(initials: str, deputy: str | None = None) -> str:
    return env(f"m-{initials}", "roster.member_upserted",
               {"initials": initials, "name": f"Member {initials}", "role": "at", "deputy": deputy, "active": True})


def absence(eid: str, initials: str, starts_on: str, ends_on: str) -> str:
    return env(eid, "roster.absence_registered", {"absence_id": eid, "initials": initials, "kind": "vacation",
                                                  "starts_on": starts_on, "ends_on": ends_on})


def company_roster(runner: WorkerRunner, n: int = 40) -> list[str]:
    members = [f"M{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(n)]
    for i, ini in enumerate(members):
        runner.submit_raw(upsert(ini, deputy=members[i - 1]), ini)
    return members


def test_a_roster_event_writes_the_member_it_changed_and_the_positions_only():
    runner = WorkerRunner(Detector())
    company_roster(runner)
    before = dict(runner.d.table)
    runner.submit_raw(absence("u1", "MAH", "2026-03-09", "2026-03-13"), "u1")
    changed = {k for k, v in runner.d.table.items() if before.get(k) != v}
    assert changed == {f"{MEMBER_PREFIX}MAH", ROSTER_SLOT, "__meta__"}
    assert "MAI" not in runner.d.table[f"{MEMBER_PREFIX}MAH"].decode()  # no other member inside
    assert json.loads(runner.d.table[ROSTER_SLOT]) == {"positions": {"0": 41}, "seen": {}}
    runner.loop.close()


def test_a_restarted_worker_has_the_same_roster_boundaries_and_duplicates():
    runner = WorkerRunner(Detector())
    company_roster(runner, 12)
    runner.submit_raw(absence("u1", "MAD", "2026-03-09", "2026-03-13"), "u1")
    old = runner.worker.engine
    # A new worker for the partition (a restart), over the same table.
    runner.worker = runner.d.new_worker()
    new = runner.worker.engine
    assert dict(new.roster) == dict(old.roster)
    assert new._boundaries.dates == [date(2026, 3, 9), date(2026, 3, 14)]
    assert new._boundaries.members_on(date(2026, 3, 9)) == {"MAD"}
    runner.submit_raw(absence("u1", "MAD", "2026-03-09", "2026-03-13"), "u1 again")  # same event id
    assert new.stats["duplicates"] == 1
    runner.loop.close()


def test_a_roster_record_of_an_older_version_is_read_and_rewritten_per_member():
    """State written before members had slots of their own: the whole roster in one record."""
    runner = WorkerRunner(Detector())
    company_roster(runner, 3)
    old = runner.worker.engine
    members = {k[len(MEMBER_PREFIX):]: json.loads(v)["member"] for k, v in runner.d.table.items()
               if k.startswith(f"{MEMBER_PREFIX}")}
    for k in [k for k in runner.d.table if k.startswith(f"{MEMBER_PREFIX}")]:
        del runner.d.table[k]
    runner.d.table[ROSTER_SLOT] = json.dumps(
        {"members": members, "positions": {"0": 3}, "seen": {"m-MAB": 1}}).encode()
    runner.worker = runner.d.new_worker()
    assert dict(runner.worker.engine.roster) == dict(old.roster)
    runner.submit_raw(upsert("MAB"), "MAB again")  # its id was in the old record's seen
    assert runner.worker.engine.stats["duplicates"] == 1
    assert json.loads(runner.d.table[ROSTER_SLOT]).keys() == {"positions", "seen"}
    assert {k for k in runner.d.table if k.startswith(f"{MEMBER_PREFIX}")} == {
        f"{MEMBER_PREFIX}{m}" for m in members}
    runner.loop.close()


def test_the_boundary_index_equals_a_full_scan_after_every_change():
    rnd = random.Random(11)
    roster: dict[str, dict] = {}
    index = BoundaryIndex()
    start = date(2026, 1, 1)
    for step in range(600):
        initials = f"M{rnd.randrange(15)}"
        member = dict(roster.get(initials) or {"initials": initials, "absences": {}})
        absences = dict(member["absences"])
        if absences and rnd.random() < 0.3:
            aid = rnd.choice(sorted(absences))
            absences[aid] = {**absences[aid], "ended": True}
        else:
            first = start + timedelta(days=rnd.randrange(60))
            last = first + timedelta(days=rnd.randrange(10)) if rnd.random() < 0.8 else None
            absences[f"a{step}"] = {"kind": "sick", "starts_on": first.isoformat(),
                                    "ends_on": last.isoformat() if last else None, "ended": False}
        member["absences"] = absences
        roster[initials] = member
        index.update(initials, member)
        assert index.dates == boundary_dates(roster)
    for offset in range(75):
        day = start + timedelta(days=offset)
        assert index.members_on(day) == members_with_boundary_on(roster, day)
    assert BoundaryIndex(roster).dates == index.dates
