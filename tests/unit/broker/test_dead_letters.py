"""The one writer of vpa.dlq records: the reason header says the kind first (DESIGN 4.5), the origin
is in headers, a large value is cut with its size kept, and a flood of bad input writes every
record but only a bounded number of log lines (issue 21, point 4)."""
from __future__ import annotations

import logging

from schemas.dead_letters import DlqKind, DlqReason
from schemas.topics import Topic
from services.broker.dead_letters import DeadLetters
from services.broker.topics import DLQ_MAX_VALUE
from services.engine.decode import Invalid, decode


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def headers(record) -> dict[str, bytes]:  # noqa: ANN001
    return dict(record[4])


def test_a_dead_letter_keeps_key_and_value_and_says_why_and_where_from():
    writer = DeadLetters("detector")
    topic, key, value, partition, _ = rec = writer.record(
        DlqReason(DlqKind.rejected, "Fall X ist unbekannt"), "vpa.commands", 3, 120, b"V-1", b'{"event_id": "e"}')
    assert (topic, key, value, partition) == (Topic.dlq, b"V-1", b'{"event_id": "e"}', None)
    assert headers(rec) == {"reason": b"rejected: Fall X ist unbekannt", "service": b"detector",
                            "origin_topic": b"vpa.commands", "origin_partition": b"3", "origin_offset": b"120"}


def test_the_refusing_service_is_named_when_it_is_not_the_writer():
    rec = DeadLetters("detector").record(DlqReason(DlqKind.error, "boom"), "vpa.events", 0, 1, None, b"x",
                                         service="reminders")
    assert headers(rec)["service"] == b"reminders"


def test_a_value_too_large_is_cut_and_its_size_kept():
    big = b"x" * (DLQ_MAX_VALUE + 10)
    rec = DeadLetters("notifier").record(DlqReason(DlqKind.invalid, "too large"), "dashlet.tasks", 0, 5, b"k", big)
    assert len(rec[2]) == DLQ_MAX_VALUE
    assert headers(rec)["truncated_from"] == str(len(big)).encode()


def test_the_kind_is_typed_from_the_source_never_read_back_from_the_text():
    assert decode(b"").kind is DlqKind.undecodable
    assert decode(b"\xff").kind is DlqKind.undecodable
    assert decode(b"[1]").kind is DlqKind.invalid
    assert decode(b"[1]").reason == "invalid: envelope must be a JSON object"
    assert Invalid("a detail: with a colon").reason == "invalid: a detail: with a colon"


def test_a_flood_writes_every_record_but_logs_a_bounded_number_of_lines(caplog):
    clock, suppressed = Clock(), []
    writer = DeadLetters("detector", log_limit=3, log_window=10.0, on_suppressed=suppressed.append, monotonic=clock)
    with caplog.at_level(logging.WARNING, logger="vpa.dlq"):
        records = [writer.record(DlqReason(DlqKind.invalid, f"bad {i}"), "vpa.events", 0, i, None, b"{}")
                   for i in range(50)]
        assert len(records) == 50
        assert len(caplog.records) == 3 and sum(suppressed) == 47
        clock.t += 9.999  # still the same window: nothing more
        writer.record(DlqReason(DlqKind.invalid, "bad 50"), "vpa.events", 0, 50, None, b"{}")
        assert len(caplog.records) == 3 and sum(suppressed) == 48
        clock.t += 0.001  # the window ends at exactly 10 s: the summary, then lines again
        writer.record(DlqReason(DlqKind.invalid, "bad 51"), "vpa.events", 0, 51, None, b"{}")
    texts = [r.getMessage() for r in caplog.records]
    assert texts[3].startswith("to vpa.dlq: 48 more records in 10 s")
    assert texts[4].startswith("to vpa.dlq: invalid: bad 51")


def test_a_summary_is_written_once_a_window_has_ended_even_without_another_letter(caplog):
    clock = Clock()
    writer = DeadLetters("notifier", log_limit=1, log_window=10.0, monotonic=clock)
    with caplog.at_level(logging.WARNING, logger="vpa.dlq"):
        for i in range(4):
            writer.record(DlqReason(DlqKind.invalid, f"bad {i}"), "dashlet.tasks", 0, i, None, b"{}")
        writer.flush_log()
        assert len(caplog.records) == 1  # the window is still open
        clock.t += 10
        writer.flush_log()
    assert caplog.records[-1].getMessage().startswith("to vpa.dlq: 3 more records in 10 s")
