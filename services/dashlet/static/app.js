// VPA Manager Dashlet page: reads /api/tasks (filtered, sorted and paged by the server), sends
// commands to /api/commands, follows /api/stream. Every text from the API is set with textContent,
// never parsed as HTML; the Content-Security-Policy allows no inline script either.
"use strict";

const LABELS = {
  status: { waiting: "wartet", open: "offen", done: "erledigt", cancelled: "abgebrochen" },
  priority: { high: "hoch", normal: "normal", low: "niedrig" },
  role: { at: "AT-Mitglied", vpa_manager: "VPA Manager" },
  kind: {
    schedule_change: "Zeitplanung", absence: "Abwesenheit", class_change: "Klassenwechsel",
    inactive: "Inaktivität", reminder: "Reminder", journey: "Journey",
  },
  stage: {
    NEW_0_3: "NEU 0-3 Monate", NEW_3_6: "NEU 3-6 Monate", NEW_6_9: "NEU 6-9 Monate",
    NEW_9_12: "NEU 9-12 Monate", NEW_GT_12: "NEU > 12 Monate",
  },
  reason: {
    long: "lange Abwesenheit", frequent: "häufige Abwesenheiten", short_notice: "kurzfristig eingetragen",
    new_vpa_no_orders: "N-VPA ohne Aufträge/Neukunden", priority_check: "Prio prüfen (A/B)",
    review: "auf Auffälligkeiten prüfen", negative: "Klasse verschlechtert", positive: "Klasse verbessert",
    rising_star: "Rising Star", follow_up: "Follow-up ausstehend", active_again: "wieder aktiv",
    active_on_mobile: "in der App aktiv", part_time_no_contact: "Teilzeit, kein Kontakt",
    contact_needed: "Kontakt nötig", customer_complaint: "Kundenmeldung",
    verify_mobile_activity: "App-Aktivität prüfen", handover: "übergeben", handover_unavailable: "keine Vertretung",
    measures_needed: "Maßnahmen nötig (C/D)", class_ok: "Klasse ok (A/B)", class_unknown: "Klasse unbekannt",
  },
};
const TABS = ["cases", "reminders", "journey"];
const TAB_NAMES = { cases: "Fälle", reminders: "Reminder", journey: "Journey" };
const PAGE_SIZE = 100;
const MAX_PAGE = 500;

const state = {
  token: "", me: null, tab: "cases", pages: { cases: null, reminders: null, journey: null },
  shown: { cases: PAGE_SIZE, reminders: PAGE_SIZE, journey: PAGE_SIZE }, detail: null,
  stream: null, refreshTimer: null, refreshing: false, refreshAgain: false,
  rows: new Map(),  // "task_id@version" -> <tr>: an unchanged task keeps its row, typed notes and messages
};
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const label = (group, code) => (LABELS[group] && LABELS[group][code]) || code || "";

// ---- time in the business time zone --------------------------------------------------------

function zoneParts(date) {
  const fmt = new Intl.DateTimeFormat("de-DE", {
    timeZone: state.me.timezone, weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  return Object.fromEntries(fmt.formatToParts(date).map((p) => [p.type, p.value]));
}

// "Mo 30.11., 12:00"
function formatTime(iso) {
  if (!iso) return "";
  const p = zoneParts(new Date(iso));
  return `${p.weekday.replace(".", "")} ${p.day}.${p.month}., ${p.hour}:${p.minute}`;
}

function offsetMinutes(date) {
  const p = zoneParts(date);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute);
  return Math.round((asUtc - Math.floor(date.getTime() / 60000) * 60000) / 60000);
}

// A wall time "2026-11-30T12:00" in the business time zone as an instant (RFC 3339, UTC).
function zonedToIso(local) {
  const [d, t] = local.split("T");
  const [y, m, day] = d.split("-").map(Number);
  const [hh, mm] = t.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, day, hh, mm);
  let instant = wall;
  for (let i = 0; i < 3; i++) instant = wall - offsetMinutes(new Date(instant)) * 60000;
  return new Date(instant).toISOString();
}

