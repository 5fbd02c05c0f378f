"""The reminders service's processor (being built: see the open issue)."""
from __future__ import annotations

from schemas.envelope import Envelope
from services.common.processor import Context, Result, Timer

SERVICE = "reminders"


class Reminders:
    name = SERVICE
    topics = frozenset({"vpa.events", "vpa.commands"})

    def handle(self, state: dict, env: Envelope, ctx: Context) -> Result:
        return Result()

    def on_timer(self, state: dict, timer: Timer, ctx: Context) -> Result:
        return Result()

    def reassign(self, state: dict, ctx: Context) -> Result:
        return Result()
