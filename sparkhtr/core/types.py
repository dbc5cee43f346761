"""Typed containers passed between the pure stages (decode → preprocess → segment → recognise).

Coordinates are pixels of the page image the stage received, origin top-left,
x to the right, y down.

>>> box = BBox(10, 20, 110, 60)
>>> box.width, box.height
(100, 40)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BBox:
    """Axis-aligned box, ``x1``/``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


Point = tuple[float, float]


@dataclass(frozen=True)
class DecodedPage:
    """One page of a source file. ``image`` is uint8, ``H×W`` (gray) or ``H×W×3`` (RGB)."""

    page: int  # 1-based page number inside the file
    image: np.ndarray


@dataclass(frozen=True)
class PreprocessedPage:
    """A grayscale uint8 ``H×W`` page after preprocessing, and the skew that was removed."""

    image: np.ndarray
    skew_degrees: float = 0.0


@dataclass
class SegmentedLine:
    """One text line: geometry in page pixels and its grayscale crop (paper 255 outside the line).

    The crop is what the recogniser reads: the box's columns, framed vertically around the
    baseline as the recogniser's training lines are (see ``SegmenterConfig.crop_above``).
    """

    bbox: BBox
    polygon: list[Point]
    baseline: list[Point]
    crop: np.ndarray  # uint8 H×W


@dataclass
class RecognizedLine:
    """A line's text and confidence in [0, 1]."""

    text: str
    confidence: float
    extra: dict[str, object] = field(default_factory=dict)
