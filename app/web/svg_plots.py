"""Line charts as inline SVG, drawn on the server: no JavaScript, no external file.

`small_multiples` draws one small chart (a panel) per group, side by side, all on the same
scales, one line per series (each its own colour and dash pattern, named in a legend). The SVG
has a <title> and a <desc> (`role="img"`, `aria-labelledby`), and every panel names its axes.
Every text is escaped, so labels may come from an uploaded file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PANEL_WIDTH = 320
PANEL_HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 28, 44
LEGEND_HEIGHT = 26
FONT = 'font-family="system-ui, sans-serif" font-size="11" fill="#1b1b1b"'
STYLES = (
    ("#0b5394", ""),
    ("#b45f06", "6 3"),
    ("#38761d", "2 2"),
    ("#741b47", "8 3 2 3"),
    ("#555555", "1 3"),
)
"""Colour and dash pattern of each series in turn: lines differ by more than their colour."""
X_STEPS = (1, 2, 4, 5, 10, 13, 26, 52, 104, 156, 260, 520)


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]


@dataclass(frozen=True)
class Panel:
    title: str
    series: Sequence[Series]


def _number(value: float) -> str:
    return f"{value:g}"


def nice_step(raw: float) -> float:
    """The least of 1, 2, 2.5 and 5 times a power of ten that is at least `raw` (> 0)."""
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))


def y_ticks(top: float, count: int = 4) -> list[float]:
    """Ticks from 0 to a round number at least `top`, `count` steps or fewer."""
    step = nice_step(top / count) if top > 0 else 1.0
    steps = max(1, math.ceil(top / step - 1e-9))
    return [round(i * step, 10) for i in range(steps + 1)]


def x_step(last: int, most: int = 6) -> int:
    return next((s for s in X_STEPS if last / s <= most), X_STEPS[-1])


def _text(x: float, *, y: float, content: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT}{extra}>'
        f"{escape(content)}</text>"
    )


def _legend(labels: Sequence[str]) -> list[str]:
    parts = []
    x = LEFT
    for i, label in enumerate(labels):
        colour, dash = STYLES[i % len(STYLES)]
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" y1="13" x2="{x + 28}" y2="13" stroke="{colour}" stroke-width="2.5"'
            f"{dashes}/>"
        )
        parts.append(_text(x + 34, y=17, content=label, anchor="start"))
        x += 34 + 7 * len(label) + 24
    return parts


def _panel(
    panel: Panel,
    *,
    x0: float,
    y0: float,
    top: float,
    last: int,
    x_label: str,
    y_label: str,
    y_format: Callable[[float], str],
) -> list[str]:
    width = PANEL_WIDTH - LEFT - RIGHT
    height = PANEL_HEIGHT - TOP - BOTTOM
    left, bottom = x0 + LEFT, y0 + TOP + height
    ticks = y_ticks(top)
    scale_top = ticks[-1] or 1.0
    parts = [
        _text(x0 + LEFT + width / 2, y=y0 + 16, content=panel.title, extra=' font-weight="600"')
    ]
    for tick in ticks:
        y = bottom - height * tick / scale_top
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + width:.1f}" y2="{y:.1f}" '
            f'stroke="#e2e2e2"/>'
        )
        parts.append(_text(left - 5, y=y + 4, content=y_format(tick), anchor="end"))
    step = x_step(last)
    for week in range(0, last + 1, step):
        x = left + width * week / max(last, 1)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 4:.1f}" '
            f'stroke="#1b1b1b"/>'
        )
        parts.append(_text(x, y=bottom + 16, content=str(week)))
    parts.append(
        f'<path d="M{left:.1f} {y0 + TOP:.1f}V{bottom:.1f}H{left + width:.1f}" fill="none" '
        f'stroke="#1b1b1b"/>'
    )
    parts.append(_text(left + width / 2, y=bottom + 34, content=x_label))
    middle = y0 + TOP + height / 2
    parts.append(
        _text(
            x0 + 14,
            y=middle,
            content=y_label,
            extra=f' transform="rotate(-90 {x0 + 14} {middle:.1f})"',
        )
    )
    for i, series in enumerate(panel.series):
        colour, dash = STYLES[i % len(STYLES)]
        points = [
            (left + width * week / max(last, 1), bottom - height * min(v, scale_top) / scale_top)
            for week, v in enumerate(series.values)
        ]
        if not points:
            continue
        if len(points) == 1:
            x, y = points[0]
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            continue
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        drawn = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline points="{drawn}" fill="none" stroke="{colour}" stroke-width="1.8"'
            f"{dashes}><title>{escape(panel.title)}: {escape(series.label)}</title></polyline>"
        )
    return parts


def small_multiples(
    *,
    plot_id: str,
    title: str,
    description: str,
    panels: Sequence[Panel],
    x_label: str,
    y_label: str,
    y_format: Callable[[float], str] = _number,
    y_max: float | None = None,
    columns: int = 3,
) -> str:
    """An SVG of one panel per group, weeks (the index of each value) on x, the same y scale
    in every panel: 0 to `y_max`, else to the largest value (rounded up to a round number)."""
    labels = list(dict.fromkeys(s.label for p in panels for s in p.series))
    legend = LEGEND_HEIGHT if len(labels) > 1 else 0
    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    width, height = columns * PANEL_WIDTH, legend + max(rows, 1) * PANEL_HEIGHT
    last = max((len(s.values) - 1 for p in panels for s in p.series), default=0)
    top = (
        y_max
        if y_max is not None
        else max((v for p in panels for s in p.series for v in s.values), default=0.0)
    )
    pid = escape(plot_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" class="plot" role="img" '
        f'class="plot" id="{pid}" '
        f'aria-labelledby="{pid}-title {pid}-desc">',
        f'<title id="{pid}-title">{escape(title)}</title>',
        f'<desc id="{pid}-desc">{escape(description)}</desc>',
    ]
    if legend:
        parts += _legend(labels)
    if not panels:
        parts.append(_text(width / 2, y=height / 2, content="No data"))
    for i, panel in enumerate(panels):
        x0 = (i % columns) * PANEL_WIDTH
        y0 = legend + (i // columns) * PANEL_HEIGHT
        parts += _panel(
            panel,
            x0=x0,
            y0=y0,
            top=top,
            last=last,
            x_label=x_label,
            y_label=y_label,
            y_format=y_format,
        )
    parts.append("</svg>")
    return "\n".join(parts)
