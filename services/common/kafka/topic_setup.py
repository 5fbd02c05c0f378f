"""``vpa topics create``: the contract topics on any cluster, with partitions, replication and configs.

Creates what is missing (``contract_topics`` in kafka_config.py says how each topic is set up) and
checks what exists: a partition count other than ``VPA_PARTITIONS`` breaks the co-partitioning the
per-VPA state relies on and is an error; a config that differs is reported with the command that
fixes it, but left alone (operators may have set it on purpose).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.common.kafka_config import KafkaConfig, aiokafka_kwargs, contract_topics


@dataclass
class TopicsReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _configs_of(response: Any) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for resource in response.to_object()["resources"]:
        out[resource["resource_name"]] = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    return out


async def create_contract_topics(cfg: KafkaConfig) -> TopicsReport:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import TopicAlreadyExistsError

    specs = contract_topics(cfg)
    report = TopicsReport()
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(cfg))
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in present]
        if missing:
            try:
                await admin.create_topics([NewTopic(s.name, cfg.partitions, cfg.replication_factor,
                                                    topic_configs=s.configs) for s in missing])
            except TopicAlreadyExistsError:
                pass  # a service created one at the same moment; checked below like any other
        report.created = [s.name for s in missing]
        report.existing = [s.name for s in specs if s.name in present]
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in specs])}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs])
        actual: dict[str, dict[str, str]] = {}
        for response in responses:
            actual.update(_configs_of(response))
    finally:
        await admin.close()

    for spec in specs:
        partitions = described.get(spec.name, {}).get("partitions", [])
        replicas = len(partitions[0]["replicas"]) if partitions and "replicas" in partitions[0] else None
        verb = "created" if spec.name in report.created else "exists "
        settings = ", ".join(f"{k}={actual.get(spec.name, {}).get(k, '?')}" for k in sorted(spec.configs))
        report.lines.append(f"{verb} {spec.name}: {len(partitions)} partitions, replication {replicas}, {settings}")
        if len(partitions) != cfg.partitions:
            report.errors.append(
                f"{spec.name} has {len(partitions)} partitions, expected {cfg.partitions} (VPA_PARTITIONS): the "
                f"contract topics must all have the same count, since state is co-partitioned by key")
        for key, want in sorted(spec.configs.items()):
            have = actual.get(spec.name, {}).get(key)
            if have != want:
                report.warnings.append(
                    f"{spec.name}: {key} is {have}, expected {want} (kafka-configs --alter --entity-type topics "
                    f"--entity-name {spec.name} --add-config {key}={want})")
    return report
