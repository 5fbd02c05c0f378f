"""The dashlet page as the AT team works it (issues 10 and 20), in real Chromium against a real
dashlet over PostgreSQL: the afternoon pass from "Heute", VPA by VPA; a VPA's page from the search
and from a row; resolving a case with and without "VPA-Akte gepflegt"; the VPA Managers' team view;
German dates everywhere; the page's own input checks; a phone's 390 px; an axe-core scan of every
view. Controls are found by role and accessible name, as a screen reader finds them. Screenshots of
every view at 1400 and 390 px are kept under artifacts/browser/ (gitignored)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.harness import envelope

pytestmark = pytest.mark.integration
AXE = Path(__file__).resolve().parents[2] / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ISO_DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b|T\d\d:\d\d:\d\d")


async def open_page(browser, dashlet, token="tok-at", hash_="") -> tuple[Page, list[str]]:
    """A page signed in through the demo's link form (#token=...); collects console problems."""
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A rejected command is a 4xx the browser logs as "Failed to load resource": expected here.
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.on("dialog", lambda d: problems.append(f"unexpected browser dialog: {d.message}"))
    await page.goto(f"{dashlet.url}/#token={token}")
    await expect(page.get_by_text(re.compile(r"^Angemeldet als "))).to_be_visible()
    await expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    if hash_:
        await page.goto(f"{dashlet.url}/{hash_}")
    return page, problems


def row(page: Page, text: str):
    return page.get_by_role("row").filter(has_text=text)


def card(scope, text: str):
    return scope.get_by_role("listitem").filter(has_text=text).last


async def no_iso_dates(page: Page) -> None:
    text = await page.locator("body").inner_text()
    found = ISO_DATE.findall(text)
    assert not found, f"ISO dates or times on the page: {found[:5]}"


async def axe_clean(page: Page, what: str) -> None:
    assert AXE.exists(), f"{AXE} is missing: scripts/test installs axe-core with npm"
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => (await axe.run(document)).violations"
                                 ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))")
    assert result == [], f"axe-core on {what}: {result}"


