"""nurture.web.charts: labelled series in, a self-contained accessible SVG out (pygal), with
what came from outside escaped, and a sentence instead of an empty frame."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from nurture.web.charts import Chart, Series, render, summary

SVG = "{http://www.w3.org/2000/svg}"
LABELS = ["09:00", "10:00", "11:00", "12:00"]


@dataclass
class Drawn:
    """What a reader of the SVG finds: its title and description, and each series' values."""

    title: str
    desc: str
    axis_labels: list[str]  # the labels named on the x axis
    values: dict[str, list[str]]  # series name (legend) -> the value of each bar or dot


def _values(group: ET.Element) -> list[str]:
    """The value of each bar or dot in one series' group, in order."""
    return [desc.text or "" for desc in group.iter(f"{SVG}desc") if desc.get("class") == "value"]


def read_chart(svg: str) -> Drawn:
    root = ET.fromstring(svg)  # our own output, in a test
    assert root.get("role") == "img"
    title_id, desc_id = (root.get("aria-labelledby") or "").split()
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert (title.get("id"), desc.get("id")) == (title_id, desc_id)
    legends = [
        (legend.findtext(f"{SVG}title") or legend.findtext(f"{SVG}text") or "")
        for legend in root.iter(f"{SVG}g")
        if "legend" in (legend.get("class") or "").split()
    ]
    series = [g for g in root.iter(f"{SVG}g") if "series" in (g.get("class") or "").split()]
    # pygal repeats each series' group in its overlays, empty; the drawn one holds the points.
    drawn = [points for points in map(_values, series) if points]
    names = legends or ["only"]
    assert len(drawn) == len(names), (names, drawn)
    values = dict(zip(names, drawn, strict=True))
    labels = [
        (guide.findtext(f"{SVG}title") or guide.findtext(f"{SVG}text") or "")
        for axis in root.iter(f"{SVG}g")
        if "x" in (axis.get("class") or "").split() and "axis" in (axis.get("class") or "")
        for guide in axis.findall(f"{SVG}g")
    ]
    return Drawn(title.text or "", desc.text or "", labels, values)


