"""Small inline SVG line charts for the load-test report: no script, no
external file, so the report stays one self-contained page that prints
and archives as is."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 24, 28


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: list[tuple[float, float]]  # (seconds, value)


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** len(str(int(value))) / 10
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def line_chart(title: str, unit: str, series: list[Series]) -> str:
    points = [p for s in series for p in s.points]
    if not points:
        return f'<p class="empty">{escape(title)}: no data.</p>'
    x_max = max(1.0, max(x for x, _ in points))
    y_max = _nice_ceiling(max(y for _, y in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + plot_w * x / x_max

    def sy(y: float) -> float:
        return TOP + plot_h * (1 - min(y, y_max) / y_max)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for n in range(5):
        value = y_max * n / 4
        y = sy(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value:g}</text>'
        )
    for n in range(6):
        x = x_max * n / 5
        at = f'x="{sx(x):.1f}" y="{HEIGHT - 8}"'
        parts.append(f'<text {at} class="tick" text-anchor="middle">{x:.0f} s</text>')
    parts.append(f'<text x="4" y="12" class="unit">{escape(unit)}</text>')
    for s in series:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="1.6"/>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{s.colour}"></i>{escape(s.label)}</span>'
        for s in series
    )
    return f"<figure><figcaption>{escape(title)} {legend}</figcaption>{''.join(parts)}</figure>"
