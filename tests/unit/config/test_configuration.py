"""One configuration (issue 13 item 5): every setting from the environment through one loader,
validated with messages that name the variable and the expected form."""
from __future__ import annotations

import ssl
from datetime import date, time

import pytest

from services.broker.client import aiokafka_kwargs, consumer_kwargs, group_kwargs, producer_kwargs
from services.config.kafka import (
    DEFAULT_METRICS_PORTS, ClockMode, KafkaConfig, SaslMechanism, SecurityProtocol,
)
from services.config.loader import ConfigError, env_name, load, variables
from services.config.process import CONFIG_MODELS, RUN_CONFIG, DashletConfig, NotifierConfig, StoreConfig, check
from services.config.settings import Settings


def problems(model, env) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(model, env)
    return caught.value.problems


# ---- business rules ------------------------------------------------------------------------


def test_no_variables_give_the_documented_defaults():
    assert Settings.from_env({}) == Settings()
    assert load(KafkaConfig, {}) == KafkaConfig()
    assert Settings().tz.key == "Europe/Berlin"


def test_keyword_construction_never_reads_the_environment(monkeypatch):
    monkeypatch.setenv("VPA_LONG_ABSENCE_DAYS", "5")
    monkeypatch.setenv("VPA_PARTITIONS", "9")
    assert Settings().long_absence_days == 21
    assert KafkaConfig().partitions == 4
    assert Settings.from_env().long_absence_days == 5  # from_env does


def test_list_settings_are_comma_separated():
    s = Settings.from_env({"VPA_WORKING_DAYS": "0, 1,2", "VPA_HOLIDAYS": "2026-12-25,2026-12-26",
                           "VPA_SHIFTS": "06:00-22:00,22:00-06:00", "VPA_FOLLOW_UP_TIME": "10:30",
                           "VPA_TIMEZONE": "Europe/Vienna"})
    assert s.working_days == (0, 1, 2)
    assert s.holidays == (date(2026, 12, 25), date(2026, 12, 26))
    assert s.shifts == ((time(6), time(22)), (time(22), time(6)))
    assert s.follow_up_time == time(10, 30)
    assert s.tz.key == "Europe/Vienna"


def test_empty_variables_mean_the_default():
    assert Settings.from_env({"VPA_TIMEZONE": "", "VPA_LONG_ABSENCE_DAYS": ""}) == Settings()


def test_variable_names_are_case_insensitive_like_the_environment_source():
    assert Settings.from_env({"vpa_long_absence_days": "7"}).long_absence_days == 7


@pytest.mark.parametrize("var, value, expected", [
    ("VPA_LONG_ABSENCE_DAYS", "x", "VPA_LONG_ABSENCE_DAYS: expected a positive integer (days), got 'x'"),
    ("VPA_LONG_ABSENCE_DAYS", "0", "VPA_LONG_ABSENCE_DAYS: expected a positive integer (days), got '0'"),
    ("VPA_SHORT_NOTICE_DAYS", "-1", "VPA_SHORT_NOTICE_DAYS: expected a whole number of days, 0 or more, got '-1'"),
    ("VPA_WORKING_DAYS", "1,7", "VPA_WORKING_DAYS: expected comma-separated weekday numbers"),
    ("VPA_WORKING_DAYS", "mon", "VPA_WORKING_DAYS: expected comma-separated weekday numbers"),
    ("VPA_HOLIDAYS", "2026-13-01", "VPA_HOLIDAYS: expected comma-separated dates YYYY-MM-DD, got '2026-13-01'"),
    ("VPA_FOLLOW_UP_TIME", "9", "VPA_FOLLOW_UP_TIME: expected a local time HH:MM, e.g. 09:00, got '9'"),
    ("VPA_SHIFTS", "08:00", "VPA_SHIFTS: expected comma-separated local time windows HH:MM-HH:MM"),
    ("VPA_TIMEZONE", "Mars/Olympus", "VPA_TIMEZONE: expected an IANA time zone name"),
])
def test_a_bad_business_setting_names_variable_and_form(var, value, expected):
    (line,) = problems(Settings, {var: value})
    assert line.startswith(expected)
    assert repr(value) in line


def test_every_bad_variable_is_reported_at_once():
    lines = problems(Settings, {"VPA_LONG_ABSENCE_DAYS": "x", "VPA_NEW_VPA_MONTHS": "y"})
    assert [line.split(":")[0] for line in lines] == ["VPA_LONG_ABSENCE_DAYS", "VPA_NEW_VPA_MONTHS"]


# ---- Kafka ---------------------------------------------------------------------------------


