"""Page geometry: the rotation that deskewing applies, and mapping line geometry back to the scan.

Deskewing rotates the page about its centre onto a canvas large enough to hold the
whole rotated page. :func:`rotation_matrix` is that transform; :func:`to_source`
inverts it for segmented lines so that stored geometry refers to the original scan.

>>> m, size = rotation_matrix(0.0, (200, 100))
>>> size
(200, 100)
>>> [tuple(round(v, 6) for v in p) for p in map_points([(10.0, 20.0)], m)]
[(10.0, 20.0)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from sparkhtr.core.types import BBox, Point, SegmentedLine


def rotation_matrix(angle_degrees: float, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """2×3 affine of a rotation by ``angle_degrees`` (OpenCV sense: counter-clockwise on screen)
    about the centre of a ``(width, height)`` image, with the canvas expanded to fit; and the new size.
    """
    w, h = size
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w = math.ceil(h * sin + w * cos - 1e-6)
    new_h = math.ceil(h * cos + w * sin - 1e-6)
    matrix[0, 2] += new_w / 2.0 - w / 2.0
    matrix[1, 2] += new_h / 2.0 - h / 2.0
    return matrix, (new_w, new_h)


def map_points(points: Sequence[Point], matrix: np.ndarray) -> list[Point]:
    """Apply a 2×3 affine to ``points``."""
    if not points:
        return []
    pts = np.asarray(points, np.float64)
    out = pts @ matrix[:, :2].T + matrix[:, 2]
    return [(float(x), float(y)) for x, y in out]


def to_source(lines: Sequence[SegmentedLine], angle_degrees: float, deskewed_size: tuple[int, int],
              source_size: tuple[int, int]) -> list[SegmentedLine]:
    """Lines found on a page rotated by ``angle_degrees`` (see :func:`rotation_matrix`), in source pixels.

    Crops are kept as cut from the deskewed page (straight lines read better).
    """
    if not angle_degrees and deskewed_size == source_size:
        return list(lines)
    forward, _ = rotation_matrix(angle_degrees, source_size)
    inverse = cv2.invertAffineTransform(forward)
    sw, sh = source_size
    out: list[SegmentedLine] = []
    for line in lines:
        polygon = [_clip(p, sw, sh) for p in map_points(line.polygon, inverse)]
        baseline = [_clip(p, sw, sh) for p in map_points(line.baseline, inverse)]
        xs = [p[0] for p in polygon] or [0.0]
        ys = [p[1] for p in polygon] or [0.0]
        # the tolerance keeps float noise (49.9999999) from widening the box by a pixel
        bbox = BBox(math.floor(min(xs) + 1e-6), math.floor(min(ys) + 1e-6),
                    math.ceil(max(xs) - 1e-6), math.ceil(max(ys) - 1e-6))
        out.append(replace(line, bbox=bbox, polygon=polygon, baseline=baseline))
    return out


def _clip(p: Point, w: int, h: int) -> Point:
    return (min(max(p[0], 0.0), float(w)), min(max(p[1], 0.0), float(h)))
