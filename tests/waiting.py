"""Waiting on a condition with a deadline, never on time: the one poll helper of the test suites.

``wait_for`` returns the last value seen whether or not the predicate held, so the caller's assert
shows what was there; ``poll`` fails the test itself, naming what it waited for. Both take a plain
function or a coroutine function.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable

import pytest


async def wait_for(fetch: Callable[[], Any], predicate: Callable[[Any], bool] = bool, timeout: float = 90,
                   interval: float = 0.5) -> Any:
    """Call ``fetch`` until ``predicate(value)`` holds or ``timeout`` seconds passed; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if inspect.isawaitable(value):
            value = await value
        if predicate(value) or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)


async def poll(fetch: Callable[[], Any], timeout: float, what: str, interval: float = 0.3,
               predicate: Callable[[Any], bool] = bool) -> Any:
    """``wait_for`` that fails the test when the deadline passes; returns the value that held."""
    value = await wait_for(fetch, predicate, timeout, interval)
    if not predicate(value):
        pytest.fail(f"timed out after {timeout} s waiting for {what} (last seen: {value!r:.300})")
    return value


def wait_for_sync(fetch: Callable[[], Any], predicate: Callable[[Any], bool] = bool, timeout: float = 90,
                  interval: float = 0.2) -> Any:
    """``wait_for`` outside an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)  # a poll interval between two looks, not a wait for an outcome
