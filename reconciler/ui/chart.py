"""Spend over time as an inline SVG step chart, drawn on the server: no chart library, no
script, so the costs page works offline and prints as it shows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from reconciler.render._words import money
from reconciler.ui.html import attr, esc

WIDTH, HEIGHT = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 14, 34
PALETTE = (
    "#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#57606a",
)  # fmt: skip


def nice_ceiling(high: float, n: int = 4) -> float:
    """The smallest round top of the axis (n steps of 1, 2, 2.5, 3, 4 or 5 x 10^k) that holds
    `high`, rounded so its tick labels print exactly."""
    rough = max(high, 1e-9) / n
    magnitude = 10.0 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 3, 4, 5, 10) if m * magnitude >= rough)
    return round(step * n, 12)


def _ticks(high: float, n: int = 4) -> list[float]:
    return [high * i / n for i in range(n + 1)]


def step_chart(series: Mapping[str, Sequence[tuple[datetime, float]]], *, label: str) -> str:
    """One line per group: its running total of spend, stepping up at each collection."""
    if not series:
        return '<p class="muted">No collected cost yet.</p>'
    moments = [t for points in series.values() for t, _ in points]
    start, end = min(moments), max(moments)
    span = max((end - start).total_seconds(), 1.0)
    high = nice_ceiling(max(v for points in series.values() for _, v in points))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(moment: datetime) -> float:
        return _LEFT + plot_w * (moment - start).total_seconds() / span

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - value / high)

    parts = [
        f'<svg class="chart" role="img" aria-label="{attr(label)}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{esc(label)}</title>",
    ]
    for tick in _ticks(high):
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#eaeef2"/>'
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{esc(money(tick))}</text>'
        )
    for moment, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(moment):.1f}" y="{HEIGHT - 12}" text-anchor="{anchor}">'
            f"{esc(moment.strftime('%Y-%m-%d %H:%M'))}</text>"
        )
    legend = []
    for index, (group, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = f"M{x(start):.1f},{y(0):.1f}"
        for moment, value in points:
            path += f" H{x(moment):.1f} V{y(value):.1f}"
        path += f" H{x(end):.1f}"
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{esc(group)}: {esc(money(points[-1][1]))}</title></path>"
        )
        for moment, value in points:
            parts.append(
                f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{esc(group)} {esc(moment.isoformat(timespec='seconds'))}: "
                f"{esc(money(value))}</title></circle>"
            )
        legend.append(
            f'<span><i style="background:{colour}"></i>{esc(group)} '
            f"({esc(money(points[-1][1]))})</span>"
        )
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'
