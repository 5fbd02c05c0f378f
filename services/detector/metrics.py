"""The detector's own Prometheus metrics (the shared ones are in services/common/metrics.py)."""
from __future__ import annotations

from prometheus_client import Counter

REMINDERS_SKIPPED = Counter(
    "vpa_detector_followup_reminders_skipped_total",
    "Automatic inactivity reminders not requested because the at_owner is no active roster member",
)
REMINDERS_REQUESTED = Counter(
    "vpa_detector_followup_reminders_requested_total", "Automatic inactivity reminders requested",
)
