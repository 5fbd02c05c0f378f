"""Re-evaluation on roster changes touches only what a change can affect (issue 11): the VPAs
whose tasks depend on the member, and nothing at all when what the policy reads today is as it
was (an absence registered for later is re-evaluated at its boundary midnight)."""
from __future__ import annotations

import json

from services.config.settings import Settings
from services.core.clock import StreamClock
from services.core.processor import ProcessorDefaults, Result
from services.runners.embedded.runner import EmbeddedRunner
from tests import builders


class Counting(ProcessorDefaults):
    name = "counting"
    topics = frozenset({"vpa.events"})

    def __init__(self) -> None:
        self.reassigned: list[str] = []

    def handle(self, state, env, ctx):
        state["owner"] = env.data.at_owner if env.type == "vpa.registered" else state.get("owner")
        return Result()

    def on_timer(self, state, timer, ctx):
        return Result()

    def reassign(self, state, ctx):
        self.reassigned.append(state["owner"])
        return Result()

    def roster_dependencies(self, state):
        return {state["owner"]} if state.get("owner") else set()


def line(eid: str, type_: str, at: str, data: dict, vpa: str | None = None) -> str:
    return builders.line(type_, data, at=at, vpa_id=vpa, event_id=eid)


def member(initials: str) -> dict:
    return {"initials": initials, "name": initials, "role": "at", "deputy": None, "active": True}


def test_only_dependents_are_reevaluated_and_only_when_today_changes():
    proc = Counting()
    runner = EmbeddedRunner([proc], Settings(), StreamClock())
    for ini in ("AA", "BB"):
        runner.submit_raw(line(f"m-{ini}", "roster.member_upserted", "2026-11-02T08:00:00+01:00", member(ini)), "t")
    for i, owner in enumerate(("AA", "AA", "BB")):
        runner.submit_raw(line(f"r{i}", "vpa.registered", "2026-11-02T09:00:00+01:00",
                               {"name": "N", "started_on": "2025-01-01", "at_owner": owner}, f"V-{i}"), "t")
    proc.reassigned.clear()
    # an absence of AA from tomorrow: nothing changes today...
    runner.submit_raw(line("abs", "roster.absence_registered", "2026-11-02T10:00:00+01:00",
                           {"absence_id": "U", "initials": "AA", "kind": "vacation", "starts_on": "2026-11-03",
                            "ends_on": "2026-11-05"}), "t")
    assert proc.reassigned == []
    # ...its boundary midnight re-evaluates AA's two VPAs, not BB's
    runner.submit_raw(line("tick", "clock.tick", "2026-11-03T08:00:00+01:00", {}), "t")
    assert proc.reassigned == ["AA", "AA"]
    # sick today: at once, again only AA's
    proc.reassigned.clear()
    runner.submit_raw(line("sick", "roster.absence_registered", "2026-11-06T10:00:00+01:00",
                           {"absence_id": "S", "initials": "AA", "kind": "sick", "starts_on": "2026-11-06",
                            "ends_on": None}), "t")
    assert proc.reassigned.count("AA") >= 2 and "BB" not in proc.reassigned


def test_targeted_reevaluation_ends_exactly_where_reevaluating_everyone_ends():
    """On a simulated company (team days, vacations, handovers and rendezvous picks), re-evaluating
    only what a roster change can affect gives every task, history and evidence included, exactly
    as re-evaluating every VPA on every change does."""
    from datetime import date

    from services.app.bootstrap import processors
    from services.engine.records import EngineLimits
    from services.runners.embedded.replay import final_tasks
    from services.simulator import SimConfig, simulate

    lines = [e for e in simulate(SimConfig(vpas=400, days=45, seed=21, start=date(2026, 9, 7))) if isinstance(e, dict)]

    def run(targeted: bool) -> list[dict]:
        runner = EmbeddedRunner(processors(), Settings(), StreamClock(), limits=EngineLimits(targeted_reassign=targeted))
        for n, e in enumerate(lines):
            runner.submit_raw(json.dumps(e), f"sim:{n}")
        return final_tasks(runner.drain_tasks())

    targeted, everyone = run(True), run(False)
    assert len(targeted) > 1000
    assert any("handover" in t["reasons"] for t in targeted)
    assert targeted == everyone


def test_a_rendezvous_pick_is_reevaluated_only_by_its_own_role():
    """A VPA Manager picked for a journey task (issue 11: no longer every open NEW_GT_12 on every
    manager's absence): the task is affected when that manager leaves or a manager scoring higher
    arrives; an AT member arriving or a manager scoring lower changes nothing."""
    from services.core.ids import rendezvous_score
    from services.core.processor import pick_token
    from services.engine.roster_index import DependencyIndex, MemberChange

    key, held = "V-1", "MA"
    others = sorted(["MB", "MC", "MD", "ME", "MF"], key=lambda i: (rendezvous_score(key, i), i))
    lower = [i for i in others if (rendezvous_score(key, i), i) < (rendezvous_score(key, held), held)]
    higher = [i for i in others if i not in lower]
    assert lower and higher
    index = DependencyIndex()
    index.update(("V-1", "journey"), {pick_token(held, key, role="vpa_manager")})

    def arrives(initials: str, role: str) -> list:
        return index.affected([MemberChange(initials, role, role, False, True)], {})

    assert index.affected([MemberChange(held, "vpa_manager", "vpa_manager", True, False)], {}) == [("V-1", "journey")]
    for i in higher:
        assert arrives(i, "vpa_manager") == [("V-1", "journey")]
        assert arrives(i, "at") == []
    for i in lower:
        assert arrives(i, "vpa_manager") == []


