// VPA Manager Dashlet page: the AT's afternoon pass (Heute), the three lists, a VPA's page, the
// VPA Managers' team view. Reads /api/*, sends commands to /api/commands, follows /api/stream and
// applies each changed task in place. Every text from the API is set with textContent, never as
// HTML; the Content-Security-Policy allows no inline script either.
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
    NEW_0_3: "Neu, 0-3 Monate", NEW_3_6: "Neu, 3-6 Monate", NEW_6_9: "Neu, 6-9 Monate",
    NEW_9_12: "Neu, 9-12 Monate", NEW_GT_12: "Über 12 Monate",
  },
  reason: {
    long: "lange Abwesenheit", frequent: "häufige Abwesenheiten", short_notice: "kurzfristig eingetragen",
    new_vpa_no_orders: "neuer VPA ohne Aufträge/Neukunden", priority_check: "Prio prüfen (A/B)",
    review: "auf Auffälligkeiten prüfen", negative: "Klasse verschlechtert", positive: "Klasse verbessert",
    rising_star: "Rising Star", follow_up: "Follow-up ausstehend", active_again: "wieder aktiv",
    active_on_mobile: "in der App aktiv", part_time_no_contact: "Teilzeit, kein Kontakt",
    contact_needed: "Kontakt nötig", customer_complaint: "Kundenmeldung",
    verify_mobile_activity: "App-Aktivität prüfen", handover: "übergeben", handover_unavailable: "keine Vertretung",
    measures_needed: "Maßnahmen nötig (C/D)", class_ok: "Klasse ok (A/B)", class_unknown: "Klasse unbekannt",
  },
  absence: { vacation: "Urlaub", sick: "krank" },
};
const LIST_TABS = ["cases", "reminders", "journey"];
const TAB_NAMES = { heute: "Heute", cases: "Fälle", reminders: "Reminder", journey: "Journey", team: "Team" };
const SYSTEM_NAMES = new Set(["SYS", "system", "detector", "reminders", "journey", "notifier"]);
const WEEKDAYS = ["So", "Mo", "Di", "Mi", "Do", "Fr", "Sa"];
const NOTE_MAX = 2000;
const PAGE_SIZE = 100;
const LIVE = new Set(["waiting", "open"]);

const state = {
  token: "", me: null, view: "heute", vpaId: null,
  pages: { cases: null, reminders: null, journey: null },
  today: null, team: null, whatif: null, whatifPolling: false, vpa: null, detail: null, stream: null,
  reread: {},  // view -> timer of a throttled re-read
  lastRead: {},  // view -> Date.now() of the last read
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
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}
const label = (group, code) => (LABELS[group] && LABELS[group][code]) || code || "";
const who = (initials) => (SYSTEM_NAMES.has(initials) ? "System" : initials);

// ---- dates and times: German, in the business time zone, the year left out only in this year ----

function zoneParts(date) {
  const fmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: state.me.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const p = Object.fromEntries(fmt.formatToParts(date).map((x) => [x.type, x.value]));
  const weekday = new Date(Date.UTC(+p.year, +p.month - 1, +p.day)).getUTCDay();
  return { ...p, weekday: WEEKDAYS[weekday] };
}

function thisYear() { return zoneParts(new Date()).year; }

// "Mi 08.12.2026, 11:45 Uhr" ("Mi 08.12., 11:45 Uhr" inside the current year)
function formatTime(iso) {
  if (!iso) return "";
  const p = zoneParts(new Date(iso));
  const year = p.year === thisYear() ? "" : p.year;
  return `${p.weekday} ${p.day}.${p.month}.${year}, ${p.hour}:${p.minute} Uhr`;
}

// "Mi 08.12.2026" for a calendar date "2026-12-08"
function formatDay(isoDate) {
  if (!isoDate) return "";
  const [y, m, d] = isoDate.slice(0, 10).split("-").map(Number);
  const weekday = WEEKDAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()];
  const year = String(y) === thisYear() ? "" : String(y);
  return `${weekday} ${String(d).padStart(2, "0")}.${String(m).padStart(2, "0")}.${year}`;
}

function zoneLabel() {
  return state.me.timezone === "Europe/Berlin" ? "Berliner Zeit" : state.me.timezone;
}

function offsetMinutes(date) {
  const p = zoneParts(date);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute);
  return Math.round((asUtc - Math.floor(date.getTime() / 60000) * 60000) / 60000);
}

// A wall time in the business time zone as an instant (RFC 3339, UTC).
function zonedToIso(y, m, d, hh, mm) {
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let instant = wall;
  for (let i = 0; i < 3; i++) instant = wall - offsetMinutes(new Date(instant)) * 60000;
  return new Date(instant).toISOString();
}

// The default due time: the next working day at 09:00, a Monday at 12:00 (DESIGN 2.1's follow-up rule).
function nextWorkingDay() {
  const p = zoneParts(new Date());
  let day = new Date(Date.UTC(+p.year, +p.month - 1, +p.day));
  do { day = new Date(day.getTime() + 86400000); } while (day.getUTCDay() === 0 || day.getUTCDay() === 6);
  const monday = day.getUTCDay() === 1;
  return { y: day.getUTCFullYear(), m: day.getUTCMonth() + 1, d: day.getUTCDate(), hh: monday ? 12 : 9, mm: 0 };
}

function daysText(n) { return n === 0 ? "seit heute" : n === 1 ? "seit 1 Tag" : `seit ${n} Tagen`; }

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
  if (resp.status === 401) signedOut("Das Token ist nicht mehr gültig.");
  else if (resp.ok) clearStaleNotice();
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

// ---- the address: view and filters survive a reload ------------------------------------------

function readHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  return {
    tab: q.get("tab"), vpa: q.get("vpa"), task: q.get("task"),
    mine: q.get("mine") === "1", shift: q.get("shift") === "1", overdue: q.get("overdue") === "1",
  };
}

