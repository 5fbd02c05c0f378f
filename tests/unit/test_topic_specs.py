"""How `vpa topics create` and the services set up the contract topics (DESIGN 4.1)."""
from __future__ import annotations

from services.common.kafka_config import CONTRACT_TOPICS, KafkaConfig, contract_topics

DAY_MS = 86_400_000


def specs(**kw) -> dict[str, dict[str, str]]:
    return {s.name: s.configs for s in contract_topics(KafkaConfig(**kw))}


def test_every_contract_topic_has_a_spec():
    assert list(specs()) == list(CONTRACT_TOPICS)


def test_roster_keeps_every_delta_forever_and_is_not_compacted():
    # absences registered and ended are separate events under one key (the initials):
    # compaction would keep only a member's last event
    assert specs()["at.roster"] == {"cleanup.policy": "delete", "retention.ms": "-1"}


def test_tasks_are_compacted_to_the_latest_version_per_task():
    assert specs()["dashlet.tasks"] == {"cleanup.policy": "compact"}


def test_retention_of_events_commands_and_dlq_follows_the_settings():
    default = specs()
    assert default["vpa.events"]["retention.ms"] == str(30 * DAY_MS) == default["vpa.commands"]["retention.ms"]
    assert default["vpa.dlq"]["retention.ms"] == str(14 * DAY_MS)
    custom = specs(events_retention_days=7, dlq_retention_days=0.5)
    assert custom["vpa.events"]["retention.ms"] == str(7 * DAY_MS)
    assert custom["vpa.dlq"]["retention.ms"] == str(DAY_MS // 2)
    assert specs(events_retention_days=0)["vpa.events"]["retention.ms"] == "-1"  # 0 = keep forever


def test_min_insync_replicas_only_where_a_replica_may_fail():
    assert all("min.insync.replicas" not in c for c in specs(replication_factor=2).values())
    assert all(c["min.insync.replicas"] == "2" for c in specs(replication_factor=3).values())
