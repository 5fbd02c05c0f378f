"""Prometheus metrics shared by every service and both runners (scraped by deploy/prometheus)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("vpa_events_processed_total", "Envelopes handled by a service", ["service", "type"])
DLQ = Counter("vpa_dlq_messages_total", "Messages sent to vpa.dlq", ["service", "kind"])
UNKNOWN = Counter("vpa_unknown_types_total", "Well-formed envelopes of an unknown type, skipped", ["service"])
DUPLICATES = Counter("vpa_duplicate_events_total", "Repeated event_ids ignored", ["service"])
REJECTED = Counter("vpa_commands_rejected_total", "Commands rejected by a rule", ["service", "type"])
TASKS = Counter("vpa_tasks_emitted_total", "Task versions emitted on dashlet.tasks", ["service"])
TIMERS = Counter("vpa_timers_fired_total", "Timers fired", ["service", "name"])
PROCESSING = Histogram("vpa_processing_seconds", "Time to handle one envelope", ["service"],
                       buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
STORE_WRITES = Counter("vpa_store_writes_total", "Task versions written to the dashlet store (changed rows)")
STORE_WRITE_ERRORS = Counter("vpa_store_write_errors_total", "Failed batch writes to the dashlet store")
STORE_BATCH = Histogram("vpa_store_batch_size", "Task versions per store batch",
                        buckets=(1, 5, 10, 50, 100, 250, 500, 1000))
STREAM_TIME = Gauge("vpa_stream_time_seconds", "Stream clock (unix seconds) per partition", ["service", "partition"])
CONSUMER_LAG = Gauge("vpa_consumer_lag", "Messages behind the high watermark", ["service", "topic", "partition"])


# ---- declared for the engine; the runner sets them (not implemented yet: issue 9/13) -------------
STREAM_CLOCK_LAG = Gauge("vpa_stream_clock_lag_seconds", "Wall clock minus the stream clock of a partition",
                         ["service", "partition"])
PENDING_TIMERS = Gauge("vpa_pending_timers", "Timers set and not yet fired", ["service", "partition"])
END_TO_END_LATENCY = Histogram(
    "vpa_end_to_end_latency_seconds",
    "From an input's occurred_at (source=occurred_at) or its arrival in Kafka (source=ingested) to the "
    "task version committed in the dashlet store", ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0))

# ---- from the dashlet store (services/notifier/store_gauges.py); every notifier reports the same
# store-wide figures, so aggregate them with max(), not sum() ------------------------------------
OPEN_TASKS = Gauge("vpa_open_tasks", "Live tasks (waiting or open) in the dashlet store", ["tab", "status"])
OLDEST_OPEN_TASK_AGE = Gauge("vpa_oldest_open_task_age_seconds",
                             "How long the oldest open task of a tab has been actionable (0: none open)", ["tab"])
STALE_OPEN_TASKS = Gauge("vpa_open_tasks_older_than_working_day",
                         "Open tasks actionable for more than one working day (not worked in an afternoon)", ["tab"])
REMINDERS_DUE = Gauge("vpa_reminders_due",
                      "Live reminders past due_at; overdue: due for longer than the longest shift", ["state"])
HANDOVERS = Gauge("vpa_handovers_in_force", "Live tasks assigned to someone other than their owner", ["tab"])
OPEN_WORK_READ_ERRORS = Counter("vpa_open_work_read_errors_total", "Failed reads of the open-work figures from the store")

DLQ_KINDS = ("undecodable", "invalid", "rejected", "error")


def initialise(service: str) -> None:
    """Export the service's DLQ series at 0 from the start, so ``increase()`` sees the first write."""
    for kind in DLQ_KINDS:
        DLQ.labels(service, kind)


def dlq_kind(reason: str) -> str:
    return reason.split(":", 1)[0] if ":" in reason else "other"
