"""How `vpa topics create` and the services set up the contract topics (DESIGN 4.1)."""
from __future__ import annotations

from schemas.topics import CONTRACT_TOPICS
from services.broker.topic_setup import TopicsReport, _check, _created_errors, project_topics
from services.config.kafka import KafkaConfig, contract_topics

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


def project(**kw) -> dict[str, dict[str, str]]:
    return {s.name: s.configs for s in project_topics(KafkaConfig(**kw))}


def test_every_topic_the_project_makes_is_specified_the_services_own_included():
    names = set(project(group_prefix="p"))
    assert names == set(CONTRACT_TOPICS) | {f"p-{s}-{s}-state-changelog" for s in ("detector", "reminders", "journey")} \
        | {f"p-{s}-commands" for s in ("detector", "reminders", "journey")}
    changelog = project(group_prefix="p")["p-detector-detector-state-changelog"]
    assert changelog["cleanup.policy"] == "compact" and int(changelog["delete.retention.ms"]) >= DAY_MS


def test_min_insync_replicas_on_every_topic_where_a_replica_may_fail():
    assert all("min.insync.replicas" not in c for c in project().values())
    assert all(c["min.insync.replicas"] == "1" for c in project(replication_factor=2).values())
    assert all(c["min.insync.replicas"] == "2" for c in project(replication_factor=3).values())
    assert all(c["min.insync.replicas"] == "3" for c in project(replication_factor=5, min_insync_replicas=3).values())


def check(name: str, have: dict[str, str], partitions: int = 4, replicas: int = 3, **kw) -> TopicsReport:
    cfg = KafkaConfig(replication_factor=3, **kw)
    spec = next(s for s in project_topics(cfg) if s.name == name)
    report = TopicsReport()
    _check(spec, cfg, partitions, replicas, {**spec.configs, **have}, report)
    return report


def test_what_risks_data_on_an_existing_topic_is_an_error_and_the_rest_a_warning():
    assert check("vpa.events", {}).ok
    assert "replicas" in check("vpa.events", {}, replicas=1).errors[0]
    assert "partitions" in check("vpa.events", {}, partitions=6).errors[0]
    assert check("dashlet.tasks", {"cleanup.policy": "delete"}).errors  # the store cannot be rebuilt
    assert check("at.roster", {"retention.ms": str(7 * DAY_MS)}).errors  # the roster would disappear
    assert check("vpa.events", {"retention.ms": str(DAY_MS)}).errors  # shorter than configured
    assert check("vpa.events", {"min.insync.replicas": "1"}).errors
    longer = check("vpa.events", {"retention.ms": "-1"})  # kept longer than configured: only a warning
    assert longer.ok and longer.warnings
    assert check("vpa.dlq", {"cleanup.policy": "compact"}).warnings


def test_the_brokers_own_reason_is_read_for_each_topic_it_refused():
    from types import SimpleNamespace

    response = SimpleNamespace(to_object=lambda: {"topic_errors": [
        {"topic": "vpa.events", "error_code": 38, "error_message": "Replication factor: 3 larger than available brokers: 1."},
        {"topic": "vpa.dlq", "error_code": 36, "error_message": "exists"}, {"topic": "at.roster", "error_code": 0}]})
    refused = _created_errors(response)
    assert refused == {"vpa.events": "InvalidReplicationFactorError: Replication factor: 3 larger than available "
                                     "brokers: 1."}
