"""Serialising simulated items: one JSONL line each, and the Kafka record (topic, key, value)."""
from __future__ import annotations

import json
from typing import Optional, Union

from schemas.envelope import topic_for_type
from schemas.topics import Topic

Item = Union[dict, bytes]  # an envelope, or a hostile line (raw bytes)


def to_line(item: Item) -> bytes:
    """The line without its newline: compact JSON, UTF-8; hostile lines as they are."""
    if isinstance(item, bytes):
        return item
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_of(env: dict) -> tuple[str, Optional[bytes]]:
    """Topic and key of an envelope (DESIGN 4.1): vpa_id, or the initials on ``at.roster``."""
    topic = topic_for_type(env["type"]) or Topic.events
    if topic == Topic.roster:
        key = env["data"]["initials"]
    else:
        key = env.get("vpa_id")
    return topic, key.encode("utf-8") if key else None