def y_ticks(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [
        text.text or ""
        for axis in root.iter(f"{SVG}g")
        if {"axis", "y"} <= set((axis.get("class") or "").split())
        for text in axis.iter(f"{SVG}text")
    ]


def test_a_bar_chart_draws_every_value_and_says_the_total_and_the_peak() -> None:
    chart = Chart("Sends per hour", LABELS, [Series("Sends", [0, 7, 3, 2])], unit="sends")
    svg = str(render(chart))
    drawn = read_chart(svg)
    assert drawn.values == {"only": ["0", "7", "3", "2"]}
    assert drawn.title == "Sends per hour"
    assert drawn.desc == "Sends per hour: 12 sends in total; at most 7 at 10:00."
    assert drawn.axis_labels == LABELS
    assert y_ticks(svg) == ["0", "2", "4", "6", "8"]  # whole numbers for counts, from zero


def test_the_axis_names_every_nth_label_ending_with_the_newest() -> None:
    labels = [f"{minute:02d}" for minute in range(60)]
    chart = Chart("Sends", labels, [Series("Sends", [1] * 60)], axis_every=10)
    assert read_chart(str(render(chart))).axis_labels == ["09", "19", "29", "39", "49", "59"]


def test_nothing_leaves_the_page_no_script_no_remote_link() -> None:
    svg = str(render(Chart("Sends", LABELS, [Series("Sends", [1, 2, 3, 4])])))
    assert "<script" not in svg and "pygal.js" not in svg and "kozea.github.io" not in svg
    assert "<!--" not in svg  # pygal's comments name its web site
    assert "href" not in svg and "@import" not in svg and "url(" not in svg
    assert not svg.startswith("<?xml")  # inlined in HTML, not a document of its own


def test_a_stacked_chart_totals_every_series_and_peaks_on_the_sum() -> None:
    chart = Chart(
        "Failures by code",
        LABELS,
        [Series("30003", [1, 0, 4, 0]), Series("30005", [2, 0, 0, 1])],
        kind="stacked",
        unit="failures",
    )
    drawn = read_chart(str(render(chart)))
    assert drawn.values == {"30003": ["1", "0", "4", "0"], "30005": ["2", "0", "0", "1"]}
    assert summary(chart) == (
        "Failures by code: 8 failures in total (30003 5, 30005 3); at most 4 at 11:00."
    )


def test_a_line_of_measurements_says_each_peak_and_leaves_gaps_for_missing_values() -> None:
    chart = Chart(
        "Lateness",
        LABELS,
        [Series("p50", [None, 30, 0, 60]), Series("p95", [None, 90, 0, 600])],
        kind="line",
        summable=False,
        format_value=lambda seconds: f"{seconds:.0f} s",
    )
    drawn = read_chart(str(render(chart)))
    assert drawn.values == {"p50": ["30 s", "0 s", "60 s"], "p95": ["90 s", "0 s", "600 s"]}
    assert drawn.desc == "Lateness: p50 at most 60 s, at 12:00; p95 at most 600 s, at 12:00."


def test_sends_that_all_went_on_time_are_a_chart_not_the_empty_sentence() -> None:
    chart = Chart(
        "Lateness", LABELS, [Series("p50", [None, 0, 0, None])], kind="line", summable=False
    )
    assert "<svg" in str(render(chart)) and not chart.is_empty


@pytest.mark.parametrize(
    "values", [[0, 0, 0, 0], [None, None, None, None]], ids=["zeros", "missing"]
)
def test_nothing_to_show_is_a_sentence_not_an_empty_frame(values: list[float | None]) -> None:
    chart = Chart("Sends", LABELS, [Series("Sends", values)], empty="No sends in the last 24 h.")
    html = str(render(chart))
    assert html == '<p class="chart-empty" role="note">No sends in the last 24 h.</p>'
    assert summary(chart) == "Sends: No sends in the last 24 h."


HOSTILE = '<script>alert("x")</script>&amp;'


def test_labels_and_names_from_outside_are_text_never_markup() -> None:
    chart = Chart(
        f"Failures {HOSTILE}",
        ["09:00", HOSTILE],
        [Series(HOSTILE, [1, 2]), Series("ok", [0, 1])],
        kind="stacked",
        empty=HOSTILE,
    )
    svg = str(render(chart))
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert "&amp;amp;" in svg  # an ampersand in the input is escaped too, not taken as an entity
    drawn = read_chart(svg)
    assert HOSTILE in drawn.desc and drawn.title == f"Failures {HOSTILE}"
    assert HOSTILE in drawn.axis_labels and HOSTILE in drawn.values
    empty = str(render(Chart("x", ["a"], [Series("s", [0])], empty=HOSTILE)))
    assert "<script" not in empty and "&lt;script&gt;" in empty


def test_mismatched_or_negative_series_are_refused() -> None:
    with pytest.raises(ValueError, match="has 2 values for 4 labels"):
        Chart("Sends", LABELS, [Series("Sends", [1, 2])])
    with pytest.raises(ValueError, match="negative"):
        Chart("Sends", LABELS, [Series("Sends", [1, -2, 0, 0])])


def test_pygal_is_loaded_only_when_a_chart_is_drawn() -> None:
    script = (
        "import sys, nurture.web.charts as c\n"
        "assert 'pygal' not in sys.modules\n"
        "c.render(c.Chart('t', ['a'], [c.Series('s', [1])]))\n"
        "assert 'pygal' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_drawing_a_chart_leaves_the_import_system_as_it_was() -> None:
    # pygal adds an old-style import finder that makes Python 3.11 warn (an error under pytest)
    # on every import that fails afterwards; the chart module takes it out.
    render(Chart("t", ["a"], [Series("s", [1])]))
    assert all(hasattr(finder, "find_spec") for finder in sys.meta_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("no_such_module_for_the_chart_test")


def test_durations_get_steps_a_person_reads_not_fractions_of_a_second() -> None:
    chart = Chart(
        "Lateness",
        ["a", "b"],
        [Series("p95", [0.3, 170])],
        kind="line",
        summable=False,
        steps=(1, 5, 30, 60, 120, 300),
        format_value=lambda seconds: f"{seconds:g} s",
    )
    # 60 s: the first step that needs at most five to pass 170 s
    assert y_ticks(str(render(chart))) == ["0 s", "60 s", "120 s", "180 s"]


def test_long_labels_are_slanted_so_they_do_not_run_into_each_other() -> None:
    names = ["booking-nudge-sms (none)", "welcome (A)", "welcome (B)", "reminder-sms (none)"]
    crowded = str(render(Chart("Reached", names, [Series("Reached", [2, 2, 2, 1])])))
    level = str(render(Chart("Sends", LABELS, [Series("Sends", [1, 2, 3, 4])])))
    assert "rotate(30" in crowded
    assert "rotate(" not in level
    assert read_chart(crowded).axis_labels == names  # slanted, not cut
