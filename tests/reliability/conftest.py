"""Reliability tests (issue 12): real broker, real PostgreSQL, services as OS processes.

The quick ones run in the README test command. Tests marked ``long`` (the 100,000-event crash run
with many kills, the 1,000,000-event soak) run only with ``VPA_LONG_TESTS=1``, which
``scripts/reliability`` sets; it also collects every test's figures into docs/reliability.md.
"""
from __future__ import annotations

import os

import pytest

from tests.integration.conftest import database_url  # noqa: F401 - the same PostgreSQL fixture
from tests.reliability.figures import Figures

LONG = os.environ.get("VPA_LONG_TESTS") == "1"


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    skip = pytest.mark.skip(reason="long reliability test: run with VPA_LONG_TESTS=1 (bash scripts/reliability)")
    for item in items:
        if "long" in item.keywords and not LONG:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rel_outcome = report.outcome


@pytest.fixture
def figures(request):  # noqa: ANN001
    """The test's figures; written for the report when the test ends (with its outcome)."""
    doc = (request.node.function.__doc__ or "").strip().split("\n\n")[0]
    fig = Figures(request.node.name, " ".join(doc.split()))
    fig.data["module"] = request.module.__name__.rsplit(".", 1)[-1]  # the report orders by it
    yield fig
    fig.finish(getattr(request.node, "rel_outcome", "error"))


@pytest.fixture
def churn_size() -> tuple[int, int, int]:
    """(VPAs, days, churn actions): quick in the test command, larger in scripts/reliability."""
    return (2000, 60, 20) if LONG else (600, 40, 5)
