"""Wires the processors once, for both runners (cosmicpython's bootstrap)."""
from __future__ import annotations

from services.core.processor import Processor
from services.detector.service import Detector
from services.journey.service import Journey
from services.reminders.service import Reminders

SERVICES = ("detector", "reminders", "journey", "notifier", "dashlet")

# On Kafka a service that consumes the commands another stream service emits follows it: it takes
# no step beyond that service's progress (services.runners.kafka.feedback). No cycles.
FOLLOWS: dict[str, tuple[str, ...]] = {"reminders": ("detector",)}


def follows(service: str) -> tuple[str, ...]:
    return FOLLOWS.get(service, ())


def is_followed(service: str) -> bool:
    return any(service in upstream for upstream in FOLLOWS.values())


def processors() -> list[Processor]:
    """Every stateful service's logic, in the order the embedded runner calls them."""
    return [Detector(), Reminders(), Journey()]


def processor(name: str) -> Processor:
    for p in processors():
        if p.name == name:
            return p
    raise KeyError(name)