function writeHash(extra = {}) {
  const q = new URLSearchParams();
  if (state.view === "vpa" && state.vpaId) q.set("vpa", state.vpaId);
  else q.set("tab", state.view);
  for (const [id, key] of [["f-mine", "mine"], ["f-shift", "shift"], ["f-overdue", "overdue"]]) {
    if ($(id).checked) q.set(key, "1");
  }
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  const hash = `#${q}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// ---- the lists (Fälle, Reminder, Journey) -----------------------------------------------------

function filterParams(tab, limit) {
  const q = new URLSearchParams({ tab, sort: "priority", limit: String(limit) });
  q.append("status", "waiting");
  q.append("status", "open");
  if ($("f-mine").checked) q.set("assignee", state.me.initials);
  if ($("f-shift").checked) q.set("shift", "current");
  if ($("f-overdue").checked) q.set("due_before", new Date().toISOString());
  return q;
}

async function readList(tab) {
  const r = await api(`/api/tasks?${filterParams(tab, PAGE_SIZE)}`);
  if (r.ok) state.pages[tab] = r.body;
  else if (r.status !== 401) showNotice(`Liste konnte nicht geladen werden: ${reasonOf(r)}`);
}

// The next page goes on from the place the last page ended (keyset: the server reads only the rows
// after it); a task that moved there meanwhile through the live feed is not shown twice.
async function loadMore(tab) {
  const page = state.pages[tab];
  if (!page || page.next_offset === null || !page.next_after) return;
  const q = filterParams(tab, PAGE_SIZE);
  q.set("after", page.next_after);
  const r = await api(`/api/tasks?${q}`);
  if (!r.ok) { showNotice(`Weitere Aufgaben konnten nicht geladen werden: ${reasonOf(r)}`); return; }
  const shown = new Set(page.items.map((x) => x.task_id));
  page.items = page.items.concat(r.body.items.filter((x) => !shown.has(x.task_id)));
  page.next_after = r.body.next_after;
  page.next_offset = r.body.next_after === null ? null : page.items.length;  // "more to load" for the feed
  render();
}

// Does a task belong in the list of ``tab`` as it is filtered now? (the live feed's question)
function matchesList(t, tab, page) {
  if (t.tab !== tab || !LIVE.has(t.status)) return false;
  if ($("f-mine").checked && t.assignee !== state.me.initials) return false;
  if ($("f-overdue").checked && !(t.due_at && new Date(t.due_at) < new Date())) return false;
  if ($("f-shift").checked) {
    const end = page && page.shift ? new Date(page.shift[1]) : null;
    if (!end || !t.due_at || new Date(t.due_at) > end) return false;
  }
  return true;
}

const PRIO_RANK = { high: 0, normal: 1, low: 2 };
function listOrder(a, b) {
  const pa = PRIO_RANK[a.priority] ?? 3; const pb = PRIO_RANK[b.priority] ?? 3;
  if (pa !== pb) return pa - pb;
  const da = a.due_at ? new Date(a.due_at).getTime() : Infinity;
  const db = b.due_at ? new Date(b.due_at).getTime() : Infinity;
  if (da !== db) return da - db;
  return a.task_id < b.task_id ? -1 : a.task_id > b.task_id ? 1 : 0;
}

function listView(tab) {
  const page = state.pages[tab];
  const box = el("div", { class: "list" });
  if (tab === "reminders") {
    if (!state.newReminder) {
      state.newReminder = el("details", { class: "new-reminder" }, el("summary", { text: "Neuer Reminder" }), reminderForm({}));
    }
    box.append(state.newReminder);
  }
  if (!page) { box.append(el("p", { class: "empty", text: "Wird geladen …" })); return box; }
  let shiftText = "";
  if (page.shift !== undefined) {
    shiftText = page.shift
      ? (page.shift_next ? ` · gerade keine Schicht: fällig bis Ende der nächsten Schicht (${formatTime(page.shift[0])} bis ${formatTime(page.shift[1])}), Überfälliges eingeschlossen`
        : ` · Schicht bis ${formatTime(page.shift[1])}`)
      : "";
  }
  const table = el("table", { class: "tasks" },
    el("caption", { text: `${TAB_NAMES[tab]}: ${page.total} zu bearbeiten (wartend oder offen)${shiftText}` }),
    el("thead", {}, el("tr", {}, ...["Priorität", "VPA", "Aufgabe", "Gründe", "Status", "Zuständig", "Fällig", "Aktionen"]
      .map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...page.items.map(taskRow)));
  box.append(table);
  if (!page.items.length) box.append(el("p", { class: "empty", text: "Keine offenen Aufgaben für diese Auswahl." }));
  if (page.next_offset !== null) box.append(el("button", { type: "button", text: "Weitere laden", onclick: () => loadMore(tab) }));
  return box;
}

function vpaLink(vpaId, name) {
  return el("a", { href: `#vpa=${encodeURIComponent(vpaId)}`, class: "vpa", text: name ? `${name} (${vpaId})` : vpaId,
    onclick: (ev) => { ev.preventDefault(); openVpa(vpaId); } });
}

function titleLink(t) {
  return el("a", { href: `#task=${encodeURIComponent(t.task_id)}`, text: t.title, class: "title",
    onclick: (ev) => { ev.preventDefault(); openDetail(t.task_id); } });
}

function reasonsText(t) {
  const reasons = t.reasons.map((r) => label("reason", r));
  if (t.stage) reasons.unshift(label("stage", t.stage));
  return reasons.join(", ");
}

// Who works it, and why when it is not the owner (Vertretung, Buddy, VPA Manager).
function assigneeText(t) {
  if (!t.assignee) return "";
  if (t.tab === "journey" && t.stage === "NEW_3_6" && t.assignee !== t.owner) return `${t.assignee} (Buddy)`;
  if (t.tab === "journey" && t.stage === "NEW_GT_12") return `${t.assignee} (VPA Manager)`;
  if (t.owner && t.assignee !== t.owner) return `${t.assignee} (Vertretung für ${t.owner})`;
  if (t.reasons.includes("handover_unavailable")) return `${t.assignee} (abwesend, keine Vertretung verfügbar)`;
  return t.assignee;
}

// Rows and cards are kept per task version: a redraw leaves an unchanged task's controls (and
// what someone typed into them) as they are.
const drawn = new Map();  // "row|card:task_id@version" -> {node, used}
let drawing = 0;
function cached(kind, t, make) {
  const key = `${kind}:${t.task_id}@${t.version}`;
  let hit = drawn.get(key);
  if (!hit) { hit = { node: make() }; drawn.set(key, hit); }
  hit.used = drawing;
  return hit.node;
}
function forgetUnused() {
  for (const [key, hit] of drawn) if (hit.used < drawing - 1) drawn.delete(key);
}

function taskRow(t) {
  return cached("row", t, () => makeRow(t));
}

function makeRow(t) {
  return el("tr", { "data-task": t.task_id, class: `prio-${t.priority}` },
    el("td", { class: "prio", "data-label": "Priorität", text: label("priority", t.priority) }),
    el("td", { "data-label": "VPA" }, vpaLink(t.vpa_id, t.vpa_name)),
    el("td", { "data-label": "Aufgabe" }, titleLink(t), el("div", { class: "kind", text: label("kind", t.kind) })),
    el("td", { "data-label": "Gründe", text: reasonsText(t) }),
    el("td", { "data-label": "Status", text: label("status", t.status) }),
    el("td", { "data-label": "Zuständig", text: assigneeText(t) }),
    el("td", { "data-label": "Fällig", text: t.due_at ? formatTime(t.due_at) : "–" }),
    el("td", { class: "actions", "data-label": "Aktionen" }, actions(t)),
  );
}

// ---- Heute -----------------------------------------------------------------------------------

async function readToday() {
  const r = await api("/api/today");
  if (r.ok) { state.today = r.body; state.lastRead.heute = Date.now(); }
  else if (r.status !== 401) showNotice(`Heute konnte nicht geladen werden: ${reasonOf(r)}`);
}

function todayView() {
  const t = state.today;
  const box = el("div", { class: "today" });
  if (!t) { box.append(el("p", { class: "empty", text: "Wird geladen …" })); return box; }
  const total = t.done_today + t.open;
  box.append(el("p", { class: "progress", role: "status", text: `Heute erledigt ${t.done_today} von ${total}` }),
    el("progress", { max: String(Math.max(total, 1)), value: String(t.done_today), "aria-label": "Fortschritt heute" }));
  if (!t.groups.length) {
    box.append(el("p", { class: "empty", text: "Nichts mehr zu tun für heute." }));
    return box;
  }
  const list = el("ol", { class: "groups", "aria-label": "Nach VPA, das Älteste zuerst" });
  for (const g of t.groups) {
    list.append(el("li", { class: "group-card" },
      el("h2", {}, vpaLink(g.vpa_id, g.vpa_name)),
      el("ul", { class: "cards" }, ...g.items.map((i) => taskCard(i.task, i)))));
  }
  box.append(list);
  return box;
}

function taskCard(t, info = null) {
  return cached(`card${info ? `-${info.days}-${info.overdue}` : ""}`, t, () => makeCard(t, info));
}

