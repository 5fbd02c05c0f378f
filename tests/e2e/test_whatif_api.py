""""Was wäre wenn" over the API (issue 23): VPA Managers only, one job at a time, in a process of
its own over the deployment's history; the live store stays as it was."""
from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from services.dashlet.whatif_job import WhatIfJobs
from services.store.postgres import MemoryTaskStore
from tests.e2e.harness import company, start_dashlet

VM, AT = {"Authorization": "Bearer tok-vm"}, {"Authorization": "Bearer tok-at"}


@pytest.fixture
async def dashlet():
    async def history(folder: str) -> list[str]:
        path = Path(folder) / "history.jsonl"
        path.write_text("\n".join(company()) + "\n", encoding="utf-8")
        return [str(path)]

    d = await start_dashlet(MemoryTaskStore(), company(), whatif=WhatIfJobs(history=history))
    yield d
    await d.stop()


async def test_a_manager_runs_a_what_if_and_an_at_member_may_not(dashlet):
    before = await dashlet.store.all()
    async with aiohttp.ClientSession(dashlet.url) as http:
        async with http.get("/api/whatif", headers=AT) as r:
            assert r.status == 403
        async with http.post("/api/whatif", headers=AT, json={"changes": {"VPA_LONG_ABSENCE_DAYS": "28"}}) as r:
            assert r.status == 403
        async with http.get("/api/whatif", headers=VM) as r:
            body = await r.json()
        assert body["state"] == "idle"
        assert {"name": "VPA_LONG_ABSENCE_DAYS", "label": "lange Abwesenheit ab (Tage)", "value": "21"} in body["settings"]
        async with http.post("/api/whatif", headers=VM, json={"changes": {"VPA_DEDUPE_WINDOW_DAYS": "3"}}) as r:
            assert r.status == 422 and "keine Geschäftsregel" in (await r.json())["error"]
        async with http.post("/api/whatif", headers=VM, json={"changes": {"VPA_LONG_ABSENCE_DAYS": "x"}}) as r:
            assert r.status == 422 and "VPA_LONG_ABSENCE_DAYS" in (await r.json())["error"]
        async with http.post("/api/whatif", headers=VM, json={"changes": {"VPA_LONG_ABSENCE_DAYS": "35"}}) as r:
            assert r.status == 202 and (await r.json())["state"] == "running"
        async with http.post("/api/whatif", headers=VM, json={"changes": {"VPA_LONG_ABSENCE_DAYS": "28"}}) as r:
            assert r.status == 409 and (await r.json())["code"] == "whatif_running"  # one at a time
        for _ in range(600):
            async with http.get("/api/whatif", headers=VM) as r:
                body = await r.json()
            if body["state"] != "running":
                break
            await asyncio.sleep(0.1)
    assert body["state"] == "done", body
    report = body["report"]
    assert report["changes"] == {"VPA_LONG_ABSENCE_DAYS": "35"}
    assert report["summary"].startswith("−1 Fall in")  # the 31-day absence of V-1 is no longer long
    assert await dashlet.store.all() == before  # the live store is untouched
