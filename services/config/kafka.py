"""Connection settings for every Kafka client, from the environment. The broker adapter turns them
into client arguments (``services.broker.client.aiokafka_kwargs``).

Security follows Kafka's own vocabulary: ``KAFKA_SECURITY_PROTOCOL`` is PLAINTEXT, SSL,
SASL_PLAINTEXT or SASL_SSL; SASL needs a mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), a user
name and a password; TLS takes a CA file and, for mutual TLS, a client certificate and key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Optional

from pydantic import SecretStr, field_validator, model_validator

from schemas.topics import Topic
from services.config.clock_mode import ClockMode
from services.config.loader import EnvModel, load, setting

DEFAULT_METRICS_PORTS = {"detector": 9101, "reminders": 9102, "journey": 9103, "notifier": 9104}
_HOST_PORT = re.compile(r"^[^\s:,]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class StateStore(StrEnum):
    """Where a stream service keeps its table locally (its changelog topic is the backup either way)."""

    memory = "memory"  # in the process: a worker that takes a partition over reads its whole changelog
    rocksdb = "rocksdb"  # RocksDB (rocksdict) under VPA_STATE_DIR: a worker reads its local copy plus the changelog tail


class Compression(StrEnum):
    """How the project's producers compress record batches (every codec is readable either way)."""

    none = "none"
    gzip = "gzip"
    snappy = "snappy"
    lz4 = "lz4"
    zstd = "zstd"


class IsolationLevel(StrEnum):
    """Which records a consumer of an input sees: only those of committed transactions (and
    non-transactional ones), or also those of open and aborted transactions."""

    read_committed = "read_committed"
    read_uncommitted = "read_uncommitted"


def _one_of(enum: type[StrEnum]) -> str:
    return "one of " + ", ".join(m.value for m in enum)


