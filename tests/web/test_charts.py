"""The SVG pie charts: valid XML for any counts, and the two shapes an arc
cannot draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from postroom.web.charts import Slice, describe, percent, pie_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 -- our own output, not untrusted XML


def test_a_chart_of_nothing_is_valid_svg_that_says_it_is_empty() -> None:
    slices = [Slice("Sent OK", 0, "#009E73"), Slice("Bounced", 0, "#D55E00")]

    root = parse(pie_svg("Delivery", slices, element_id="d"))

    assert root.get("role") == "img"
    assert root.get("aria-label") == "Delivery: no recipients yet"
    assert root.findtext(f"{SVG}title") == "Delivery: no recipients yet"
    assert root.findtext(f"{SVG}text") == "No recipients yet"
    assert root.findall(f"{SVG}path") == []


def test_a_single_slice_of_everything_is_a_full_circle_not_an_arc() -> None:
    slices = [Slice("Sent OK", 5, "#009E73"), Slice("Bounced", 0, "#D55E00")]

    root = parse(pie_svg("Delivery", slices, element_id="d"))

    [circle] = root.findall(f"{SVG}circle")
    assert circle.get("fill") == "#009E73"
    assert root.findall(f"{SVG}path") == []
    assert root.get("aria-label") == "Delivery: Sent OK 5 (100.0%)"


def test_millions_draw_one_wedge_per_non_empty_slice_with_the_big_one_large() -> None:
    slices = [
        Slice("Sent OK", 2_999_000, "#009E73"),
        Slice("Bounced", 1_000, "#D55E00"),
        Slice("Invalid", 0, "#CC79A7"),
        Slice("Deferred", 1, "#E69F00"),
    ]

    root = parse(pie_svg("Delivery", slices, element_id="d"))

    paths = root.findall(f"{SVG}path")
    assert len(paths) == 3
    assert " 0 1 1 " in (paths[0].get("d") or "")  # more than half: large arc
    assert " 0 0 1 " in (paths[1].get("d") or "")
    assert "Sent OK 2,999,000 (100.0%)" in (root.get("aria-label") or "")
    assert "Deferred 1 (<0.1%)" in (root.get("aria-label") or "")


def test_labels_are_escaped_in_the_svg() -> None:
    slices = [Slice('<b>"x"</b> & co', 1, "#000"), Slice("y", 1, "#fff")]

    root = parse(pie_svg("A & B", slices, element_id="d"))

    assert (root.get("aria-label") or "").startswith('A & B: <b>"x"</b> & co 1')


@pytest.mark.parametrize(
    ("count", "total", "expected"),
    [
        (0, 0, "0%"),
        (0, 10, "0%"),
        (1, 3, "33.3%"),
        (1, 1, "100.0%"),
        (1, 1_000_000, "<0.1%"),
        (999_999, 1_000_000, "100.0%"),
    ],
)
def test_percentages_never_divide_by_zero_and_mark_tiny_shares(
    count: int, total: int, expected: str
) -> None:
    assert percent(count, total) == expected


def test_the_description_leaves_out_empty_slices() -> None:
    slices = [Slice("A", 3, "#000"), Slice("B", 0, "#111"), Slice("C", 1, "#222")]

    assert describe("T", slices) == "T: A 3 (75.0%), C 1 (25.0%)"