function makeCard(t, info) {
  const meta = [label("kind", t.kind), label("status", t.status)];
  if (t.due_at) meta.push(`fällig ${formatTime(t.due_at)}`);
  if (info) meta.push(daysText(info.days));
  if (info && info.overdue) meta.push("überfällig");
  return el("li", { class: `task-card prio-${t.priority}`, "data-task": t.task_id },
    el("div", { class: "card-head" }, titleLink(t), el("span", { class: "prio", text: label("priority", t.priority) })),
    el("div", { class: "meta", text: meta.join(" · ") }),
    t.reasons.length || t.stage ? el("div", { class: "kind", text: reasonsText(t) }) : null,
    el("div", { class: "kind", text: `Zuständig: ${assigneeText(t) || "–"}` }),
    LIVE.has(t.status) ? el("div", { class: "actions" }, actions(t)) : null);
}

// ---- Team (VPA Managers) ---------------------------------------------------------------------

// "Was wäre wenn": the company's history computed again with other thresholds, as a job on the
// server; the page polls its progress and shows the report (summary, weekly change, members, tasks).
async function readWhatif() {
  if (state.me.role !== "vpa_manager") return;
  const r = await api("/api/whatif");
  if (r.ok) state.whatif = r.body;
  if (state.whatif && state.whatif.state === "running" && !state.whatifPolling) {
    state.whatifPolling = true;
    setTimeout(async () => {
      state.whatifPolling = false;
      await readWhatif();
      if (state.view === "team") render();
    }, 1000);
  }
}

async function startWhatif(ev) {
  ev.preventDefault();
  const changes = {};
  for (const s of state.whatif.settings) {
    const input = $(`wi-${s.name}`);
    if (input && input.value.trim() !== s.value) changes[s.name] = input.value.trim();
  }
  if (!Object.keys(changes).length) { showNotice("Bitte mindestens einen Wert ändern."); return; }
  const r = await api("/api/whatif", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ changes }) });
  if (!r.ok) { showNotice(`Was wäre wenn: ${reasonOf(r)}`); return; }
  state.whatif = r.body;
  await readWhatif();
  render();
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
}

// The cases' change per week as bars (orange: more with the change, grey: fewer).
function whatifChart(weeks) {
  const w = 640, h = 170, pad = 28, n = Math.max(weeks.length, 1);
  const deltas = weeks.map((x) => x.cases[1] - x.cases[0]);
  const top = Math.max(1, ...deltas.map(Math.abs));
  const zero = h / 2, bw = (w - 2 * pad) / n;
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", class: "whatif-chart",
    "aria-label": "Fälle je Woche: mit der Änderung minus heute" });
  chart.append(svg("line", { x1: pad, x2: w - pad, y1: zero, y2: zero, stroke: "#1f2933" }));
  deltas.forEach((d, i) => {
    const len = (Math.abs(d) / top) * (zero - 14);
    chart.append(svg("rect", { x: pad + i * bw + 2, width: Math.max(bw - 4, 1), y: d >= 0 ? zero - len : zero,
      height: len, fill: d > 0 ? "#d9480f" : "#5b6b7a" }, svg("title", {}, `${weeks[i].week}: ${d > 0 ? "+" : ""}${d}`)));
    if (i % Math.ceil(n / 12) === 0) {
      chart.append(svg("text", { x: pad + i * bw + bw / 2, y: h - 4, "text-anchor": "middle", "font-size": 11,
        fill: "#52606d" }, weeks[i].week.split("-")[1]));
    }
  });
  chart.append(svg("text", { x: 2, y: 12, "font-size": 11, fill: "#52606d" }, `±${top}`));
  return chart;
}

function whatifView() {
  const wi = state.whatif;
  const box = el("section", { class: "whatif", "aria-label": "Was wäre wenn" }, el("h2", { text: "Was wäre wenn" }));
  if (!wi) { box.append(el("p", { class: "empty", text: "Wird geladen …" })); return box; }
  if (wi.state === "unavailable") {
    box.append(el("p", { class: "hint", text: "Hier kann kein Was-wäre-wenn laufen." }));
    return box;
  }
  box.append(el("p", { class: "hint", text: "Den bisherigen Verlauf mit anderen Schwellen durchrechnen: wie sich die "
    + "Arbeit des AT ändern würde. Die laufende Arbeit bleibt unberührt." }));
  const running = wi.state === "running";
  const form = el("form", { id: "whatif-form", onsubmit: startWhatif },
    ...wi.settings.map((s) => el("label", { class: "wi-field" }, el("span", { text: s.label }),
      el("input", { id: `wi-${s.name}`, name: s.name, type: "text", value: s.value, "data-current": s.value,
        disabled: running, "aria-describedby": "wi-hint" }))),
    el("p", { id: "wi-hint", class: "hint", text: "Heutige Werte sind eingetragen; nur geänderte zählen." }),
    el("button", { type: "submit", class: "primary", disabled: running, text: running ? "Wird gerechnet …" : "Durchrechnen" }));
  box.append(form);
  if (running) {
    box.append(el("p", {}, el("progress", { max: 1, value: wi.progress || 0, "aria-label": "Fortschritt" }),
      ` ${Math.round((wi.progress || 0) * 100)} % (${wi.phase || "läuft"})`));
  } else if (wi.state === "failed") {
    box.append(el("p", { class: "warning", text: `Die Berechnung ist gescheitert: ${wi.error || "unbekannt"}` }));
  } else if (wi.state === "done" && wi.report) {
    const r = wi.report;
    const changed = Object.entries(r.changes).map(([k, v]) => {
      const s = wi.settings.find((x) => x.name === k);
      return `${s ? s.label : k}: ${v}`;
    }).join(", ");
    box.append(el("p", { class: "whatif-summary", text: r.summary }),
      el("p", { class: "hint", text: `Geändert: ${changed}${wi.by ? ` (von ${wi.by})` : ""}` }),
      whatifChart(r.weeks));
    const members = r.members.filter((m) => m.assigned[0] !== m.assigned[1])
      .sort((a, b) => Math.abs(b.assigned[1] - b.assigned[0]) - Math.abs(a.assigned[1] - a.assigned[0])).slice(0, 12);
    if (members.length) {
      box.append(el("table", { class: "tasks" }, el("caption", { text: "Zugewiesen je Mitglied" }),
        el("thead", {}, el("tr", {}, ...["Mitglied", "heute", "mit der Änderung", "höchstens offen (heute → geändert)"]
          .map((x) => el("th", { scope: "col", text: x })))),
        el("tbody", {}, ...members.map((m) => el("tr", {},
          el("td", { "data-label": "Mitglied", text: m.initials }),
          el("td", { "data-label": "heute", text: String(m.assigned[0]) }),
          el("td", { "data-label": "mit der Änderung", text: String(m.assigned[1]) }),
          el("td", { "data-label": "höchstens offen", text: `${m.peak[0]} → ${m.peak[1]}` }))))));
    }
    const sample = r.differences.sample.slice(0, 8);
    if (sample.length) {
      box.append(el("h3", { text: `Aufgaben, die sich ändern (${r.differences.count})` }),
        el("ul", { class: "whatif-sample" }, ...sample.map((x) => {
          const side = x.changed || x.current;
          const kind = { only_changed: "nur mit der Änderung", only_current: "nur heute", differs: "anders" }[x.kind];
          return el("li", {}, el("strong", { text: `${side.title || x.task_id}: ${kind}` }),
            el("div", { class: "hint", text: `Warum: ${(side.warum || []).filter(Boolean).join(" ")}` }));
        })));
    }
  }
  return box;
}

