"""Log lines: plain text by default, one JSON object per line with VPA_LOG_FORMAT=json."""
from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import pytest

from services.config.process import LogConfig
from services.ops.logs import configure_logging


@pytest.fixture
def capture():
    """configure_logging onto a buffer; the root logger is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()

    def configure(**env: str) -> io.StringIO:
        configure_logging(LogConfig.from_env(env), service="detector", stream=buffer)
        return buffer

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_json_lines_carry_the_ids_given(capture):
    out = capture(VPA_LOG_FORMAT="json")
    logging.getLogger("vpa.detector").info("case %s opened", "c-1",
                                           extra={"vpa_id": "V-1042", "event_id": "e1", "task_id": "case:absence:V-1042:A-7"})
    (line,) = lines(out)
    record = json.loads(line)
    assert record == {"time": record["time"], "level": "INFO", "logger": "vpa.detector", "message": "case c-1 opened",
                      "service": "detector", "vpa_id": "V-1042", "event_id": "e1",
                      "task_id": "case:absence:V-1042:A-7"}
    assert datetime.fromisoformat(record["time"]).utcoffset().total_seconds() == 0


def test_json_leaves_out_ids_not_given_and_keeps_a_traceback_on_one_line(capture):
    out = capture(VPA_LOG_FORMAT="JSON")
    log = logging.getLogger("vpa.notifier")
    try:
        raise ValueError("bad\nbatch")
    except ValueError:
        log.exception("store write failed", extra={"task_id": "t-1"})
    (line,) = lines(out)
    record = json.loads(line)
    assert set(record) == {"time", "level", "logger", "message", "service", "task_id", "exception"}
    assert record["level"] == "ERROR" and "ValueError: bad\nbatch" in record["exception"]


def test_json_values_that_are_not_json_become_text(capture):
    out = capture(VPA_LOG_FORMAT="json")
    logging.getLogger("vpa.x").warning("odd", extra={"vpa_id": object()})
    assert json.loads(lines(out)[0])["vpa_id"].startswith("<object object")


def test_text_is_the_default_and_appends_the_ids(capture):
    out = capture()
    logging.getLogger("vpa.detector").info("case opened", extra={"vpa_id": "V-1", "event_id": "e9"})
    (line,) = lines(out)
    assert line.endswith(" INFO vpa.detector case opened vpa_id=V-1 event_id=e9")


def test_level_filters_and_a_second_call_replaces_the_handler(capture):
    capture(VPA_LOG_LEVEL="warning")
    out = capture(VPA_LOG_LEVEL="WARNING", VPA_LOG_FORMAT="json")
    log = logging.getLogger("vpa.y")
    log.info("hidden")
    log.warning("shown")
    assert [json.loads(line)["message"] for line in lines(out)] == ["shown"]  # once, not twice


def test_bad_log_settings_name_the_variable():
    from services.config.loader import ConfigError

    with pytest.raises(ConfigError) as caught:
        LogConfig.from_env({"VPA_LOG_FORMAT": "xml", "VPA_LOG_LEVEL": "loud"})
    assert caught.value.problems == ["VPA_LOG_FORMAT: expected text or json, got 'xml'",
                                     "VPA_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, got 'loud'"]
