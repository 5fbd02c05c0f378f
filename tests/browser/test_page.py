"""The dashlet page as the AT team uses it (issue 10), in real Chromium against a real dashlet.

Controls are found by role and accessible name, as a screen reader would find them. A screenshot
of each tab is kept under artifacts/browser/ (gitignored)."""
from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.integration
TIME = re.compile(r"^(Mo|Di|Mi|Do|Fr|Sa|So) \d\d\.\d\d\., \d\d:\d\d$")


async def open_page(browser, dashlet, token="tok-at") -> tuple[Page, list[str]]:
    """A page signed in through the demo's link form (#token=...); collects console problems."""
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A rejected command is a 4xx the browser logs as "Failed to load resource": expected here.
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.on("dialog", lambda d: problems.append(f"unexpected dialog: {d.message}"))
    await page.goto(f"{dashlet.url}/#token={token}")
    await expect(page.get_by_text(re.compile(r"^Angemeldet als "))).to_be_visible()
    await expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    return page, problems


def row(page: Page, text: str):
    return page.get_by_role("row").filter(has_text=text)


async def test_sign_in_tabs_counts_german_labels_and_a_screenshot_of_each_tab(browser, dashlet, artifacts):
    page, problems = await open_page(browser, dashlet)
    await expect(page.get_by_text("Angemeldet als AB (AT-Mitglied)")).to_be_visible()
    tabs = page.get_by_role("tab")
    await expect(tabs).to_have_count(3)
    for name, count in (("Fälle", "3"), ("Reminder", "2"), ("Journey", "3")):
        tab = page.get_by_role("tab", name=name, exact=True)
        await tab.click()
        await expect(tab).to_have_attribute("aria-selected", "true")
        await expect(tab).to_contain_text(count)
        await expect(page.get_by_role("caption")).to_contain_text(f"{name}: {count} offen")
        await page.screenshot(path=str(artifacts / f"tab-{name.lower().replace('ä', 'ae')}.png"), full_page=True)
    # German words, local times, no English codes
    await page.get_by_role("tab", name="Fälle", exact=True).click()
    short = row(page, "2026-11-27 bis 2026-11-27")
    await expect(short.get_by_role("cell", name="hoch", exact=True)).to_be_visible()
    await expect(short.get_by_role("cell", name="kurzfristig eingetragen", exact=True)).to_be_visible()
    await expect(short.get_by_role("cell", name="offen", exact=True)).to_be_visible()
    await expect(page.get_by_role("table")).not_to_contain_text("short_notice")
    # sorted by priority: the high one first
    await expect(page.get_by_role("row").nth(1)).to_contain_text("2026-11-27 bis 2026-11-27")
    await page.get_by_role("tab", name="Reminder", exact=True).click()
    due = row(page, "Rückruf Anna").get_by_role("cell").nth(6)
    assert TIME.match((await due.inner_text()).strip()), await due.inner_text()
    assert problems == []