function isoToZoned(iso) {
  const p = zoneParts(new Date(iso));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

function tomorrowAtNine() {
  const p = zoneParts(new Date(Date.now() + 24 * 3600 * 1000));
  return `${p.year}-${p.month}-${p.day}T09:00`;
}

// ---- API -----------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  let resp;
  try {
    resp = await fetch(path, { ...options, headers });
  } catch (err) {
    return { ok: false, status: 0, body: { error: "Der Server ist nicht erreichbar.", code: "network" } };
  }
  let body = null;
  try { body = await resp.json(); } catch (err) { body = null; }
  return { ok: resp.ok, status: resp.status, body };
}

function reasonOf(result) {
  return (result.body && result.body.error) || `Fehler ${result.status}`;
}

async function sendCommand(type, vpaId, data) {
  return api("/api/commands", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type, vpa_id: vpaId, data }),
  });
}

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- lists ---------------------------------------------------------------------------------

function filterParams(tab, limit) {
  const q = new URLSearchParams({ tab, sort: "priority", limit: String(limit) });
  q.append("status", "waiting");
  q.append("status", "open");
  if ($("f-mine").checked) q.set("assignee", state.me.initials);
  if ($("f-shift").checked) q.set("shift", "current");
  if ($("f-overdue").checked) q.set("due_before", new Date().toISOString());
  return q;
}

async function refresh() {
  if (state.refreshing) { state.refreshAgain = true; return; }
  state.refreshing = true;
  try {
    const results = await Promise.all(TABS.map((tab) =>
      api(`/api/tasks?${filterParams(tab, Math.min(state.shown[tab], MAX_PAGE))}`)));
    results.forEach((r, i) => {
      if (r.ok) state.pages[TABS[i]] = r.body;
      else if (r.status === 401) signedOut("Das Token ist nicht mehr gültig.");
      else showNotice(`Liste konnte nicht geladen werden: ${reasonOf(r)}`);
    });
    render();
  } finally {
    state.refreshing = false;
    if (state.refreshAgain) { state.refreshAgain = false; scheduleRefresh(); }
  }
}

function scheduleRefresh(delay = 150) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, delay);
}

async function loadMore() {
  const page = state.pages[state.tab];
  if (!page || page.next_offset === null) return;
  const q = filterParams(state.tab, PAGE_SIZE);
  q.set("offset", String(page.next_offset));
  const r = await api(`/api/tasks?${q}`);
  if (!r.ok) { showNotice(`Weitere Aufgaben konnten nicht geladen werden: ${reasonOf(r)}`); return; }
  page.items = page.items.concat(r.body.items);
  page.next_offset = r.body.next_offset;
  state.shown[state.tab] = page.items.length;
  render();
}

