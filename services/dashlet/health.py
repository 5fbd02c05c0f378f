"""What ``/healthz`` checks: the store answers, and the command path is not stuck (DESIGN 4.8).

``CommandPath`` wraps the command sink with a deadline and keeps what a health check needs: the
commands in flight (one older than ``stuck_after`` means the path hangs) and whether the last
send failed. A failed or timed-out send stays reported until a later one succeeds.
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
    def __init__(self, sink: CommandSink, timeout: float = 10.0, stuck_after: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sink, self.timeout, self.stuck_after, self._clock = sink, timeout, stuck_after, clock
        self._in_flight: dict[int, float] = {}
        self._ids = itertools.count()
        self.last_failure: Optional[str] = None

    async def send(self, raw: bytes, vpa_id: str) -> Optional[str]:
        token = next(self._ids)
        self._in_flight[token] = self._clock()
        try:
            result = await asyncio.wait_for(self._sink(raw, vpa_id), self.timeout)
        except asyncio.TimeoutError:
            self.last_failure = f"Zeitüberschreitung nach {self.timeout:.0f} s"
            raise CommandPathError(self.last_failure) from None
        except (OSError, RuntimeError, ConnectionError, ValueError) as exc:
            self.last_failure = f"{type(exc).__name__}: {str(exc)[:200]}"
            raise CommandPathError(self.last_failure) from None
        finally:
            del self._in_flight[token]
        self.last_failure = None
        return result

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
