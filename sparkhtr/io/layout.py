"""Typed page containers for export, import and evaluation: a page's lines with text and geometry.

The same containers carry a recognised page read from the tables, a ground-truth page
parsed from ALTO or PAGE XML, and what the XML writers serialise. Coordinates are
pixels of the source scan, origin top-left (as in the ``lines`` table).

>>> page = LayoutPage("s3://bucket/scans/letter.tif", page=2, width=100, height=80,
...                   lines=(LayoutLine("Dear Sir,", polygon=((5, 5), (60, 5), (60, 20), (5, 20))),
...                          LayoutLine("thank you")))
>>> page.image_name, page.text
('letter.tif', 'Dear Sir,\\nthank you')
>>> page.lines[0].box()
BBox(x0=5, y0=5, x1=60, y1=20)
>>> clean_text("a\\x00b\\tc\\nd")
'ab c d'
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sparkhtr.core.types import BBox, Point

# Characters XML 1.0 cannot hold (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF)
# and the C1 controls it discourages: dropped from every text and attribute written.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")


def clean_text(text: str | None, *, single_line: bool = True) -> str:
    """``text`` with the characters XML 1.0 cannot carry removed; line breaks and tabs become spaces.

    >>> clean_text("x < y & \\"z\\"\\u0007"), clean_text(None)
    ('x < y & "z"', '')
    """
    if not text:
        return ""
    if single_line:
        text = _LINE_BREAKS.sub(" ", text)
    return _NOT_XML.sub("", text)


def base_name(path: str) -> str:
    """The last component of a path or URI (``/`` and ``\\`` both separate), ``""`` when there is none.

    >>> base_name("s3://b/scans/a.png"), base_name("C:\\\\scans\\\\b.tif"), base_name("x/")
    ('a.png', 'b.tif', 'x')
    """
    parts = [p for p in re.split(r"[/\\]", path) if p]
    return parts[-1] if parts else ""


def path_hash(path: str) -> str:
    """10 hex digits of the SHA-256 of ``path``: tells apart sources whose file names clash.

    >>> path_hash("s3://b/one/scan.png")
    '720397a5b8'
    """
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def points_box(points: Iterable[Point]) -> BBox | None:
    """The box around ``points`` (rounded outwards), None when there are none.

    Points are continuous coordinates (a pixel's square spans ``x..x+1``), as the
    segmenter writes them: the polygon of a whole ``w``×``h`` image is ``(0, 0)…(w, h)``.

    >>> points_box([(1.2, 2), (5, 1), (3, 7.5)])
    BBox(x0=1, y0=1, x1=5, y1=8)
    """
    pts = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not pts:
        return None
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return BBox(math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))


def box_polygon(box: BBox) -> tuple[Point, ...]:
    """The four corners of ``box``, clockwise from top-left (the inverse of :func:`points_box`)."""
    return ((box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1))


@dataclass(frozen=True)
class LayoutLine:
    """One text line: text, optional confidence in [0, 1] and geometry (any of it may be missing)."""

    text: str
    polygon: tuple[Point, ...] = ()
    baseline: tuple[Point, ...] = ()
    bbox: BBox | None = None
    confidence: float | None = None

    def box(self) -> BBox | None:
        """``bbox``, else the box around the polygon, else around the baseline."""
        return self.bbox or points_box(self.polygon) or points_box(self.baseline)


@dataclass(frozen=True)
class LayoutPage:
    """A page of a source file with its lines in reading order.

    ``path`` is the source image as the tables record it (any path or URI), or the
    image file name a ground-truth file names; ``page`` is 1-based within that file;
    ``width``/``height`` are 0 when unknown. ``source`` is the XML file a page was read from.
    """

    path: str
    page: int = 1
    width: int = 0
    height: int = 0
    lines: tuple[LayoutLine, ...] = ()
    source: str | None = None

    @property
    def image_name(self) -> str:
        """The file name of the source image (last path component)."""
        return base_name(self.path)

    @property
    def text(self) -> str:
        """The page text: line texts in reading order joined by newlines."""
        return "\n".join(line.text for line in self.lines)


def as_points(values: Sequence | None) -> tuple[Point, ...]:
    """Points from ``[(x, y)]``, ``[[x, y]]``, ``[{"x":..,"y":..}]`` or Spark ``Row(x, y)`` values; nulls dropped.

    >>> as_points([[1, 2], {"x": 3.5, "y": 4}, None])
    ((1.0, 2.0), (3.5, 4.0))
    """
    out: list[Point] = []
    for v in values or ():
        if v is None:
            continue
        x, y = (v["x"], v["y"]) if isinstance(v, dict) else (v[0], v[1])
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            out.append((float(x), float(y)))
    return tuple(out)
