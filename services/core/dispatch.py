"""The dispatch every rule package shares (DESIGN 3, 5.24): one skeleton for the three processors.

A VPA's input goes to the handler of its type; ``cmd.vpa.erase`` and the erase timer of an
offboarded VPA make the service forget it; after an offboarding only a new registration counts;
and after every step the service tidies its state (closed tasks become tombstones). A rule package
says only what differs: its handlers, its registration, its timers and its tidy-up.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from schemas.envelope import Envelope
from services.core import erasure
from services.core.processor import Context, ProcessorDefaults, Result, Timer

Handler = Callable[[dict[str, Any], Envelope[Any], Context], Result]


class RuleService(ProcessorDefaults):
    """Subclasses set ``name``, ``rank`` and ``topics`` (what the Processor port asks) and implement
    ``handlers`` (type -> handler, built once), ``registered`` and, where they have timers or
    tombstones, ``due`` and ``tidy``. The types it acts on follow from its handlers."""

    name: str
    rank: int
    topics: frozenset[str]

    def __init__(self) -> None:
        self._handlers: Mapping[str, Handler] = self.handlers()
        self.types: frozenset[str] = frozenset(self._handlers) | {"vpa.registered", erasure.ERASE_COMMAND}

    def handlers(self) -> Mapping[str, Handler]:
        raise NotImplementedError

    def registered(self, state: dict[str, Any], env: Envelope[Any], ctx: Context) -> Result:
        raise NotImplementedError

    def due(self, state: dict[str, Any], timer: Timer, ctx: Context) -> Result:
        """A timer of the service's own fell due."""
        return Result()

    def tidy(self, state: dict[str, Any], ctx: Context) -> None:
        """After every step (closed tasks become tombstones)."""

    def handle(self, state: dict[str, Any], env: Envelope[Any], ctx: Context) -> Result:
        if env.type == erasure.ERASE_COMMAND:
            return erasure.erase()  # on request (vpa erase): this service forgets the VPA
        result = self._dispatch(state, env, ctx)
        self.tidy(state, ctx)
        return result

    def _dispatch(self, state: dict[str, Any], env: Envelope[Any], ctx: Context) -> Result:
        if env.type == "vpa.registered":
            return self.registered(state, env, ctx)
        if state.get("offboarded") and env.type.startswith("vpa."):
            return Result()  # DESIGN 5.24: after offboarding only a new registration counts
        handler = self._handlers.get(env.type)
        return handler(state, env, ctx) if handler else Result()

    def on_timer(self, state: dict[str, Any], timer: Timer, ctx: Context) -> Result:
        if erasure.is_due(timer):
            return erasure.erase()  # offboarded VPA_ERASE_AFTER_DAYS ago
        result = self.due(state, timer, ctx)
        self.tidy(state, ctx)
        return result