async function readTeam() {
  const r = await api("/api/team");
  if (r.ok) { state.team = r.body; state.lastRead.team = Date.now(); }
  else if (r.status !== 401) showNotice(`Team konnte nicht geladen werden: ${reasonOf(r)}`);
}

function teamView() {
  const t = state.team;
  const box = el("div", { class: "team" });
  if (!t) { box.append(el("p", { class: "empty", text: "Wird geladen …" })); return box; }
  box.append(el("h2", { text: "Arbeit je Mitglied" }),
    el("table", { class: "tasks team-load" },
      el("caption", { text: t.shift ? `Schicht bis ${formatTime(t.shift[1])}` : "Gerade keine Schicht" }),
      el("thead", {}, el("tr", {}, ...["Mitglied", "Rolle", "Heute da", "Offen", "Fällig in dieser Schicht", "Überfällig",
        "Ältester offener Eintrag"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...t.members.map((m) => el("tr", {},
        el("td", { "data-label": "Mitglied", text: m.name && m.name !== m.initials ? `${m.initials} (${m.name})` : m.initials }),
        el("td", { "data-label": "Rolle", text: label("role", m.role) }),
        el("td", { "data-label": "Heute da", text: m.present_today ? "ja" : "abwesend" }),
        el("td", { "data-label": "Offen", text: String(m.open) }),
        el("td", { "data-label": "Fällig in dieser Schicht", text: String(m.due_this_shift) }),
        el("td", { "data-label": "Überfällig", text: String(m.overdue) }),
        el("td", { "data-label": "Ältester offener Eintrag" },
          m.oldest ? el("span", {}, titleLink(m.oldest), ` (${formatTime(m.oldest_since)})`) : "–"))))));
  box.append(whatifView());
  box.append(el("h2", { text: "Abwesenheiten der nächsten 14 Tage" }));
  if (!t.absences.length) box.append(el("p", { class: "empty", text: "Niemand ist in den nächsten 14 Tagen abwesend." }));
  for (const a of t.absences) {
    const until = a.ends_on ? `bis ${formatDay(a.ends_on)}` : "ohne Enddatum";
    const deputy = a.deputy
      ? (a.deputy_available ? `Vertretung ${a.deputy}` : `Vertretung ${a.deputy} ist selbst nicht verfügbar`)
      : "keine Vertretung eingetragen";
    const warn = !a.deputy_available;
    const section = el("section", { class: `absence${warn ? " warn" : ""}`, "aria-label": `Abwesenheit ${a.initials}` },
      el("h3", { text: `${a.initials}${a.name && a.name !== a.initials ? ` (${a.name})` : ""}: ${label("absence", a.kind)} ab ${formatDay(a.starts_on)}, ${until}` }),
      el("p", { class: warn ? "warning" : "hint", text: warn ? `${deputy}: die Aufgaben werden verteilt oder bleiben liegen.` : deputy }));
    if (a.moves.length) {
      section.append(el("table", { class: "tasks moves" },
        el("caption", { text: `Was am ${formatDay(a.moves[0].day)} übergeben wird` }),
        el("thead", {}, el("tr", {}, ...["Aufgabe", "VPA", "an", "warum"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, ...a.moves.map((m) => el("tr", {},
          el("td", { "data-label": "Aufgabe", text: m.title }),
          el("td", { "data-label": "VPA" }, vpaLink(m.vpa_id, m.vpa_name)),
          el("td", { "data-label": "an", text: m.to || `niemand (bleibt bei ${a.initials})` }),
          el("td", { "data-label": "warum", text: m.why }))))));
    } else {
      section.append(el("p", { class: "hint", text: "Keine offenen Fälle oder Reminder, die übergeben würden." }));
    }
    box.append(section);
  }
  return box;
}

// ---- a VPA's page ----------------------------------------------------------------------------

async function openVpa(vpaId) {
  if ($("detail").open) $("detail").close();
  state.view = "vpa";
  state.vpaId = vpaId;
  writeHash();
  await readVpa();
  render();
  const heading = $("vpa-name");
  if (heading) heading.focus();
}

async function readVpa() {
  const r = await api(`/api/vpas/${encodeURIComponent(state.vpaId)}`);
  if (r.ok) state.vpa = r.body;
  else { state.vpa = null; if (r.status !== 401) showNotice(`VPA ${state.vpaId}: ${reasonOf(r)}`); }
}

function vpaView() {
  const v = state.vpa;
  const box = $("vpa-page");
  const back = el("button", { type: "button", class: "back", text: "Zurück zur Liste", onclick: () => selectTab(state.lastTab || "heute") });
  if (!v) { box.replaceChildren(back, el("p", { class: "empty", text: "Wird geladen …" })); return; }
  const p = v.profile;
  const facts = [["VPA-ID", v.vpa_id]];
  if (p) {
    if (p.started_on) facts.push(["Dabei seit", `${formatDay(p.started_on)} (${p.tenure_months} Monate${p.new_vpa ? ", neuer VPA" : ""})`]);
    facts.push(["Teilzeit", p.part_time ? "ja" : "nein"], ["Mobile App", p.uses_mobile_app ? "ja" : "nein"],
      ["AT-Owner", p.at_owner || "–"], ["Buddy", p.buddy || "–"],
      ["Klasse (nur intern)", p.vpa_class ? `${p.vpa_class}${p.rising_star ? ", Rising Star" : ""}` : "unbekannt"]);
    if (p.offboarded_at) facts.push(["Ausgeschieden", formatTime(p.offboarded_at)]);
  }
  const live = v.tasks.filter((t) => LIVE.has(t.status));
  const closed = v.tasks.filter((t) => !LIVE.has(t.status));
  const linkedIds = new Set(Object.values(v.linked).flat().map((r) => r.task_id));
  const card = (t) => {
    const linked = (v.linked[t.task_id] || []).filter((r) => LIVE.has(r.status));
    if (!linked.length) return taskCard(t);
    return el("li", { class: "with-linked" }, el("ul", { class: "cards" }, taskCard(t)),
      el("div", { class: "linked" }, el("strong", { text: "Reminder zu diesem Fall:" }),
        el("ul", { class: "cards" }, ...linked.map((r) => taskCard(r)))));
  };
  const sections = [];
  for (const tab of LIST_TABS) {
    const items = live.filter((t) => t.tab === tab && !(tab === "reminders" && linkedIds.has(t.task_id) &&
      live.some((c) => c.task_id === t.case_task_id)));
    sections.push(el("section", { "aria-label": TAB_NAMES[tab] }, el("h3", { text: `${TAB_NAMES[tab]} (${items.length})` }),
      items.length ? el("ul", { class: "cards" }, ...items.map(card)) : el("p", { class: "empty", text: "Nichts offen." })));
  }
  box.replaceChildren(
    back,
    el("h2", { id: "vpa-name", tabindex: "-1", text: v.name || v.vpa_id }),
    el("dl", { class: "facts" }, ...facts.flatMap(([k, val]) => [el("dt", { text: k }), el("dd", { text: val })])),
    v.crm_url ? el("p", {}, el("a", { href: v.crm_url, target: "_blank", rel: "noopener noreferrer", text: "VPA-Akte im CRM öffnen" })) : null,
    ...sections,
    vpaReminderForm(v),
    el("section", { "aria-label": "Erledigt" }, el("h3", { text: `Kürzlich erledigt (${closed.length})` }),
      closed.length ? el("ul", { class: "cards" }, ...closed.map((t) => taskCard(t))) : el("p", { class: "empty", text: "Nichts in den letzten 30 Tagen." })),
    el("section", { "aria-label": "Letzte Ereignisse" }, el("h3", { text: "Letzte Ereignisse" }),
      v.events.length ? el("ul", { class: "events" }, ...v.events.map((e) =>
        el("li", {}, el("time", { datetime: e.occurred_at, text: formatTime(e.occurred_at) }), ` – ${e.text}`)))
        : el("p", { class: "empty", text: "Keine Ereignisse bekannt." })),
  );
}

function vpaReminderForm(v) {  // kept while the page shows the same VPA: a redraw keeps what was typed
  if (!state.vpaForm || state.vpaForm.vpaId !== v.vpa_id) {
    state.vpaForm = { vpaId: v.vpa_id, node: el("details", { class: "new-reminder" },
      el("summary", { text: "Neuer Reminder für diesen VPA" }), reminderForm({ vpaId: v.vpa_id, vpaName: v.name })) };
  }
  return state.vpaForm.node;
}

// ---- the search (header) ---------------------------------------------------------------------

function searchBox(input, list, onPick) {
  let timer = null;
  let seq = 0;
  const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) { close(); return; }
    timer = setTimeout(async () => {
      const mine = ++seq;
      const r = await api(`/api/vpas?${new URLSearchParams({ q })}`);
      if (mine !== seq || !r.ok) return;
      list.replaceChildren(...(r.body.items.length ? r.body.items.map((h, i) => el("li", {
        role: "option", id: `${list.id}-${i}`, tabindex: "-1", "data-vpa": h.vpa_id,
        text: `${h.name || "?"} (${h.vpa_id})${h.offboarded ? ", ausgeschieden" : ""}`,
        onclick: () => { close(); onPick(h); },
        onkeydown: (ev) => { if (ev.key === "Enter") { ev.preventDefault(); close(); onPick(h); } },
      })) : [el("li", { role: "option", "aria-disabled": "true", text: "Kein VPA gefunden." })]));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }, 150);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && !list.hidden) { ev.preventDefault(); const first = list.querySelector('[role="option"][data-vpa]'); if (first) first.focus(); }
    if (ev.key === "Escape") close();
    if (ev.key === "Enter") {
      ev.preventDefault();
      const first = list.querySelector('[role="option"][data-vpa]');
      if (first && !list.hidden) first.click();
    }
  });
  return close;
}

