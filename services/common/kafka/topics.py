"""Topic names and their creation: the contract topics (DESIGN 4.1) and each service's own.

Every topic a service reads or writes exists, with the partition count of ``vpa.events``, before
its consumer joins the group: a topic created lazily by the broker gets the broker's defaults, and a service
whose first assignment sees a topic missing can wait minutes for the next metadata refresh.
"""
from __future__ import annotations

from typing import Iterable, Optional

from services.common.kafka_config import KafkaConfig, aiokafka_kwargs, contract_topics

DLQ_TOPIC = "vpa.dlq"
TASKS_TOPIC = "dashlet.tasks"
CO_PARTITIONED = ("vpa.events", "vpa.commands")  # keyed by vpa_id, partition p of each belongs together
COMPACTED = {"cleanup.policy": "compact"}


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


def internal_topics(cfg: KafkaConfig, service: str, follows: Iterable[str] = ()) -> dict[str, dict]:
    """Topics of ``service`` beyond the contract, with their configs."""
    topics: dict[str, dict] = {feedback_topic(cfg, u): {} for u in follows}
    if service != "notifier":
        topics[feedback_topic(cfg, service)] = {}
        topics[changelog_topic(cfg, service)] = COMPACTED
    return topics


async def ensure_topics(cfg: KafkaConfig, topics: Optional[dict[str, dict]] = None) -> None:
    """Create missing topics (the contract ones and ``topics``), all with ``cfg.partitions``.

    A topic that exists with another partition count than ``vpa.events`` breaks co-partitioning:
    that is an error the operator must fix, so it is reported, not papered over."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    wanted: dict[str, dict] = {s.name: s.configs for s in contract_topics(cfg)}  # as `vpa topics create`
    wanted.update(topics or {})
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(cfg))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        for name in missing:
            try:
                await admin.create_topics([NewTopic(name, cfg.partitions, cfg.replication_factor,
                                                    topic_configs=wanted[name])])
            except TopicAlreadyExistsError:
                pass  # another service created it at the same moment
        described = await admin.describe_topics([t for t in wanted if t != "at.roster"])
        counts = {d["topic"]: len(d["partitions"]) for d in described if d.get("partitions")}
        base = counts.get("vpa.events")
        wrong = sorted(t for t, n in counts.items() if base is not None and n != base)
        if wrong:
            raise RuntimeError(f"topics {', '.join(wrong)} do not have the {base} partitions of vpa.events; "
                               "co-partitioned topics must have the same partition count")
    finally:
        await admin.close()


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
