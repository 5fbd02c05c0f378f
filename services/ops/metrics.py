"""Prometheus metrics shared by every service and both runners (scraped by deploy/prometheus)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import Counter, Gauge, Histogram

from schemas.dead_letters import DlqKind

EVENTS = Counter("vpa_events_processed_total", "Envelopes handled by a service", ["service", "type"])
DLQ = Counter("vpa_dlq_messages_total", "Messages sent to vpa.dlq", ["service", "kind"])
DLQ_LOG_SUPPRESSED = Counter("vpa_dlq_log_lines_suppressed_total",
                             "Records sent to vpa.dlq without a log line of their own (the log's rate bound)", ["service"])
UNKNOWN = Counter("vpa_unknown_types_total", "Well-formed envelopes of an unknown type, skipped", ["service"])
DUPLICATES = Counter("vpa_duplicate_events_total", "Repeated event_ids ignored", ["service"])
REJECTED = Counter("vpa_commands_rejected_total", "Commands rejected by a rule", ["service", "type"])
TASKS = Counter("vpa_tasks_emitted_total", "Task versions emitted on dashlet.tasks", ["service"])
TIMERS = Counter("vpa_timers_fired_total", "Timers fired", ["service", "name"])
PROCESSING = Histogram("vpa_processing_seconds", "Time to handle one envelope", ["service"],
                       buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
STORE_WRITES = Counter("vpa_store_writes_total", "Task versions written to the dashlet store (changed rows)")
STORE_WRITE_ERRORS = Counter("vpa_store_write_errors_total", "Failed batch writes to the dashlet store")
STORE_UP = Gauge("vpa_store_up", "1 while the notifier's last write to the dashlet store succeeded, else 0")
BROKER_UP = Gauge("vpa_broker_up", "1 while the service's last probe of the Kafka brokers answered, else 0")
BROKERS_KNOWN = Gauge("vpa_brokers_known", "Kafka brokers the service has seen in the cluster's metadata")
BROKERS_REACHABLE = Gauge("vpa_brokers_reachable", "Of those, the brokers that accepted a connection at the last probe")
STORE_BATCH = Histogram("vpa_store_batch_size", "Task versions per store batch",
                        buckets=(1, 5, 10, 50, 100, 250, 500, 1000))
STREAM_TIME = Gauge("vpa_stream_time_seconds", "Stream clock (unix seconds) per partition", ["service", "partition"])
CONSUMER_LAG = Gauge("vpa_consumer_lag", "Messages behind the high watermark", ["service", "topic", "partition"])


# ---- declared for the engine; not set yet (issue 13 item 1) ---------------------------------------
END_TO_END_LATENCY = Histogram(
    "vpa_end_to_end_latency_seconds",
    "From an input's occurred_at (source=occurred_at) or its arrival in Kafka (source=ingested) to the "
    "task version committed in the dashlet store", ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0))

# ---- from the dashlet store (services/store/gauges.py); every notifier reports the same
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

def initialise(service: str) -> None:
    """Export the service's DLQ series at 0 from the start, so ``increase()`` sees the first write."""
    for kind in DlqKind:
        DLQ.labels(service, kind.value)
    DLQ_LOG_SUPPRESSED.labels(service)


def dlq_log_suppressed(service: str) -> Callable[[int], None]:
    """What a ``DeadLetters`` writer calls for the log lines it leaves out."""
    return DLQ_LOG_SUPPRESSED.labels(service).inc

# Counts the service cores report in ``Result.counts`` (they never import prometheus).
RULE_COUNTS = {
    "detector_followup_reminders_skipped": Counter(
        "vpa_detector_followup_reminders_skipped_total",
        "Automatic inactivity reminders not requested because the at_owner is no active roster member"),
    "detector_followup_reminders_requested": Counter(
        "vpa_detector_followup_reminders_requested_total", "Automatic inactivity reminders requested"),
}


class MetricSink:
    """Turns an engine's counts into Prometheus samples; label children are resolved once."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._children: dict[tuple, object] = {}

    def _child(self, key: tuple):  # noqa: ANN202 - a prometheus child of any kind
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._resolve(key)
        return child

    def _resolve(self, key: tuple):  # noqa: ANN202
        name, *labels = key
        if name == "events":
            return EVENTS.labels(*labels)
        if name == "tasks":
            return TASKS.labels(*labels)
        if name == "timers":
            return TIMERS.labels(*labels)
        if name == "rejected":
            return REJECTED.labels(*labels)
        if name == "duplicates":
            return DUPLICATES.labels(self.service)
        if name == "unknown_types":
            return UNKNOWN.labels(self.service)
        if name == "dlq":
            return DLQ.labels(self.service, *labels)
        if name in RULE_COUNTS:
            return RULE_COUNTS[name]
        return None

    def apply(self, counts) -> None:  # noqa: ANN001 - a Counter of (name, *labels) -> n
        for key, n in counts.items():
            child = self._child(key)
            if child is not None and n:
                child.inc(n)


# ---- the Kafka runner's own gauges ----------------------------------------------------------------

PENDING_TIMERS = Gauge("vpa_pending_timers", "Timers set and not yet fired, per partition", ["service", "partition"])
STREAM_CLOCK_LAG = Gauge("vpa_stream_clock_lag_seconds", "Wall clock minus a partition's clock",
                         ["service", "partition"])
INPUT_UNREADABLE = Gauge("vpa_input_unreadable",
                         "1 while a partition of an input holds a batch the client cannot read (it stops there)",
                         ["service", "topic", "partition"])
UPSTREAM_TIMEOUTS = Counter("vpa_upstream_wait_timeouts_total",
                            "Times a partition went on without an upstream service's progress", ["service", "upstream"])


def publish_engine(service: str, partition: str, engine) -> None:  # noqa: ANN001 - a PartitionEngine
    """One engine's gauges, the same in both runners: pending timers, stream time and how far it is
    behind the wall clock."""
    import time as _time

    PENDING_TIMERS.labels(service, partition).set(len(engine.timers))
    if engine.clock is not None:
        t = engine.clock.timestamp()
        STREAM_TIME.labels(service, partition).set(t)
        STREAM_CLOCK_LAG.labels(service, partition).set(max(0.0, _time.time() - t))


class StreamMetrics(MetricSink):
    """A stream service's metrics on Kafka: the engine's counts plus per-partition gauges."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self._processing = PROCESSING.labels(service)
        self._blocked: set[tuple[str, str]] = set()

    def processing(self, seconds: float) -> None:
        self._processing.observe(seconds)

    def partition(self, worker) -> None:  # noqa: ANN001 - a PartitionWorker
        publish_engine(self.service, str(worker.p), worker.engine)

    def lag(self, worker) -> None:  # noqa: ANN001
        for buf in worker.inputs.values():
            end = worker.d.stable_end(buf.topic, worker.p)
            done = buf.done_offset if buf.done_offset is not None else buf.fetched_to
            if end is not None:
                CONSUMER_LAG.labels(self.service, buf.topic, str(worker.p)).set(max(0, end - (done or 0)))

    def unreadable(self, batches) -> None:  # noqa: ANN001 - client.Unreadable items
        now = {(b.topic, str(b.partition)) for b in batches}
        for key in self._blocked - now:
            INPUT_UNREADABLE.labels(self.service, *key).set(0)
        for key in now:
            INPUT_UNREADABLE.labels(self.service, *key).set(1)
        self._blocked = now

    def upstream_timeout(self, upstream: str) -> None:
        UPSTREAM_TIMEOUTS.labels(self.service, upstream).inc()
