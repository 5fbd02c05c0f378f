"""Connection settings for the Kafka runner, from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass

CONTRACT_TOPICS = ("vpa.events", "at.roster", "vpa.commands", "dashlet.tasks", "vpa.dlq")
DEFAULT_METRICS_PORTS = {"detector": 9101, "reminders": 9102, "journey": 9103, "notifier": 9104}


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = 4
    replication_factor: int = 1
    clock_mode: str = "wall"  # wall | stream
    group_prefix: str = "vpa"
    metrics_port: int | None = None
    wall_tick_seconds: float = 1.0
    session_timeout_seconds: float = 60.0  # how soon a dead worker's partitions move on
    commit_interval_seconds: float = 2.8  # faust's default; offsets are committed after processing

    @classmethod
    def from_env(cls, service: str) -> "KafkaConfig":
        env = os.environ
        port = env.get("VPA_METRICS_PORT")
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", cls.bootstrap_servers),
            partitions=int(env.get("VPA_PARTITIONS", cls.partitions)),
            replication_factor=int(env.get("VPA_REPLICATION_FACTOR", cls.replication_factor)),
            clock_mode=env.get("VPA_CLOCK", cls.clock_mode),
            group_prefix=env.get("VPA_GROUP_PREFIX", cls.group_prefix),
            metrics_port=int(port) if port else DEFAULT_METRICS_PORTS.get(service),
            wall_tick_seconds=float(env.get("VPA_WALL_TICK_SECONDS", cls.wall_tick_seconds)),
            session_timeout_seconds=float(env.get("VPA_SESSION_TIMEOUT_SECONDS", cls.session_timeout_seconds)),
            commit_interval_seconds=float(env.get("VPA_COMMIT_INTERVAL_SECONDS", cls.commit_interval_seconds)),
        )


async def ensure_topics(cfg: KafkaConfig, extra: tuple[str, ...] = ()) -> None:
    """Create the contract topics if missing, all with the same partition count (co-partitioned)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in (*CONTRACT_TOPICS, *extra) if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, cfg.partitions, cfg.replication_factor) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another service created it at the same time
    finally:
        await admin.close()