@pytest.mark.parametrize("var, value, expected", [
    ("VPA_PARTITIONS", "x", "VPA_PARTITIONS: expected a positive integer, got 'x'"),
    ("VPA_PARTITIONS", "0", "VPA_PARTITIONS: expected a positive integer, got '0'"),
    ("VPA_CLOCK", "fast", "VPA_CLOCK: expected one of stream, wall, catchup, got 'fast'"),
    ("VPA_METRICS_PORT", "70000", "VPA_METRICS_PORT: expected a TCP port 0-65535 (0 = off), got '70000'"),
    ("VPA_SESSION_TIMEOUT_SECONDS", "-5", "VPA_SESSION_TIMEOUT_SECONDS: expected a positive number of seconds"),
    ("KAFKA_BOOTSTRAP_SERVERS", "broker1", "KAFKA_BOOTSTRAP_SERVERS: expected comma-separated HOST:PORT pairs"),
    ("KAFKA_BOOTSTRAP_SERVERS", "a:1,b", "KAFKA_BOOTSTRAP_SERVERS: expected comma-separated HOST:PORT pairs"),
    ("KAFKA_SECURITY_PROTOCOL", "TLS", "KAFKA_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ("KAFKA_SASL_MECHANISM", "GSSAPI", "KAFKA_SASL_MECHANISM: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ("KAFKA_SSL_CAFILE", "/no/such/ca.pem", "KAFKA_SSL_CAFILE: expected the path of a readable PEM file"),
    ("KAFKA_SSL_CHECK_HOSTNAME", "maybe", "KAFKA_SSL_CHECK_HOSTNAME: expected true or false, got 'maybe'"),
])
def test_a_bad_kafka_setting_names_variable_and_form(var, value, expected):
    (line,) = problems(KafkaConfig, {var: value})
    assert line.startswith(expected)


def test_sasl_needs_user_and_password_and_says_so():
    (line,) = problems(KafkaConfig, {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"})
    assert "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in line and "SASL_PLAINTEXT" in line


def test_a_secret_is_never_echoed():
    (line,) = problems(DashletConfig, {"VPA_DASHLET_TOKENS": "s3cret-token=AB:boss"})
    assert line.startswith("VPA_DASHLET_TOKENS: expected comma-separated TOKEN=INITIALS:at|vpa_manager entries")
    assert "s3cret" not in line
    cfg = load(KafkaConfig, {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u",
                             "KAFKA_SASL_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(cfg)


def test_protocol_and_mechanism_are_case_insensitive():
    cfg = load(KafkaConfig, {"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": "scram-sha-512",
                             "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"})
    assert cfg.security_protocol is SecurityProtocol.SASL_PLAINTEXT
    assert cfg.sasl_mechanism is SaslMechanism.SCRAM_SHA_512


@pytest.mark.parametrize("service, port", sorted(DEFAULT_METRICS_PORTS.items()))
def test_metrics_port_defaults_per_service_and_zero_turns_it_off(service, port):
    assert KafkaConfig.from_env(service, {}).metrics_port == port
    assert KafkaConfig.from_env(service, {"VPA_METRICS_PORT": "0"}).metrics_port == 0
    assert KafkaConfig.from_env(service, {"VPA_METRICS_PORT": "9200"}).metrics_port == 9200


def test_plaintext_client_arguments():
    cfg = KafkaConfig(bootstrap_servers="a:9092,b:9093")
    assert aiokafka_kwargs(cfg) == {"bootstrap_servers": "a:9092,b:9093", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", list(SaslMechanism))
def test_sasl_plaintext_client_arguments(mechanism):
    cfg = KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                      sasl_username="svc", sasl_password="pw")
    kw = aiokafka_kwargs(cfg)
    assert kw["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in kw
    assert (kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"]) == (mechanism.value, "svc", "pw")
    for client in (consumer_kwargs(cfg), group_kwargs(cfg, "g"), producer_kwargs(cfg)):
        assert client["sasl_plain_password"] == "pw"  # every client of the project, one source


def test_tls_client_arguments_carry_one_ssl_context():
    cfg = KafkaConfig(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="svc",
                      sasl_password="pw", ssl_check_hostname=False)
    kw = aiokafka_kwargs(cfg)
    assert kw["security_protocol"] == "SASL_SSL"
    assert isinstance(kw["ssl_context"], ssl.SSLContext) and kw["ssl_context"].check_hostname is False
    assert isinstance(group_kwargs(cfg, "g")["ssl_context"], ssl.SSLContext)


def test_group_members_carry_group_and_session_settings():
    kw = group_kwargs(KafkaConfig(session_timeout_seconds=10, instance_id="detector-1"), "vpa-detector")
    assert kw["group_id"] == "vpa-detector" and kw["group_instance_id"] == "detector-1"
    assert kw["session_timeout_ms"] == 10_000 and kw["heartbeat_interval_ms"] == 3000
    assert kw["request_timeout_ms"] > kw["session_timeout_ms"]
    assert kw["enable_auto_commit"] is False  # offsets are committed after the state is written
    assert kw["partition_assignment_strategy"][0].name == "vpa-copartitioned"
    assert group_kwargs(KafkaConfig(session_timeout_seconds=6), "g")["heartbeat_interval_ms"] == 2000
    assert group_kwargs(KafkaConfig(), "g")["group_instance_id"] is None


def test_consumers_read_committed_and_producers_compress_and_wait_for_all_replicas():
    assert consumer_kwargs(KafkaConfig())["isolation_level"] == "read_committed"
    assert load(KafkaConfig, {"VPA_KAFKA_ISOLATION_LEVEL": "read_uncommitted"}).isolation_level.value == "read_uncommitted"
    kw = producer_kwargs(KafkaConfig())
    assert kw["acks"] == "all" and kw["enable_idempotence"] is True and kw["compression_type"] == "zstd"
    assert producer_kwargs(load(KafkaConfig, {"VPA_KAFKA_COMPRESSION": "none"}))["compression_type"] is None
    assert producer_kwargs(load(KafkaConfig, {"VPA_KAFKA_COMPRESSION": "lz4"}))["compression_type"] == "lz4"
    assert problems(KafkaConfig, {"VPA_KAFKA_COMPRESSION": "brotli"}) == [
        "VPA_KAFKA_COMPRESSION: expected one of none, gzip, snappy, lz4, zstd, got 'brotli'"]


# ---- the rest ------------------------------------------------------------------------------


def test_store_notifier_and_dashlet_settings():
    store = StoreConfig.from_env({"DATABASE_URL": "postgresql://u:p@db:5432/x", "VPA_DATA_DIR": "/tmp/pg"})
    assert store.url == "postgresql://u:p@db:5432/x" and store.data_dir == "/tmp/pg"
    assert StoreConfig().url is None
    assert problems(StoreConfig, {"DATABASE_URL": "mysql://x"}) == [
        "DATABASE_URL: expected a PostgreSQL URL postgresql://USER:PASSWORD@HOST:PORT/DB, got a value that is not shown"]
    assert NotifierConfig.from_env({"VPA_NOTIFIER_BATCH": "50"}).notifier_batch == 50
    assert problems(NotifierConfig, {"VPA_NOTIFIER_BATCH": "0"}) == [
        "VPA_NOTIFIER_BATCH: expected a positive integer, got '0'"]
    dash = DashletConfig.from_env({"VPA_HTTP_PORT": "8081", "VPA_DASHLET_TOKENS": "t1=AB:at,t2=VM:vpa_manager"})
    assert dash.http_port == 8081 and dash.dashlet_tokens.get_secret_value().startswith("t1=")


def test_every_service_checks_all_its_settings_at_once():
    assert set(RUN_CONFIG) == {"detector", "reminders", "journey", "notifier", "dashlet"}
    with pytest.raises(ConfigError) as caught:
        check(RUN_CONFIG["notifier"], {"VPA_PARTITIONS": "x", "VPA_NOTIFIER_BATCH": "y", "DATABASE_URL": "z"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["VPA_PARTITIONS", "DATABASE_URL", "VPA_NOTIFIER_BATCH"]


def test_variable_names_are_unique_across_models():
    names = [var for model in CONFIG_MODELS for var in variables(model)]
    assert len(names) == len(set(names))
    assert env_name(KafkaConfig, "clock_mode") == "VPA_CLOCK"
    assert ClockMode("wall") == "wall"


def test_cli_reports_a_bad_setting_with_exit_code_2(monkeypatch, capsys):
    from services.app.cli import main

    monkeypatch.setenv("VPA_PARTITIONS", "x")
    assert main(["run", "detector"]) == 2
    assert "VPA_PARTITIONS: expected a positive integer, got 'x'" in capsys.readouterr().err


@pytest.mark.parametrize("spec", [
    "t1=AB:at", "t1=AB:at,t2=VM:vpa_manager", "a=b=AB:at", "sha256:" + "a" * 64 + "=AB:at", " t=ABCD:at , ",
    "t=A:at", "t=ab:at", "t=AB:boss", "=AB:at", "t=AB", "sha256:abc=AB:at", "t=ABCDE:at",
])
def test_dashlet_tokens_are_checked_as_the_dashlet_parses_them(spec):
    from services.dashlet.auth import parse_tokens

    try:
        parse_tokens(spec)
        dashlet_accepts = True
    except ValueError:
        dashlet_accepts = False
    try:
        DashletConfig.from_env({"VPA_DASHLET_TOKENS": spec})
        config_accepts = True
    except ConfigError:
        config_accepts = False
    assert config_accepts == dashlet_accepts