function render() {
  for (const tab of TABS) {
    const page = state.pages[tab];
    $(`count-${tab}`).textContent = page ? ` ${page.total}` : "";
  }
  const page = state.pages[state.tab];
  const rows = $("rows");
  const focusedKey = document.activeElement && document.activeElement.dataset.key;
  const wanted = new Set();
  for (const tab of TABS) for (const t of (state.pages[tab] || { items: [] }).items) wanted.add(`${t.task_id}@${t.version}`);
  for (const key of state.rows.keys()) if (!wanted.has(key)) state.rows.delete(key);
  rows.replaceChildren(...(page ? page.items.map((t) => {
    const key = `${t.task_id}@${t.version}`;
    if (!state.rows.has(key)) state.rows.set(key, row(t));
    return state.rows.get(key);
  }) : []));
  if (focusedKey) { const again = rows.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`); if (again) again.focus(); }
  $("empty").hidden = !page || page.items.length > 0;
  $("more").hidden = !page || page.next_offset === null;
  const shift = page && page.shift !== undefined
    ? (page.shift ? ` · Schicht bis ${formatTime(page.shift[1])}` : " · gerade keine Schicht") : "";
  $("caption").textContent = page
    ? `${TAB_NAMES[state.tab]}: ${page.total} offen${shift} · Stand ${new Date().toLocaleTimeString("de-DE")}` : "";
  $("new-reminder").hidden = state.tab !== "reminders";
  if (state.detail) {
    const fresh = page && page.items.find((t) => t.task_id === state.detail.task_id);
    if (fresh && fresh.version !== state.detail.version) renderDetail(fresh);
  }
}

function row(t) {
  const title = el("a", { href: `#task=${encodeURIComponent(t.task_id)}`, text: t.title, class: "title" });
  const reasons = t.reasons.map((r) => label("reason", r));
  if (t.stage) reasons.unshift(label("stage", t.stage));
  return el("tr", { "data-task": t.task_id, class: `prio-${t.priority}` },
    el("td", { class: `prio prio-${t.priority}`, text: label("priority", t.priority) }),
    el("td", { text: t.vpa_name ? `${t.vpa_name} (${t.vpa_id})` : t.vpa_id }),
    el("td", {}, title, el("div", { class: "kind", text: label("kind", t.kind) })),
    el("td", { text: reasons.join(", ") }),
    el("td", { text: label("status", t.status) }),
    el("td", { text: t.assignee && t.owner && t.assignee !== t.owner ? `${t.assignee} (für ${t.owner})` : (t.assignee || "") }),
    el("td", { text: formatTime(t.due_at), title: t.due_at || undefined }),
    el("td", { class: "actions" }, actions(t, "row")),
  );
}

// ---- actions (the same controls in a row and in the detail view) -----------------------------

function outcome() {
  return el("span", { class: "outcome", role: "status", "aria-live": "polite" });
}

async function run(button, out, send) {
  button.disabled = true;
  out.className = "outcome";
  out.textContent = "Wird gesendet …";
  const r = await send();
  button.disabled = false;
  if (r.status === 202) {
    out.textContent = "Angenommen – wird übernommen …";
    scheduleRefresh(400);  // the live feed brings the change; this covers a feed that lags
  } else {
    out.className = "outcome error";
    out.setAttribute("role", "alert");
    out.textContent = reasonOf(r);
  }
  return r;
}

function actions(t, where) {
  const box = el("div", { class: "controls" });
  if (t.status !== "open" && t.status !== "waiting") return box;
  const key = (name) => `${where}:${t.task_id}:${name}`;
  if (t.tab === "cases") {
    const note = el("input", { type: "text", "aria-label": "Notiz zum Lösen", placeholder: "Notiz", "data-key": key("note") });
    const out = outcome();
    const button = el("button", { type: "button", text: "Fall lösen", "data-key": key("resolve"),
      onclick: () => run(button, out, () => sendCommand("cmd.case.resolve", t.vpa_id,
        { task_id: t.task_id, ...(note.value.trim() ? { note: note.value.trim() } : {}) })) });
    box.append(note, button, out);
  } else if (t.tab === "reminders") {
    const due = el("input", { type: "datetime-local", "aria-label": "Neue Fälligkeit", "data-key": key("due"),
      value: t.due_at ? isoToZoned(t.due_at) : tomorrowAtNine() });
    const outMove = outcome();
    const move = el("button", { type: "button", text: "Verschieben", "data-key": key("move"),
      onclick: () => {
        if (!due.value) { outMove.className = "outcome error"; outMove.textContent = "Bitte eine Fälligkeit wählen."; return; }
        run(move, outMove, () => sendCommand("cmd.reminder.reschedule", t.vpa_id,
          { reminder_id: t.task_id.replace(/^reminder:/, ""), due_at: zonedToIso(due.value) }));
      } });
    const filed = el("input", { type: "checkbox", "data-key": key("filed") });
    const outDone = outcome();
    const done = el("button", { type: "button", text: "Erledigt", "data-key": key("done"),
      onclick: () => run(done, outDone, () => sendCommand("cmd.reminder.complete", t.vpa_id,
        { reminder_id: t.task_id.replace(/^reminder:/, ""), file_updated: filed.checked })) });
    box.append(el("span", { class: "group" }, due, move, outMove),
      el("span", { class: "group" }, el("label", {}, filed, " VPA-Akte gepflegt"), done, outDone));
  } else if (t.tab === "journey") {
    if (t.stage === "NEW_GT_12" && state.me.role !== "vpa_manager") {
      box.append(el("span", { class: "hint", text: "Nur ein VPA Manager entfernt dieses Flag." }));
      return box;
    }
    const note = el("input", { type: "text", "aria-label": "Notiz zum Flag", placeholder: "Notiz", "data-key": key("note") });
    const out = outcome();
    const button = el("button", { type: "button", text: "Flag entfernen", "data-key": key("clear"),
      onclick: () => run(button, out, () => sendCommand("cmd.journey.clear", t.vpa_id,
        { stage: t.stage, ...(note.value.trim() ? { note: note.value.trim() } : {}) })) });
    box.append(note, button, out);
  }
  return box;
}

// The reminder form: on the Reminder tab for any VPA, in a case's detail view linked to the case.
function reminderForm(forCase) {
  const vpa = el("input", { type: "text", required: true, value: forCase ? forCase.vpa_id : "", readonly: !!forCase });
  const due = el("input", { type: "datetime-local", required: true, value: tomorrowAtNine() });
  const note = el("input", { type: "text", value: forCase ? forCase.title : "" });
  const owner = el("input", { type: "text", required: true, value: state.me.initials, size: 5,
    pattern: "[A-Z]{2,4}", title: "Kürzel: 2 bis 4 Großbuchstaben" });
  const out = outcome();
  const button = el("button", { type: "submit", text: "Reminder setzen" });
  const form = el("form", { class: "reminder-form", "aria-label": forCase ? "Reminder zu diesem Fall" : "Neuer Reminder" },
    forCase ? el("strong", { text: "Reminder zu diesem Fall:" }) : null, el("label", {}, "VPA ", vpa), el("label", {}, "Fällig am ", due), el("label", {}, "Notiz ", note),
    el("label", {}, "Für ", owner), button, out);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!due.value || !vpa.value.trim()) { out.className = "outcome error"; out.textContent = "VPA und Fälligkeit angeben."; return; }
    const data = { reminder_id: `r-${randomId()}`, due_at: zonedToIso(due.value), owner: owner.value.trim() };
    if (note.value.trim()) data.note = note.value.trim();
    if (forCase) data.case_task_id = forCase.task_id;
    run(button, out, () => sendCommand("cmd.reminder.set", vpa.value.trim(), data));
  });
  return form;
}