def test_a_boundary_registered_later_the_same_day_comes_before_the_one_known_earlier():
    """The engine keeps its answer to "which boundary midnight is next" while the clock stays in
    its local day: an absence registered later that day must still replace the answer, and the
    next day's midnight must be asked again once the clock reaches it."""
    proc = Counting()
    runner = EmbeddedRunner([proc], Settings(), StreamClock())
    for ini in ("AA", "BB"):
        runner.submit_raw(line(f"m-{ini}", "roster.member_upserted", "2026-11-02T08:00:00+01:00", member(ini)), "t")
    for i, owner in enumerate(("AA", "BB")):
        runner.submit_raw(line(f"r{i}", "vpa.registered", "2026-11-02T09:00:00+01:00",
                               {"name": "N", "started_on": "2025-01-01", "at_owner": owner}, f"V-{i}"), "t")

    def absence(eid: str, at: str, initials: str, starts: str, ends: str) -> None:
        runner.submit_raw(line(eid, "roster.absence_registered", at,
                               {"absence_id": eid, "initials": initials, "kind": "vacation",
                                "starts_on": starts, "ends_on": ends}), "t")

    def tick(eid: str, at: str) -> None:
        runner.submit_raw(line(eid, "clock.tick", at, {}), "t")

    absence("far", "2026-11-02T10:00:00+01:00", "BB", "2026-11-10", "2026-11-12")  # next: 10 Nov
    tick("t0", "2026-11-02T10:30:00+01:00")
    absence("near", "2026-11-02T11:00:00+01:00", "AA", "2026-11-03", "2026-11-03")  # now: 3 Nov
    proc.reassigned.clear()
    tick("t1", "2026-11-03T00:00:00+01:00")  # AA's absence starts at this very instant
    assert proc.reassigned == ["AA"]
    tick("t2", "2026-11-04T08:00:00+01:00")  # ... and ends at the midnight before
    assert proc.reassigned == ["AA", "AA"]
    tick("t3", "2026-11-09T23:59:59+01:00")
    assert proc.reassigned == ["AA", "AA"]
    tick("t4", "2026-11-10T00:00:01+01:00")
    assert proc.reassigned == ["AA", "AA", "BB"]


def test_a_task_the_owners_deputy_took_is_not_reevaluated_by_arrivals():
    """Handed over to the owner's deputy, a task stays with the deputy whoever arrives (the deputy
    goes before any rendezvous pick): only the owner's record and the deputy's presence matter.
    Handed over to someone else, an arrival scoring higher takes it."""
    from services.core.ids import rendezvous_score
    from services.core.processor import pick_token
    from services.engine.roster_index import DependencyIndex, MemberChange

    key, deputy = "case:absence:V-1:A-1", "DE"
    higher = [i for i in ("XA", "XB", "XC", "XD", "XE", "XF", "XG", "XH")
              if (rendezvous_score(key, i), i) > (rendezvous_score(key, deputy), deputy)]
    assert higher
    roster = {"OW": {"role": "at", "deputy": deputy}, deputy: {"role": "at", "deputy": None}}
    index = DependencyIndex()
    index.update(("V-1", "detector"), {"OW", pick_token(deputy, key, owner="OW")})
    arrives = [MemberChange(higher[0], "at", "at", False, True)]
    assert index.affected(arrives, roster) == []
    # the deputy away: through the owner's record (whose deputy it is) and the pick it held
    assert index.affected([MemberChange(deputy, "at", "at", True, False)], roster) == [("V-1", "detector")]
    # once the owner names another deputy, DE holds the task as a rendezvous pick
    assert index.affected(arrives, {**roster, "OW": {"role": "at", "deputy": "ZZ"}}) == [("V-1", "detector")]


def test_kept_next_midnight_across_the_days_clocks_change():
    """The kept answer ends at the clock's next local midnight, which lies 23 hours after the one
    before on the last Sunday of March and 25 hours after it on the last Sunday of October: a
    boundary on the Monday after fires at its own midnight, once."""
    for saturday, sunday, monday, before, after in (("2026-03-28", "2026-03-29", "2026-03-30", "+01:00", "+02:00"),
                                                   ("2026-10-24", "2026-10-25", "2026-10-26", "+02:00", "+01:00")):
        proc = Counting()
        runner = EmbeddedRunner([proc], Settings(), StreamClock())
        runner.submit_raw(line("m", "roster.member_upserted", f"{saturday}T08:00:00{before}", member("AA")), "t")
        runner.submit_raw(line("r", "vpa.registered", f"{saturday}T09:00:00{before}",
                               {"name": "N", "started_on": "2025-01-01", "at_owner": "AA"}, "V-1"), "t")
        runner.submit_raw(line("a", "roster.absence_registered", f"{saturday}T10:00:00{before}",
                               {"absence_id": "U", "initials": "AA", "kind": "vacation", "starts_on": monday,
                                "ends_on": monday}), "t")
        proc.reassigned.clear()
        runner.submit_raw(line("t1", "clock.tick", f"{sunday}T12:00:00{after}", {}), "t")
        runner.submit_raw(line("t2", "clock.tick", f"{sunday}T23:59:59{after}", {}), "t")
        assert proc.reassigned == [], sunday
        # kept until the local midnight itself (a day of 24 hours would keep it an hour too long
        # in March, and the engine would do Monday's midnight again and again)
        from services.engine.order import micros
        from services.core.timeutil import parse
        assert runner.engine._midnight is not None
        assert runner.engine._midnight[1] == micros(parse(f"{monday}T00:00:00{after}")), sunday
        runner.submit_raw(line("t3", "clock.tick", f"{monday}T00:00:00{after}", {}), "t")
        runner.submit_raw(line("t4", "clock.tick", f"{monday}T00:30:00{after}", {}), "t")
        assert proc.reassigned == ["AA"], sunday
