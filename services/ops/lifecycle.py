"""A service process from start to stop: signals, a bounded stop, stack dumps.

SIGTERM, SIGINT and SIGHUP ask the service to stop: it flushes what its workers applied, leaves
its consumer group (the partitions move at once) and exits 0. A stop that cannot finish (the
broker away while a last batch waits for it) ends the process after ``STOP_GRACE_SECONDS`` with
status 3: nothing depends on that last flush, since what was not written is done again by the
next owner of the partition. SIGUSR1 writes every task's and thread's stack to the log.
"""
from __future__ import annotations

import asyncio
import signal
from types import SimpleNamespace
from typing import Any, Awaitable, Callable, Optional

from services.ops.diagnostics import dump_stacks
from services.ops.stop_guard import exit_if_stop_hangs

STOP_GRACE_SECONDS = 4.5  # a SIGTERM ends a service within 5 s, its last batches flushed


def stop_early_on_signals() -> None:
    """Until ``run_until_signalled`` takes over: a stop signal during the set-up (topics being
    created, settings read) ends the process at once with status 0; nothing has started yet."""
    def leave(signum: int, frame: object) -> None:
        import logging
        import os

        logging.shutdown()
        os._exit(0)  # not SystemExit: clients being set up would wait in their cleanup

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, leave)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[Optional[int]]],
                        grace: float = STOP_GRACE_SECONDS) -> int:
    """Run ``main(stop)`` until it returns; a stop signal sets ``stop``."""
    state = SimpleNamespace(should_stop=False)
    exit_if_stop_hangs(state, grace)

    async def runner() -> Optional[int]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            state.should_stop = True
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal)
        loop.add_signal_handler(signal.SIGUSR1, dump_stacks)
        return await main(stop)

    return asyncio.run(runner()) or 0


class Stopped(Exception):
    """A stop was asked for while the service was still starting."""


async def until_stopped(stop: asyncio.Event, step: Any) -> Any:
    """Await ``step`` unless ``stop`` is set first (SIGTERM while a client starts: a clean stop, no crash)."""
    task = asyncio.ensure_future(step)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not task.done():
        task.cancel()
        await asyncio.wait((task,), timeout=1.0)
        raise Stopped()
    return task.result()


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((waiter,), timeout=seconds)
    finally:
        waiter.cancel()