class KafkaConfig(EnvModel):
    bootstrap_servers: str = setting("127.0.0.1:9092", "comma-separated HOST:PORT pairs, e.g. broker1:9092,broker2:9092",
                                     env="KAFKA_BOOTSTRAP_SERVERS")
    partitions: int = setting(4, "a positive integer", gt=0)
    replication_factor: int = setting(1, "a positive integer", gt=0)
    # in-sync replicas a write with acks=all needs; unset: 2 with 3 or more replicas, else 1
    min_insync_replicas: Optional[int] = setting(None, "a positive integer", gt=0)
    # catchup: stream time through a backlog, then the wall clock (a first deployment on a history)
    clock_mode: ClockMode = setting(ClockMode.catchup, _one_of(ClockMode), env="VPA_CLOCK")
    # how long a partition waits for an input topic that has nothing buffered before it goes on
    # without it (Kafka Streams' max.task.idle.ms): merging inputs in time order needs it
    input_idle_seconds: float = setting(0.5, "a number of seconds, 0 or more", ge=0)
    # how long the reminders service waits for the detector's progress before it goes on alone
    upstream_wait_seconds: float = setting(30.0, "a positive number of seconds", gt=0)
    # static group membership (KIP-345): a worker restarted with the same id takes its partitions
    # back at once instead of after the session timeout; unique per worker of a service
    instance_id: Optional[str] = setting(None, "letters, digits, '.', '_' or '-'", pattern=r"^[A-Za-z0-9._-]+$")
    # RocksDB by default: a restarted worker reads its local copy and the changelog's tail, not all of it
    state_store: StateStore = setting(StateStore.rocksdb, _one_of(StateStore))
    state_dir: str = setting("var/state", "a folder path")
    group_prefix: str = setting("vpa", "a consumer group prefix of letters, digits, '.', '_' or '-'",
                                pattern=r"^[A-Za-z0-9._-]+$")
    # None: the service's default port (DEFAULT_METRICS_PORTS); 0: no metrics endpoint
    metrics_port: Optional[int] = setting(None, "a TCP port 0-65535 (0 = off)", ge=0, le=65535)
    wall_tick_seconds: float = setting(1.0, "a positive number of seconds", gt=0)
    # how soon a dead worker's partitions move on
    session_timeout_seconds: float = setting(60.0, "a positive number of seconds", gt=0)
    # how often a partition commits its inputs' offsets (its stored state says where it continues)
    commit_interval_seconds: float = setting(2.8, "a positive number of seconds", gt=0)
    # retention of the topics `vpa topics create` and the services create (0: keep forever)
    events_retention_days: float = setting(30.0, "a number of days, 0 or more (0 = keep forever)", ge=0)
    dlq_retention_days: float = setting(14.0, "a number of days, 0 or more (0 = keep forever)", ge=0)
    # client security (README "Running against a real cluster")
    security_protocol: SecurityProtocol = setting(SecurityProtocol.PLAINTEXT, _one_of(SecurityProtocol),
                                                  env="KAFKA_SECURITY_PROTOCOL")
    sasl_mechanism: SaslMechanism = setting(SaslMechanism.PLAIN, _one_of(SaslMechanism), env="KAFKA_SASL_MECHANISM")
    sasl_username: Optional[str] = setting(None, "a SASL user name", env="KAFKA_SASL_USERNAME")
    sasl_password: Optional[SecretStr] = setting(None, "a SASL password", env="KAFKA_SASL_PASSWORD", secret=True)
    ssl_cafile: Optional[str] = setting(None, "the path of a readable PEM file of CA certificates",
                                        env="KAFKA_SSL_CAFILE")
    ssl_certfile: Optional[str] = setting(None, "the path of a readable PEM client certificate",
                                          env="KAFKA_SSL_CERTFILE")
    ssl_keyfile: Optional[str] = setting(None, "the path of a readable PEM private key", env="KAFKA_SSL_KEYFILE")
    ssl_key_password: Optional[SecretStr] = setting(None, "the password of the private key",
                                                    env="KAFKA_SSL_KEY_PASSWORD", secret=True)
    ssl_check_hostname: bool = setting(True, "true or false", env="KAFKA_SSL_CHECK_HOSTNAME")
    # what the project's producers write (chosen by measurement: docs/benchmarks.md)
    compression: Compression = setting(Compression.zstd, _one_of(Compression), env="VPA_KAFKA_COMPRESSION")
    # what every consumer of an input reads: aborted transactions never become tasks
    isolation_level: IsolationLevel = setting(IsolationLevel.read_committed, _one_of(IsolationLevel),
                                              env="VPA_KAFKA_ISOLATION_LEVEL")

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if not all(_HOST_PORT.match(p) for p in parts):
            raise ValueError("not a list of HOST:PORT")
        return ",".join(parts)

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _readable(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            raise ValueError(f"{value!r} is not a readable file")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "KafkaConfig":
        if self.security_protocol.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD: both are needed when "
                             f"KAFKA_SECURITY_PROTOCOL is {self.security_protocol.value}")
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"VPA_MIN_INSYNC_REPLICAS: expected at most VPA_REPLICATION_FACTOR "
                             f"({self.replication_factor}), got {self.min_insync_replicas}")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("KAFKA_SSL_CERTFILE: expected a client certificate to go with KAFKA_SSL_KEYFILE")
        return self

    @property
    def heartbeat_interval_seconds(self) -> float:
        return min(3.0, self.session_timeout_seconds / 3)

    @classmethod
    def from_env(cls, service: str, env: Optional[dict[str, str]] = None) -> "KafkaConfig":
        cfg = load(cls, env)
        if cfg.metrics_port is None:
            cfg = cfg.model_copy(update={"metrics_port": DEFAULT_METRICS_PORTS.get(service)})
        return cfg


@dataclass(frozen=True)
class TopicSpec:
    name: str
    configs: dict[str, str]


def _retention_ms(days: float) -> str:
    return "-1" if days == 0 else str(int(days * 86_400_000))


def contract_topics(cfg: KafkaConfig) -> list[TopicSpec]:
    """The contract topics (DESIGN 4.1) with the configs they need; all get ``cfg.partitions``
    partitions, since the per-VPA state relies on co-partitioning by key."""
    durable: dict[str, str] = {}  # min.insync.replicas: added by topic_setup for every topic alike
    events = _retention_ms(cfg.events_retention_days)
    return [
        TopicSpec(Topic.events, {"cleanup.policy": "delete", "retention.ms": events, **durable}),
        # Delta events (member upserts, absences registered and ended) keyed by initials:
        # compaction would keep only a member's last event and lose its absences, and every
        # service rebuilds the roster from the whole topic, so it is kept whole and forever.
        TopicSpec(Topic.roster, {"cleanup.policy": "delete", "retention.ms": "-1", **durable}),
        TopicSpec(Topic.commands, {"cleanup.policy": "delete", "retention.ms": events, **durable}),
        # the latest version of every task, keyed by task_id: enough to rebuild the store
        TopicSpec(Topic.tasks, {"cleanup.policy": "compact", **durable}),
        TopicSpec(Topic.dlq, {"cleanup.policy": "delete", "retention.ms": _retention_ms(cfg.dlq_retention_days),
                              **durable}),
    ]
