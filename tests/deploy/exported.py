"""What the services really export and configure, for tests of the deploy files."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
# Series Prometheus makes itself for every scrape target
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "gauge": ("",), "info": ("_info",)}
METRIC_NAME = re.compile(r"\b(vpa_[a-z0-9_]+|up)\b")


def metric_modules() -> list[str]:
    """Every module that declares metrics: services/**/metrics.py."""
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "services").rglob("metrics.py"))


def exported_metric_names() -> set[str]:
    """Sample names the services' /metrics can show, from the prometheus_client registry."""
    for module in metric_modules():
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def metric_names_in(expr: str) -> set[str]:
    """The VPA metric names (and ``up``) a PromQL expression refers to; recording rules (``a:b``) aside."""
    return {m for m in METRIC_NAME.findall(expr)}