// ---- detail view ---------------------------------------------------------------------------

async function openDetail(taskId) {
  const r = await api(`/api/tasks/${encodeURIComponent(taskId)}`);
  if (!r.ok) { showNotice(`Aufgabe konnte nicht geladen werden: ${reasonOf(r)}`); return; }
  renderDetail(r.body);
  const dialog = $("detail");
  if (!dialog.open) dialog.showModal();
}

function renderDetail(t) {
  state.detail = t;
  $("detail-title").textContent = t.title;
  const facts = [
    ["VPA", t.vpa_name ? `${t.vpa_name} (${t.vpa_id})` : t.vpa_id],
    ["Art", t.stage ? `${label("kind", t.kind)}, ${label("stage", t.stage)}` : label("kind", t.kind)],
    ["Status", label("status", t.status)], ["Priorität", label("priority", t.priority)],
    ["Gründe", t.reasons.map((x) => label("reason", x)).join(", ") || "–"],
    ["Zuständig", t.assignee && t.owner && t.assignee !== t.owner ? `${t.assignee} (für ${t.owner})` : (t.assignee || "–")],
    ["Fällig", t.due_at ? formatTime(t.due_at) : "–"],
  ];
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  $("detail-action").textContent = t.action;
  $("detail-draft").hidden = !t.message_draft;
  $("draft-text").value = t.message_draft || "";
  $("draft-copied").textContent = "";
  const why = (t.evidence || []).map((e) => el("li", { text: e.text, title: e.event_id ? `Ereignis ${e.event_id}` : undefined }));
  $("detail-why").replaceChildren(...(why.length ? why : [el("li", { text: "Keine Begründung gespeichert." })]));
  $("detail-history").replaceChildren(...t.history.map((h) =>
    el("li", {}, el("time", { datetime: h.at, text: formatTime(h.at) }), ` – ${h.change} – von ${h.by}`)));
  const box = $("detail-actions");
  box.replaceChildren(actions(t, "detail"));
  if (t.tab === "cases" && (t.status === "open" || t.status === "waiting")) box.append(reminderForm(t));
}

async function copyDraft() {
  const text = $("draft-text").value;
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {  // no clipboard API outside a secure context: select and copy
    $("draft-text").select();
    document.execCommand("copy");
  }
  $("draft-copied").textContent = "Kopiert.";
}

