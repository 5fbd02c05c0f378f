"""``vpa whatif --html FILE``: the what-if report as one self-contained page (issue 23, point 2).

The weekly charts are drawn by matplotlib into inline SVG (its own fonts as paths), so the page
needs no network and no script when it is opened; everything else is plain HTML in German.
"""
from __future__ import annotations

import html
import io

from services.whatif.compare import REASON_LABELS, RULE_SETTINGS

TABS = (("cases", "Fälle"), ("reminders", "Reminder"), ("journey", "Journey"))
CURRENT, CHANGED = "#5b6b7a", "#d9480f"
KIND_TEXT = {"only_changed": "nur mit der Änderung", "only_current": "nur heute", "differs": "anders"}


def _chart(weeks: list[dict], tab: str, title: str) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    labels = [w["week"].split("-")[1] for w in weeks]
    now = [w[tab][0] for w in weeks]
    then = [w[tab][1] for w in weeks]
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
    x = range(len(weeks))
    ax.plot(x, now, color=CURRENT, marker="o", linewidth=2, label="heute")
    ax.plot(x, then, color=CHANGED, marker="s", linewidth=2, linestyle="--", label="mit der Änderung")
    ax.set_title(f"{title}: neu je Woche", fontsize=11, loc="left")
    step = max(1, len(labels) // 13)  # at most about 13 week labels: readable at this width
    ax.set_xticks(list(x)[::step], labels[::step], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(0.6, 1.25), ncols=2)
    fig.tight_layout()
    buf = io.StringIO()
    matplotlib.rcParams["svg.fonttype"] = "path"  # text as paths: no font needed at view time
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _delta_chart(weeks: list[dict]) -> str:
    """The cases' change per week as bars: where the work moves, at a glance."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    labels = [w["week"].split("-")[1] for w in weeks]
    delta = [w["cases"][1] - w["cases"][0] for w in weeks]
    fig, ax = plt.subplots(figsize=(6.4, 2.2), dpi=100)
    ax.bar(range(len(weeks)), delta, color=[CHANGED if d > 0 else CURRENT for d in delta])
    ax.axhline(0, color="#1f2933", linewidth=0.8)
    step = max(1, len(labels) // 13)
    ax.set_xticks(list(range(len(weeks)))[::step], labels[::step], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title("Fälle: mit der Änderung minus heute, je Woche", fontsize=11, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.StringIO()
    matplotlib.rcParams["svg.fonttype"] = "path"
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else ("±0" if n == 0 else f"−{-n}")


def render_html(report: dict) -> str:
    e = html.escape
    changes = ", ".join(f"{RULE_SETTINGS.get(k, k)}: <b>{e(v)}</b> <code>{e(k)}</code>"
                        for k, v in report["changes"].items())
    parts = [
        "<!doctype html><html lang='de'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>Was wäre wenn</title><style>",
        "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1f2933}",
        "h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}.summary{font-size:1.2rem;font-weight:600;"
        "background:#fff4e6;border-left:4px solid #d9480f;padding:.6rem .9rem}",
        "table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid #e4e7eb;"
        "padding:.3rem .5rem;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}",
        ".plus{color:#c92a2a}.minus{color:#2b8a3e}svg{max-width:100%;height:auto}.why{color:#52606d;font-size:.85rem}",
        "</style></head><body>",
        "<h1>Was wäre wenn</h1>",
        f"<p class='summary'>{e(report['summary'])}</p>",
        f"<p>Geändert: {changes}.</p>",
    ]
    if report.get("history"):
        parts.append(f"<p class='why'>{e(report['history'])}</p>")
    parts.append("<h2>Neue Aufgaben je Woche</h2>")
    parts.append(_delta_chart(report["weeks"]))
    for tab, title in TABS:
        parts.append(_chart(report["weeks"], tab, title))
    if report["reasons_delta"]:
        parts.append("<h2>Fälle nach Grund</h2><table><tr><th>Grund</th><th>Änderung</th></tr>")
        for reason, n in sorted(report["reasons_delta"].items(), key=lambda kv: -abs(kv[1])):
            cls = "plus" if n > 0 else "minus"
            parts.append(f"<tr><td>{e(REASON_LABELS.get(reason, reason))}</td><td class='n {cls}'>{_signed(n)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Je AT-Mitglied</h2><table><tr><th>Kürzel</th><th>zugewiesen heute</th>"
                 "<th>mit der Änderung</th><th>Änderung</th><th>höchstens offen heute</th><th>mit der Änderung</th></tr>")
    for m in sorted(report["members"], key=lambda m: (-abs(m["assigned"][1] - m["assigned"][0]), m["initials"])):
        d = m["assigned"][1] - m["assigned"][0]
        cls = "plus" if d > 0 else ("minus" if d < 0 else "")
        parts.append(f"<tr><td>{e(m['initials'])}</td><td class='n'>{m['assigned'][0]}</td>"
                     f"<td class='n'>{m['assigned'][1]}</td><td class='n {cls}'>{_signed(d)}</td>"
                     f"<td class='n'>{m['peak'][0]}</td><td class='n'>{m['peak'][1]}</td></tr>")
    parts.append("</table>")
    diffs = report["differences"]
    parts.append(f"<h2>Aufgaben, die sich ändern ({diffs['count']}; die ersten {len(diffs['sample'])})</h2>"
                 "<table><tr><th>Aufgabe</th><th>was</th><th>heute: Warum</th><th>mit der Änderung: Warum</th></tr>")
    for x in diffs["sample"]:
        what = KIND_TEXT[x["kind"]] + (": " + ", ".join(x["fields"]) if x["fields"] else "")

        def why(t: dict | None) -> str:
            if t is None:
                return "–"
            head = f"{e(t['status'])}, {e(', '.join(t['reasons']) or '–')}"
            return head + "<div class='why'>" + "<br>".join(e(w) for w in t["warum"] if w) + "</div>"
        parts.append(f"<tr><td><code>{e(x['task_id'])}</code></td><td>{e(what)}</td><td>{why(x['current'])}</td>"
                     f"<td>{why(x['changed'])}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"
