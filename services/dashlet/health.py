"""What ``/healthz`` checks: the store answers, and the command path is not stuck (DESIGN 4.8).

``CommandPath`` wraps the command sink and keeps what a health check needs: the commands in
flight (one older than ``stuck_after`` means the path hangs) and whether the last send failed. A
failed send stays reported until a later one succeeds.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, Awaitable, Callable, Optional

CommandSink = Callable[[bytes, str], Awaitable[Optional[str]]]  # (envelope bytes, vpa_id) -> rejection


class CommandPathError(Exception):
    """The command could not be handed on (timeout or failure); the reason is German."""


class CommandPath:
    """Hands a command to the sink and waits for the outcome, however long it takes: a command is
    never cut off half way (issue 27: a deadline that cancelled the demo's runner in the middle of
    writing lost the versions it had made, and answered 503 for commands that were applied). A
    caller that goes away leaves the command running; ``on_failure`` runs if it fails after all."""

    def __init__(self, sink: CommandSink, stuck_after: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sink, self.stuck_after, self._clock = sink, stuck_after, clock
        self._in_flight: dict[int, float] = {}
        self._ids = itertools.count()
        self.last_failure: Optional[str] = None

    async def send(self, raw: bytes, vpa_id: str,
                   on_failure: Optional[Callable[[], Awaitable[Any]]] = None) -> Optional[str]:
        token = next(self._ids)
        self._in_flight[token] = self._clock()
        task = asyncio.ensure_future(self._sink(raw, vpa_id))
        task.add_done_callback(lambda t: self._settle(token, t, on_failure))
        try:
            return await asyncio.shield(task)  # the request may be cancelled; the command is not
        except asyncio.CancelledError:
            if task.cancelled():
                raise CommandPathError("abgebrochen") from None
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the sink: the command did not go on
            raise CommandPathError(f"{type(exc).__name__}: {str(exc)[:200]}") from None

    def _settle(self, token: int, task: asyncio.Future, on_failure: Optional[Callable[[], Awaitable[Any]]]) -> None:
        self._in_flight.pop(token, None)
        failed = task.cancelled() or task.exception() is not None
        if not failed:
            self.last_failure = None
            return
        exc = None if task.cancelled() else task.exception()
        self.last_failure = "abgebrochen" if exc is None else f"{type(exc).__name__}: {str(exc)[:200]}"
        if on_failure is not None:
            asyncio.ensure_future(on_failure())

    def problem(self) -> Optional[str]:
        """Why the command path is unhealthy, or None."""
        if self._in_flight:
            age = self._clock() - min(self._in_flight.values())
            if age > self.stuck_after:
                return f"ein Befehl hängt seit {age:.0f} s"
        if self.last_failure:
            return f"der letzte Befehl ist gescheitert ({self.last_failure})"
        return None


async def store_problem(store: Any, timeout: float = 2.0) -> Optional[str]:
    """Why the store is unhealthy (no answer to a key lookup in time, or an error), or None."""
    try:
        await asyncio.wait_for(store.get("healthz:probe"), timeout)
    except asyncio.TimeoutError:
        return f"keine Antwort in {timeout:.0f} s"
    except Exception as exc:  # noqa: BLE001 - any failure of the probe is the answer
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None
