"""The results viewer and the diff of one request between two attempts: values -> HTML. Pure.

Which lines a page holds is decided by the caller (reconciler.ui.app, through the line index);
this module only draws them: per request the prompt, the answer's text and images, finish
reason, tokens and error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.ui.html import attr, dash, esc, notice, page, seg, url
from reconciler.ui.records import ResultView


@dataclass(frozen=True, slots=True)
class ResultsQuery:
    """What the viewer was asked for (the page's URL parameters)."""

    page: int = 1
    query: str = ""
    failures: bool = False
    start: int = 0
    """Filtered views: the line the scan starts at (a cursor, not a page number)."""

    @property
    def filtered(self) -> bool:
        return bool(self.query) or self.failures


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """One page of a results file and where the next one starts."""

    resource: str
    location: str
    total_lines: int
    exact: bool
    """Whether `total_lines` is counted (False: estimated from the part of the file indexed)."""
    rows: Sequence[tuple[ResultView, str | None]]
    """Each result with its prompt (None when the input does not have it)."""
    query: ResultsQuery
    pages: int
    next_start: int | None = None
    """Filtered views: the line to go on from; None when the scan reached the end."""
    compare: Sequence[int] = ()
    """Attempts with results of their own at the service, for "compare with attempt N"."""


def _image(resource: str, view: ResultView) -> str:
    out = []
    for image in view.images:
        if image.path is not None:
            src = url(f"/resources/{seg(resource)}/files/{seg(image.path)}")
            out.append(f'<img src="{attr(src)}" alt="{attr(image.path)}">')
        elif image.data_b64 is not None:
            out.append(
                f'<img src="data:{attr(image.mime_type)};base64,{attr(image.data_b64)}" '
                f'alt="inline {attr(image.mime_type)}">'
            )
    return "".join(out)


def _row(page: ResultsPage, view: ResultView, prompt: str | None) -> str:
    tokens = view.tokens
    facts = [
        f"<b>#{view.line + 1}</b>",
        f"key <code class=key>{dash(view.key)}</code>",
        f"finish <code>{dash(view.finish_reason)}</code>" if view.finish_reason else "",
        (f"tokens {dash(tokens.prompt)} in / {dash(tokens.output)} out" if tokens else ""),
        f'<span class="bad">error: {esc(view.error)}</span>' if view.error else "",
    ]
    if view.key is not None:
        for attempt in page.compare:
            link = url(f"/resources/{seg(page.resource)}/diff", key=view.key, a=attempt)
            facts.append(f'<a href="{attr(link)}">compare with attempt {attempt}</a>')
    answer = view.answer if (view.texts or view.error or view.embedding) else ""
    notes = "".join(f'<p class="muted">{esc(n)}</p>' for n in view.notes)
    return (
        f'<div class="result{" failed" if view.failed else ""}" data-key="{attr(view.key)}">'
        f'<div class="head">{"".join(f for f in facts if f)}</div><div class="cols">'
        f'<div><div class="muted">prompt</div><pre class="prompt">{dash(prompt)}</pre></div>'
        f'<div><div class="muted">response</div><pre class="answer">{esc(answer)}</pre>'
        f"{_image(page.resource, view)}{notes}</div></div></div>"
    )


PAGE_ROWS = 50
"""Results a page shows (the app reads this many lines per page)."""


def _about(page: ResultsPage) -> str:
    return "" if page.exact else "about "


def _max(page: ResultsPage) -> str:
    return f' max="{max(page.pages, 1)}"' if page.exact else ""


def _pager(page: ResultsPage) -> str:
    base = f"/resources/{seg(page.resource)}/results"
    q = page.query
    if q.filtered:
        links = [
            f'<a href="{attr(url(base, q=q.query, failures=int(q.failures) or None))}">'
            "first matches</a>"
        ]
        if page.next_start is not None:
            more = url(base, q=q.query, failures=int(q.failures) or None, start=page.next_start)
            links.append(f'<a rel="next" href="{attr(more)}">more matches →</a>')
        else:
            links.append('<span class="muted">end of file</span>')
        scanned = f"from line {q.start + 1:,} of {_about(page)}{page.total_lines:,}"
        return f'<div class="pager">{" ".join(links)}<span class="muted">{scanned}</span></div>'
    links = []
    if q.page > 1:
        links.append(f'<a rel="prev" href="{attr(url(base, page=q.page - 1))}">← previous</a>')
    links.append(f"<span>page {q.page:,} of {_about(page)}{max(page.pages, 1):,}</span>")
    if q.page < page.pages or (not page.exact and len(page.rows) == PAGE_ROWS):
        links.append(f'<a rel="next" href="{attr(url(base, page=q.page + 1))}">next →</a>')
    jump = (
        f'<form class="jump" method="get" action="{attr(base)}">'
        f'<input type="number" name="page" min="1"{_max(page)} value="{q.page}">'
        "<button>go</button></form>"
    )
    return f'<div class="pager">{"".join(links)}{jump}</div>'


def results_page(page_: ResultsPage, project: str) -> str:
    q = page_.query
    base = f"/resources/{seg(page_.resource)}/results"
    body = (
        f'<p><a href="/resources/{attr(seg(page_.resource))}">{esc(page_.resource)}</a> · '
        f"<code>{esc(page_.location)}</code> · {_about(page_)}{page_.total_lines:,} results</p>"
        f'<form class="search" method="get" action="{attr(base)}">'
        f'<input type="search" name="q" placeholder="search key or text" value="{attr(q.query)}">'
        f'<label><input type="checkbox" name="failures" value="1"'
        f"{' checked' if q.failures else ''}> failures only</label>"
        "<button>search</button></form>"
    )
    body += _pager(page_)
    if not page_.rows:
        body += notice(
            "No result matches." if q.filtered else "The results file is empty.", kind="info"
        )
    body += "".join(_row(page_, view, prompt) for view, prompt in page_.rows)
    if page_.rows:
        body += _pager(page_)
    return page(f"Results of {page_.resource}", body, project=project)


_WORDS = re.compile(r"\s+|[^\s]+")


def _marked(a: str, b: str) -> tuple[str, str]:
    """Both texts as HTML, with the words only one side has marked (del left, ins right)."""
    left_words, right_words = _WORDS.findall(a), _WORDS.findall(b)
    left, right = [], []
    matcher = difflib.SequenceMatcher(a=left_words, b=right_words, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = esc("".join(left_words[i1:i2])), esc("".join(right_words[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
        else:
            left.append(f"<del>{old}</del>" if old else "")
            right.append(f"<ins>{new}</ins>" if new else "")
    return "".join(left), "".join(right)


@dataclass(frozen=True, slots=True)
class DiffSide:
    title: str
    view: ResultView | None
    problem: str | None = None


def diff_page(resource: str, key: str, left: DiffSide, right: DiffSide, project: str) -> str:
    body = (
        f'<p><a href="/resources/{attr(seg(resource))}">{esc(resource)}</a> · '
        f"request <code>{esc(key)}</code></p>"
    )
    texts = [s.view.answer if s.view else "" for s in (left, right)]
    marked = _marked(texts[0], texts[1])
    columns = []
    for side, html_text in zip((left, right), marked, strict=True):
        inner = (
            f'<pre class="answer">{html_text}</pre>'
            if side.view is not None
            else notice(side.problem or "no answer for this key", kind="info")
        )
        columns.append(f"<div><h2>{esc(side.title)}</h2>{inner}</div>")
    if left.view is not None and right.view is not None and texts[0] == texts[1]:
        body += notice("Both attempts answered this request with the same text.", kind="info")
    body += f'<div class="diff">{"".join(columns)}</div>'
    return page(f"Diff of {key}", body, project=project)
