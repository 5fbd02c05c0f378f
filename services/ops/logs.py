"""Process logging: plain text by default, one JSON object per line with ``VPA_LOG_FORMAT=json``.

Log events of interest with the ids they concern, so a log search finds everything about a VPA,
an input or a task::

    log.info("case opened", extra={"vpa_id": "V-1042", "event_id": "e1", "task_id": "case:..."})

JSON lines carry ``time`` (UTC, RFC 3339), ``level``, ``logger``, ``message``, the ``service``
given to ``configure_logging``, those of ``vpa_id``, ``event_id`` and ``task_id`` that were
given, and ``exception`` with the traceback when there is one. Text lines append the ids as
``key=value``.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import IO, Any, Optional

from services.config.process import LogConfig, LogFormat

CONTEXT_FIELDS = ("vpa_id", "event_id", "task_id")
_OURS = "_vpa_handler"  # marks the handler configure_logging installed, so a second call replaces it


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {f: getattr(record, f) for f in CONTEXT_FIELDS if getattr(record, f, None) is not None}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: Optional[str] = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            line["service"] = self.service
        line.update(_context(record))
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines inside values: one record is always one line
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{k}={v}" for k, v in _context(record).items())
        if not ids:
            return text
        head, sep, rest = text.partition("\n")  # ids on the message line, before any traceback
        return f"{head} {ids}{sep}{rest}"


_SECRET = re.compile(r"(?i)(bearer|token=|authorization:)(\s*)[^\s'\",]+")


class RedactSecrets(logging.Filter):
    """No part of a bearer token reaches a log line: aiohttp, refusing a header over 8 KiB, puts the
    header's first 100 characters into its exception (issue 28). The message and the traceback
    are redacted; the record is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = _SECRET.sub(r"\1\2[redacted]", message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _SECRET.sub(r"\1\2[redacted]", record.exc_text)
        return True


REDACT = RedactSecrets()


def configure_logging(config: Optional[LogConfig] = None, *, service: Optional[str] = None,
                      stream: Optional[IO[str]] = None) -> logging.Handler:
    """Route every logger (aiokafka's and ours) to one handler on ``stream`` (stderr).

    ``config`` defaults to the environment (``VPA_LOG_FORMAT``, ``VPA_LOG_LEVEL``). Calling it
    again replaces the handler it installed before.
    """
    config = config or LogConfig.from_env()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service) if config.log_format is LogFormat.JSON else TextFormatter())
    setattr(handler, _OURS, True)
    from services.ops.broker_watch import FOLDING

    handler.addFilter(FOLDING)  # the Kafka clients' connection messages while a broker is away
    handler.addFilter(REDACT)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.log_level.value)
    return handler
