"""A small bar chart as inline SVG, rendered on the server: no JavaScript, no chart library.

Pure and domain-free: a list of counts in, an SVG string out. The chart is an image to
assistive technology (``role="img"``) whose ``<title>`` says what a sighted reader would take
from it: the total, the busiest interval and the latest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 600
HEIGHT = 120
TOP = 18  # room for the max label
BOTTOM = 18  # room for the axis labels
GAP = 1.0  # between bars


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


def sparkline(
    values: Sequence[int],
    *,
    title: str = "Sends per minute over the last hour",
    unit: str = "sends",
    start_label: str = "60 min ago",
    end_label: str = "now",
) -> str:
    """Bars for ``values`` (oldest first), scaled to the largest, with the axis labels
    ``start_label`` and ``end_label`` and a "max N" label. Negative values are refused."""
    counts = [int(v) for v in values]
    if any(v < 0 for v in counts):
        raise ValueError("sparkline: counts cannot be negative")
    peak = max(counts, default=0)
    total = sum(counts)
    latest = counts[-1] if counts else 0
    summary = (
        f"{title}: {total} {unit} in total, at most {peak} in a minute, "
        f"{latest} in the latest minute"
        if counts
        else f"{title}: no data"
    )
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = WIDTH / len(counts) if counts else WIDTH
    bars = []
    for index, count in enumerate(counts):
        height = plot_height * count / peak if peak else 0.0
        if count and height < 1:
            height = 1.0  # a non-zero interval stays visible
        ago = len(counts) - index
        when = " in the latest minute" if ago == 1 else f", {ago} to {ago - 1} min ago"
        bars.append(
            f'<rect class="bar" x="{_num(index * slot)}" y="{_num(baseline - height)}" '
            f'width="{_num(max(slot - GAP, 0.5))}" height="{_num(height)}" '
            f'data-value="{count}"><title>{count} {escape(unit)}{when}</title></rect>'
        )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'aria-label="{escape(summary)}">',
        f"<title>{escape(summary)}</title>",
        f'<line class="axis" x1="0" y1="{baseline}" x2="{WIDTH}" y2="{baseline}"/>',
        f'<line class="grid" x1="0" y1="{TOP}" x2="{WIDTH}" y2="{TOP}"/>',
        *bars,
        f'<text class="label max" x="0" y="{TOP - 5}">max {peak}</text>',
        f'<text class="label start" x="0" y="{HEIGHT - 4}">{escape(start_label)}</text>',
        f'<text class="label end" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">'
        f"{escape(end_label)}</text>",
        "</svg>",
    ]
    return "".join(parts)