// ---- actions (the same controls in a row, a card and the detail view) ------------------------

function outcome() {
  return el("span", { class: "outcome", role: "status", "aria-live": "polite" });
}

function fail(out, text) {
  out.className = "outcome error";
  out.textContent = text;
}

async function run(button, out, send, onAccepted = null) {
  button.disabled = true;
  out.className = "outcome";
  out.textContent = "Wird gesendet …";
  const r = await send();
  button.disabled = false;
  if (r.status === 202) {
    out.textContent = "Angenommen.";
    if (onAccepted) onAccepted();
  } else {
    fail(out, reasonOf(r));
  }
  return r;
}

// Date and time in German, separately, in the business time zone (no browser date picker).
function dueFields(iso = null) {
  let y, m, d, hh, mm;
  if (iso) {
    const p = zoneParts(new Date(iso));
    [y, m, d, hh, mm] = [+p.year, +p.month, +p.day, +p.hour, +p.minute];
  } else {
    ({ y, m, d, hh, mm } = nextWorkingDay());
  }
  const pad = (n) => String(n).padStart(2, "0");
  const dateIn = el("input", { type: "text", inputmode: "numeric", size: 10, placeholder: "TT.MM.JJJJ", value: `${pad(d)}.${pad(m)}.${y}` });
  const timeIn = el("input", { type: "text", inputmode: "numeric", size: 5, placeholder: "HH:MM", value: `${pad(hh)}:${pad(mm)}` });
  const node = el("span", { class: "due-fields" },
    el("label", {}, "Datum ", dateIn), el("label", {}, `Uhrzeit (${zoneLabel()}) `, timeIn));
  const read = () => {
    const dm = dateIn.value.trim().match(/^(\d{1,2})\.(\d{1,2})\.(\d{4})$/);
    if (!dm) return { error: "Datum im Format TT.MM.JJJJ angeben, z. B. 08.12.2026." };
    const tm = timeIn.value.trim().match(/^(\d{1,2})[:.](\d{2})$/);
    if (!tm) return { error: "Uhrzeit im Format HH:MM angeben, z. B. 09:00." };
    const [dd, mo, yy, h, mi] = [+dm[1], +dm[2], +dm[3], +tm[1], +tm[2]];
    const check = new Date(Date.UTC(yy, mo - 1, dd));
    if (check.getUTCDate() !== dd || check.getUTCMonth() !== mo - 1 || h > 23 || mi > 59) return { error: "Dieses Datum oder diese Uhrzeit gibt es nicht." };
    const iso2 = zonedToIso(yy, mo, dd, h, mi);
    const at = new Date(iso2);
    if (at.getTime() > Date.now() + 366 * 86400000) return { error: "Höchstens ein Jahr im Voraus." };
    if (at.getTime() < Date.now() - 60000) return { iso: iso2, warning: `${formatTime(iso2)} liegt in der Vergangenheit: der Reminder ist dann sofort fällig.` };
    return { iso: iso2 };
  };
  return { node, read, inputs: [dateIn, timeIn] };
}

function noteField(labelText, required) {
  const counterId = `count-${randomId()}`;
  const area = el("textarea", { rows: 2, maxlength: String(NOTE_MAX), "aria-describedby": counterId });
  const counter = el("span", { class: "counter", id: counterId, text: `0 von höchstens 2.000 Zeichen` });
  area.addEventListener("input", () => { counter.textContent = `${area.value.length.toLocaleString("de-DE")} von höchstens 2.000 Zeichen`; });
  const node = el("span", { class: "note" }, el("label", {}, `${labelText} `, area), counter);
  const read = () => {
    const text = area.value.replace(/\r\n/g, "\n");
    if (text.length > NOTE_MAX) return { error: "Die Notiz ist zu lang: höchstens 2.000 Zeichen." };
    if (/[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e]/.test(text)) return { error: "Die Notiz enthält Steuerzeichen." };
    if (!text.trim()) return required ? { error: "Bitte eine Notiz eingeben." } : { text: null };
    return { text: text.trim() };
  };
  const clear = () => { area.value = ""; counter.textContent = "0 von höchstens 2.000 Zeichen"; };
  return { node, read, clear, area };
}

