"""An allowlist pass over HTML made from the plan's Markdown: known tags, no attributes but a
code block's language and a table cell's alignment, all text escaped again.

The pull-request Markdown (render/markdown.py) is written for GitHub, which sanitises what it
shows; it carries raw `<details>` blocks, and a few user values (a model name the price table
does not know, for one) reach it outside code fences. The view shows it on a page of its own,
so it sanitises it the way GitHub would, instead of trusting every renderer to escape.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_ALLOWED = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "del", "details", "em", "h1", "h2", "h3", "h4",
        "hr", "i", "ins", "li", "ol", "p", "pre", "strong", "sub", "summary", "sup", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_VOID = frozenset({"br", "hr"})
_LANGUAGE = re.compile(r"^language-[A-Za-z0-9_+-]{1,32}$")
_ALIGN = re.compile(r"^text-align:\s*(left|right|center);?$")


def _kept(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    out = []
    for name, value in attrs:
        if value is None:
            continue
        if (name == "class" and tag == "code" and _LANGUAGE.match(value)) or (
            name == "style" and tag in ("th", "td") and _ALIGN.match(value)
        ):
            out.append(f' {name}="{html.escape(value, quote=True)}"')
    return "".join(out)


class _Allowlist(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ALLOWED and tag != "a":
            self.parts.append(f"<{tag}{_kept(tag, attrs)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self.parts.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in _ALLOWED and tag not in _VOID and tag != "a":
            self.parts.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.parts.append(html.escape(data, quote=False))


def sanitize(markup: str) -> str:
    """`markup` with only allowlisted tags (links dropped, their text kept), no event handlers,
    no URLs, and every text node escaped."""
    parser = _Allowlist()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)
