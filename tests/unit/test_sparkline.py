"""The sends-per-minute chart: well-formed SVG, one bar per value, scaled to the largest,
labelled for people who cannot see it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from nurture.web.admin.sparkline import HEIGHT, sparkline

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def bars(root: ET.Element) -> list[ET.Element]:
    return root.findall(f"{SVG}rect[@class='bar']")


def labels(root: ET.Element) -> dict[str, str]:
    return {
        (text.get("class") or "").removeprefix("label "): "".join(text.itertext())
        for text in root.findall(f"{SVG}text")
    }


def test_sixty_values_give_sixty_bars_in_order_and_valid_xml() -> None:
    values = [(i * 7) % 5 for i in range(60)]
    root = parse(sparkline(values))
    assert root.tag == f"{SVG}svg"
    found = bars(root)
    assert len(found) == 60
    assert [int(bar.get("data-value", "-1")) for bar in found] == values
    xs = [float(bar.get("x", "-1")) for bar in found]
    assert xs == sorted(xs) and len(set(xs)) == 60  # oldest on the left, now on the right


def test_it_is_an_image_with_a_title_and_axis_labels() -> None:
    root = parse(sparkline([1] * 60))
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text
    assert "60 sends in total" in title.text
    assert root.get("aria-label") == title.text
    assert labels(root) == {"max": "max 1", "start": "60 min ago", "end": "now"}


def test_all_zeros_draws_flat_bars_and_says_max_0() -> None:
    svg = sparkline([0] * 60)
    root = parse(svg)
    assert all(float(bar.get("height", "-1")) == 0 for bar in bars(root))
    assert labels(root)["max"] == "max 0"
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


def test_a_spike_is_full_height_and_the_rest_scale_to_it() -> None:
    values = [0] * 60
    values[30], values[40] = 50, 25
    root = parse(sparkline(values))
    heights = [float(bar.get("height", "-1")) for bar in bars(root)]
    assert heights[30] == max(heights) > 0
    assert heights[40] == pytest.approx(heights[30] / 2)
    assert heights[0] == 0
    assert labels(root)["max"] == "max 50"
    for bar in bars(root):  # every bar stands on the baseline, inside the picture
        y, height = float(bar.get("y", "-1")), float(bar.get("height", "-1"))
        assert y >= 0 and y + height <= HEIGHT


def test_a_single_send_next_to_a_big_spike_is_still_visible() -> None:
    values = [0] * 60
    values[0], values[59] = 10_000, 1
    heights = [float(bar.get("height", "-1")) for bar in bars(parse(sparkline(values)))]
    assert heights[59] >= 1


def test_each_bar_says_what_it_counts() -> None:
    values = [0] * 60
    values[-1] = 3
    found = bars(parse(sparkline(values)))
    last = found[-1].find(f"{SVG}title")
    first = found[0].find(f"{SVG}title")
    assert last is not None and last.text == "3 sends in the latest minute"
    assert first is not None and first.text == "0 sends, 60 to 59 min ago"


def test_no_values_is_still_a_valid_chart() -> None:
    root = parse(sparkline([]))
    assert bars(root) == []
    assert labels(root)["max"] == "max 0"


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        sparkline([1, -1])
