"""The HTML report: one self-contained file, bar charts as inline SVG, no scripts or links."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from benchmarks.report import text
from benchmarks.runner import Measurement, Results
from benchmarks.summary import Spread

COLOURS = {
    "turnout": "#2b6cb0",
    "turnout-log": "#4299e1",
    "turnout-py": "#90cdf4",
    "direct": "#718096",
    "nginx": "#2f855a",
    "haproxy": "#c05621",
}
WIDTH, HEIGHT = 380, 220
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 56, 28, 22


def html(results: Results) -> str:
    """One row per scenario: requests/s and p99 side by side, each on its own scale (the
    scenarios differ by two orders of magnitude, so a shared axis would flatten most bars).
    With repeated runs each bar is the median, with a whisker from the lowest to the highest."""
    scenarios = list(dict.fromkeys(m.scenario for m in results.measurements))
    targets: list[str] = list(dict.fromkeys(m.target for m in results.measurements))
    rows = []
    for scenario in scenarios:
        measured = [m for m in results.measurements if m.scenario == scenario]
        description = results.parameters["scenarios"][scenario]["description"]
        runs = max(m.run for m in measured)
        of = "" if runs == 1 else f", median of {runs} runs"
        rps = bar_chart(
            f"requests/s (higher is better{of})", measured, lambda m: m.load.requests_per_s
        )
        p99 = bar_chart(
            f"p99 latency, ms (lower is better{of})", measured, lambda m: m.load.latency_ms["p99"]
        )
        rows.append(
            f"<h2>{escape(scenario)}</h2>\n<p>{escape(description)}</p>\n"
            f'<div class="row">{rps}{p99}</div>'
        )
    legend = " ".join(
        f'<span class="key" style="background:{COLOURS.get(t, "#999")}"></span>{escape(t)}'
        for t in targets
    )
    sections = "\n".join(rows)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>turnout benchmark</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1a202c; }}
.key {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
.row {{ display: flex; flex-wrap: wrap; gap: 1em; }}
pre {{ background: #f7fafc; padding: 1em; overflow-x: auto; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #1a202c; }}
</style>
</head>
<body>
<h1>turnout benchmark</h1>
<p>{legend}</p>
{sections}
<h2>Figures</h2>
<pre>{escape(text(results))}</pre>
</body>
</html>
"""


def bar_chart(
    title: str, measurements: list[Measurement], value: Callable[[Measurement], float]
) -> str:
    """One bar per target, labelled with its value (the median over its runs), on a scale
    from 0 to the largest value; a whisker spans the runs' lowest to highest."""
    per_target: dict[str, list[float]] = {}
    for m in measurements:
        per_target.setdefault(m.target, []).append(value(m))
    bars = [
        (target, spread) for target, values in per_target.items() if (spread := Spread.of(values))
    ]
    top = max((s.high for _, s in bars), default=0.0) or 1.0
    plot_w = WIDTH - MARGIN_LEFT - 10
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{MARGIN_LEFT}" y="12">{escape(title)}</text>',
    ]
    for step in range(5):
        fraction = step / 4
        y = MARGIN_TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - 10}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e2e8f0"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_short(top * fraction)}</text>"
        )
    for i, (target, spread) in enumerate(bars):
        v = spread.median
        h = plot_h * v / top
        x, y = MARGIN_LEFT + i * slot + slot * 0.15, MARGIN_TOP + plot_h - h
        middle = x + slot * 0.35
        whisker = ""
        label_y = y - 3
        if spread.high > spread.low:
            low = MARGIN_TOP + plot_h * (1 - spread.low / top)
            high = MARGIN_TOP + plot_h * (1 - spread.high / top)
            tip = slot * 0.1
            whisker = (
                f'<path d="M{middle:.1f} {low:.1f}V{high:.1f}M{middle - tip:.1f} {low:.1f}'
                f'h{2 * tip:.1f}M{middle - tip:.1f} {high:.1f}h{2 * tip:.1f}" '
                f'stroke="#1a202c" fill="none"><title>{escape(target)}: '
                f"{spread.low:,.2f}-{spread.high:,.2f}</title></path>"
            )
            label_y = min(y, high) - 3
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{COLOURS.get(target, "#999")}"><title>{escape(target)}: {v:,.2f}</title>'
            f'</rect>{whisker}<text x="{middle:.1f}" y="{label_y:.1f}" text-anchor="middle">'
            f"{_short(v)}</text>"
            f'<text x="{middle:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{escape(target)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _short(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.2f}"
