"""Classical line segmentation of handwritten pages: components, columns, profile peaks.

The page is binarised (Otsu on the contrast-normalised page); connected components
that are noise, scan borders or stains are dropped; the text height is the median
component height. Columns are split at wide vertical gaps. In each column, a
horizontally smeared ink profile peaks once per text line; every component joins
the line whose centre is nearest, which follows slanted and wavy writing better
than cutting the page at fixed rows. A line's polygon is the upper and lower ink
envelope of its components, its baseline a robust straight fit of the lower core
edge, and its crop the line's box with other lines' strokes painted out.

>>> import numpy as np, cv2
>>> page = np.full((400, 700), 250, np.uint8)
>>> for y in (100, 200, 300):
...     _ = cv2.putText(page, "some words here", (40, y), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.5, 20, 3)
>>> lines = segment_lines(page)
>>> len(lines), [line.bbox.y0 < line.bbox.y1 for line in lines]
(3, [True, True, True])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sparkhtr.core.types import BBox, Point, SegmentedLine
from sparkhtr.errors import SegmentationError

__all__ = ["SegmenterConfig", "segment_lines", "segment_whole_image"]


@dataclass(frozen=True)
class SegmenterConfig:
    """Tunables of the classical segmenter.

    ``crop_height``: crops taller than this are downscaled (the recogniser works at 48).
    ``min_component_area``: smaller ink specks are noise. ``column_gap``: a vertical gap
    this many text heights wide separates columns. ``padding``: crop and polygon margin in
    text heights. ``max_lines``: a page with more candidate lines is cut off there (a
    guard against pathological noise, not a real limit of handwriting pages).
    """

    crop_height: int = 64
    min_component_area: int = 6
    column_gap: float = 2.5
    padding: float = 0.25
    max_lines: int = 500
    min_line_ink: float = 0.04  # a line needs this share of the median line's ink
    valley_ratio: float = 0.6  # two profile peaks are one line unless the valley between drops below this
    min_peak: float = 0.08  # profile peaks below this share of the column's highest are not lines


@dataclass
class _Components:
    labels: np.ndarray  # int32 label image
    stats: np.ndarray  # x, y, w, h, area per label (row 0 = background)
    centroids: np.ndarray
    keep: np.ndarray  # bool per label: text-like component


def _require_gray(gray: np.ndarray) -> np.ndarray:
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
        raise SegmentationError(
            f"expected a 2-D uint8 grayscale page, got {getattr(gray, 'dtype', type(gray))} "
            f"{getattr(gray, 'shape', '')}"
        )
    return gray


def _binarize(gray: np.ndarray) -> np.ndarray:
    """Ink mask (uint8 0/1). Otsu on a lightly blurred page; a page with no contrast has no ink."""
    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    lo, hi = np.percentile(blurred, [1, 99])
    if hi - lo < 24:
        return np.zeros_like(gray)
    threshold, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Otsu on mostly-paper pages can sit high; never call light paper grain ink
    threshold = min(threshold, lo + 0.75 * (hi - lo))
    return (blurred < threshold).astype(np.uint8)


def _components(ink: np.ndarray, config: SegmenterConfig) -> _Components:
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h, w = ink.shape
    x, y, cw, ch, area = (stats[:, i] for i in range(5))
    keep = area >= config.min_component_area
    keep[0] = False
    # scan borders, rulings and stains: very large, or touching the edge and long, or solid blobs
    huge = (cw > 0.6 * w) | (ch > 0.35 * h)
    touching = (x == 0) | (y == 0) | (x + cw >= w) | (y + ch >= h)
    edge_strip = touching & ((cw > 0.2 * w) | (ch > 0.15 * h) | (area > 0.002 * h * w))
    fill = area / np.maximum(cw * ch, 1)
    solid = (fill > 0.7) & (area > 0.001 * h * w)
    thin_rule = ((cw > 20 * np.maximum(ch, 1)) & (cw > 0.25 * w)) | ((ch > 20 * np.maximum(cw, 1)) & (ch > 0.25 * h))
    # specks along the scan's edges (dark frame, binding shadow) are never text
    band = max(2, int(0.015 * min(h, w)))
    in_band = (x + cw <= band) | (y + ch <= band) | (x >= w - band) | (y >= h - band)
    keep &= ~(huge | edge_strip | solid | thin_rule | touching | in_band)
    return _Components(labels, stats, centroids, keep)


def _text_height(comp: _Components) -> float:
    """Median height of word-sized components: the unit of every other distance."""
    heights = comp.stats[comp.keep, cv2.CC_STAT_HEIGHT]
    areas = comp.stats[comp.keep, cv2.CC_STAT_AREA]
    if heights.size == 0:
        return 0.0
    big = heights[areas >= max(np.median(areas), 1)]  # ignore dots and accents
    return float(np.median(big if big.size else heights))


def _smooth(profile: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.5 or profile.size < 3:
        return profile.astype(np.float64)
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    return np.convolve(profile.astype(np.float64), kernel, mode="same")


def _columns(ink_kept: np.ndarray, unit: float, config: SegmenterConfig) -> list[tuple[int, int]]:
    """Column x-ranges, split at vertical gaps at least ``column_gap`` text heights wide."""
    w = ink_kept.shape[1]
    profile = _smooth(ink_kept.sum(axis=0), unit / 2)
    total = profile.sum()
    if total <= 0:
        return [(0, w)]
    empty = profile < 0.05 * profile.max()
    cuts: list[int] = []
    start = None
    for xi in range(w + 1):
        if xi < w and empty[xi]:
            start = xi if start is None else start
            continue
        if start is not None and start > 0 and xi < w and xi - start >= config.column_gap * unit / 2:
            left, right = profile[:start].sum(), profile[xi:].sum()
            if min(left, right) > 0.15 * total:
                cuts.append((start + xi) // 2)
        start = None
    bounds = [0, *cuts, w]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)][:4]


def _line_centres(profile: np.ndarray, unit: float, valley_ratio: float = 0.6, min_peak: float = 0.08) -> list[int]:
    """Peaks of a row profile at least ~0.7 text heights apart, with a real valley between them."""
    if profile.size < 3 or profile.max() <= 0:
        return []
    inner = profile[1:-1]
    is_peak = (inner >= profile[:-2]) & (inner > profile[2:]) & (inner > min_peak * profile.max())
    candidates = sorted((np.nonzero(is_peak)[0] + 1).tolist(), key=lambda i: -profile[i])
    chosen: list[int] = []
    min_gap = max(2.0, 0.7 * unit)
    for c in candidates:
        if all(abs(c - k) >= min_gap for k in chosen):
            chosen.append(c)
    chosen.sort()
    # merge neighbours without a valley: one line whose profile has two humps
    merged: list[int] = []
    for c in chosen:
        if merged:
            prev = merged[-1]
            valley = profile[prev: c + 1].min()
            if valley > valley_ratio * min(profile[prev], profile[c]):
                if profile[c] > profile[prev]:
                    merged[-1] = c
                continue
        merged.append(c)
    return merged


def _envelope(mask: np.ndarray, x0: int, y0: int, step: int, pad: int, height: int, width: int) -> list[Point]:
    """Closed clockwise polygon from the upper and lower ink envelope of a line mask."""
    cols = np.nonzero(mask.any(axis=0))[0]
    if cols.size == 0:
        return []
    upper: list[Point] = []
    lower: list[Point] = []
    for start in range(int(cols[0]), int(cols[-1]) + 1, step):
        part = mask[:, start: start + step]
        rows = np.nonzero(part.any(axis=1))[0]
        if rows.size == 0:
            continue
        xa = float(x0 + start)
        xb = float(x0 + min(start + step, mask.shape[1]))
        top = float(max(0, y0 + rows[0] - pad))
        bottom = float(min(height, y0 + rows[-1] + 1 + pad))
        upper += [(xa, top), (xb, top)]
        lower += [(xa, bottom), (xb, bottom)]
    left = max(0.0, upper[0][0] - pad)
    right = min(float(width), upper[-1][0] + pad)
    upper[0] = (left, upper[0][1])
    lower[0] = (left, lower[0][1])
    upper[-1] = (right, upper[-1][1])
    lower[-1] = (right, lower[-1][1])
    return upper + lower[::-1]


def _baseline(mask: np.ndarray, x0: int, y0: int, step: int) -> list[Point]:
    """Straight robust fit through the lower edge of the writing's core, left to right."""
    xs, ys = [], []
    for start in range(0, mask.shape[1], step):
        rows = np.nonzero(mask[:, start: start + step].any(axis=1))[0]
        if rows.size:
            xs.append(x0 + start + step / 2)
            ys.append(y0 + rows[-1])
    if not xs:
        return []
    x_arr, y_arr = np.array(xs, float), np.array(ys, float)
    # descenders stick out below the baseline: fit, drop points far below, refit
    slope, intercept = (np.polyfit(x_arr, y_arr, 1) if len(xs) > 1 else (0.0, y_arr[0]))
    for _ in range(2):
        resid = y_arr - (slope * x_arr + intercept)
        keep = resid <= np.median(resid) + 0.25 * (np.ptp(y_arr) + 1)
        if keep.sum() >= 2:
            slope, intercept = np.polyfit(x_arr[keep], y_arr[keep], 1)
    left = float(x0)
    right = float(x0 + mask.shape[1])
    return [(left, float(slope * left + intercept)), (right, float(slope * right + intercept))]


