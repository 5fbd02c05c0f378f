"""Functional core, thin shells: rule and service-layer modules import no adapter library and
never read the wall clock (issue 2, DESIGN 3); the layers, the core's independence of adapters and
the absence of import cycles are import-linter contracts (.importlinter, issue 9)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTER_LIBS = {"faust", "aiokafka", "asyncpg", "aiohttp", "http", "urllib", "requests", "httpx", "pgserver",
                "prometheus_client", "mode"}
CORE = sorted(
    [p for d in ("detector", "reminders", "journey") for p in (ROOT / "services" / d).glob("*.py")
     if p.name not in {"metrics.py"}]  # a service's own counters are the one allowed shell
    + [ROOT / "services" / "common" / n for n in
       ("processor.py", "tasks.py", "handover.py", "roster.py", "timeutil.py", "settings.py", "ids.py", "decode.py",
        "evidence.py", "engine.py", "order.py", "timer_index.py", "roster_index.py")]
)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_adapter(path: Path):
    assert not imported_roots(path) & ADAPTER_LIBS


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_never_reads_the_wall_clock(path: Path):
    text = path.read_text()
    for forbidden in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time("):
        assert forbidden not in text, f"{path.name} reads the wall clock ({forbidden}); use ctx.now"


def test_import_contracts_hold():
    """Layers (entry points > dashlet > notifier, simulator > bootstrap > services > common > schemas),
    a core free of adapter libraries, the two drivers apart, no cycles."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
