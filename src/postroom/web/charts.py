"""Pie charts as SVG, drawn on the server: no script, readable by a screen
reader, right for any counts.

How this works: each slice is an arc path from the top of the circle,
clockwise, its angle proportional to its count. Two cases are drawn
differently because an arc cannot draw them: a slice that holds
everything is a full circle (an SVG arc whose ends coincide draws
nothing), and a chart with nothing in it is an outlined circle that says
so. Counts are integers of any size; only the angles are floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

SIZE = 220
RADIUS = 100
_CENTRE = SIZE / 2


@dataclass(frozen=True, slots=True)
class Slice:
    label: str
    count: int
    colour: str  # a CSS colour


def percent(count: int, total: int) -> str:
    """``count`` as a share of ``total``, one decimal; "0%" of nothing, and
    "<0.1%" rather than a misleading "0.0%" for a few in millions."""
    if total <= 0 or count <= 0:
        return "0%"
    share = 100 * count / total
    if share < 0.05:
        return "<0.1%"
    return f"{share:.1f}%"


def describe(title: str, slices: Sequence[Slice]) -> str:
    """The chart in words, for ``aria-label``."""
    total = sum(s.count for s in slices)
    if total == 0:
        return f"{title}: no recipients yet"
    parts = [
        f"{s.label} {s.count:,} ({percent(s.count, total)})" for s in slices if s.count
    ]
    return f"{title}: " + ", ".join(parts)


def pie_svg(title: str, slices: Sequence[Slice], *, element_id: str) -> str:
    """An ``<svg>`` element drawing ``slices``; ``element_id`` makes the
    ids of its title unique within the page."""
    total = sum(s.count for s in slices)
    label = describe(title, slices)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" id="{escape(element_id)}"'
        f' width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}"'
        f' aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )
    if total == 0:
        body = (
            f'<circle cx="{_CENTRE}" cy="{_CENTRE}" r="{RADIUS}" fill="#f4f4f4"'
            ' stroke="#999" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{_CENTRE}" y="{_CENTRE}" text-anchor="middle"'
            ' dominant-baseline="middle" font-family="sans-serif" font-size="14"'
            ' fill="#555">No recipients yet</text>'
        )
        return head + body + "</svg>"

    shapes = []
    start = 0
    for s in slices:
        if s.count <= 0:
            continue
        share = percent(s.count, total)
        tip = f"<title>{escape(s.label)}: {s.count:,} ({escape(share)})</title>"
        if s.count == total:
            shapes.append(
                f'<circle cx="{_CENTRE}" cy="{_CENTRE}" r="{RADIUS}"'
                f' fill="{escape(s.colour)}">{tip}</circle>'
            )
            break
        shapes.append(
            f'<path d="{_wedge(start, start + s.count, total)}"'
            f' fill="{escape(s.colour)}" stroke="#fff" stroke-width="1">{tip}</path>'
        )
        start += s.count
    return head + "".join(shapes) + "</svg>"


def _wedge(start: int, end: int, total: int) -> str:
    """The path of the slice from ``start`` to ``end`` out of ``total``."""
    x0, y0 = _point(start / total)
    x1, y1 = _point(end / total)
    large = 1 if (end - start) * 2 > total else 0
    return (
        f"M{_CENTRE:.3f},{_CENTRE:.3f} L{x0:.3f},{y0:.3f}"
        f" A{RADIUS},{RADIUS} 0 {large} 1 {x1:.3f},{y1:.3f} Z"
    )


def _point(fraction: float) -> tuple[float, float]:
    """Where on the circle ``fraction`` of a turn clockwise from the top is."""
    angle = 2 * math.pi * fraction
    return _CENTRE + RADIUS * math.sin(angle), _CENTRE - RADIUS * math.cos(angle)
