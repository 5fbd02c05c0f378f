"""The names of each service's own topics (the contract's are ``schemas.topics.Topic``), DLQ headers,
erase markers.

How topics are created and checked: ``topic_setup``.
"""
from __future__ import annotations

from typing import Optional

from services.config.kafka import KafkaConfig

def app_id(cfg: KafkaConfig, service: str) -> str:
    return f"{cfg.group_prefix}-{service}"


def feedback_topic(cfg: KafkaConfig, service: str) -> str:
    """Where ``service`` puts the commands it emits, in order, with its progress marks."""
    return f"{app_id(cfg, service)}-commands"


def state_table(service: str) -> str:
    return f"{service}-state"


def changelog_topic(cfg: KafkaConfig, service: str) -> str:
    """The changelog of the service's state (the name the faust runner gave it, so a deployment keeps it)."""
    return f"{app_id(cfg, service)}-{state_table(service)}-changelog"


def dlq_headers(reason: str, service: str, topic: str, partition: int, offset: int,
                truncated_from: Optional[int] = None) -> list[tuple[str, bytes]]:
    headers = [
        ("reason", reason.encode("utf-8", "replace")[:4000]), ("service", service.encode()),
        ("origin_topic", topic.encode()), ("origin_partition", str(partition).encode()),
        ("origin_offset", str(offset).encode()),
    ]
    if truncated_from is not None:
        headers.append(("truncated_from", str(truncated_from).encode()))
    return headers


DLQ_MAX_VALUE = 512 * 1024  # a DLQ copy must fit the producer's request size with its headers


def dlq_value(value: Optional[bytes]) -> tuple[bytes, Optional[int]]:
    """The value to put on the DLQ, truncated when too large (with the original size)."""
    value = value or b""
    if len(value) > DLQ_MAX_VALUE:
        return value[:DLQ_MAX_VALUE], len(value)
    return value, None


# An erasure on dashlet.tasks (beside a tombstone for every task the service still knew): the key
# "erase:<vpa_id>" with {"erase_vpa": vpa_id}. The notifier deletes every stored task of the VPA,
# puts a tombstone for each on this compacted topic, and then one for the marker itself.
ERASE_PREFIX = "erase:"


def erase_marker(vpa_id: str) -> tuple[bytes, bytes]:
    import json

    return (ERASE_PREFIX + vpa_id).encode(), json.dumps({"erase_vpa": vpa_id}).encode()


def erased_vpa(key: Optional[bytes], value: Optional[bytes]) -> Optional[str]:
    """The VPA an erase marker names, or None for any other record."""
    import json

    if not key or not key.startswith(ERASE_PREFIX.encode()) or not value:
        return None
    try:
        vpa_id = json.loads(value).get("erase_vpa")
    except (ValueError, AttributeError):
        return None
    return vpa_id if isinstance(vpa_id, str) and vpa_id else None
