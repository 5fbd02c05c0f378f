"""The one writer of ``vpa.dlq`` records: every service puts its dead letters through it.

A dead letter keeps the original key and value (cut to ``DLQ_MAX_VALUE`` with the original size in a
header) and says why and where from in headers (``schemas.dead_letters``). Each one is logged, but a
flood of bad input must not flood the log: at most ``log_limit`` lines per ``log_window`` seconds,
the rest counted (``vpa_dlq_log_lines_suppressed_total``) and summed up in one line when the window
ends. The records themselves are never dropped: nothing that went wrong is lost.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Callable, Optional

from schemas.dead_letters import DlqReason
from schemas.topics import Topic
from services.broker.client import OutRecord
from services.broker.topics import dlq_headers, dlq_value

log = logging.getLogger("vpa.dlq")


class DeadLetters:
    """One per service process; ``monotonic`` is injected so the log budget is tested without waiting."""

    def __init__(self, service: str, log_limit: int = 20, log_window: float = 10.0,
                 on_suppressed: Optional[Callable[[int], None]] = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.log_limit, self.log_window = log_limit, log_window
        self.on_suppressed = on_suppressed
        self._monotonic = monotonic
        self._window_start: Optional[float] = None
        self._logged = 0
        self.suppressed = 0  # log lines left out in the current window

    def record(self, reason: DlqReason, topic: str, partition: int, offset: int, key: Optional[bytes],
               value: Optional[bytes], *, service: Optional[str] = None, label: str = "",
               log_ids: Optional[dict[str, Optional[str]]] = None) -> OutRecord:
        """The ``vpa.dlq`` record of one dead letter (sent by the caller with its batch), logged
        within the budget. ``service``: who refused it, when not this process's service."""
        text = str(reason)
        cut, truncated = dlq_value(value)
        headers = tuple(dlq_headers(text, service or self.service, topic, partition, offset, truncated))
        self._log(text, label or f"{topic}[{partition}]@{offset}", cut, log_ids)
        return Topic.dlq, key, cut, None, headers

    def _log(self, text: str, where: str, value: bytes, ids: Optional[dict[str, Optional[str]]]) -> None:
        now = self._monotonic()
        if self._window_start is None or now - self._window_start >= self.log_window:
            self._close_window()
            self._window_start, self._logged = now, 0
        if self._logged < self.log_limit:
            self._logged += 1
            extra = dict(ids or {})
            extra.setdefault("event_id", _event_id(value))
            log.warning("to vpa.dlq: %s (%s)", text[:300], where, extra=extra)
            return
        self.suppressed += 1
        if self.on_suppressed is not None:
            self.on_suppressed(1)

    def _close_window(self) -> None:
        if self.suppressed:
            log.warning("to vpa.dlq: %d more records in %.0f s, not logged one by one (vpa_dlq_messages_total "
                        "counts them all; the records are on vpa.dlq)", self.suppressed, self.log_window)
        self.suppressed = 0

    def flush_log(self) -> None:
        """Write the summary of a window that has ended (called at stop and when idle)."""
        if self._window_start is not None and self._monotonic() - self._window_start >= self.log_window:
            self._close_window()
            self._window_start = None


def _event_id(value: bytes) -> Optional[str]:
    """The event_id of a dead-lettered envelope, for the log line (None when it has none to read)."""
    if len(value) > 65536:
        return None
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError):
        return None
    event_id = obj.get("event_id") if isinstance(obj, dict) else None
    return event_id if isinstance(event_id, str) else None
