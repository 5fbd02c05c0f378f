"""Every topic the project uses, set up on any cluster and checked: ``vpa topics create`` and each
service's start (issue 26).

The specs (``project_topics``): the contract topics (DESIGN 4.1) and each stream service's own
(its compacted state changelog, the commands it emits), all with ``VPA_PARTITIONS`` partitions,
``VPA_REPLICATION_FACTOR`` replicas and, with three or more replicas, ``min.insync.replicas``
(``VPA_MIN_INSYNC_REPLICAS``, default 2): with ``acks=all`` a write then survives the loss of a
broker. What the cluster answers is read topic by topic: a topic the broker refuses to create is
an error with the broker's own reason. A topic that exists is checked: what risks data (fewer
replicas, a partition count that breaks co-partitioning, ``dashlet.tasks`` or a changelog not
compacted, ``at.roster`` not kept forever, a retention shorter than configured, a lower
``min.insync.replicas``) is an error; other differences are warnings. ``apply`` changes the
differing configs through the admin API after they were printed. Nothing here names a missing
topic in a metadata request (a broker with auto-create on would make it with its defaults).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from schemas.topics import Topic
from services.broker.client import Admin
from services.broker.topics import changelog_topic, feedback_topic
from services.config.kafka import KafkaConfig, TopicSpec, contract_topics

STREAM_SERVICES = ("detector", "reminders", "journey")
# Config keys whose value decides whether data survives: a difference is an error.
_RETENTION = ("retention.ms",)


@dataclass
class TopicsReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def durable(cfg: KafkaConfig) -> dict[str, str]:
    n = cfg.min_insync_replicas
    if n is None:
        n = 2 if cfg.replication_factor >= 3 else 1
    return {"min.insync.replicas": str(n)} if cfg.replication_factor > 1 or cfg.min_insync_replicas else {}


def internal_specs(cfg: KafkaConfig, services: Iterable[str] = STREAM_SERVICES) -> list[TopicSpec]:
    """Each stream service's own topics."""
    out = []
    for service in services:
        if service not in STREAM_SERVICES:
            continue
        # Compaction keeps each slot's last record; tombstones (an erased VPA) stay two days, longer
        # than a RocksDB copy may be old before it is read again from the start (12 h).
        out.append(TopicSpec(changelog_topic(cfg, service), {"cleanup.policy": "compact",
                                                             "delete.retention.ms": str(2 * 86_400_000),
                                                             **durable(cfg)}))
        out.append(TopicSpec(feedback_topic(cfg, service), {"cleanup.policy": "delete",
                                                            "retention.ms": str(7 * 86_400_000), **durable(cfg)}))
    return out


def project_topics(cfg: KafkaConfig, services: Iterable[str] = STREAM_SERVICES) -> list[TopicSpec]:
    return [TopicSpec(s.name, {**s.configs, **durable(cfg)}) for s in contract_topics(cfg)] + internal_specs(cfg, services)


_TOPIC_OVERRIDE = 1  # DescribeConfigs config_source: DYNAMIC_TOPIC_CONFIG


def _configs_of(response: Any) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(topic -> every config value, topic -> the values set on the topic itself)."""
    values: dict[str, dict[str, str]] = {}
    overrides: dict[str, dict[str, str]] = {}
    for resource in response.to_object()["resources"]:
        name = resource["resource_name"]
        values[name] = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
        overrides[name] = {e["config_names"]: e["config_value"] for e in resource["config_entries"]
                           if e.get("config_source", 0 if e.get("is_default") else _TOPIC_OVERRIDE) == _TOPIC_OVERRIDE
                           and not e.get("read_only") and e["config_value"] is not None}
    return values, overrides


def _created_errors(response: Any) -> dict[str, str]:
    """topic -> the broker's reason, for each topic it refused to create."""
    obj = response.to_object()
    out = {}
    for entry in obj.get("topic_errors") or obj.get("topics") or []:
        name = entry.get("topic") or entry.get("name")
        code = entry.get("error_code", 0)
        if code and code != 36:  # 36: TOPIC_ALREADY_EXISTS (made meanwhile by another service)
            from aiokafka.errors import for_code

            message = entry.get("error_message") or ""
            out[name] = f"{for_code(code).__name__}: {message}".rstrip(": ")
    return out


def _retention(value: Optional[str]) -> float:
    """A retention.ms as a comparable number (-1: forever)."""
    if value is None:
        return float("nan")
    number = float(value)
    return float("inf") if number < 0 else number


def _check(spec: TopicSpec, cfg: KafkaConfig, partitions: int, replicas: Optional[int], actual: dict[str, str],
           report: TopicsReport) -> list[tuple[str, str]]:
    """Errors and warnings for one topic; returns the (key, wanted value) pairs that differ."""
    name = spec.name
    if partitions != cfg.partitions:
        report.errors.append(f"{name} has {partitions} partitions, expected {cfg.partitions} (VPA_PARTITIONS): the "
                             "project's topics must all have the same count, since state is co-partitioned by key "
                             "(the count cannot be lowered; recreate the topic or set VPA_PARTITIONS to match)")
    if replicas is not None and replicas < cfg.replication_factor:
        report.errors.append(f"{name} has {replicas} replicas, expected {cfg.replication_factor} "
                             "(VPA_REPLICATION_FACTOR): a broker lost is data lost; add replicas with "
                             "kafka-reassign-partitions")
    differing = []
    for key, want in sorted(spec.configs.items()):
        have = actual.get(key)
        if have == want:
            continue
        differing.append((key, want))
        text = f"{name}: {key} is {have}, expected {want}"
        risky = (key == "cleanup.policy" and want == "compact" and have != "compact") or \
                (key == "cleanup.policy" and name == Topic.roster and have != want) or \
                (key in _RETENTION and _retention(have) < _retention(want)) or \
                (key == "min.insync.replicas" and int(have or 1) < int(want))
        (report.errors if risky else report.warnings).append(
            text + (" (data may be lost)" if risky else "") + "; `vpa topics create --apply` sets it")
    return differing