function actions(t) {
  const box = el("div", { class: "controls" });
  if (!LIVE.has(t.status)) return box;
  if (t.tab === "cases") {
    box.append(el("button", { type: "button", text: "Lösen", "aria-label": `Fall lösen: ${t.title}`, onclick: () => openResolve(t) }));
  } else if (t.tab === "reminders") {
    const reminderId = t.task_id.replace(/^reminder:/, "");
    const due = dueFields(t.due_at);
    const outMove = outcome();
    let pastOk = false;
    const move = el("button", { type: "button", text: "Verschieben", onclick: () => {
      const d = due.read();
      if (d.error) { fail(outMove, d.error); return; }
      if (d.warning && !pastOk) { pastOk = true; fail(outMove, `${d.warning} Nochmals „Verschieben“, um es trotzdem so zu setzen.`); return; }
      pastOk = false;
      run(move, outMove, () => sendCommand("cmd.reminder.reschedule", t.vpa_id, { reminder_id: reminderId, due_at: d.iso }));
    } });
    const filed = el("input", { type: "checkbox" });
    const outDone = outcome();
    const done = el("button", { type: "button", text: "Erledigt", onclick: () => {
      if (!filed.checked) { fail(outDone, "Erst erledigen, wenn der Fall gelöst und die VPA-Akte gepflegt ist: bitte „VPA-Akte gepflegt“ ankreuzen."); return; }
      run(done, outDone, () => sendCommand("cmd.reminder.complete", t.vpa_id, { reminder_id: reminderId, file_updated: true }));
    } });
    box.append(el("span", { class: "group" }, due.node, move, outMove),
      el("span", { class: "group" }, el("label", {}, filed, " VPA-Akte gepflegt"), done, outDone));
  } else if (t.tab === "journey") {
    if (t.stage === "NEW_GT_12" && state.me.role !== "vpa_manager") {
      box.append(el("span", { class: "hint", text: "Nur ein VPA Manager entfernt dieses Flag." }));
      return box;
    }
    const note = noteField("Notiz", false);
    const out = outcome();
    const button = el("button", { type: "button", text: "Flag entfernen", onclick: () => {
      const n = note.read();
      if (n.error) { fail(out, n.error); return; }
      run(button, out, () => sendCommand("cmd.journey.clear", t.vpa_id, { stage: t.stage, ...(n.text ? { note: n.text } : {}) }),
        () => note.clear());
    } });
    box.append(note.node, button, out);
  }
  return box;
}

// The reminder form: for any VPA (chosen from the search), for a VPA's page, for a case.
function reminderForm({ vpaId = null, vpaName = null, forCase = null }) {
  let chosen = vpaId || (forCase && forCase.vpa_id) || null;
  const out = outcome();
  const fixed = chosen !== null;
  const vpaInput = el("input", { type: "text", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
    placeholder: "Name oder VPA-ID", autocomplete: "off", value: fixed ? (vpaName || chosen) : "", readonly: fixed });
  const list = el("ul", { role: "listbox", id: `pick-${randomId()}`, class: "picker", hidden: true, "aria-label": "Gefundene VPAs" });
  vpaInput.setAttribute("aria-controls", list.id);
  if (!fixed) {
    searchBox(vpaInput, list, (h) => { chosen = h.vpa_id; vpaInput.value = `${h.name || ""} (${h.vpa_id})`; });
    vpaInput.addEventListener("input", () => { chosen = null; });
  }
  const due = dueFields();
  const note = noteField("Notiz", true);
  const owner = el("input", { type: "text", size: 5, value: state.me.initials, "aria-label": "Für (Kürzel)" });
  const button = el("button", { type: "submit", text: "Reminder setzen" });
  let pastOk = false;
  const form = el("form", { class: "reminder-form", novalidate: true, "aria-label": forCase ? "Reminder zu diesem Fall" : "Neuer Reminder" },
    el("label", { class: "vpa-pick" }, "VPA ", vpaInput, list), due.node, note.node,
    el("label", {}, "Für ", owner), button, out);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!chosen) { fail(out, "Bitte einen VPA aus der Suche wählen."); return; }
    const d = due.read();
    if (d.error) { fail(out, d.error); return; }
    if (d.warning && !pastOk) { pastOk = true; fail(out, `${d.warning} Nochmals „Reminder setzen“, um ihn trotzdem so zu setzen.`); return; }
    const n = note.read();
    if (n.error) { fail(out, n.error); return; }
    const initials = owner.value.trim().toUpperCase();
    if (!/^[A-Z]{2,4}$/.test(initials)) { fail(out, "Für: das Kürzel eines Mitglieds, 2 bis 4 Großbuchstaben."); return; }
    pastOk = false;
    const data = { reminder_id: `r-${randomId()}`, due_at: d.iso, owner: initials, note: n.text };
    if (forCase) data.case_task_id = forCase.task_id;
    run(button, out, () => sendCommand("cmd.reminder.set", chosen, data), () => {
      note.clear();
      if (!fixed) { chosen = null; vpaInput.value = ""; }
      out.textContent = "Reminder gesetzt.";
    });
  });
  return form;
}

// ---- resolving a case (DESIGN 5.13a) -----------------------------------------------------------

let resolving = null;  // {task, linked, confirmed}

async function openResolve(t) {
  if ($("detail").open) $("detail").close();  // one dialog at a time
  resolving = { task: t, linked: [], confirmed: false };
  $("resolve-title").textContent = "Fall lösen";
  $("resolve-case").replaceChildren(el("strong", { text: t.title }), ` – ${t.vpa_name || t.vpa_id}`);
  $("resolve-note").value = "";
  $("resolve-note-count").textContent = "0 von höchstens 2.000 Zeichen";
  $("resolve-filed").checked = false;
  $("resolve-warning").hidden = true;
  $("resolve-outcome").textContent = "";
  $("resolve-outcome").className = "outcome";
  $("resolve-submit").textContent = "Fall lösen";
  $("resolve-linked").replaceChildren(el("li", { class: "hint", text: "Wird geladen …" }));
  const dialog = $("resolve");
  if (!dialog.open) dialog.showModal();
  $("resolve-note").focus();
  const r = await api(`/api/vpas/${encodeURIComponent(t.vpa_id)}`);
  if (!resolving || resolving.task.task_id !== t.task_id) return;
  resolving.linked = r.ok ? (r.body.linked[t.task_id] || []).filter((x) => LIVE.has(x.status)) : [];
  $("resolve-linked").replaceChildren(...(resolving.linked.length ? resolving.linked.map((x) =>
    el("li", { text: `${x.title} – ${x.due_at ? `fällig ${formatTime(x.due_at)}` : "ohne Fälligkeit"} – ${assigneeText(x)}` }))
    : [el("li", { class: "hint", text: "Keine offenen Reminder zu diesem Fall." })]));
  resolveEffect();
}

function resolveEffect() {
  if (!resolving) return;
  const n = resolving.linked.length;
  $("resolve-effect").textContent = !n ? "" : $("resolve-filed").checked
    ? (n === 1 ? "Der Reminder zu diesem Fall wird mit dem Fall erledigt." : `Die ${n} Reminder zu diesem Fall werden mit dem Fall erledigt.`)
    : (n === 1 ? "Ohne „VPA-Akte gepflegt“ bleibt der Reminder offen, wie er ist."
      : `Ohne „VPA-Akte gepflegt“ bleiben die ${n} Reminder offen, wie sie sind.`);
}

async function submitResolve(ev) {
  ev.preventDefault();
  if (!resolving) return;
  const t = resolving.task;
  const out = $("resolve-outcome");
  const text = $("resolve-note").value;
  if (!text.trim()) { fail(out, "Bitte eine Notiz eingeben: was wurde geklärt?"); $("resolve-note").focus(); return; }
  if (text.length > NOTE_MAX) { fail(out, "Die Notiz ist zu lang: höchstens 2.000 Zeichen."); return; }
  const colleague = t.assignee && t.assignee !== state.me.initials;
  if ((colleague || t.status === "waiting") && !resolving.confirmed) {
    resolving.confirmed = true;
    $("resolve-warning").textContent = colleague
      ? `Dieser Fall ist ${t.assignee} zugewiesen, nicht dir. Nochmals „Fall lösen“, um ihn trotzdem zu lösen.`
      : "Dieser Fall wartet noch auf seine Follow-up-Zeit. Nochmals „Fall lösen“, um ihn schon jetzt zu lösen.";
    $("resolve-warning").hidden = false;
    return;
  }
  const filed = $("resolve-filed").checked;
  const button = $("resolve-submit");
  const r = await run(button, out, () => sendCommand("cmd.case.resolve", t.vpa_id,
    { task_id: t.task_id, note: text.trim(), file_updated: filed }));
  if (r.status === 202) {
    const kept = resolving.linked.length && !filed;
    resolving = null;
    $("resolve").close();
    say(kept ? "Fall gelöst. Die Reminder zum Fall bleiben offen, bis die VPA-Akte gepflegt ist." : "Fall gelöst.");
  }
}

