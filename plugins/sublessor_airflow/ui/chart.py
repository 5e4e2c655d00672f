"""Calls and charges per hour as an inline SVG bar chart (no JavaScript, nothing fetched)."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 36
SERIES = (("calls", "calls", "#9aa5b1"), ("charged", "charged", "#2f9e44"))


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2, 4 or 8 x 10^k that is >= value and splits into four whole quarters."""
    power = 1
    while True:
        for factor in (1, 2, 4, 8):
            top = factor * power
            if top >= value and top % 4 == 0:
                return top
        power *= 10


def hourly_chart(hours: list[dict]) -> str:
    """Grouped bars per hour: all calls and successfully charged calls, with a legend."""
    top = nice_ceiling(max([h[key] for h in hours for key, _, _ in SERIES] + [1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / 24
    bar = slot * 0.38
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Calls and charges per hour">'
    ]
    for i in range(5):  # horizontal grid and y labels
        value = top * i // 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7eb"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11"'
            f' fill="#52606d">{value}</text>'
        )
    for h in hours:
        x0 = LEFT + h["hour"] * slot + slot * 0.12
        for offset, (key, label, color) in enumerate(SERIES):
            height = plot_h * h[key] / top
            x = x0 + offset * bar
            y = TOP + plot_h - height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}"'
                f' fill="{color}" data-hour="{h["hour"]}" data-series="{key}"'
                f' data-value="{h[key]}"><title>{h["hour"]:02d}:00 {escape(label)}:'
                f" {h[key]}</title></rect>"
            )
        if h["hour"] % 3 == 0:
            parts.append(
                f'<text x="{LEFT + h["hour"] * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 15}"'
                f' text-anchor="middle" font-size="11" fill="#52606d">{h["hour"]:02d}h</text>'
            )
    for i, (_, label, color) in enumerate(SERIES):
        x = LEFT + i * 110
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11" fill="#1f2933">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
