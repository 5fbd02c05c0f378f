"""The README configuration table is the settings models, no more and no less."""
from __future__ import annotations

import re
from pathlib import Path

from services.config.loader import variables
from services.config.process import CONFIG_MODELS

ROOT = Path(__file__).resolve().parents[3]


def configuration_tables() -> list[list[set[str]]]:
    """Each table of README's "Configuration" section as rows of the variables in column 1."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    tables: list[list[set[str]]] = []
    rows: list[set[str]] = []
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            first = line.split("|")[1]
            names = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
            if names:
                rows.append(names)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def test_every_setting_is_documented_and_no_row_is_stale():
    services_table = configuration_tables()[0]
    documented = set().union(*services_table)
    code = {var for model in CONFIG_MODELS for var in variables(model)}
    assert sorted(code - documented) == [], "settings missing from the README table"
    assert sorted(documented - code) == [], "README rows for settings that do not exist"
    listed = [var for row in services_table for var in row]
    assert len(listed) == len(set(listed)), "a variable is documented twice"


def test_infrastructure_variables_are_read_by_the_scripts():
    scripts = "\n".join(p.read_text() for p in [*(ROOT / "deploy").rglob("*.sh"), ROOT / "scripts" / "test"])
    for row in configuration_tables()[1]:
        for var in row:
            assert f"${{{var}:-" in scripts, f"{var} is documented but no script reads it"
