"""The dispatch every rule package shares (DESIGN 3, 5.24): one skeleton for the three processors.

A VPA's input goes to the handler of its type; ``cmd.vpa.erase`` and the erase timer of an
offboarded VPA make the service forget it; after an offboarding only a new registration counts;
and after every step the service tidies its state (closed tasks become tombstones). A rule package
says only what differs: its handlers, its registration, its timers and its tidy-up.

The engine hands a service its stored state as plain JSON; the skeleton reads it through the
service's versioned codec (``core.state``) as the service's typed state, and marks it with its
version when the call is done.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Mapping

from schemas.envelope import Envelope
from services.core import erasure
from services.core.processor import Context, ProcessorDefaults, Result, Timer
from services.core.state import S, StateCodec

Handler = Callable[[S, Envelope[Any], Context], Result]


class RuleService(ProcessorDefaults, Generic[S]):
    """Subclasses set ``name``, ``rank``, ``topics`` (what the Processor port asks) and ``codec``
    (their state's), and implement ``handlers`` (type -> handler, built once), ``registered`` and,
    where they have timers or tombstones, ``due`` and ``tidy``; where the roster matters,
    ``reevaluate`` and ``roster_facts``. The types it acts on follow from its handlers."""

    name: str
    rank: int
    topics: frozenset[str]
    codec: StateCodec[S]

    def __init__(self) -> None:
        self._handlers: Mapping[str, Handler[S]] = self.handlers()
        self.types: frozenset[str] = frozenset(self._handlers) | {"vpa.registered", erasure.ERASE_COMMAND}

    def handlers(self) -> Mapping[str, Handler[S]]:
        raise NotImplementedError

    def registered(self, state: S, env: Envelope[Any], ctx: Context) -> Result:
        raise NotImplementedError

    def due(self, state: S, timer: Timer, ctx: Context) -> Result:
        """A timer of the service's own fell due."""
        return Result()

    def tidy(self, state: S, ctx: Context) -> None:
        """After every step (closed tasks become tombstones)."""

    def reevaluate(self, state: S, ctx: Context) -> Result:
        """The roster changed or a new day began (``Processor.reassign``)."""
        return Result()

    def roster_facts(self, state: S) -> Iterable[str]:
        """What ``reevaluate`` reads of the roster (``Processor.roster_dependencies``)."""
        return set()

    # ---- the Processor port: the stored JSON read through the codec ----------------------------

    def handle(self, raw: dict[str, Any], env: Envelope[Any], ctx: Context) -> Result:
        if env.type == erasure.ERASE_COMMAND:
            return erasure.erase()  # on request (vpa erase): this service forgets the VPA
        state = self.codec.read(raw)
        result = self._dispatch(state, env, ctx)
        self.tidy(state, ctx)
        self.codec.mark(state)
        return result

    def reassign(self, raw: dict[str, Any], ctx: Context) -> Result:
        # No tidy-up here: a service whose re-evaluation can close tasks tidies in ``reevaluate``
        # (the journey's never closes one, and tidying it would forget tombstones a step early).
        state = self.codec.read(raw)
        result = self.reevaluate(state, ctx)
        self.codec.mark(state)
        return result

    def roster_dependencies(self, raw: dict[str, Any]) -> Iterable[str]:
        return self.roster_facts(self.codec.read(raw))

    def _dispatch(self, state: S, env: Envelope[Any], ctx: Context) -> Result:
        if env.type == "vpa.registered":
            return self.registered(state, env, ctx)
        if state.get("offboarded") and env.type.startswith("vpa."):
            return Result()  # DESIGN 5.24: after offboarding only a new registration counts
        handler = self._handlers.get(env.type)
        return handler(state, env, ctx) if handler else Result()

    def on_timer(self, raw: dict[str, Any], timer: Timer, ctx: Context) -> Result:
        if erasure.is_due(timer):
            return erasure.erase()  # offboarded VPA_ERASE_AFTER_DAYS ago
        state = self.codec.read(raw)
        result = self.due(state, timer, ctx)
        self.tidy(state, ctx)
        self.codec.mark(state)
        return result
