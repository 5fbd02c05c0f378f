"""Real Chromium (Debian's /usr/bin/chromium, installed by scripts/test) through Playwright for
Python, against a real dashlet over PostgreSQL. Playwright cannot download browsers here, so it is
given the executable; if Chromium cannot start, the tests fail and say why (nothing is skipped)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.store.postgres import PostgresTaskStore
from tests.e2e.harness import company, start_dashlet
from tests.integration.conftest import database_url, pg_schema  # noqa: F401

CHROMIUM = os.environ.get("VPA_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


@pytest.fixture
async def browser(tmp_path):
    """A fresh headless Chromium with its own user-data-dir; yields the context."""
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: scripts/test installs the Debian package 'chromium' "
                    "(apt-get install chromium), or set VPA_CHROMIUM to a Chromium binary")
    async with async_playwright() as pw:
        try:
            context = await pw.chromium.launch_persistent_context(
                tmp_path / "chromium-profile", executable_path=CHROMIUM, headless=True, args=FLAGS,
                locale="de-DE", timezone_id="Europe/Berlin", viewport={"width": 1400, "height": 900},
                bypass_csp=True)  # the test injects axe-core; the page itself runs under its CSP
        except Exception as exc:  # noqa: BLE001 - turned into a failure that says what to do
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {exc}")
        context.set_default_timeout(10_000)
        await context.grant_permissions(["clipboard-read", "clipboard-write"])
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def dashlet(database_url, pg_schema):  # noqa: F811
    store = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    d = await start_dashlet(store, company())
    yield d
    await d.stop()
    await store.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
