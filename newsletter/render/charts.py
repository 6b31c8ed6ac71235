"""Pure SVG charts for the admin dashboard: no JavaScript, readable text, accessible names.

Each chart is one `<svg role="img">` whose `<title>` and `<desc>` name it and state its numbers
in words (what a screen reader reads), with every value also written as text beside its bar.
Colours are attributes and classes, never `style=` (the app's CSP forbids inline styles).
Output is deterministic, so a golden test can hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

# Distinct under the common colour-vision deficiencies (Okabe–Ito), each paired with a legend.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _open(width: int, height: int, ident: str, title: str, desc: str) -> list[str]:
    # Drawn at its own size (the page scrolls it inside its box when narrower), so its text
    # stays readable on a phone instead of shrinking with the width.
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-family="{FONT}" font-size="13">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]


def _ceiling(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 × a power of ten)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def horizontal_bars(
    ident: str,
    title: str,
    items: Sequence[tuple[str, int]],
    *,
    unit: str = "",
    width: int = 320,  # inside a card at 375 px
) -> str:
    """One bar per (label, value): the label on its own line above its bar, the value after
    the bar, so a long label never squeezes the bars and the chart fits a phone's width."""
    row, top, left = 36, 6, 2
    height = top * 2 + row * max(len(items), 1)
    desc = "; ".join(f"{label}: {value}{unit}" for label, value in items) or "no data"
    parts = _open(width, height, ident, title, desc)
    scale = max((value for _, value in items), default=0) or 1  # no axis: the longest fills
    room = width - left - 44
    limit = width // 8  # characters that fit on the label's line at 13 px
    for index, (label, value) in enumerate(items):
        y = top + index * row
        length = round(room * value / scale) if value > 0 else 0
        shown = label if len(label) <= limit else label[: limit - 1] + "…"
        parts.append(f'<text x="{left}" y="{y + 12}" fill="#222">{escape(shown)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 17}" width="{length}" height="14" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {value}{escape(unit)}</title></rect>"
        )
        parts.append(f'<text x="{left + length + 4}" y="{y + 29}" fill="#222">{value}</text>')
    if not items:
        parts.append(f'<text x="{width // 2}" y="{top + 15}" text-anchor="middle">no data</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def grouped_columns(
    ident: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    width: int = 720,
    height: int = 260,
) -> str:
    """Columns per category (e.g. months), one per series, with a legend and the values."""
    if any(len(values) != len(categories) for _, values in series):
        raise ValueError("every series needs one value per category")
    left, right, top, bottom = 36, 8, 28, 34
    plot_h = height - top - bottom
    plot_w = width - left - right
    scale = _ceiling(max((v for _, values in series for v in values), default=0))
    words = [
        f"{category}: " + ", ".join(f"{name} {values[index]}" for name, values in series)
        for index, category in enumerate(categories)
    ]
    parts = _open(width, height, ident, title, "; ".join(words) or "no data")
    for index, (name, _values) in enumerate(series):  # the legend, on top
        lx = left + index * 130
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{lx}" y="4" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="{4 + 11}" fill="#222">{escape(name)}</text>')
    base = top + plot_h
    for tick in (0, scale // 2, scale) if scale > 1 else (0, scale):
        y = base - round(plot_h * tick / scale)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4}" text-anchor="end" fill="#555">{tick}</text>'
        )
    group = plot_w / max(len(categories), 1)
    column = max(2.0, (group - 8) / max(len(series), 1))
    for c_index, category in enumerate(categories):
        x0 = left + c_index * group + 4
        for s_index, (name, values) in enumerate(series):
            value = values[c_index]
            h = round(plot_h * value / scale)
            x = x0 + s_index * column
            colour = PALETTE[s_index % len(PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h}" width="{column - 1:.1f}" height="{h}" '
                f'fill="{colour}"><title>{escape(category)}, {escape(name)}: {value}</title></rect>'
            )
            if value and column >= 16:  # narrower: the value is in the title, desc and table
                parts.append(
                    f'<text x="{x + (column - 1) / 2:.1f}" y="{base - h - 2}" '
                    f'text-anchor="middle" font-size="10" fill="#222">{value}</text>'
                )
        parts.append(
            f'<text x="{x0 + (group - 8) / 2:.1f}" y="{base + 16}" text-anchor="middle" '
            f'font-size="11" fill="#222">{escape(category)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
