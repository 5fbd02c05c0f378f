"""Figures of a reliability test, for docs/reliability.md (``python -m tests.reliability.report``).

A test fills a ``Figures`` (faults injected with their recovery times, events, lost, duplicated,
RSS); with ``VPA_RELIABILITY_DIR`` set (``scripts/reliability`` sets it) each test's figures are
written there as JSON, and the report is made from them. Without it nothing is written.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Figures:
    def __init__(self, name: str, title: str = "") -> None:
        self.data: dict[str, Any] = {
            "name": name, "title": title, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_start": load_average(), "faults": [], "rss": {}, "figures": {},
        }
        self._t0 = time.monotonic()
        self._loads: list[float] = []

    def set(self, **figures: Any) -> None:
        self.data["figures"].update(figures)

    def fault(self, **fault: Any) -> None:
        self.data["faults"].append(fault)

    def sample_load(self) -> None:
        self._loads.append(os.getloadavg()[0])

    def rss(self, service: str, samples: list[tuple[float, int]], **summary: Any) -> None:
        """``samples``: (seconds since start, KiB); the report shows the summary, the JSON keeps all."""
        self.data["rss"][service] = {"samples": samples, **summary}

    def finish(self, outcome: str) -> None:
        self.data["outcome"] = outcome
        self.data["seconds"] = round(time.monotonic() - self._t0, 1)
        self.data["load_end"] = load_average()
        if self._loads:
            self.data["load_1min_max"] = round(max(self._loads), 2)
            self.data["load_1min_mean"] = round(sum(self._loads) / len(self._loads), 2)
        out = output_dir()
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{self.data['name']}.json").write_text(json.dumps(self.data, indent=1))


def output_dir() -> Optional[Path]:
    value = os.environ.get("VPA_RELIABILITY_DIR")
    return Path(value) if value else None
