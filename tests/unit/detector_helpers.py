"""Shared helpers of the detector's unit tests: envelopes through decode(), a tiny timer harness."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from services.config.settings import Settings
from services.core.processor import Context, Result, pop_timer, timers_of
from services.core.roster import apply_roster_event
from services.core.tasks import fold
from services.core.timeutil import parse
from services.detector.service import Detector
from tests import builders
from tests.builders import as_kwargs, decoded

VPA = "V-7001"


def envelope(type_: str, data: dict | None = None, *, at: str, vpa_id: str | None = VPA,
             actor: dict | None = None, event_id: str | None = None):
    return decoded(type_, data, at=at, vpa_id=vpa_id, actor=actor, event_id=event_id)


def registered(at: str = "2026-11-01T09:00:00+01:00", *, name: str = "Anna Schmidt", owner: str = "AB",
               started_on: str = "2025-01-15", vpa_class: Optional[str] = None, part_time: bool = False,
               uses_mobile_app: bool = False, **kw):
    data = {"name": name, "started_on": started_on, "at_owner": owner, "part_time": part_time,
            "uses_mobile_app": uses_mobile_app}
    if vpa_class:
        data["class"] = vpa_class
    return envelope("vpa.registered", data, at=at, **kw)


def member(initials: str, *, active: bool = True, role: str = "at", deputy: str | None = None):
    return decoded(**as_kwargs(builders.member(initials, role=role, deputy=deputy, active=active,
                                               at="2026-10-01T08:00:00+01:00")))


def roster_of(*events) -> dict:
    roster: dict = {}
    for e in events:
        roster[e.data.initials] = apply_roster_event(roster.get(e.data.initials), e)
    return roster


class Harness:
    """One VPA's detector state, driven like the runner does: the clock moves to each event's
    occurred_at (or further), and due timers fire, in order, before the event that moves the clock."""

    def __init__(self, roster: Optional[dict] = None, settings: Optional[Settings] = None) -> None:
        self.detector = Detector()
        self.state: dict = {}
        self.roster = roster if roster is not None else roster_of(member("AB"))
        self.settings = settings or Settings()
        self.now: Optional[datetime] = None
        self.tasks: list[dict] = []
        self.published: dict[str, dict] = {}
        self.commands: list = []
        self.rejections: list[str] = []

    def ctx(self, now: datetime) -> Context:
        return Context(now=now, settings=self.settings, roster=self.roster)

    def _collect(self, r: Result) -> Result:
        self.tasks += r.tasks
        for t in r.tasks:  # the store's view: versions folded with their history
            self.published[t["task_id"]] = fold(self.published.get(t["task_id"]), t)
        self.commands += r.commands
        self.rejections += r.rejections
        return r

    def advance(self, to: datetime) -> Result:
        out = Result()
        while True:
            due = sorted((t for t in timers_of(self.state) if t.due_at <= to), key=lambda t: t.due_at)
            if not due:
                break
            timer = pop_timer(self.state, due[0].timer_id)
            self.now = max(self.now or timer.due_at, timer.due_at)
            out.extend(self._collect(self.detector.on_timer(self.state, timer, self.ctx(self.now))))
        if self.now is None or to > self.now:
            self.now = to
        return out

    def send(self, env) -> Result:
        out = self.advance(env.occurred_at)
        out.extend(self._collect(self.detector.handle(self.state, env, self.ctx(self.now))))
        out.extend(self.advance(self.now))  # timers set in the past fire right after the event
        return out

    def until(self, at: str) -> Result:
        return self.advance(parse(at))

    def task(self, task_id: str) -> dict:
        """The task as the store shows it (closed tasks leave the state as tombstones)."""
        return self.published[task_id]

    def cases(self, kind: str) -> list[dict]:
        return [t for t in self.published.values() if t["kind"] == kind]
