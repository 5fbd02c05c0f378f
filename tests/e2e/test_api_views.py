"""The views behind the page's daily pass (issue 20): a VPA's page and the search, a member's
"Heute", the VPA Managers' team view, over the embedded pipeline and the in-memory store."""
from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
import pytest

from services.store.postgres import MemoryTaskStore
from tests.e2e.harness import company, envelope, start_dashlet

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)  # 10:30 in Berlin: the 08:00-14:00 shift


@pytest.fixture
async def api():
    lines = company() + [
        envelope("v1", "roster.absence_registered", "2026-11-26T09:40:00+01:00", None,
                 {"absence_id": "U1", "initials": "AB", "kind": "vacation", "starts_on": "2026-12-01",
                  "ends_on": "2026-12-04"}),
        envelope("t2", "clock.tick", "2026-11-26T10:30:00+01:00", None, {}),
    ]
    d = await start_dashlet(MemoryTaskStore(), lines, now=lambda: NOW, crm_url_template="https://crm.example/vpa/{vpa_id}")
    async with aiohttp.ClientSession(d.url) as http:
        yield http
    await d.stop()


async def get(api, path, token="tok-at", **params):
    async with api.get(path, headers={"Authorization": f"Bearer {token}"}, params=params) as r:
        return r.status, await r.json()


async def test_a_vpa_page_has_the_profile_every_tab_the_case_with_its_reminders_and_the_events(api):
    status, page = await get(api, "/api/vpas/V-1")
    assert status == 200
    assert page["name"] == "Anna Schmidt" and page["crm_url"] == "https://crm.example/vpa/V-1"
    p = page["profile"]
    assert (p["started_on"], p["tenure_months"], p["at_owner"], p["vpa_class"]) == ("2026-01-15", 10, "AB", "C")
    tabs = {t["tab"] for t in page["tasks"]}
    assert {"cases", "reminders", "journey"} <= tabs
    assert [r["task_id"] for r in page["linked"]["case:absence:V-1:L"]] == ["reminder:R-later"]
    assert page["events"][0]["text"].startswith("Abwesenheit eingetragen: Fr 27.11.2026")
    assert (await get(api, "/api/vpas/V-404"))[0] == 404
    assert (await get(api, "/api/vpas/V%0A1"))[0] in (400, 404)


async def test_the_search_finds_a_vpa_by_name_or_id(api):
    assert [h["vpa_id"] for h in (await get(api, "/api/vpas", q="ben"))[1]["items"]] == ["V-2"]
    assert [h["vpa_id"] for h in (await get(api, "/api/vpas", q="v-3"))[1]["items"]] == ["V-3"]
    assert (await get(api, "/api/vpas", q=""))[0] == 400
    assert (await get(api, "/api/vpas", q="a\x07"))[0] == 400


async def test_heute_groups_the_members_work_by_vpa_oldest_first(api):
    status, today = await get(api, "/api/today")
    assert status == 200 and today["day"] == "2026-11-26"
    ids = [i["task"]["task_id"] for g in today["groups"] for i in g["items"]]
    assert "reminder:R-due" in ids, "a reminder due today"
    assert "reminder:R-later" not in ids, "a reminder due next week is not today's work"
    assert any(t.startswith("case:") for t in ids) and any(t.startswith("journey:") for t in ids)
    assert today["open"] == len(ids) and today["done_today"] == 0
    firsts = [g["items"][0]["since"] for g in today["groups"]]
    assert firsts == sorted(firsts)


async def test_the_team_view_is_for_vpa_managers_and_shows_what_moves_to_whom(api):
    assert (await get(api, "/api/team", token="tok-at"))[0] == 403
    status, team = await get(api, "/api/team", token="tok-vm")
    assert status == 200
    ab = next(m for m in team["members"] if m["initials"] == "AB")
    assert ab["open"] >= 1 and ab["deputy"] == "CD"
    [absence] = [a for a in team["absences"] if a["initials"] == "AB"]
    assert (absence["starts_on"], absence["deputy"], absence["deputy_available"]) == ("2026-12-01", "CD", True)
    moves = {m["task_id"]: (m["day"], m["to"], m["why"]) for m in absence["moves"]}
    assert moves["reminder:R-later"] == ("2026-12-01", "CD", "Vertretung")
