"""Process settings beyond Kafka and the business rules: the store, the notifier, the dashlet, logs.

Read with ``load(Model)`` (or ``Model.from_env()``); ``CONFIG_MODELS`` lists every settings model
of the project, which the README configuration table is checked against.
"""
from __future__ import annotations

import re
from enum import StrEnum
from typing import Mapping, Optional

from pydantic import SecretStr, field_validator

from services.config.kafka import KafkaConfig
from services.config.loader import ConfigError, EnvModel, load, setting
from services.config.settings import Settings

_INITIALS = re.compile(r"^[A-Z]{2,4}$")
_SHA256 = re.compile(r"^sha256:[0-9a-fA-F]{64}$")


def _token_entry_ok(entry: str) -> bool:
    """The form services/dashlet/auth.parse_tokens takes (kept in step by a test): TOKEN=INITIALS:ROLE,
    the token may hold "=" or be ``sha256:<64 hex digits>``."""
    token, _, who = entry.rpartition("=")
    initials, _, role = who.partition(":")
    if not token or not _INITIALS.match(initials) or role not in ("at", "vpa_manager"):
        return False
    return not token.startswith("sha256:") or bool(_SHA256.match(token))


class StoreConfig(EnvModel):
    """Where the dashlet store lives (notifier and dashlet)."""

    # None: an embedded PostgreSQL (pgserver) under data_dir
    database_url: Optional[SecretStr] = setting(None, "a PostgreSQL URL postgresql://USER:PASSWORD@HOST:PORT/DB",
                                                env="DATABASE_URL", secret=True)
    data_dir: str = setting("var/pg", "a folder path", min_length=1)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("not a postgresql:// URL")
        return value

    @property
    def url(self) -> Optional[str]:
        return self.database_url.get_secret_value() if self.database_url else None

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "StoreConfig":
        return load(cls, env)


class NotifierConfig(EnvModel):
    notifier_batch: int = setting(500, "a positive integer", gt=0)
    # connections a batch's versions are written over at once (each task on one, by its key); the
    # store's pool has four
    notifier_write_connections: int = setting(2, "an integer from 1 to 4", gt=0, le=4)
    # how often each notifier reads the open-work gauges from the store (services/store/gauges.py)
    store_gauge_seconds: float = setting(30.0, "a positive number of seconds", gt=0)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "NotifierConfig":
        return load(cls, env)


class DashletConfig(EnvModel):
    """``vpa run dashlet``: where it listens and who may log in."""

    http_host: str = setting("0.0.0.0", "a host name or IP address to listen on", min_length=1)
    http_port: int = setting(8080, "a TCP port 1-65535", ge=1, le=65535)
    dashlet_tokens: SecretStr = setting(SecretStr(""), "comma-separated TOKEN=INITIALS:at|vpa_manager entries "
                                        "(INITIALS: 2 to 4 capital letters; TOKEN or sha256:<64 hex digits>)",
                                        secret=True)
    # limits per token (issue 28): one person's script cannot slow the others
    commands_per_second: float = setting(5.0, "a positive number of commands per second", gt=0)
    command_burst: int = setting(20, "a positive integer", gt=0)
    feeds_per_token: int = setting(5, "a positive integer", gt=0)
    # /metrics on a port of its own (as Prometheus deployments usually have it); unset: on the API port
    dashlet_metrics_port: Optional[int] = setting(None, "a TCP port 1-65535", ge=1, le=65535)
    # the link from a VPA's page to its file ("VPA-Akte") in the upstream CRM; unset: no link
    crm_url_template: Optional[str] = setting(None, "an https:// or http:// URL with {vpa_id} in it",
                                              env="VPA_CRM_URL_TEMPLATE",
                                              pattern=r"^https?://[^\s]*\{vpa_id\}[^\s]*$")

    @field_validator("dashlet_tokens")
    @classmethod
    def _token_entries(cls, value: SecretStr) -> SecretStr:
        entries = [p.strip() for p in value.get_secret_value().split(",") if p.strip()]
        if not all(_token_entry_ok(e) for e in entries):
            raise ValueError("bad token entry")
        return value

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "DashletConfig":
        return load(cls, env)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LogConfig(EnvModel):
    log_format: LogFormat = setting(LogFormat.TEXT, "text or json")
    log_level: LogLevel = setting(LogLevel.INFO, "one of DEBUG, INFO, WARNING, ERROR")

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "LogConfig":
        return load(cls, env)


CONFIG_MODELS: tuple[type[EnvModel], ...] = (KafkaConfig, StoreConfig, NotifierConfig, DashletConfig, LogConfig,
                                             Settings)

RUN_CONFIG: dict[str, tuple[type[EnvModel], ...]] = {
    "detector": (KafkaConfig, Settings, LogConfig),
    "reminders": (KafkaConfig, Settings, LogConfig),
    "journey": (KafkaConfig, Settings, LogConfig),
    "notifier": (KafkaConfig, StoreConfig, NotifierConfig, Settings, LogConfig),
    "dashlet": (KafkaConfig, StoreConfig, DashletConfig, Settings, LogConfig),
}
"""The settings models each ``vpa run SERVICE`` reads, all checked before it connects anywhere."""


def check(models: tuple[type[EnvModel], ...], env: Optional[Mapping[str, str]] = None) -> None:
    """Load every model; one ConfigError listing the problems of all of them."""
    problems: list[str] = []
    for model in models:
        try:
            load(model, env)
        except ConfigError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