def _downscale(crop: np.ndarray, height: int) -> np.ndarray:
    if crop.shape[0] <= height:
        return crop
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def segment_lines(gray: np.ndarray, config: SegmenterConfig = SegmenterConfig()) -> list[SegmentedLine]:
    """Text lines of a grayscale page (paper light, ink dark) in reading order.

    Reading order: columns left to right, lines top to bottom within a column. A blank
    page, or one too small to hold text, gives ``[]``.
    """
    gray = _require_gray(gray)
    h, w = gray.shape
    if h < 8 or w < 8:
        return []
    ink = _binarize(gray)
    comp = _components(ink, config)
    unit = _text_height(comp)
    if unit < 3:
        return []
    kept_ids = np.nonzero(comp.keep)[0]
    keep_lut = np.zeros(len(comp.keep), bool)
    keep_lut[kept_ids] = True
    ink_kept = keep_lut[comp.labels].astype(np.uint8)
    # horizontal smear joins the words of a line, so the row profile peaks once per line
    smear = cv2.blur(ink_kept.astype(np.float32), (max(3, int(4 * unit)) | 1, 1))
    step = max(4, int(unit / 2))
    pad = max(1, int(config.padding * unit))
    line_of = np.full(len(comp.keep), -1, np.int64)
    lines_meta: list[tuple[int, int]] = []  # (column index, centre y) per line id
    cx, cy = comp.centroids[:, 0], comp.centroids[:, 1]
    tops = comp.stats[:, cv2.CC_STAT_TOP]
    bottoms = tops + comp.stats[:, cv2.CC_STAT_HEIGHT]
    for col, (xa, xb) in enumerate(_columns(ink_kept, unit, config)):
        profile = _smooth(smear[:, xa:xb].sum(axis=1), unit / 4)
        centres = np.array(_line_centres(profile, unit, config.valley_ratio, config.min_peak), float)
        if centres.size == 0:
            continue
        members = kept_ids[(cx[kept_ids] >= xa) & (cx[kept_ids] < xb)]
        if members.size == 0:
            continue
        # nearest centre, measured to the component's vertical extent (tall strokes span two lines)
        dist = np.maximum(0.0, np.maximum(tops[members, None] - centres[None, :],
                                          centres[None, :] - bottoms[members, None]))
        dist += 0.25 * np.abs(cy[members, None] - centres[None, :])
        nearest = dist.argmin(axis=1)
        base = len(lines_meta)
        line_of[members] = base + nearest
        lines_meta.extend((col, int(c)) for c in centres)
    if not lines_meta:
        return []
    areas = comp.stats[:, cv2.CC_STAT_AREA]
    ink_per_line = np.bincount(line_of[line_of >= 0], weights=areas[line_of >= 0], minlength=len(lines_meta))
    occupied = ink_per_line[ink_per_line > 0]
    floor = config.min_line_ink * (np.median(occupied) if occupied.size else 0)
    result: list[SegmentedLine] = []
    order = sorted(range(len(lines_meta)), key=lambda i: lines_meta[i])
    label_line = np.full(len(comp.keep), -1, np.int64)
    label_line[:] = line_of
    heights = comp.stats[:, cv2.CC_STAT_HEIGHT]
    for line_id in order:
        if ink_per_line[line_id] <= floor or len(result) >= config.max_lines:
            continue
        ids = np.nonzero(line_of == line_id)[0]
        # a "line" made mostly of specks (stamp dots, paper grain) is not writing
        word_ink = areas[ids][heights[ids] >= 0.4 * unit].sum()
        if word_ink < 0.4 * areas[ids].sum():
            continue
        x0 = int(comp.stats[ids, cv2.CC_STAT_LEFT].min())
        y0 = int(tops[ids].min())
        x1 = int((comp.stats[ids, cv2.CC_STAT_LEFT] + comp.stats[ids, cv2.CC_STAT_WIDTH]).max())
        y1 = int(bottoms[ids].max())
        bx0, by0 = max(0, x0 - pad), max(0, y0 - pad)
        bx1, by1 = min(w, x1 + pad), min(h, y1 + pad)
        labels_crop = comp.labels[by0:by1, bx0:bx1]
        owner = label_line[labels_crop]
        mine = owner == line_id
        crop = gray[by0:by1, bx0:bx1].copy()
        crop[(owner >= 0) & ~mine] = 255  # paint out neighbours' ascenders and descenders
        polygon = [(min(max(px, bx0), bx1), min(max(py, by0), by1))
                   for px, py in _envelope(mine, bx0, by0, step, pad, h, w)]
        baseline = _baseline(mine, bx0, by0, step)
        result.append(SegmentedLine(BBox(bx0, by0, bx1, by1), polygon, baseline,
                                    _downscale(crop, config.crop_height)))
    return result


def segment_whole_image(gray: np.ndarray, config: SegmenterConfig = SegmenterConfig()) -> list[SegmentedLine]:
    """The whole image as one line, for inputs that are already line images.

    >>> import numpy as np
    >>> [line] = segment_whole_image(np.full((128, 600), 255, np.uint8))
    >>> line.bbox, line.crop.shape
    (BBox(x0=0, y0=0, x1=600, y1=128), (64, 300))
    """
    gray = _require_gray(gray)
    h, w = gray.shape
    if h == 0 or w == 0:
        return []
    polygon: list[Point] = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    base_y = math.floor(0.75 * h)
    baseline: list[Point] = [(0.0, float(base_y)), (float(w), float(base_y))]
    return [SegmentedLine(BBox(0, 0, w, h), polygon, baseline, _downscale(gray.copy(), config.crop_height))]