async def shots(page: Page, artifacts: Path, name: str) -> None:
    """The view at 1400 px and at 390 px (a phone), and no horizontal scrolling on the phone."""
    await page.set_viewport_size({"width": 1400, "height": 900})
    await page.screenshot(path=str(artifacts / f"{name}-1400.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(50)  # one frame for the layout of the new width (not a wait for data)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name}: the page is {width} px wide at 390 px"
    await page.screenshot(path=str(artifacts / f"{name}-390.png"), full_page=True)
    await page.set_viewport_size({"width": 1400, "height": 900})


# ---- Heute ---------------------------------------------------------------------------------------

async def test_heute_is_the_default_grouped_by_vpa_and_counts_an_action_without_reload(browser, dashlet, artifacts):
    later = date.today() + timedelta(days=8)
    await dashlet.sink.feed([envelope("c-later", "cmd.reminder.set", f"{date.today()}T08:00:00+01:00", "V-2",
                                      {"reminder_id": "R-next-week", "due_at": f"{later}T09:00:00+01:00", "owner": "AB",
                                       "note": "Nächste Woche anrufen"}, {"initials": "AB", "role": "at"})])
    page, problems = await open_page(browser, dashlet)
    heute = page.get_by_role("tab", name="Heute")
    await expect(heute).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel")
    progress = panel.get_by_text(re.compile(r"^Heute erledigt 0 von \d+$"))
    await expect(progress).to_be_visible()
    total = int((await progress.inner_text()).rsplit(" ", 1)[1])
    # VPA by VPA: each group is headed by the VPA's name, which opens its page
    await expect(panel.get_by_role("link", name="Anna Schmidt (V-1)")).to_be_visible()
    overdue = card(panel, "Rückruf Anna")
    await expect(overdue).to_contain_text("überfällig")
    await expect(overdue).to_contain_text(re.compile(r"seit \d+ Tag"))
    await expect(panel).not_to_contain_text("Nächste Woche anrufen")  # due next week: not today's work
    await page.evaluate("window.notReloaded = true")
    await overdue.get_by_role("checkbox", name="VPA-Akte gepflegt").check()
    await overdue.get_by_role("button", name="Erledigt").click()
    await expect(panel.get_by_text(f"Heute erledigt 1 von {total}")).to_be_visible()
    await expect(panel).not_to_contain_text("Rückruf Anna")
    assert await page.evaluate("window.notReloaded") is True
    await no_iso_dates(page)
    await axe_clean(page, "Heute")
    await shots(page, artifacts, "heute")
    assert problems == []


# ---- a VPA's page ------------------------------------------------------------------------------------

async def test_a_vpa_opened_from_the_search_and_from_a_row_and_worked_there(browser, dashlet, artifacts):
    page, problems = await open_page(browser, dashlet)
    search = page.get_by_role("combobox", name="VPA suchen")
    await search.fill("anna")
    await page.get_by_role("option", name=re.compile("Anna Schmidt")).click()
    await expect(page.get_by_role("heading", name="Anna Schmidt", level=2)).to_be_visible()
    vpa = page.locator("#vpa-page")
    await expect(vpa).to_contain_text("Dabei seit")
    await expect(vpa.get_by_role("region", name="Fälle")).to_contain_text("Abwesenheit eingetragen")
    await expect(vpa.get_by_role("region", name="Journey")).to_be_visible()
    # the case's linked reminder is shown with the case
    await expect(vpa.locator(".linked")).to_contain_text("Urlaub vorbereiten")
    await no_iso_dates(page)
    await axe_clean(page, "the VPA page")
    await shots(page, artifacts, "vpa-page")
    # act there: a reminder for this VPA, seen on the page through the live feed
    await vpa.get_by_text("Neuer Reminder für diesen VPA").click()
    form = vpa.get_by_role("form", name="Neuer Reminder")
    await form.get_by_role("textbox", name="Notiz").fill("Anna zurückrufen")
    await form.get_by_role("button", name="Reminder setzen").click()
    await expect(form.get_by_text("Reminder gesetzt.")).to_be_visible()
    await expect(vpa.get_by_role("region", name="Reminder")).to_contain_text("Reminder: Anna zurückrufen")
    await expect(form.get_by_role("textbox", name="Notiz")).to_have_value("")  # the form cleared
    # from a row
    await page.get_by_role("button", name="Zurück zur Liste").click()
    await page.get_by_role("tab", name=re.compile("^Fälle")).click()
    await row(page, "Klasse geändert").get_by_role("link", name="Ben Meyer (V-2)").click()
    await expect(page.get_by_role("heading", name="Ben Meyer", level=2)).to_be_visible()
    assert problems == []


# ---- resolving (DESIGN 5.13a) ------------------------------------------------------------------------

async def test_resolving_with_and_without_the_vpa_file_maintained(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.get_by_role("tab", name=re.compile("^Fälle")).click()
    # without: the linked reminder stays, and the page says so
    long_case = row(page, "Abwesenheit eingetragen: Di 01.12.")
    await long_case.get_by_role("button", name=re.compile("^Fall lösen: ")).click()
    dialog = page.get_by_role("dialog", name="Fall lösen")
    await expect(dialog.get_by_role("region", name="Reminder zu diesem Fall")).to_contain_text("Urlaub vorbereiten")
    await expect(dialog).to_contain_text("bleibt der Reminder offen")
    await dialog.get_by_role("textbox", name=re.compile("^Notiz")).fill("   ")
    await dialog.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(dialog.get_by_text("Bitte eine Notiz eingeben")).to_be_visible()  # a note of only spaces
    await dialog.get_by_role("textbox", name=re.compile("^Notiz")).fill("Urlaub besprochen")
    await dialog.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(long_case).to_have_count(0)
    await page.get_by_role("tab", name=re.compile("^Reminder")).click()
    await expect(row(page, "Urlaub vorbereiten")).to_have_count(1)
    # with: a reminder linked to the other case is completed with it
    await page.get_by_role("tab", name=re.compile("^Fälle")).click()
    await row(page, "Abwesenheit eingetragen: Fr 27.11.").get_by_role("link", name=re.compile("^Abwesenheit")).click()
    detail = page.get_by_role("dialog", name=re.compile("^Abwesenheit eingetragen"))
    form = detail.get_by_role("form", name="Reminder zu diesem Fall")
    await form.get_by_role("textbox", name="Notiz").fill("Vertretung klären")
    await form.get_by_role("button", name="Reminder setzen").click()
    await expect(form.get_by_text("Reminder gesetzt.")).to_be_visible()
    await detail.get_by_role("button", name="Lösen").click()
    dialog = page.get_by_role("dialog", name="Fall lösen")
    await expect(dialog.get_by_role("region", name="Reminder zu diesem Fall")).to_contain_text("Vertretung klären")
    await dialog.get_by_role("textbox", name=re.compile("^Notiz")).fill("geklärt, Akte gepflegt")
    await dialog.get_by_role("checkbox", name="VPA-Akte gepflegt").check()
    await expect(dialog).to_contain_text("wird mit dem Fall erledigt")
    await dialog.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(dialog).to_be_hidden()
    await page.get_by_role("tab", name=re.compile("^Reminder")).click()
    await expect(row(page, "Vertretung klären")).to_have_count(0)
    reminders = [t for t in await dashlet.store.all() if t.get("case_task_id") == "case:absence:V-1:S"]
    assert [(t["status"], t["history"][-1]["by"]) for t in reminders] == [("done", "AB")]
    assert problems == []


async def test_closing_a_colleagues_case_asks_once(browser, dashlet):
    page, problems = await open_page(browser, dashlet, "tok-cd")
    await page.get_by_role("tab", name=re.compile("^Fälle")).click()
    await row(page, "Abwesenheit eingetragen: Fr 27.11.").get_by_role("button", name=re.compile("^Fall lösen: ")).click()
    dialog = page.get_by_role("dialog", name="Fall lösen")
    await dialog.get_by_role("textbox", name=re.compile("^Notiz")).fill("für AB erledigt")
    await dialog.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(dialog.get_by_role("alert")).to_contain_text("AB zugewiesen")
    await dialog.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(dialog).to_be_hidden()
    assert problems == []


# ---- the team view -------------------------------------------------------------------------------

async def test_the_team_view_shows_next_weeks_absence_and_what_moves_to_whom(browser, dashlet, artifacts):
    monday = date.today() + timedelta(days=7 - date.today().weekday())
    await dashlet.sink.feed([envelope("u-next", "roster.absence_registered", f"{date.today()}T08:00:00+01:00", None,
                                      {"absence_id": "U-NEXT", "initials": "AB", "kind": "vacation",
                                       "starts_on": str(monday), "ends_on": str(monday + timedelta(days=4))})])
    at, _ = await open_page(browser, dashlet, "tok-at")
    await expect(at.get_by_role("tab", name=re.compile("^Team"))).to_have_count(0)
    page, problems = await open_page(browser, dashlet, "tok-vm")
    await page.get_by_role("tab", name="Team").click()
    panel = page.get_by_role("tabpanel")
    await expect(panel.get_by_role("table").first).to_contain_text("AB")
    absence = panel.get_by_role("region", name="Abwesenheit AB")
    await expect(absence).to_contain_text("Urlaub ab")
    await expect(absence).to_contain_text("Vertretung CD")
    await expect(absence.get_by_role("row").filter(has_text="Urlaub vorbereiten")).to_contain_text("CD")
    await no_iso_dates(page)
    await axe_clean(page, "Team")
    await shots(page, artifacts, "team")
    assert problems == []


# ---- the lists, German dates, the page's own checks ----------------------------------------------------

async def test_every_list_in_german_screenshots_and_axe(browser, dashlet, artifacts):
    page, problems = await open_page(browser, dashlet)
    for name, slug in (("Fälle", "faelle"), ("Reminder", "reminder"), ("Journey", "journey")):
        tab = page.get_by_role("tab", name=re.compile(f"^{name}"))
        await tab.click()
        await expect(tab).to_have_attribute("aria-selected", "true")
        await expect(page.get_by_role("table").first).to_be_visible()
        await expect(page.get_by_role("tabpanel")).not_to_contain_text("short_notice")
        await no_iso_dates(page)
        await axe_clean(page, name)
        await shots(page, artifacts, f"tab-{slug}")
    # a reminder's time: "Do 26.11., 09:30 Uhr" (the year only outside the current one)
    await page.get_by_role("tab", name=re.compile("^Reminder")).click()
    due = await row(page, "Rückruf Anna").get_by_role("cell").nth(6).inner_text()
    assert re.match(r"^(Mo|Di|Mi|Do|Fr|Sa|So) \d\d\.\d\d\.(\d{4})?, \d\d:\d\d Uhr$", due.strip()), due
    assert problems == []


async def test_the_reminder_form_checks_in_german(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.get_by_role("tab", name=re.compile("^Reminder")).click()
    await page.get_by_text("Neuer Reminder", exact=True).click()
    form = page.get_by_role("form", name="Neuer Reminder")
    out = form.get_by_role("status")
    submit = form.get_by_role("button", name="Reminder setzen")
    await form.get_by_role("combobox").fill("V-9999")
    await submit.click()
    await expect(out).to_have_text("Bitte einen VPA aus der Suche wählen.")
    await form.get_by_role("combobox").fill("Ben")
    await form.get_by_role("option", name=re.compile("Ben Meyer")).click()
    await submit.click()
    await expect(out).to_have_text("Bitte eine Notiz eingeben.")
    note = form.get_by_role("textbox", name="Notiz")
    await note.fill("x" * 2001)
    await expect(form.get_by_text("2.000 von höchstens 2.000 Zeichen")).to_be_visible()  # maxlength holds it
    await note.fill("Rückruf Ben")
    date_field = form.get_by_role("textbox", name="Datum")
    await date_field.fill("08.12.1999")
    await submit.click()
    await expect(out).to_contain_text("liegt in der Vergangenheit")
    await date_field.fill(f"01.01.{date.today().year + 2}")
    await submit.click()
    await expect(out).to_have_text("Höchstens ein Jahr im Voraus.")
    await date_field.fill("31.02.2027")
    await submit.click()
    await expect(out).to_have_text("Dieses Datum oder diese Uhrzeit gibt es nicht.")
    # the default: the next working day, 09:00 (Monday 12:00), labelled with the time zone
    await page.reload()
    await page.get_by_text("Neuer Reminder", exact=True).click()
    time_field = page.get_by_role("form", name="Neuer Reminder").get_by_role("textbox", name="Uhrzeit (Berliner Zeit)")
    await expect(time_field).to_have_value(re.compile(r"^(09|12):00$"))
    assert problems == []


async def test_filters_survive_a_reload_and_a_second_page_receives_a_change_live(browser, dashlet):
    first, problems = await open_page(browser, dashlet)
    await first.get_by_role("tab", name=re.compile("^Fälle")).click()
    await first.get_by_role("checkbox", name="Meine Aufgaben").check()
    await first.reload()
    await expect(first.get_by_role("checkbox", name="Meine Aufgaben")).to_be_checked()
    await expect(first.get_by_role("tab", name=re.compile("^Fälle"))).to_have_attribute("aria-selected", "true")
    second, _ = await open_page(browser, dashlet, hash_="#tab=cases")
    await second.evaluate("window.notReloaded = true")
    case = row(second, "Abwesenheit eingetragen: Fr 27.11.")
    await expect(case).to_have_count(1)
    await row(first, "Abwesenheit eingetragen: Fr 27.11.").get_by_role("button", name=re.compile("^Fall lösen: ")).click()
    dialog = first.get_by_role("dialog", name="Fall lösen")
    await dialog.get_by_role("textbox", name=re.compile("^Notiz")).fill("erledigt")
    await dialog.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(case).to_have_count(0)  # on the other page, through /api/stream, in place
    assert await second.evaluate("window.notReloaded") is True
    assert problems == []


async def test_detail_view_in_german_with_the_draft_and_who_in_words(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.get_by_role("tab", name=re.compile("^Fälle")).click()
    await page.get_by_role("link", name=re.compile("Abwesenheit eingetragen: Di 01.12.")).click()
    dialog = page.get_by_role("dialog", name=re.compile("^Abwesenheit eingetragen"))
    why = dialog.get_by_role("region", name="Warum")
    await expect(why).to_contain_text("31 Tage: länger als die Schwelle von 21 Tagen")
    history = dialog.get_by_role("region", name="Verlauf")
    await expect(history.get_by_role("listitem").first).to_contain_text("Fall eröffnet – System")
    await expect(history).not_to_contain_text("detector")
    await no_iso_dates(page)
    # Escape with typed text asks first
    await dialog.get_by_role("form", name="Reminder zu diesem Fall").get_by_role("textbox", name="Notiz").fill("halb")
    await page.keyboard.press("Escape")
    ask = page.get_by_role("dialog", name="Eingaben verwerfen?")
    await expect(ask).to_be_visible()
    await ask.get_by_role("button", name="Verwerfen").click()
    await expect(dialog).to_be_hidden()
    # a praise case: the draft never names the class
    await page.get_by_role("link", name=re.compile("Klasse geändert: B → A")).click()
    praise = page.get_by_role("dialog", name=re.compile("^Klasse geändert"))
    draft = praise.get_by_role("textbox", name="Nachricht an den Assistenten")
    await expect(draft).to_have_value(re.compile("^Hallo Ben,"))
    assert not re.search(r"klasse|class|rising star|\b[A-D]\b", await draft.input_value(), re.IGNORECASE)
    await expect(praise.get_by_role("region", name="Was tun")).to_contain_text("Rising Star")
    assert (await praise.get_by_role("region", name="Was tun").inner_text()).count("loben") == 1
    assert problems == []


async def test_role_at_finds_no_gt12_clear_but_a_vpa_manager_does(browser, dashlet):
    page, problems = await open_page(browser, dashlet, "tok-at", "#tab=journey")
    gt12 = row(page, "Über 12 Monate")
    await expect(gt12).to_have_count(1)
    await expect(gt12.get_by_role("button", name="Flag entfernen")).to_have_count(0)
    await expect(gt12).to_contain_text("Nur ein VPA Manager entfernt dieses Flag.")
    manager, _ = await open_page(browser, dashlet, "tok-vm", "#tab=journey")
    gt12 = row(manager, "Über 12 Monate")
    await expect(gt12).to_contain_text("VM (VPA Manager)")
    await gt12.get_by_role("button", name="Flag entfernen", exact=True).click()
    await expect(gt12).to_have_count(0)
    assert (await dashlet.store.get("journey:V-2:NEW_GT_12"))["status"] == "done"
    assert problems == []


async def test_a_log_in_link_switches_the_user_in_an_open_tab(browser, dashlet):
    page, problems = await open_page(browser, dashlet, "tok-at")
    await page.goto(f"{dashlet.url}/#token=tok-vm")
    await expect(page.get_by_text("Angemeldet als VM (VPA Manager)")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('vpaToken')") == "tok-vm"
    assert await page.evaluate("localStorage.length") == 0
    assert problems == []


async def test_stored_text_never_runs_as_script(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.evaluate("window.pwned = false")
    await dashlet.sink.feed([envelope("x1", "cmd.reminder.set", "2026-11-26T10:30:00+01:00", "V-1",
                                      {"reminder_id": "R-x", "due_at": "2026-11-26T11:00:00+01:00", "owner": "AB",
                                       "note": "<img src=x onerror=\"window.pwned=true\">"},
                                      {"initials": "AB", "role": "at"})])
    await page.get_by_role("tab", name=re.compile("^Reminder")).click()
    await expect(row(page, "<img src=x")).to_have_count(1)
    assert await page.evaluate("window.pwned") is False
    assert problems == []


# ---- Was wäre wenn (issue 23) --------------------------------------------------------------------

@pytest.fixture
async def whatif_dashlet(database_url, pg_schema):
    from services.dashlet.whatif_job import WhatIfJobs
    from services.store.postgres import PostgresTaskStore
    from tests.e2e.harness import company, start_dashlet

    async def history(folder: str) -> list[str]:
        path = Path(folder) / "history.jsonl"
        path.write_text("\n".join(company()) + "\n", encoding="utf-8")
        return [str(path)]

    store = await PostgresTaskStore.connect(database_url, schema=pg_schema)
    d = await start_dashlet(store, company(), whatif=WhatIfJobs(history=history))
    yield d
    await d.stop()
    await store.close()


async def test_a_manager_runs_a_what_if_from_the_team_tab_and_sees_the_chart(browser, whatif_dashlet, artifacts):
    page, problems = await open_page(browser, whatif_dashlet, "tok-vm")
    await page.get_by_role("tab", name="Team").click()
    region = page.get_by_role("region", name="Was wäre wenn")
    field = region.get_by_label("lange Abwesenheit ab (Tage)")
    await expect(field).to_have_value("21")  # today's value
    await field.fill("35")
    await region.get_by_role("button", name="Durchrechnen").click()
    await expect(region.locator(".whatif-summary")).to_contain_text("−1 Fall in", timeout=60_000)
    await expect(region.get_by_role("img", name=re.compile("Fälle je Woche"))).to_be_visible()
    await expect(region).to_contain_text("nur heute")  # the long absence case that would not exist
    await expect(region).to_contain_text("Warum:")
    await axe_clean(page, "Was wäre wenn")
    await shots(page, artifacts, "whatif")
    assert problems == []