async def test_complete_a_reminder_refused_without_the_checkbox_then_done_and_gone_without_reload(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.evaluate("window.notReloaded = true")
    await page.get_by_role("tab", name="Reminder", exact=True).click()
    reminder = row(page, "Rückruf Anna")
    await reminder.get_by_role("button", name="Erledigt", exact=True).click()
    # the API's German reason, next to the control
    await expect(reminder.get_by_role("alert")).to_contain_text("VPA-Akte gepflegt")
    await reminder.get_by_role("checkbox", name="VPA-Akte gepflegt", exact=True).check()
    await reminder.get_by_role("button", name="Erledigt", exact=True).click()
    await expect(reminder).to_have_count(0)
    await expect(page.get_by_role("tab", name="Reminder", exact=True)).to_contain_text("1")
    assert await page.evaluate("window.notReloaded") is True
    assert (await dashlet.store.get("reminder:R-due"))["status"] == "done"
    assert problems == []


async def test_resolve_a_case_with_a_note_and_reschedule_a_reminder(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    case = row(page, "2026-12-01 bis 2026-12-31")
    await case.get_by_role("textbox", name="Notiz zum Lösen").fill("Urlaub ist vorbereitet")
    await case.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(case).to_have_count(0)
    task = await dashlet.store.get("case:absence:V-1:L")
    assert task["status"] == "done" and task["history"][-1]["change"] == "Fall gelöst: Urlaub ist vorbereitet"
    assert task["history"][-1]["by"] == "AB"

    # its linked reminder was cancelled with it (DESIGN 5.13); the other one is moved
    await page.get_by_role("tab", name="Reminder", exact=True).click()
    await expect(row(page, "Urlaub vorbereiten")).to_have_count(0)
    call = row(page, "Rückruf Anna")
    await call.get_by_label("Neue Fälligkeit").fill("2026-12-04T14:30")
    await call.get_by_role("button", name="Verschieben", exact=True).click()
    await expect(row(page, "Rückruf Anna")).to_contain_text("Fr 04.12., 14:30")
    assert (await dashlet.store.get("reminder:R-due"))["due_at"] == "2026-12-04T14:30:00+01:00"
    assert problems == []


async def test_set_a_reminder_from_the_page_and_a_note_renders_as_text(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.get_by_role("tab", name="Reminder", exact=True).click()
    await page.get_by_text("Neuer Reminder").click()
    form = page.get_by_role("form", name="Neuer Reminder")
    await expect(form.get_by_label("Für")).to_have_value("AB")  # the signed-in person, prefilled
    await form.get_by_label("VPA").fill("V-3")
    await form.get_by_label("Fällig am").fill("2026-12-07T12:00")
    await form.get_by_label("Notiz").fill("<img src=x onerror=alert(1)>")
    await form.get_by_role("button", name="Reminder setzen", exact=True).click()
    new = row(page, "<img src=x onerror=alert(1)>")
    await expect(new).to_have_count(1)
    await expect(new.get_by_role("link")).to_have_text("Reminder: <img src=x onerror=alert(1)>")
    await expect(new).to_contain_text("Mo 07.12., 12:00")
    assert await page.locator("#rows img").count() == 0
    # the same note on a case resolve: shown as text in the history
    await page.get_by_role("tab", name="Fälle", exact=True).click()
    case = row(page, "2026-11-27 bis 2026-11-27")
    await case.get_by_role("textbox", name="Notiz zum Lösen").fill("<img src=x onerror=alert(1)>")
    await case.get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(case).to_have_count(0)
    await page.goto(f"{dashlet.url}/#task=case:absence:V-1:S")
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_role("listitem").filter(has_text="Fall gelöst: <img src=x onerror=alert(1)>")).to_be_visible()
    assert await dialog.locator("img").count() == 0
    assert problems == []  # no alert() ran, no CSP violation


async def test_detail_view_shows_action_draft_evidence_and_history(browser, dashlet):
    page, problems = await open_page(browser, dashlet)
    await page.get_by_role("link", name=re.compile("Abwesenheit eingetragen: 2026-12-01")).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_role("heading", name="Warum")).to_be_visible()
    why = dialog.get_by_role("region", name="Warum")
    await expect(why).to_contain_text("31 Tage: länger als die Schwelle von 21 Tagen")
    await expect(why).to_contain_text("Das ist die 1. nicht stornierte Abwesenheit")
    await expect(why).to_contain_text("Vorlauf: nicht kurzfristig")
    history = dialog.get_by_role("region", name="Verlauf")
    await expect(history.get_by_role("listitem").first).to_contain_text("Fall eröffnet – von detector")
    assert TIME.match((await history.locator("time").first.inner_text()).strip())
    await expect(dialog.get_by_role("region", name="Was tun")).to_contain_text("Länger als 3 Wochen abwesend")
    await dialog.get_by_role("button", name="Schließen").click()
    await expect(dialog).to_be_hidden()
    # a praise case carries a draft for the assistant: shown, copyable, never naming the class
    await page.get_by_role("link", name=re.compile("Klasse geändert: B → A")).click()
    draft = dialog.get_by_role("textbox", name="Nachricht an den Assistenten")
    await expect(draft).to_have_value(re.compile("^Hallo Ben,"))
    assert not re.search(r"klasse|class|rising star|\b[A-D]\b", await draft.input_value(), re.IGNORECASE)
    await dialog.get_by_role("button", name="Entwurf kopieren").click()
    await expect(dialog.get_by_text("Kopiert.")).to_be_visible()
    await expect(dialog.get_by_role("region", name="Warum")).to_contain_text("Klasse B → A")
    assert problems == []


async def test_role_at_finds_no_gt12_clear_but_a_vpa_manager_does(browser, dashlet):
    page, problems = await open_page(browser, dashlet, "tok-at")
    await page.get_by_role("tab", name="Journey", exact=True).click()
    gt12 = row(page, "NEU in > 12 Monate")
    await expect(gt12).to_have_count(1)
    await expect(gt12.get_by_role("button", name="Flag entfernen")).to_have_count(0)
    await expect(gt12).to_contain_text("Nur ein VPA Manager entfernt dieses Flag.")
    await expect(row(page, "NEU in 9-12 Monate").get_by_role("button", name="Flag entfernen", exact=True)).to_be_visible()
    manager, _ = await open_page(browser, dashlet, "tok-vm")
    await manager.get_by_role("tab", name="Journey", exact=True).click()
    gt12 = row(manager, "NEU in > 12 Monate")
    await gt12.get_by_role("button", name="Flag entfernen", exact=True).click()
    await expect(gt12).to_have_count(0)
    assert (await dashlet.store.get("journey:V-2:NEW_GT_12"))["status"] == "done"
    assert problems == []


async def test_a_second_page_receives_a_change_live(browser, dashlet):
    first, problems = await open_page(browser, dashlet)
    second, _ = await open_page(browser, dashlet)
    await second.evaluate("window.notReloaded = true")
    case = row(second, "2026-11-27 bis 2026-11-27")
    await expect(case).to_have_count(1)
    await row(first, "2026-11-27 bis 2026-11-27").get_by_role("button", name="Fall lösen", exact=True).click()
    await expect(case).to_have_count(0)  # on the other page, through /api/stream
    await expect(second.get_by_role("tab", name="Fälle", exact=True)).to_contain_text("2")
    assert await second.evaluate("window.notReloaded") is True
    assert problems == []


async def test_filters_mine_and_overdue(browser, dashlet):
    page, problems = await open_page(browser, dashlet, "tok-cd")  # CD has nothing assigned
    await expect(row(page, "2026-11-27 bis 2026-11-27")).to_have_count(1)
    await page.get_by_role("checkbox", name="Meine Aufgaben").check()
    await expect(page.get_by_text("Keine offenen Aufgaben für diese Auswahl.")).to_be_visible()
    await page.get_by_role("checkbox", name="Meine Aufgaben").uncheck()
    await page.get_by_role("tab", name="Reminder", exact=True).click()
    await page.get_by_role("checkbox", name="Überfällig").check()
    await expect(row(page, "Rückruf Anna")).to_have_count(1)       # due on 26.11.2026: past
    await expect(page.get_by_role("tab", name="Reminder", exact=True)).to_contain_text(
        "1" if await page.evaluate("Date.now() < Date.parse('2026-12-03T08:00:00Z')") else "2")
    assert problems == []
