"""docker-compose.yml, prometheus.yml and the Dockerfile against the code: the services `vpa run`
knows, their ports, and only environment variables the settings models read, with valid values.
(No Docker engine here: the files are parsed, not run.)"""
from __future__ import annotations

import re

import pytest
import yaml

from services.config.kafka import DEFAULT_METRICS_PORTS, KafkaConfig
from services.config.loader import variables
from services.config.process import RUN_CONFIG, DashletConfig, check
from tests.deploy.exported import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
SERVICES = sorted(RUN_CONFIG)
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def environment(service: str) -> dict[str, str]:
    """The service's environment as compose resolves it with nothing set on the host."""
    env = COMPOSE["services"][service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _INTERPOLATION.sub(lambda m: m.group(2) or "", str(v)) for k, v in env.items()}


def test_compose_runs_every_service_of_vpa_run_and_nothing_else():
    running = {name: s["command"] for name, s in COMPOSE["services"].items() if s.get("image") == "vpa-dashlet:local"
               and s.get("command", [None])[0] == "run"}
    assert sorted(running) == SERVICES
    for name, command in running.items():
        assert command == ["run", name]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_only_settings_it_reads_and_they_are_valid(service):
    env = environment(service)
    known = {var for model in RUN_CONFIG[service] for var in variables(model)}
    assert set(env) <= known, f"{service}: variables no settings model reads: {sorted(set(env) - known)}"
    check(RUN_CONFIG[service], env)  # raises ConfigError naming the variable


@pytest.mark.parametrize("service", sorted(DEFAULT_METRICS_PORTS))
def test_metrics_ports_match_the_code_and_prometheus(service):
    port = DEFAULT_METRICS_PORTS[service]
    assert environment(service).get("VPA_METRICS_PORT", str(port)) == str(port)
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    assert jobs[service]["static_configs"][0]["targets"] == [f"{service}:{port}"]


def test_dashlet_port_matches_the_code_prometheus_and_published_port():
    port = int(environment("dashlet").get("VPA_HTTP_PORT", DashletConfig().http_port))
    assert port == DashletConfig().http_port
    assert f"{port}:{port}" in COMPOSE["services"]["dashlet"]["ports"]
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    assert jobs["dashlet"]["static_configs"][0]["targets"] == [f"dashlet:{port}"]
    assert jobs["dashlet"].get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_scrapes_exactly_the_services_and_loads_the_alerts():
    jobs = {job["job_name"] for job in PROMETHEUS["scrape_configs"]} - {"prometheus"}
    assert sorted(jobs) == SERVICES
    mounts = COMPOSE["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert PROMETHEUS["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_services_reach_kafka_and_postgres_inside_the_compose_network():
    listeners = COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for service in SERVICES:
        env = environment(service)
        assert f"//{env['KAFKA_BOOTSTRAP_SERVERS']}" in listeners, service
    pg = COMPOSE["services"]["postgres"]["environment"]
    url = f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    for service in ("notifier", "dashlet"):
        assert environment(service)["DATABASE_URL"] == url


def test_the_image_exposes_the_ports_the_services_use():
    exposed = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("EXPOSE"):
            exposed |= {int(p) for p in line.split()[1:]}
    assert exposed == {*DEFAULT_METRICS_PORTS.values(), DashletConfig().http_port}


def test_topics_are_created_first_with_the_settings_the_services_use():
    topics = COMPOSE["services"]["topics"]
    assert topics["command"] == ["topics", "create"]
    env = environment("topics")
    assert set(env) <= set(variables(KafkaConfig))
    check((KafkaConfig,), env)
    for service in SERVICES:
        assert COMPOSE["services"][service]["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
        for var in ("KAFKA_BOOTSTRAP_SERVERS", "VPA_PARTITIONS"):
            assert environment(service)[var] == env[var], (service, var)