// ---- detail view ---------------------------------------------------------------------------

async function openDetail(taskId) {
  const r = await api(`/api/tasks/${encodeURIComponent(taskId)}`);
  if (!r.ok) { showNotice(`Aufgabe konnte nicht geladen werden: ${reasonOf(r)}`); return; }
  renderDetail(r.body);
  writeHash({ task: taskId });
  const dialog = $("detail");
  if (!dialog.open) dialog.showModal();
}

function renderDetail(t) {
  state.detail = t;
  $("detail-title").textContent = t.title;
  const facts = [
    ["VPA", vpaLink(t.vpa_id, t.vpa_name)],
    ["Art", t.stage ? `${label("kind", t.kind)}, ${label("stage", t.stage)}` : label("kind", t.kind)],
    ["Status", label("status", t.status)], ["Priorität", label("priority", t.priority)],
    ["Gründe", t.reasons.map((x) => label("reason", x)).join(", ") || "–"],
    ["Zuständig", assigneeText(t) || "–"],
    ["Fällig", t.due_at ? formatTime(t.due_at) : "–"],
  ];
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  $("detail-action").textContent = t.action;
  $("detail-draft").hidden = !t.message_draft;
  $("draft-text").value = t.message_draft || "";
  $("draft-copied").textContent = "";
  const why = (t.evidence || []).map((e) => el("li", { text: e.text }));
  $("detail-why").replaceChildren(...(why.length ? why : [el("li", { text: "Keine Begründung gespeichert." })]));
  $("detail-history").replaceChildren(...t.history.map((h) =>
    el("li", {}, el("time", { datetime: h.at, text: formatTime(h.at) }), ` – ${h.change} – ${who(h.by)}`)));
  const box = $("detail-actions");
  box.replaceChildren(actions(t));
  if (t.tab === "cases" && LIVE.has(t.status)) box.append(reminderForm({ forCase: t, vpaName: t.vpa_name }));
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

// A dialog with typed, unsent text asks before Escape throws it away.
function guardDialog(dialog) {
  dialog.addEventListener("cancel", (ev) => {
    const typed = [...dialog.querySelectorAll("textarea:not([readonly]), input[type=text]:not([readonly])")]
      .some((x) => x.value.trim() && x.value !== x.defaultValue);
    if (!typed) return;
    ev.preventDefault();
    const ask = $("discard");
    ask.returnTo = dialog;
    ask.showModal();
  });
}

// ---- live updates: each changed task in place ------------------------------------------------

// EventSource cannot send an Authorization header, so the stream is read with fetch. A
// (re)connection re-reads the views: changes missed while disconnected are not replayed.
async function follow() {
  let delay = 1000;
  while (state.token) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
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
          if (ev.event === "ready") { delay = 1000; setLive(true); readAll(); }
          else if (ev.event === "task") onTask(JSON.parse(ev.data));
          else if (ev.event === "erased") onErased(JSON.parse(ev.data).task_id);
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
  const ev = { event: "message", data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") ev.event = value;
    else if (field === "data") data.push(value);
  }
  ev.data = data.join("\n");
  return ev;
}

// `vpa erase`: the task is gone from the store; every view drops it (nothing of it stays on screen).
function onErased(taskId) {
  for (const tab of LIST_TABS) {
    const page = state.pages[tab];
    if (!page) continue;
    const before = page.items.length;
    page.items = page.items.filter((x) => x.task_id !== taskId);
    page.total = Math.max(0, page.total - (before - page.items.length));
  }
  if (state.today) {
    for (const g of state.today.groups) g.items = g.items.filter((x) => x.task.task_id !== taskId);
    state.today.groups = state.today.groups.filter((g) => g.items.length);
  }
  if (state.detail && state.detail.task_id === taskId && $("detail").open) $("detail").close();
  if (state.vpa && Array.isArray(state.vpa.tasks)) state.vpa.tasks = state.vpa.tasks.filter((x) => x.task_id !== taskId);
  render();
}

function onTask(t) {
  // the lists: replace, insert or remove in place; counts follow
  for (const tab of LIST_TABS) {
    const page = state.pages[tab];
    if (!page) continue;
    const i = page.items.findIndex((x) => x.task_id === t.task_id);
    const fits = matchesList(t, tab, page);
    if (i >= 0 && fits) page.items[i] = t;
    else if (i >= 0) { page.items.splice(i, 1); page.total = Math.max(0, page.total - 1); }
    else if (fits) {
      const at = page.items.findIndex((x) => listOrder(t, x) < 0);
      if (at >= 0) page.items.splice(at, 0, t);
      else if (page.next_offset === null) page.items.push(t);
      page.total += 1;
      if (at < 0 && page.next_offset !== null) page.next_offset += 1;
    }
    if (i >= 0 || fits) page.items.sort(listOrder);
  }
  // Heute: a task of the pass that closed counts as done, one that changed is replaced in place;
  // one that may have joined the pass is read again (throttled)
  if (state.today) {
    let found = false;
    for (const g of state.today.groups) {
      const i = g.items.findIndex((x) => x.task.task_id === t.task_id);
      if (i < 0) continue;
      found = true;
      if (LIVE.has(t.status) && t.assignee === state.me.initials) g.items[i].task = t;
      else {
        g.items.splice(i, 1);
        state.today.open -= 1;
        const last = t.history[t.history.length - 1];
        if (!LIVE.has(t.status) && last && last.by === state.me.initials) state.today.done_today += 1;
      }
    }
    state.today.groups = state.today.groups.filter((g) => g.items.length);
    if (!found && LIVE.has(t.status) && t.assignee === state.me.initials) rereadSoon("heute", readToday);
  }
  if (state.team && state.view === "team") rereadSoon("team", readTeam);
  if (state.vpa && state.vpa.vpa_id === t.vpa_id) {
    const v = state.vpa;
    const i = v.tasks.findIndex((x) => x.task_id === t.task_id);
    if (i >= 0) v.tasks[i] = t; else v.tasks.unshift(t);
    if (t.case_task_id) {
      const list = v.linked[t.case_task_id] = v.linked[t.case_task_id] || [];
      const j = list.findIndex((x) => x.task_id === t.task_id);
      if (j >= 0) list[j] = t; else list.push(t);
    }
  }
  if (state.detail && state.detail.task_id === t.task_id && state.detail.version !== t.version) renderDetail(t);
  render();
}

function rereadSoon(view, read, spacing = 3000) {
  if (state.reread[view]) return;
  const wait = Math.max(0, (state.lastRead[view] || 0) + spacing - Date.now());
  state.reread[view] = setTimeout(async () => { state.reread[view] = null; await read(); render(); }, wait);
}

async function readAll() {
  await Promise.all([readToday(), ...LIST_TABS.map(readList),
    state.me.role === "vpa_manager" ? readTeam() : null,
    state.me.role === "vpa_manager" && state.view === "team" && !state.whatif ? readWhatif() : null, state.view === "vpa" ? readVpa() : null]);
  render();
}

function setLive(on, retryIn) {
  $("live").textContent = on ? "● Live" : `Verbindung unterbrochen – neuer Versuch in ${Math.round(retryIn / 1000)} s`;
  $("live").className = on ? "live on" : "live off";
}

// ---- rendering -----------------------------------------------------------------------------

function tabsFor() {
  const tabs = ["heute", ...LIST_TABS];
  if (state.me.role === "vpa_manager") tabs.push("team");
  return tabs;
}

function renderTabs() {
  const box = $("tabs");
  const tabs = tabsFor();
  const current = state.view === "vpa" ? null : state.view;
  box.replaceChildren(...tabs.map((tab, i) => {
    const count = tab === "heute" ? (state.today ? state.today.open : null)
      : state.pages[tab] ? state.pages[tab].total : null;
    const on = tab === current || (!current && i === 0);
    return el("button", { type: "button", role: "tab", id: `tab-${tab}`, "aria-controls": "panel",
      "aria-selected": String(tab === current), tabindex: on ? "0" : "-1",
      onclick: () => selectTab(tab),
      onkeydown: (ev) => {
        const k = tabs.indexOf(tab);
        const next = ev.key === "ArrowRight" ? tabs[(k + 1) % tabs.length] : ev.key === "ArrowLeft" ? tabs[(k + tabs.length - 1) % tabs.length] : null;
        if (next) { selectTab(next); $(`tab-${next}`).focus(); }
      } }, TAB_NAMES[tab], count !== null && count !== undefined ? el("span", { class: "count", "aria-hidden": "true", text: ` ${count}` }) : null);
  }));
}

function render() {
  if (!state.me) return;
  renderTabs();
  const onVpa = state.view === "vpa";
  $("board").hidden = onVpa;
  $("vpa-page").hidden = !onVpa;
  if (onVpa) {
    drawing += 1;
    const focused = document.activeElement;
    vpaView();
    if (focused && focused !== document.body && document.contains(focused)) focused.focus();
    forgetUnused();
    return;
  }
  $("filters").hidden = !LIST_TABS.includes(state.view);
  $("panel").setAttribute("aria-labelledby", `tab-${state.view}`);
  drawing += 1;
  const focused = document.activeElement;
  const view = state.view === "heute" ? todayView() : state.view === "team" ? teamView() : listView(state.view);
  $("panel").replaceChildren(view);
  if (focused && focused !== document.body && document.contains(focused)) focused.focus();  // moved, not lost
  forgetUnused();
}

async function selectTab(tab) {
  if (!tabsFor().includes(tab)) tab = "heute";
  state.view = tab;
  state.vpaId = null;
  state.vpa = null;
  if (LIST_TABS.includes(tab)) state.lastTab = tab;
  if (tab === "heute") state.lastTab = tab;
  writeHash();
  render();
  if (tab === "team") { await Promise.all([readTeam(), readWhatif()]); render(); }
}

// ---- session -------------------------------------------------------------------------------

let noticeAt = 0;
function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
  noticeAt = Date.now();
}

