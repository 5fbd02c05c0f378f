"""SIGUSR1: a running service writes the stack of every asyncio task and every thread to its log.

For a service that has stopped making progress without failing (the first soak run stalled that
way): ``kill -USR1 <pid>`` shows where each task waits, without stopping it."""
from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import sys

log = logging.getLogger("vpa.diagnostics")
DUMP_END = "stack dump end"


def _awaiting(coro: object) -> list[str]:
    """The chain of awaits a suspended coroutine hangs in, outermost first (Task.print_stack shows
    only the outermost frame of a suspended task)."""
    chain: list[str] = []
    while coro is not None and len(chain) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    if coro is not None:
        chain.append(f"  awaiting {coro!r}")
    return chain


def dump_stacks() -> None:
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"--- {task.get_name()}\n" + "\n".join(_awaiting(task.get_coro())) + "\n")
    log.warning("stack dump: %d asyncio tasks\n%s", len(tasks), out.getvalue())
    sys.stderr.flush()
    faulthandler.dump_traceback(all_threads=True)  # the client threads too (to stderr, the log)
    log.warning(DUMP_END)