async def _described(raw: Any, names: list[str], wait: bool, timeout: float = 30.0) -> dict[str, dict]:
    """Each topic's metadata; a topic created a moment ago shows its partitions once every broker
    has heard of it, so with ``wait`` it is asked again until they show (or the time is up)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        described = {t["topic"]: t for t in await raw.describe_topics(names)} if names else {}
        pending = [n for n in names if not described.get(n, {}).get("partitions")
                   or any(p.get("leader", -1) < 0 for p in described[n]["partitions"])]
        if not pending or not wait or time.monotonic() > deadline:
            return described
        await asyncio.sleep(0.2)


async def setup_topics(cfg: KafkaConfig, specs: Optional[list[TopicSpec]] = None, apply: bool = False,
                       create: bool = True) -> TopicsReport:
    """Create what is missing (``create``), check everything, and with ``apply`` change differing configs."""
    from aiokafka.admin import NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    specs = specs if specs is not None else project_topics(cfg)
    report = TopicsReport()
    async with Admin(cfg) as admin:
        raw = admin.raw
        present = set(await raw.list_topics())
        missing = [s for s in specs if s.name not in present]
        refused: dict[str, str] = {}
        if missing and create:
            response = await raw.create_topics([NewTopic(s.name, cfg.partitions, cfg.replication_factor,
                                                         topic_configs=s.configs) for s in missing])
            refused = _created_errors(response)
            report.created = [s.name for s in missing if s.name not in refused]
        elif missing:
            refused = {s.name: "missing" for s in missing}
        by_reason: dict[str, list[str]] = {}
        for name, reason in refused.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():  # the broker's reason once, with every topic it concerns
            listed = ", ".join(names)
            report.errors.append(f"{listed} could not be created: {reason}" if reason != "missing"
                                 else f"{listed} missing")
        report.existing = [s.name for s in specs if s.name in present]
        known = [s for s in specs if s.name in present or s.name in report.created]
        described = await _described(raw, [s.name for s in known], wait=bool(report.created))
        actual: dict[str, dict[str, str]] = {}
        overrides: dict[str, dict[str, str]] = {}
        if known:
            for response in await raw.describe_configs([ConfigResource(ConfigResourceType.TOPIC, s.name)
                                                        for s in known]):
                values, own = _configs_of(response)
                actual.update(values)
                overrides.update(own)
        to_apply: dict[str, dict[str, str]] = {}
        for spec in specs:
            if spec.name in refused:
                report.lines.append(f"refused {spec.name}: {refused[spec.name]}")
                continue
            parts = described.get(spec.name, {}).get("partitions", [])
            replicas = min((len(p.get("replicas", [])) for p in parts), default=None)
            verb = "created" if spec.name in report.created else "exists "
            have = actual.get(spec.name, {})
            settings = ", ".join(f"{k}={have.get(k, '?')}" for k in sorted(spec.configs))
            report.lines.append(f"{verb} {spec.name}: {len(parts)} partitions, replication {replicas}, {settings}")
            differing = _check(spec, cfg, len(parts), replicas, have, report)
            if differing:
                to_apply[spec.name] = dict(differing)
        if apply and to_apply:
            # AlterConfigs replaces a topic's whole set of overrides: the ones it has, with the changes
            resources = [ConfigResource(ConfigResourceType.TOPIC, name, configs={**overrides.get(name, {}), **changes})
                         for name, changes in to_apply.items()]
            await raw.alter_configs(resources)
            report.applied = [f"{name}: {k}={v}" for name, changes in to_apply.items() for k, v in changes.items()]
            # what was fixed is no longer an error or a warning
            fixed = {f"{n}: {k} is" for n, ch in to_apply.items() for k in ch}
            report.errors = [e for e in report.errors if not any(e.startswith(f) for f in fixed)]
            report.warnings = [w for w in report.warnings if not any(w.startswith(f) for f in fixed)]
    return report


async def ensure_topics(cfg: KafkaConfig, services: Iterable[str] = ()) -> TopicsReport:
    """A service's start (and ``vpa simulate --kafka``, ``vpa erase``): the contract topics and the
    own topics of ``services`` exist as specified; what is missing is created. Only errors that
    stop it from working count here (a missing topic the cluster refused to make, a partition
    count that breaks co-partitioning); the rest is ``vpa topics create``'s to report."""
    report = await setup_topics(cfg, project_topics(cfg, services))
    report.errors = [e for e in report.errors if "could not be created" in e or e.endswith(" missing")
                     or " partitions, expected " in e]
    return report