function clearStaleNotice() {  // a notice older than the last successful answer is not true any more
  if (!$("notice").hidden && Date.now() - noticeAt > 1000) showNotice("");
}

function say(text) {
  $("live").textContent = text;
  setTimeout(() => { if (state.token) setLive(true); }, 4000);
}

function signedOut(why) {
  state.token = "";
  state.me = null;
  if (state.stream) state.stream.abort();
  sessionStorage.removeItem("vpaToken");
  $("app").hidden = true;
  $("session").hidden = true;
  $("search-box").hidden = true;
  $("login").hidden = false;
  $("live").textContent = "";
  showNotice(why || "");
}

async function signIn(token) {
  if (state.stream) state.stream.abort();
  state.token = token;
  state.pages = { cases: null, reminders: null, journey: null };
  state.today = state.team = state.vpa = state.newReminder = state.whatif = null;
  drawn.clear();
  const r = await api("/api/me");
  if (!r.ok) {
    signedOut(r.status === 401 ? "Unbekanntes Token: bitte prüfen." : `Anmeldung fehlgeschlagen: ${reasonOf(r)}`);
    return;
  }
  // In this tab only (sessionStorage): closed with the tab, never shared with other sites' scripts.
  sessionStorage.setItem("vpaToken", token);
  state.me = r.body;
  showNotice("");
  $("who").textContent = `Angemeldet als ${state.me.initials} (${label("role", state.me.role)})`;
  $("login").hidden = true;
  $("session").hidden = false;
  $("search-box").hidden = false;
  $("app").hidden = false;
  const h = readHash();
  $("f-mine").checked = h.mine; $("f-shift").checked = h.shift; $("f-overdue").checked = h.overdue;
  if (h.vpa) { state.view = "vpa"; state.vpaId = h.vpa; } else state.view = tabsFor().includes(h.tab) ? h.tab : "heute";
  await readAll();
  follow();
  if (h.task) openDetail(h.task);
}

function takeTokenFromHash() {
  if (!location.hash.startsWith("#token=")) return null;  // the demo prints a link with the token in it
  const token = decodeURIComponent(location.hash.slice(7));
  history.replaceState(null, "", location.pathname);
  return token;
}

function init() {
  $("login").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
  $("logout").addEventListener("click", () => signedOut("Abgemeldet."));
  for (const id of ["f-mine", "f-shift", "f-overdue"]) {
    $(id).addEventListener("change", async () => { writeHash(); await Promise.all(LIST_TABS.map(readList)); render(); });
  }
  searchBox($("search"), $("search-results"), (h) => { $("search").value = ""; openVpa(h.vpa_id); });
  $("detail-close").addEventListener("click", () => $("detail").close());
  $("detail").addEventListener("close", () => { state.detail = null; writeHash(); });
  $("draft-copy").addEventListener("click", copyDraft);
  $("resolve-form").addEventListener("submit", submitResolve);
  $("resolve-cancel").addEventListener("click", () => $("resolve").close());
  $("resolve-filed").addEventListener("change", resolveEffect);
  $("resolve-note").addEventListener("input", () => {
    $("resolve-note-count").textContent = `${$("resolve-note").value.length.toLocaleString("de-DE")} von höchstens 2.000 Zeichen`;
  });
  $("resolve").addEventListener("close", () => { resolving = null; });
  guardDialog($("detail"));
  guardDialog($("resolve"));
  $("discard-yes").addEventListener("click", () => {
    const target = $("discard").returnTo;
    $("discard").close();
    if (target) {
      for (const x of target.querySelectorAll("textarea:not([readonly]), input[type=text]:not([readonly])")) x.value = x.defaultValue;
      target.close();
    }
  });
  $("discard-no").addEventListener("click", () => $("discard").close());
  window.addEventListener("hashchange", () => {
    const token = takeTokenFromHash();
    if (token) { signIn(token); return; }  // a log-in link opened in a signed-in tab switches the user
    if (!state.me) return;
    const h = readHash();
    if (h.vpa && h.vpa !== state.vpaId) openVpa(h.vpa);
    else if (h.task && (!state.detail || state.detail.task_id !== h.task)) openDetail(h.task);
    else if (h.tab && h.tab !== state.view) selectTab(h.tab);
  });
  const token = takeTokenFromHash() || sessionStorage.getItem("vpaToken");
  if (token) signIn(token);
}

document.addEventListener("DOMContentLoaded", init);
