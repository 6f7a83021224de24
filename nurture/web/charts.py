"""Charts for staff pages: a titled bar, stacked-bar or line chart from labelled series, drawn
on the server as SVG by pygal and inlined in the page.

Small and general on purpose (the ops console and the funnel pages use it): :class:`Chart`
says what to draw, :func:`render` gives the markup. The SVG needs nothing from outside the page:
pygal's tooltip script (fetched from a CDN by default) and its inline config script are left out,
and its own CSS is inlined in the SVG. Every chart is an image to assistive technology whose
``<title>`` and ``<desc>`` say what a sighted reader takes from it (the total and the peak); a
chart with nothing to show is a sentence saying so, not an empty frame.

Labels and series names may come from outside (a provider's error code): pygal writes them with
ElementTree, which escapes them, and the tests hold it to that. pygal is imported on the first
render, so a process that never draws a chart does not load it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

Kind = Literal["bar", "stacked", "line"]
# The drawing's own units; the SVG scales to its box (charts.css). Small enough that text
# stays readable when a phone shrinks it, large enough that a desktop column barely grows it.
WIDTH = 520
# About how wide one character of an axis label is, and the slant that keeps long ones apart.
LABEL_CHAR_PX = 7
LABEL_SLANT = 30
HEIGHT = 260
FONT_SIZE = 14
MAX_TICKS = 6
COLOURS = ("#1f6f8b", "#d1495b", "#edae49", "#66a182", "#6c4f77", "#8d99ae", "#2e4057")


def plain_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None: nothing to show for that label


@dataclass(frozen=True)
class Chart:
    title: str
    labels: Sequence[str]
    series: Sequence[Series]
    kind: Kind = "bar"
    unit: str = ""  # what the values count, plural ("sends"), for the text alternative
    # Shown instead of the chart when every value is missing, or (for counts) zero.
    empty: str = "Nothing to show."
    axis_every: int = 1  # name every n-th label on the x axis, ending with the last one
    format_value: Callable[[float], str] = plain_number
    # The y-axis step is the first of these that needs at most five steps (whole numbers by
    # default; a chart of durations passes 1 s, 5 s, 1 min, …). Non-whole data with no steps
    # given: pygal chooses.
    steps: Sequence[float] | None = None
    summable: bool = True  # counts add up to a total; percentiles do not
    # Name the series in a legend and in the text alternative; by default only when there are
    # several (one series named "Sends" on a chart titled "Sends" says nothing new).
    legend: bool | None = None
    css_class: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for one in self.series:
            if len(one.values) != len(self.labels):
                raise ValueError(
                    f"chart {self.title!r}: series {one.name!r} has {len(one.values)} values "
                    f"for {len(self.labels)} labels"
                )
            if any(v is not None and v < 0 for v in one.values):
                raise ValueError(f"chart {self.title!r}: series {one.name!r} has a negative value")

    @property
    def names_series(self) -> bool:
        return len(self.series) > 1 if self.legend is None else self.legend

    @property
    def is_empty(self) -> bool:
        """Nothing happened: no value at all, or only zero counts. A measurement of zero (a
        send that went on time) is something to show."""
        values = [v for one in self.series for v in one.values if v is not None]
        return not values or (self.summable and not any(values))


def _peak(values: Sequence[float | None], labels: Sequence[str]) -> tuple[float, str]:
    """The largest value and the first label it occurs at."""
    best, where = 0.0, ""
    for value, label in zip(values, labels, strict=True):
        if value is not None and value > best:
            best, where = value, label
    return best, where


def summary(chart: Chart) -> str:
    """The text alternative: what the chart shows, its total (when values add up) and its peak."""
    show = chart.format_value
    unit = f" {chart.unit}" if chart.unit else ""
    if chart.is_empty:
        return f"{chart.title}: {chart.empty}"
    if not chart.summable:
        peaks = []
        for one in chart.series:
            value, where = _peak(one.values, chart.labels)
            peaks.append(f"{one.name} at most {show(value)}{unit}, at {where}")
        return f"{chart.title}: {'; '.join(peaks)}."
    per_label = [sum(one.values[i] or 0 for one in chart.series) for i in range(len(chart.labels))]
    total = sum(per_label)
    text = f"{chart.title}: {show(total)}{unit} in total"
    if chart.names_series:
        parts = [f"{one.name} {show(sum(v or 0 for v in one.values))}" for one in chart.series]
        text += f" ({', '.join(parts)})"
    value, where = _peak(per_label, chart.labels)
    return f"{text}; at most {show(value)} at {where}."


def whole_steps() -> Iterator[float]:
    """1, 2, 5, 10, 20, 50, … without end."""
    magnitude = 1
    while True:
        yield from (magnitude, 2 * magnitude, 5 * magnitude)
        magnitude *= 10


def _ticks(chart: Chart) -> list[float] | None:
    """Y-axis ticks from zero past the highest value (the stacked total, for stacked bars)."""
    values = [v for one in chart.series for v in one.values if v is not None]
    whole = all(float(v).is_integer() for v in values)
    if chart.steps is None and not whole:
        return None
    if chart.kind == "stacked":
        top = max(sum(one.values[i] or 0 for one in chart.series) for i in range(len(chart.labels)))
    else:
        top = max(values, default=0)
    choices = chain(chart.steps or (), whole_steps())
    step = next(s for s in choices if s > 0 and top / s <= MAX_TICKS - 1)
    count = max(1, math.ceil(top / step))
    return [step * i for i in range(count + 1)]


def _style() -> Any:
    from pygal.style import Style  # type: ignore[import-untyped]  # pygal ships no types

    font = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="#33414a",
        foreground_strong="#1d2a33",
        foreground_subtle="#6b7a85",
        colors=COLOURS,
        font_family=font,
        label_font_family=font,
        major_label_font_family=font,
        legend_font_family=font,
        tooltip_font_family=font,
        value_font_family=font,
        label_font_size=FONT_SIZE,
        major_label_font_size=FONT_SIZE,
        legend_font_size=FONT_SIZE,
        tooltip_font_size=FONT_SIZE,
        opacity=".9",
        opacity_hover="1",
        guide_stroke_color="#d6dde2",
        major_guide_stroke_color="#d6dde2",
    )


def _accessible(title_text: str, summary_text: str) -> Callable[[Element], Element]:
    """An xml filter for pygal: no scripts or comments, and a title and description that name
    the chart to assistive technology."""

    def apply(root: Element) -> Element:
        for parent in [root, *root.iter("defs")]:
            for child in list(parent):
                # pygal's config script, its "Pygal" title, its comments (tags that are not str)
                if child.tag in {"script", "title"} or not isinstance(child.tag, str):
                    parent.remove(child)
        chart_id = root.get("id", "chart")
        for index, (part, text) in enumerate((("title", title_text), ("desc", summary_text))):
            element = root.makeelement(part, {"id": f"{chart_id}-{part}"})
            element.text = text
            root.insert(index, element)
        root.set("role", "img")
        root.set("aria-labelledby", f"{chart_id}-title {chart_id}-desc")
        return root

    return apply


def _pygal() -> Any:
    import pygal  # type: ignore[import-untyped]  # pygal ships no types

    # pygal appends a finder for its map plugins to sys.meta_path, of the kind Python 3.12 no
    # longer supports (no find_spec): on 3.11 every import that nothing finds then warns. We
    # draw no maps, so it comes out again.
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]
    return pygal


def _crowded(chart: Chart) -> bool:
    """Would the shown x labels, written level, run into each other? (Names such as
    "booking-nudge-sms (none)" under a few bars do; hours under 24 bars do not.)"""
    shown = list(chart.labels)[:: max(1, chart.axis_every)]
    if not shown:
        return False
    room = (WIDTH - 60) / len(shown)  # the plot's width, less the y axis, shared out
    return max(len(label) for label in shown) * LABEL_CHAR_PX > room


def _pygal_chart(chart: Chart) -> Any:
    pygal = _pygal()

    maker = {"bar": pygal.Bar, "stacked": pygal.StackedBar, "line": pygal.Line}[chart.kind]
    drawing = maker(
        js=[],  # no tooltip script from the CDN: the page makes no request off the host
        disable_xml_declaration=True,
        width=WIDTH,
        height=HEIGHT,
        style=_style(),
        margin=8,
        margin_right=28,  # room for the newest label, centred under the last bar
        spacing=8,
        show_legend=chart.names_series,
        legend_at_bottom=True,
        legend_at_bottom_columns=min(len(chart.series), 3),
        # Counted back from the newest label, so the latest bucket is always named.
        x_labels_major=list(chart.labels)[::-1][:: max(1, chart.axis_every)][::-1],
        show_minor_x_labels=False,
        truncate_label=-1,  # our labels are short; do not cut them
        x_label_rotation=LABEL_SLANT if _crowded(chart) else 0,
        include_x_axis=True,  # bars and lines start from zero
        allow_interruptions=True,  # a missing value is a gap in a line, not a dive to zero
        value_formatter=chart.format_value,
        min_scale=2,
        max_scale=5,
        show_x_guides=False,
        dots_size=2,
        classes=["pygal-chart", "chart-svg", chart.css_class or f"chart-{chart.kind}"],
    )
    drawing.x_labels = list(chart.labels)
    ticks = _ticks(chart)
    if ticks is not None:
        drawing.y_labels = ticks
    for one in chart.series:
        drawing.add(one.name, list(one.values))
    drawing.add_xml_filter(_accessible(chart.title, summary(chart)))
    return drawing


def render(chart: Chart) -> Markup:
    """The chart as inline SVG, or its empty sentence when it has nothing to show."""
    if chart.is_empty:
        return Markup('<p class="chart-empty" role="note">{}</p>').format(escape(chart.empty))
    svg: str = _pygal_chart(chart).render(is_unicode=True)
    # pygal built the SVG with ElementTree from our numbers and escaped labels.
    return Markup(svg)  # noqa: S704