function routeFromHash() {
  const m = location.hash.match(/^#task=(.+)$/);
  if (m) openDetail(decodeURIComponent(m[1]));
}

// ---- live updates --------------------------------------------------------------------------

// EventSource cannot send an Authorization header, so the stream is read with fetch. Every
// (re)connection re-reads the lists: changes missed while disconnected are not replayed.
async function follow() {
  let delay = 1000;
  let lastId = null;
  while (state.token) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const resp = await fetch("/api/stream", { headers, signal: controller.signal, cache: "no-store" });
      if (resp.status === 401) { signedOut("Das Token ist nicht mehr gültig."); return; }
      if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const ev = parseEvent(block);
          if (ev.id) lastId = ev.id;
          if (ev.event === "ready") { delay = 1000; setLive(true); scheduleRefresh(0); }
          else if (ev.event === "task") onTask(JSON.parse(ev.data));
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return;
    }
    setLive(false, delay);
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

function parseEvent(block) {
  const ev = { event: "message", data: "", id: null };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") ev.event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") ev.id = value;
  }
  ev.data = data.join("\n");
  return ev;
}

function onTask(task) {
  if (state.detail && state.detail.task_id === task.task_id && state.detail.version !== task.version) renderDetail(task);
  scheduleRefresh();
}

function setLive(on, retryIn) {
  $("live").textContent = on ? "● Live" : `Verbindung unterbrochen – neuer Versuch in ${Math.round(retryIn / 1000)} s`;
  $("live").className = on ? "live on" : "live off";
}

// ---- session -------------------------------------------------------------------------------

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function signedOut(why) {
  state.token = "";
  state.me = null;
  if (state.stream) state.stream.abort();
  $("app").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  $("live").textContent = "";
  showNotice(why || "");
}

async function signIn(token) {
  state.token = token;
  const r = await api("/api/me");
  if (!r.ok) {
    localStorage.removeItem("vpaToken");
    signedOut(r.status === 401 ? "Unbekanntes Token: bitte prüfen." : `Anmeldung fehlgeschlagen: ${reasonOf(r)}`);
    return;
  }
  localStorage.setItem("vpaToken", token);
  state.me = r.body;
  showNotice("");
  $("who").textContent = `Angemeldet als ${state.me.initials} (${label("role", state.me.role)})`;
  $("login").hidden = true;
  $("session").hidden = false;
  $("app").hidden = false;
  $("new-reminder-form").replaceChildren(reminderForm(null));
  await refresh();
  follow();
  routeFromHash();
}

function selectTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll('[role="tab"]')) {
    const on = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
  }
  $("panel").setAttribute("aria-labelledby", `tab-${tab}`);
  render();
}

function init() {
  if (location.hash.startsWith("#token=")) {  // the demo prints a link with the token in the fragment
    localStorage.setItem("vpaToken", decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname);
  }
  $("login").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
  $("logout").addEventListener("click", () => { localStorage.removeItem("vpaToken"); signedOut("Abgemeldet."); });
  for (const button of document.querySelectorAll('[role="tab"]')) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
    button.addEventListener("keydown", (ev) => {
      const i = TABS.indexOf(button.dataset.tab);
      const next = ev.key === "ArrowRight" ? TABS[(i + 1) % 3] : ev.key === "ArrowLeft" ? TABS[(i + 2) % 3] : null;
      if (next) { selectTab(next); $(`tab-${next}`).focus(); }
    });
  }
  for (const id of ["f-mine", "f-shift", "f-overdue"]) $(id).addEventListener("change", () => refresh());
  $("more").addEventListener("click", loadMore);
  $("detail-close").addEventListener("click", () => $("detail").close());
  $("detail").addEventListener("close", () => {
    state.detail = null;
    if (location.hash.startsWith("#task=")) history.replaceState(null, "", location.pathname);
  });
  $("draft-copy").addEventListener("click", copyDraft);
  window.addEventListener("hashchange", routeFromHash);
  const saved = localStorage.getItem("vpaToken");
  if (saved) signIn(saved);
}

document.addEventListener("DOMContentLoaded", init);
