"""HTML building blocks of the web view: escaping, the page frame, tables, the stylesheet and
the small script. Every value that reaches a page passes through `esc` (or `attr`): state,
manifests and results are user data, and a results line may carry any text.

No template engine: the pages are small, and f-strings over escaped values keep the one rule
("escape at the point of output") visible in every line.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import quote, urlencode

from reconciler.render._words import money


def esc(value: object) -> str:
    """Text for an element body or attribute (quotes escaped too)."""
    return html.escape("" if value is None else str(value), quote=True)


def attr(value: object) -> str:
    return esc(value)


def url(path: str, **params: object) -> str:
    """A same-site link: each path segment percent-encoded by the caller's `seg`, the query
    from the parameters that are not None or empty."""
    kept = {k: str(v) for k, v in params.items() if v is not None and v != "" and v is not False}
    return path + ("?" + urlencode(kept) if kept else "")


def seg(value: str) -> str:
    """One path segment (a resource name, a key)."""
    return quote(value, safe="")


def dash(value: object) -> str:
    return "—" if value is None or value == "" else esc(value)


def usd(value: float | None) -> str:
    return "—" if value is None else esc(money(value))


def when(moment: datetime | None) -> str:
    """A UTC time (to the minute; the tooltip and the attribute carry all of it), which the
    script follows with "5 min ago"."""
    if moment is None:
        return "—"
    text = moment.strftime("%b %d %H:%M")
    full = attr(moment.isoformat())
    return f'<time datetime="{full}" title="{full}">{esc(text)}</time>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, css: str = "") -> str:
    """Cells are HTML already (escaped by the caller)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{attr(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def facts(rows: Iterable[Sequence[str]]) -> str:
    """A two-column table of name (text) and value (HTML, escaped by the caller)."""
    body = "".join(f"<tr><th>{esc(name)}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def badge(text: str) -> str:
    kind = text.split(" ")[0].lower()
    return f'<span class="badge {attr(kind)}">{esc(text)}</span>'


def notice(text: str, *, kind: str = "warn") -> str:
    return f'<p class="notice {attr(kind)}">{esc(text)}</p>'


_NAV = (("/", "Overview"), ("/costs", "Costs"))


def page(title: str, body: str, *, project: str, active: str = "", refresh: int = 0) -> str:
    """A whole document: the frame, the navigation and `body` (HTML). `refresh`: seconds after
    which the script reloads the page (0: never), while jobs are still moving."""
    links = "".join(
        f'<a href="{attr(href)}"{" class=active" if href == active else ""}>{esc(label)}</a>'
        for href, label in _NAV
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · reconciler</title>"
        '<link rel=stylesheet href="/static/app.css"></head><body>'
        f'<header><a class=brand href="/">reconciler</a><span class=project>{esc(project)}</span>'
        f"<nav>{links}</nav></header>"
        f'<main data-refresh="{refresh}"><h1>{esc(title)}</h1>{body}</main>'
        '<script src="/static/app.js"></script></body></html>\n'
    )


STYLESHEET = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --accent:#0969da;
  --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; font-family: system-ui, sans-serif; }
body { margin:0; color:var(--fg); background:#fff; font-size:14px; }
header { display:flex; gap:16px; align-items:center; padding:10px 20px; background:#24292f; }
header a, header span { color:#fff; text-decoration:none; }
header .brand { font-weight:700; } header .project { color:#aab; font-family:monospace; }
header nav { margin-left:auto; display:flex; gap:14px; }
header nav a.active { text-decoration:underline; }
main { padding:16px 20px; max-width:1400px; }
h1 { font-size:20px; margin:4px 0 12px; } h2 { font-size:16px; margin:20px 0 8px; }
table { border-collapse:collapse; width:100%; margin-bottom:12px; }
th, td { border-bottom:1px solid var(--line); padding:5px 7px; text-align:left;
  vertical-align:top; }
th { background:var(--bg); font-weight:600; white-space:nowrap; }
td.num, th.num { text-align:right; }
table.overview td { white-space:nowrap; }
time .ago { color:var(--muted); font-size:12px; }
table.overview time .ago, table.attempts time .ago { display:block; }
table.facts th { width:180px; background:none; }
code, pre, .mono { font-family: ui-monospace, monospace; font-size:12.5px; }
pre { background:var(--bg); padding:10px; overflow:auto; border:1px solid var(--line);
  white-space:pre-wrap; word-break:break-word; }
.badge { padding:1px 7px; border-radius:10px; background:var(--bg); border:1px solid var(--line);
  white-space:nowrap; }
.badge.synced, .badge.succeeded { color:var(--ok); border-color:var(--ok); }
.badge.failed, .badge.removed, .badge.expired, .badge.cancelled { color:var(--bad);
  border-color:var(--bad); }
.badge.running, .badge.pending, .badge.create, .badge.replace, .badge.collect {
  color:var(--warn); border-color:var(--warn); }
.notice { padding:8px 10px; border-left:4px solid var(--warn); background:#fff8c5; }
.notice.error { border-color:var(--bad); background:#ffebe9; }
.notice.info { border-color:var(--accent); background:#ddf4ff; }
.muted { color:var(--muted); }
form.search { display:flex; gap:8px; align-items:center; margin-bottom:10px; }
form.search input[type=search] { flex:1; max-width:420px; padding:5px 8px; }
.result { border:1px solid var(--line); border-radius:6px; margin-bottom:10px; }
.result.failed { border-color:var(--bad); }
.result > .head { display:flex; gap:14px; padding:6px 10px; background:var(--bg);
  border-bottom:1px solid var(--line); flex-wrap:wrap; }
.result .cols { display:grid; grid-template-columns:1fr 1fr; gap:10px; padding:8px 10px; }
.result .cols pre { margin:0; max-height:260px; }
.result img { max-width:240px; max-height:240px; min-width:96px; image-rendering:pixelated; border:1px solid var(--line); margin:4px; }
.pager { display:flex; gap:12px; align-items:center; margin:10px 0; }
.diff { display:grid; grid-template-columns:1fr 1fr; gap:10px; }
.diff del { background:#ffebe9; text-decoration:none; } .diff ins { background:#dafbe1;
  text-decoration:none; }
.plan table { width:auto; min-width:320px; } .plan h2 { font-size:15px; }
.plan details { margin:4px 0; } .plan summary { cursor:pointer; }
svg.chart { background:#fff; border:1px solid var(--line); }
svg.chart text { font-size:11px; fill:var(--muted); }
.legend span { display:inline-block; margin-right:14px; }
.legend i { display:inline-block; width:10px; height:10px; margin-right:4px; }
"""

SCRIPT = """
// Times as "5 min ago" beside the UTC time; the overview reloads itself while jobs run; the
// search box focuses on "/". No framework, no network: everything the page needs is in it.
(function () {
  function ago(then) {
    var s = Math.round((Date.now() - then.getTime()) / 1000);
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) {
      var note = document.createElement("span");
      note.className = "ago";
      note.textContent = " (" + ago(d) + ")";
      t.appendChild(note);
    }
  });
  var main = document.querySelector("main[data-refresh]");
  var every = main ? parseInt(main.getAttribute("data-refresh"), 10) : 0;
  if (every > 0) { setTimeout(function () { location.reload(); }, every * 1000); }
  document.addEventListener("keydown", function (e) {
    var box = document.querySelector("form.search input[type=search]");
    if (e.key === "/" && box && document.activeElement !== box) { e.preventDefault(); box.focus(); }
  });
})();
"""
