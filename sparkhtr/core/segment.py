"""Classical line segmentation of handwritten pages: ink, blocks, line tracks, components.

1. **Ink**: a pixel is ink when it is darker than its neighbourhood's mean by a margin
   set from the paper's own noise (faint pencil stays, paper grain goes) and is part of
   a thin dark feature (a black top-hat: scan borders, shadows and paper edges are
   not strokes). Long straight rulings are removed with morphological openings;
   specks, scan borders, frames, blots and show-through from the back of the sheet are
   dropped as components. The *text height* (the width-weighted median height of the
   components, long single strokes left out) is the unit of every other distance.
   Long single strokes (frames, flourishes) neither make nor stretch lines.
2. **Blocks**: a recursive XY cut splits the page at vertical gaps (columns, marginal
   notes; slightly slanted gutters too) and wide horizontal gaps, which gives the
   reading order: columns left to right, then top to bottom. A strip of ink along the
   scan's left or right edge, cut by it (the facing page's line ends), is cut off at a
   much narrower gap and makes no lines. Then the ink's direction
   is measured (the structure tensor of the blurred ink: writing running along a line
   has horizontal edges); writing that does not run horizontally (upright marginal
   notes, sideways stamps, margin rules) makes no lines.
3. **Tracks**: in each block the ink is smeared with an anisotropic Gaussian (wide in x,
   narrow in y); each column of the smeared map peaks once per text line, and the
   peaks are linked left to right into tracks, which follow slanted and wavy lines.
4. **Lines**: each block is cut between neighbouring tracks along the smeared map's
   valley; every component joins the track holding most of its pixels (a tall one
   shared by two lines, touching ascenders and descenders, is cut along the valley);
   each line gets an outline from its ink envelope, a robust baseline, and a crop with
   everything outside its outline, and other lines' strokes inside it, painted white.
   "Lines" that are not writing running along are dropped: blobs about as tall as wide
   (stamps, seals, flourishes), lines whose ink has few horizontal edges (seal figures,
   stamp texture) and lines wholly in a strip along the scan's edge.

>>> import numpy as np, cv2
>>> page = np.full((400, 700), 250, np.uint8)
>>> for y in (100, 200, 300):
...     _ = cv2.putText(page, "some words here", (40, y), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.5, 20, 3)
>>> lines = segment_lines(page)
>>> len(lines), [line.bbox.y0 < line.bbox.y1 for line in lines]
(3, [True, True, True])
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from sparkhtr.core.lines import frame_rows, resize_to_height
from sparkhtr.core.types import BBox, Point, SegmentedLine
from sparkhtr.errors import SegmentationError

__all__ = ["MIN_PAGE_SIDE", "SegmenterConfig", "segment_lines", "segment_whole_image"]

MIN_PAGE_SIDE = 8  # a page narrower or lower than this many pixels holds no writing: no lines


@dataclass(frozen=True)
class SegmenterConfig:
    """Tunables of the classical segmenter. Distances are in text heights unless stated.

    - ``crop_height``: crops taller than this many pixels are downscaled, keeping the
      aspect (the recogniser normalises to 48 anyway).
    - ``max_side``: a page with a longer side is analysed downscaled to it; geometry
      and crops stay in the input's pixels.
    - ``ink_sigma``: ink is this many paper-noise deviations darker than its surroundings.
    - ``faint_ratio``: components this many times lighter than the writing, when the
      page has two well-separated inks, are show-through from the back (0 keeps them).
    - ``column_gap`` / ``block_gap``: the vertical / horizontal whitespace that
      separates columns / blocks.
    - ``smear_x`` / ``smear_y``: the Gaussian that turns a line's words into one ridge.
    - ``track_threshold``: ridges weaker than this share of a block's strong ridges are
      not lines. ``join_gap``: collinear tracks this close are one line (words of a
      date or a name are often spaced five text heights apart).
    - ``valley_ratio`` / ``density_ratio``: a weaker track running alongside a stronger
      one is the same line (its ascenders or descenders) when the smeared ink between
      them stays above ``valley_ratio`` of the ridges and it is less than
      ``density_ratio`` as dense.
    - ``max_slope``: a track steeper than this (dy/dx) is not a line of the deskewed
      page's writing (stamps, flourishes, upright notes).
    - ``min_line_height``: lines whose ink is lower than this are dropped (dots, dashes);
      ``min_line_ink``: so are lines with less ink than this share of a well-filled
      line of the page (ticks, specks, stray marks).
    - ``upright_ratio``: writing whose horizontal edges hold less than this share of its
      edges (pooled over a few text heights) does not run horizontally (upright
      marginal notes, stamps set sideways, margin rules) and makes no line (0 keeps it).
      ``line_share``: nor is a line whose ink, taken together, has less than this share
      of horizontal edges (seals, stamps' texture, tangles of flourishes; 0 keeps it).
    - ``blob_height`` / ``blob_aspect``: a line taller than ``blob_height`` and than
      ``blob_aspect`` of its width is not writing running along a line but a blob (a
      stamp, a seal, a flourish, a tangle of strokes) and is dropped.
    - ``edge_strip``: ink wholly within this share of the page's width from its left or
      right edge, cut by that edge, running down the page and set apart from the rest by
      a narrow gap is the facing page's line ends, not this page's writing (0 keeps it).
    - ``padding``: outline and crop margin around the ink.
    - ``frame_density``: words touching a frame (a border, a flourish drawn round the text)
      are cut loose from it: the frame's pixels whose text-height window holds less than
      this share of frame ink (or than 1.5 times what most of its pixels' windows hold: a
      broad pen) are its lone stroke, the rest are words (0 drops frames whole).
    - ``crop_above`` / ``crop_below``: the crop's rows run from this far above the line's
      baseline to this far below it, whatever the line's ascenders and descenders reach:
      the framing of the line images the recogniser was trained on (their polygons reach
      1.4-1.7 text heights above the baseline and 0.65-0.85 below, medians per collection
      in ../shared/data/pages). Set either to 0 to crop to the outline's box instead.
    - ``max_lines``: a guard against pathological pages (noise), not a limit of real ones.
    - ``baseline_threshold`` / ``baseline_shift``: with a learned baseline map
      (``segment_lines(..., baselines=)``), a line runs where the map's ridge is more
      probable than this; its track is set this far above the baseline, at the writing's
      middle, where the ink's own tracks run.
    - ``insertion_gap`` / ``insertion_width``: words written between two lines (an
      interlinear insertion, a correction above the words it replaces) whose lowest ink
      stays this far above the middle of the line below, and which span at least this
      width, are a line of their own, as transcriptions record them, and are painted out of
      the line below's crop; such words lying on the middle of the line above are that
      line's, cut off it by the zones, and go back to it (0 for either leaves them all in
      the line below).
    """

    crop_height: int = 64
    max_side: int = 2600
    ink_sigma: float = 3.0
    faint_ratio: float = 1.7
    column_gap: float = 1.6
    block_gap: float = 2.5
    smear_x: float = 2.0
    smear_y: float = 0.3
    track_threshold: float = 0.2
    join_gap: float = 6.0
    valley_ratio: float = 0.6
    density_ratio: float = 0.6
    max_slope: float = 0.2
    min_line_height: float = 0.45
    min_line_ink: float = 0.04
    padding: float = 0.15
    frame_density: float = 0.15
    crop_above: float = 1.5
    crop_below: float = 0.7
    max_lines: int = 500
    upright_ratio: float = 0.4
    line_share: float = 0.5
    blob_height: float = 1.5
    blob_aspect: float = 0.6
    edge_strip: float = 0.05
    baseline_threshold: float = 0.3
    baseline_shift: float = 0.35
    insertion_gap: float = 0.5
    insertion_width: float = 1.5


def _median(values: np.ndarray) -> float:
    """Median of a small 1-D array, as ``np.median`` gives it, without its overhead (called per track and line)."""
    ordered = np.sort(values, axis=None)
    mid = ordered.size // 2
    return float(ordered[mid]) if ordered.size % 2 else float((ordered[mid - 1] + ordered[mid]) / 2)


def _require_gray(gray: np.ndarray) -> np.ndarray:
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
        raise SegmentationError(
            f"expected a 2-D uint8 grayscale page, got {getattr(gray, 'dtype', type(gray))} "
            f"{getattr(gray, 'shape', '')}"
        )
    return gray


# ----------------------------------------------------------------------------- ink


def _binarize(gray: np.ndarray, config: SegmenterConfig) -> tuple[np.ndarray, np.ndarray]:
    """Ink mask (uint8 0/1) and each pixel's darkness below its neighbourhood's mean."""
    h, w = gray.shape
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    f = smooth.astype(np.float32)
    win = max(15, int(max(h, w) / 30)) | 1
    darker = cv2.boxFilter(f, -1, (win, win), borderType=cv2.BORDER_REFLECT) - f
    sample = darker[:: max(1, h // 300), :: max(1, w // 300)].ravel()
    centre = float(np.median(sample))
    # pixels brighter than their neighbourhood are paper: their spread is the noise level
    brighter = centre - sample[sample <= centre]
    noise = 1.4826 * float(np.median(brighter)) if brighter.size else 0.0
    spread = float(np.percentile(sample, 99.5)) - centre
    if spread < 12:  # no contrast, no ink, whatever the noise
        return np.zeros((h, w), np.uint8), darker
    margin = max(4.0, config.ink_sigma * noise, 0.06 * spread)
    # strokes are thin: a pixel darker than its surroundings only because it lies in a
    # large dark area (scan border, shadow, paper edge, blot) is not ink; the black
    # top-hat responds to dark features narrower than its kernel only
    size = max(15, int(max(h, w) / 50)) | 1
    thin = cv2.morphologyEx(smooth, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    return ((darker > centre + margin) & (thin > margin)).astype(np.uint8), darker


@dataclass(frozen=True)
class _Pixels:
    """The ink pixels, listed once (row-major) for all per-component sums: rows, columns, labels."""

    ys: np.ndarray
    xs: np.ndarray
    lab: np.ndarray

    @staticmethod
    def of(ink: np.ndarray, labels: np.ndarray) -> _Pixels:
        """The nonzero pixels of ``ink`` and their labels (``cv2.findNonZero`` is faster than numpy's)."""
        points = cv2.findNonZero(ink)
        if points is None:
            empty = np.zeros(0, np.int64)
            return _Pixels(empty, empty, empty)
        points = points.reshape(-1, 2)  # (N, 1, 2) or (N, 2) depending on the OpenCV version
        xs, ys = points[:, 0].astype(np.intp), points[:, 1].astype(np.intp)
        return _Pixels(ys, xs, labels[ys, xs].astype(np.intp))


def _components(ink: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a 0/1 mask: (count, labels, stats).

    16-bit labels are about three times faster to compute (less memory traffic) and do
    for any real page; OpenCV refuses them past 65535 components (noise), and then
    32-bit labels are used.
    """
    try:
        n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(ink, 8, cv2.CV_16U, cv2.CCL_DEFAULT)
    except cv2.error:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return n, labels, stats


def _faint_components(px: _Pixels, stats: np.ndarray, darker: np.ndarray, ratio: float) -> np.ndarray:
    """Components much lighter than the page's writing: show-through from the back of the sheet.

    The components' mean darkness (area-weighted) is split in two by Otsu; the lighter
    class is dropped only when the classes are far apart (means ``ratio`` apart and
    well separated) and the lighter one is the minority, so a page written in one
    ink, however faint, loses nothing.
    """
    n = stats.shape[0]
    faint = np.zeros(n, bool)
    if ratio <= 0 or n < 3:
        return faint
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    mean = np.bincount(px.lab, weights=darker[px.ys, px.xs], minlength=n) / np.maximum(area, 1)
    sized = area >= 20
    sized[0] = False
    if sized.sum() < 10:
        return faint
    hist = np.bincount(np.clip(mean[sized], 0, 255).astype(np.int64), weights=area[sized], minlength=256)[:256]
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    sq = np.cumsum(hist * levels * levels)
    total, total_m = w0[-1], m0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0 * total - total_m * w0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    t = int(np.argmax(between))
    if w0[t] <= 0 or w1[t] <= 0:
        return faint
    low, high = m0[t] / w0[t], (total_m - m0[t]) / w1[t]
    spread = (sq[t] / w0[t] - low**2) + ((sq[-1] - sq[t]) / w1[t] - high**2)
    separated = (high - low) ** 2 > 8.0 * max(spread, 1e-6)
    if low <= 0 or high / low < ratio or not separated or w0[t] > 0.4 * total:
        return faint
    faint = mean <= t
    faint[0] = False
    return faint


def _remove_rulings(ink: np.ndarray, unit: float) -> np.ndarray:
    """Ink minus long straight horizontal and vertical strokes (rulings, frames, margin lines).

    Vertical gaps are bridged first, so that a dashed or faint margin line broken up by
    the binarisation still reads as one line; horizontal ones are not, as that would
    fuse the letters of a flat line of writing into a "ruling".
    """
    h, w = ink.shape
    rulings = np.zeros_like(ink)
    # a one-row opening works on each row alone, and a row holding fewer ink pixels than
    # half the kernel (a run at the scan's edge counts the outside as ink) has no run
    # that survives: open only the others
    length = int(5 * unit)
    if length < w:
        rows = np.flatnonzero(cv2.reduce(ink, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() >= length // 2)
        if rows.size:
            kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1))
            rulings[rows] = cv2.morphologyEx(ink[rows], cv2.MORPH_OPEN, kernel)
    length = int(3 * unit)
    if length < h:
        bridge = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(0.3 * unit))))
        closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, bridge)
        rulings |= cv2.morphologyEx(closed, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)))
    if not rulings.any():
        return ink
    # a stroke crossing a ruling keeps its own pixels: remove the ruling's core only
    return ink & ~cv2.dilate(rulings, np.ones((3, 3), np.uint8))


def _stroke_lengths(px: _Pixels, stats: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Per component: the length of stroke its pixels would make at its mean stroke width.

    A stroke of width ``t`` and length ``L`` has about ``t * L`` pixels; the mean distance
    to the background is a quarter of the stroke width, plus half a pixel (a boundary
    pixel's distance is 1).
    """
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    dist = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    mean_dist = np.bincount(px.lab, weights=dist[px.ys, px.xs], minlength=stats.shape[0]) / np.maximum(area, 1)
    return area / np.maximum(4.0 * (mean_dist - 0.5), 1.0)


def _rule_like(length: np.ndarray, stats: np.ndarray, unit: float) -> np.ndarray:
    """Long single strokes (hand-drawn rules, underlines, brackets, paper edges), given each
    component's stroke length (:func:`_stroke_lengths`).

    A straight thin stroke's length is its box's long side, a slanted or curved one's at
    most ~0.8 of the box's half-perimeter; writing of the same extent goes up and down
    and crosses itself, so it holds far more ink.
    """
    cw, ch = stats[:, 2], stats[:, 3]
    long_ = np.maximum(cw, ch) > 3 * unit
    long_[0] = False
    elongated = (np.minimum(cw, ch) < 0.6 * unit) | (np.maximum(cw, ch) > 6 * np.minimum(cw, ch))
    straight = (length < 1.0 * (cw + ch)) & elongated
    return long_ & (straight | (length < 0.8 * (cw + ch)))


def _frames(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per component label: is it a frame (huge and hollow: a border, a flourish drawn round the text)?"""
    h, w = shape
    cw, ch, area = (stats[:, i].astype(np.int64) for i in (2, 3, 4))
    fill = area / np.maximum(cw * ch, 1)
    frames = ((cw > 0.5 * w) | (ch > 0.3 * h)) & (fill < 0.15)
    frames[0] = False
    return frames


def _detach_from_frames(ink: np.ndarray, labels: np.ndarray, stats: np.ndarray, unit: float,
                        density: float) -> np.ndarray | None:
    """Ink without the thin strokes of frames, so that words touching a frame come loose from it.

    A frame is dropped whole (:func:`_keep_components`), and with it every word whose
    strokes touch it: the first word of a line written against a flourish drawn round the
    text, a heading the flourish starts from. Along its stroke a frame holds little ink in a
    text height's window (a pen stroke's width over a text height), a word holds much more:
    the frames' pixels in windows holding less than ``density`` of frame ink, or less than one
    and a half times what most of the frame's pixels have (a broad pen), are removed and the
    rest, the words, become components of their own. ``None`` when there is no frame.
    """
    frames = _frames(stats, ink.shape)
    if not frames.any():
        return None
    mask = frames[labels]
    k = max(3, round(unit)) | 1
    share = cv2.boxFilter(mask.astype(np.float32), -1, (k, k), borderType=cv2.BORDER_CONSTANT)
    # most of a frame is its lone stroke: what a pen this wide leaves in a window, and words
    # hold clearly more than that
    threshold = max(density, 1.5 * float(np.median(share[mask])))
    return np.where(mask & (share < threshold), 0, ink).astype(np.uint8)


def _text_height(stats: np.ndarray, shape: tuple[int, int]) -> float:
    """Typical height of the page's words: the width-weighted median component height.

    Weighting by width lets words outweigh dots, accents, specks and stamp texture;
    components touching the scan's edge or taller than a tenth of a page (borders,
    frames, pictures) are left out.
    """
    h, w = shape
    x, y, cw, ch, area = (stats[1:, i].astype(np.int64) for i in range(5))
    inner = (x > 0) & (y > 0) & (x + cw < w) & (y + ch < h)
    ok = (ch >= 4) & (area >= 12) & (ch < max(0.1 * h, min(0.5 * h, 120))) & (cw < 0.5 * w) & inner
    if ok.sum() < 2:
        return 0.0
    heights, weights = ch[ok], cw[ok]
    order = np.argsort(heights)
    cumulative = np.cumsum(weights[order])
    return float(heights[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def _keep_components(stats: np.ndarray, shape: tuple[int, int], unit: float) -> np.ndarray:
    """Per component label: is it writing? (not a speck, scan border, frame or blot)."""
    h, w = shape
    x, y, cw, ch, area = (stats[:, i].astype(np.int64) for i in range(5))
    keep = area >= max(4, int(0.02 * unit * unit))
    keep[0] = False
    fill = area / np.maximum(cw * ch, 1)
    # frames and borders: huge and hollow, or long along an edge of the scan
    huge = _frames(stats, shape) | (((cw > 0.5 * w) | (ch > 0.3 * h)) & ((cw > 0.8 * w) | (ch > 0.6 * h)))
    touching = (x <= 1) | (y <= 1) | (x + cw >= w - 1) | (y + ch >= h - 1)
    edge_strip = touching & ((cw > 4 * unit) | (ch > 4 * unit) | (area > 2 * unit * unit))
    # ink blots and stains: large and solid, unlike strokes
    solid = (fill > 0.6) & (area > 4 * unit * unit)
    # specks in a thin band along the edges (binding shadow, torn edge) are never text
    band = max(2, int(0.01 * min(h, w)))
    in_band = (x + cw <= band) | (y + ch <= band) | (x >= w - band) | (y >= h - band)
    return keep & ~(huge | edge_strip | solid | in_band)


def _line_pitch(px: _Pixels, keep: np.ndarray, shape: tuple[int, int], unit: float) -> float:
    """Typical distance between text lines (pixels), from the rows' ink profile; 0 when unclear.

    The row profile of each vertical strip a few words wide repeats once per line; the
    strips' autocorrelations are summed and the first clear peak is the line pitch. The
    profiles are taken from the kept components' pixels on a grid a quarter text height fine.
    """
    q = max(1, int(unit // 4))
    h, w = shape
    small = _to_grid(px, keep, q, math.ceil(h / q), math.ceil(w / q))
    n_rows = small.shape[0]
    lo = max(2, int(1.5 * unit / q))  # lines are well over a text height apart
    if n_rows < 8 or lo + 2 >= n_rows:
        return 0.0
    strip = max(4, int(8 * unit / q))
    total = np.zeros(n_rows)
    for x in range(0, small.shape[1], strip):
        profile = small[:, x: x + strip].sum(axis=1)
        profile = profile - profile.mean()
        if not profile.any():
            continue
        spectrum = np.fft.rfft(profile, 2 * n_rows)
        total += np.fft.irfft(spectrum * np.conj(spectrum))[:n_rows]
    if total[0] <= 0:
        return 0.0
    corr = total / total[0]
    inner = corr[lo:-1]
    peaks = np.flatnonzero((inner > corr[lo - 1:-2]) & (inner >= corr[lo + 1:]) & (inner > 0.2)) + lo
    return float(peaks[0] * q) if peaks.size else 0.0


def _find_ink(work: np.ndarray, config: SegmenterConfig
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, _Pixels] | None:
    """The page's writing as components: (labels, stats, keep, seed, text height, ink pixels).

    ``keep`` marks the components that are writing; ``seed`` the subset solid enough to
    say where lines run (not dots, accents, dashes, ruling fragments or long single
    strokes). ``None`` when the page holds no writing.
    """
    ink, darker = _binarize(work, config)
    if not ink.any():
        return None
    _, _, stats = _components(ink)
    unit = _text_height(stats, ink.shape)
    if unit < 4:
        return None
    ink = _remove_rulings(ink, unit)
    _, labels, stats = _components(ink)
    if config.frame_density > 0:
        detached = _detach_from_frames(ink, labels, stats, unit, config.frame_density)
        if detached is not None:
            ink = detached
            _, labels, stats = _components(ink)
    px = _Pixels.of(ink, labels)
    keep = _keep_components(stats, ink.shape, unit) & ~_faint_components(px, stats, darker, config.faint_ratio)
    unit = _text_height(stats[np.concatenate(([0], np.flatnonzero(keep[1:]) + 1))], ink.shape) or unit
    if unit < 4 or not keep.any():
        return None
    # long single strokes (frames, flourishes, rules) are wide: they would outweigh the words
    length = _stroke_lengths(px, stats, ink)
    strokes = _rule_like(length, stats, unit)
    unit = _text_height(stats[np.concatenate(([0], np.flatnonzero((keep & ~strokes)[1:]) + 1))], ink.shape) or unit
    pitch = _line_pitch(px, keep, ink.shape, unit)
    if pitch > 3.5 * unit:
        # letters broken into pieces (faint pencil, a thin pen) understate the text
        # height; the line spacing, about 2.5 text heights in handwriting, does not
        unit = pitch / 2.5
    cw, ch = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    # long thin pieces are ruling fragments; shorter ones (dashes) may be punctuation
    keep &= ~(((cw >= 3 * unit) & (ch <= 0.2 * unit)) | ((ch >= 2.5 * unit) & (cw <= 0.12 * unit)))
    thin = ((cw >= 1.5 * unit) & (ch <= 0.2 * unit)) | ((ch >= 1.5 * unit) & (cw <= 0.12 * unit))
    # single long strokes (rules, frames, flourishes, paper edges) neither make a line nor
    # stretch one: a line's outline is its words'
    strokes = _rule_like(length, stats, unit)
    seed = keep & (ch >= 0.35 * unit) & ~thin & ~strokes
    keep &= ~strokes
    if not seed.any():
        return None
    return labels, stats, keep, seed, unit, px


def _to_grid(px: _Pixels, chosen: np.ndarray, q: int, gh: int, gw: int) -> np.ndarray:
    """Share of ink per ``q × q`` cell (the analysis grid, ``gh × gw`` cells) of the pixels
    of the components ``chosen`` marks: counted from the pixel list, not the page."""
    on = chosen[px.lab]
    cells = (px.ys[on] // q) * gw + px.xs[on] // q
    return (np.bincount(cells, minlength=gh * gw) / float(q * q)).astype(np.float32).reshape(gh, gw)


def _horizontal_share(px: _Pixels, grid: np.ndarray, q: int, u: float) -> np.ndarray:
    """Per ink pixel: how much of the writing around it runs horizontally (0 to 1).

    Blurred over about a text height, a line of writing becomes a horizontal band whose
    edges are horizontal: the ink's gradients point up and down. The gradients' structure
    tensor, pooled over a few text heights, measures this: the horizontal edges' share
    ``Jyy / (Jxx + Jyy)`` is high in horizontal writing (0.6 and more), about a half in
    stamps, seals and tangles of strokes without a direction, and low in writing turned
    upright (marginal notes written down the side, stamps set sideways, margin rules).
    """
    blurred = cv2.GaussianBlur(grid, (0, 0), 0.4 * u)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
    pool = 1.5 * u
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), pool)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), pool)
    share = jyy / np.maximum(jxx + jyy, 1e-12)
    return share[px.ys // q, px.xs // q]


def _upright_components(px: _Pixels, n: int, share: np.ndarray, ratio: float) -> np.ndarray:
    """Per component label: does it lie in writing that does not run horizontally (its
    pixels' mean :func:`_horizontal_share` below ``ratio``)?"""
    count = np.bincount(px.lab, minlength=n)
    mean = np.bincount(px.lab, weights=share, minlength=n) / np.maximum(count, 1)
    upright = (mean < ratio) & (count > 0)
    upright[0] = False
    return upright


# ---------------------------------------------------------------------------- blocks


def _runs(empty: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (start, stop)."""
    padded = np.concatenate(([False], empty, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


@dataclass
class _Block:
    """A region of the analysis grid: its ink's box and the cuts (half-planes) that bound it."""

    y0: int
    y1: int
    x0: int
    x1: int
    cuts: tuple[tuple[float, float, float], ...] = ()  # each keeps the cells where a * x + b * y < c

    def mask(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Which cells of the box ``[y0:y1, x0:x1]`` belong to this block."""
        ys = np.arange(y0, y1, dtype=np.float64)[:, None]
        xs = np.arange(x0, x1, dtype=np.float64)[None, :]
        inside = np.ones((y1 - y0, x1 - x0), bool)
        for a, b, c in self.cuts:
            inside &= a * xs + b * ys < c
        return inside


_SHEARS = np.tan(np.radians(np.arange(-4.0, 4.01, 0.5)))


def _xy_cut(ys: np.ndarray, xs: np.ndarray, weights: np.ndarray, cuts: tuple[tuple[float, float, float], ...],
            gap_v: float, gap_h: float, depth: int = 0, strip: float = 0.0, width: int = 0) -> list[_Block]:
    """Blocks in reading order: a recursive XY cut of the ink cells ``(ys, xs)`` at empty gaps.

    Vertical gaps (columns, marginal notes) come first and may slant by a few degrees
    (two pages of a spread are rarely skewed alike); a few strokes crossing a gap do
    not close it. A tall block may be cut at a gap narrower than ``gap_v``: a straight
    empty channel running down many lines is a gutter, not word spacing. Ink cut off by
    the scan's edge, wholly within ``strip`` cells of it and running down much of the
    block (the facing page's line ends) is cut off at any gap of a quarter of ``gap_v``,
    however little ink it is; ``width`` is the page's, in cells.
    """
    if ys.size == 0:
        return []
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    block = _Block(y0, y1, x0, x1, cuts)
    total = float(weights.sum())
    if depth >= 8 or total <= 0:
        return [block]
    height = y1 - y0
    need = gap_v if height < 6 * gap_h else min(gap_v, 0.25 * gap_h)
    best = None
    mid = (y0 + y1) / 2.0
    for shear in _SHEARS:
        shifted = xs - shear * (ys - mid)
        base = np.floor(shifted.min())
        profile = np.bincount((shifted - base).astype(np.int64), weights=weights)
        empty = profile <= 0.1 * _median(profile[profile > 0])
        for a, b in _runs(empty):
            if b - a < min(need, 0.25 * gap_v) or a == 0 or b >= profile.size:
                continue
            # only a gap near the scan's edge (the shear moves x by under 4 % of the height) may
            # cut off a strip along it: word gaps elsewhere skip the per-pixel tests
            near_left, near_right = base + a < strip + 0.04 * height, base + b > width - strip - 0.04 * height
            if b - a < need and not (near_left or near_right):
                continue
            side = shifted < base + a
            # the facing page's line ends: cut by the scan's edge (entry numbers in a tight
            # margin are not) and running down much of the block (a page number does not)
            edge = (near_left and xs[side].max() < strip and xs[side].min() <= 1
                    and np.ptp(ys[side]) > 0.5 * height) \
                or (near_right and xs[~side].min() > width - strip and xs[~side].max() >= width - 2
                    and np.ptp(ys[~side]) > 0.5 * height)
            if b - a < need and not edge:
                continue
            left = profile[:a].sum()
            if min(left, total - left) < 0.01 * total and not edge:
                continue
            # a column runs down several lines: the words of one long line poking out past
            # the others do not make one
            if min(np.ptp(ys[side]), np.ptp(ys[~side])) < gap_h:
                continue
            if b - a < gap_v and not edge and min(np.unique(ys[side]).size / (np.ptp(ys[side]) + 1),
                                                  np.unique(ys[~side]).size / (np.ptp(ys[~side]) + 1)) < 0.5:
                continue  # a narrow gutter needs a full column of writing on either side
            score = (b - a) - 0.25 * abs(shear) * height  # prefer upright gutters
            if best is None or score > best[0]:
                best = (score, float(shear), float(base + (a + b) / 2.0))
    if best is not None:
        _, shear, cut = best
        c = cut - shear * mid  # x - shear * (y - mid) < cut  ⇔  x - shear * y < c
        left_side = (xs - shear * ys) < c
        return (_xy_cut(ys[left_side], xs[left_side], weights[left_side], (*cuts, (1.0, -shear, c)),
                        gap_v, gap_h, depth + 1, strip, width)
                + _xy_cut(ys[~left_side], xs[~left_side], weights[~left_side], (*cuts, (-1.0, shear, -c)),
                          gap_v, gap_h, depth + 1, strip, width))
    row_profile = np.bincount(ys - y0, weights=weights)
    gaps = [(b - a, a, b) for a, b in _runs(row_profile <= 0) if b - a >= gap_h]
    if gaps:
        _, a, b = max(gaps)
        cut_y = y0 + (a + b) / 2.0
        top = ys < cut_y
        return (_xy_cut(ys[top], xs[top], weights[top], (*cuts, (0.0, 1.0, cut_y)), gap_v, gap_h, depth + 1,
                        strip, width)
                + _xy_cut(ys[~top], xs[~top], weights[~top], (*cuts, (0.0, -1.0, -cut_y)), gap_v, gap_h,
                          depth + 1, strip, width))
    return [block]


# ---------------------------------------------------------------------------- tracks


@dataclass
class _Track:
    x0: int  # first column (grid cells, block coordinates)
    ys: list[float]  # ridge y per column from x0 on; NaN where the ridge is interrupted
    strength: float = 0.0

    @property
    def x1(self) -> int:
        return self.x0 + len(self.ys)

    def y_at(self, x: np.ndarray) -> np.ndarray:
        """Ridge y at columns ``x``, interpolated over gaps and held flat beyond the ends."""
        ys = np.asarray(self.ys)
        known = np.flatnonzero(~np.isnan(ys))
        return np.interp(x, self.x0 + known, ys[known])

    def slope(self) -> float:
        """Overall slope (dy/dx): a straight fit through the ridge points."""
        ys = np.asarray(self.ys)
        known = np.flatnonzero(~np.isnan(ys))
        if known.size < 2:
            return 0.0
        return float(np.polyfit(known.astype(np.float64), ys[known], 1)[0])


def _ridge_peaks(smeared: np.ndarray) -> list[np.ndarray]:
    """Per column, the rows where the smeared ink has a positive local maximum."""
    up = np.zeros_like(smeared, bool)
    up[1:-1] = (smeared[1:-1] > smeared[:-2]) & (smeared[1:-1] >= smeared[2:]) & (smeared[1:-1] > 0)
    ys, xs = np.nonzero(up)
    order = np.lexsort((ys, xs))
    ys, xs = ys[order], xs[order]
    split = np.searchsorted(xs, np.arange(smeared.shape[1] + 1))
    return [ys[split[i]: split[i + 1]] for i in range(smeared.shape[1])]


def _link_tracks(peaks: list[np.ndarray], smeared: np.ndarray, max_dy: float, max_skip: int) -> list[_Track]:
    """Link column peaks left to right into tracks (nearest continuation, gaps up to ``max_skip``).

    In each column the (track, peak) pairs closer than ``max_dy`` are taken nearest
    first, each track and peak at most once. A column holds a few dozen peaks, so plain
    Python lists (with bisection for the candidates) beat numpy's per-call overhead.
    """
    active: list[_Track] = []
    last: list[float] = []  # last ridge y of each active track
    idle: list[int] = []  # columns since each active track's last peak
    done: list[_Track] = []
    for x, column in enumerate(peaks):
        col = column.tolist()
        values = smeared[column, x].tolist()
        matched = [-1] * len(active)
        claimed = [False] * len(col)
        if col and active:
            pairs = []
            for t, y in enumerate(last):
                # widened by one on each side, then the exact test: no float edge cases
                lo = max(0, bisect.bisect_left(col, y - max_dy) - 1)
                hi = min(len(col), bisect.bisect_right(col, y + max_dy) + 1)
                for p in range(lo, hi):
                    d = abs(y - col[p])
                    if d <= max_dy:
                        pairs.append((d, t, p))
            pairs.sort(key=lambda pair: pair[0])  # stable: ties keep (track, peak) order
            for _, t, p in pairs:
                if matched[t] < 0 and not claimed[p]:
                    matched[t] = p
                    claimed[p] = True
        next_active: list[_Track] = []
        next_last: list[float] = []
        next_idle: list[int] = []
        for t, track in enumerate(active):
            p = matched[t]
            if p >= 0:
                if idle[t]:
                    track.ys.extend([math.nan] * idle[t])
                track.ys.append(float(col[p]))
                track.strength += values[p]
                next_active.append(track)
                next_last.append(col[p])
                next_idle.append(0)
            elif idle[t] + 1 <= max_skip:
                next_active.append(track)
                next_last.append(last[t])
                next_idle.append(idle[t] + 1)
            else:
                done.append(track)
        for p, y in enumerate(col):
            if not claimed[p]:
                next_active.append(_Track(x, [float(y)], values[p]))
                next_last.append(y)
                next_idle.append(0)
        active, last, idle = next_active, next_last, next_idle
    done.extend(active)
    return done


def _shadows(t: _Track, k: _Track, t_ys: np.ndarray, k_ys: np.ndarray, smeared: np.ndarray, unit: float,
             config: SegmenterConfig) -> bool:
    """Is the weaker track ``t`` part of the stronger track ``k``'s line?

    It is when the two run closely alongside, or when the smeared ink between them
    never drops into a real valley while ``t`` is much sparser: the ascenders or
    descenders of ``k``'s line, not a line with white space of its own. ``t_ys`` and
    ``k_ys`` are the tracks' ridges over their own columns, gaps interpolated.
    """
    lo, hi = max(t.x0, k.x0), min(t.x1, k.x1)
    if hi - lo < 0.5 * len(t.ys):
        return False
    span = np.arange(lo, hi)
    ya, yb = t_ys[lo - t.x0: hi - t.x0], k_ys[lo - k.x0: hi - k.x0]
    gap = _median(np.abs(ya - yb))
    if gap < 0.6 * unit:
        return True
    if gap >= 3 * unit:
        return False
    every = max(1, span.size // 16)
    top = np.minimum(ya, yb).round().astype(np.int64)[::every]
    bottom = np.maximum(ya, yb).round().astype(np.int64)[::every]
    # each sampled column from one ridge to the other, at once: rows past the lower ridge
    # repeat it, which changes no minimum
    rows = np.minimum(top[:, None] + np.arange(int((bottom - top).max()) + 1)[None, :], bottom[:, None])
    columns = smeared[rows, span[::every][:, None]]
    ends = np.minimum(columns[:, 0], smeared[bottom, span[::every]])
    ratios = columns.min(axis=1) / np.maximum(ends, 1e-9)
    weak = smeared[ya.round().astype(np.int64), span].mean()
    strong = smeared[yb.round().astype(np.int64), span].mean()
    return _median(ratios) > config.valley_ratio and weak < config.density_ratio * strong


def _merge_tracks(tracks: list[_Track], smeared: np.ndarray, unit: float, config: SegmenterConfig) -> list[_Track]:
    """Drop tracks that shadow a stronger one, then join collinear pieces of one line."""
    kept: list[tuple[_Track, np.ndarray]] = []
    for t in sorted(tracks, key=lambda t: -t.strength):
        t_ys = t.y_at(np.arange(t.x0, t.x1))
        if not any(_shadows(t, k, t_ys, k_ys, smeared, unit, config) for k, k_ys in kept):
            kept.append((t, t_ys))
    joined_tracks = sorted((t for t, _ in kept), key=lambda t: t.x0)
    joined = True
    while joined:
        joined = False
        for a in joined_tracks:
            best = None
            end_y = float(a.y_at(np.array([a.x1 - 1]))[0])
            for b in joined_tracks:
                gap = b.x0 - a.x1
                if b is a or gap < 0 or gap > config.join_gap * unit:
                    continue
                if abs(float(b.y_at(np.array([b.x0]))[0]) - end_y) <= 0.5 * unit and (best is None or gap < best[0]):
                    best = (gap, b)
            if best is not None:
                b = best[1]
                a.ys.extend([math.nan] * (b.x0 - a.x1))
                a.ys.extend(b.ys)
                a.strength += b.strength
                joined_tracks.remove(b)
                joined = True
                break
    return joined_tracks


def _split_at_gaps(track: _Track, ink: np.ndarray, smeared: np.ndarray, u: float, max_gap: float) -> list[_Track]:
    """The pieces of a track that run over ink, split where it crosses more than ``max_gap`` cells of none."""
    h = ink.shape[0]
    xs = np.arange(track.x0, track.x1)
    band = np.arange(-math.ceil(0.6 * u), math.ceil(0.6 * u) + 1)
    rows = np.clip(np.round(track.y_at(xs)).astype(np.int64)[:, None] + band[None, :], 0, h - 1)
    inked = np.flatnonzero(ink[rows, xs[:, None]].sum(axis=1) > 0)
    if inked.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(inked) > max_gap)
    starts = inked[np.r_[0, breaks + 1]]
    stops = inked[np.r_[breaks, inked.size - 1]] + 1
    ridge = np.asarray(track.ys)
    pieces = []
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        known = np.flatnonzero(~np.isnan(ridge[a:b]))
        if known.size == 0:
            continue
        values = smeared[ridge[a:b][known].astype(np.int64), track.x0 + a + known]
        # summed in order in float32, as the tracks' strengths are accumulated when linked
        strength = float(np.cumsum(values, dtype=np.float32)[-1])
        pieces.append(_Track(track.x0 + a, track.ys[a:b], strength))
    return pieces


def _smear(sub: np.ndarray, u: float, config: SegmenterConfig) -> np.ndarray:
    """A block's ink (grid cells) blurred along the lines, so that a line's words make one ridge."""
    return cv2.GaussianBlur(sub, (0, 0), sigmaX=config.smear_x * u, sigmaY=max(0.5, config.smear_y * u),
                            borderType=cv2.BORDER_CONSTANT)


def _block_tracks(sub: np.ndarray, u: float, config: SegmenterConfig) -> tuple[np.ndarray, list[_Track]]:
    """The smeared ink of a block (grid cells) and its line tracks."""
    smeared = _smear(sub, u, config)
    peaks = _ridge_peaks(smeared)
    values = np.concatenate([smeared[p, x] for x, p in enumerate(peaks) if p.size] or [np.zeros(0)])
    if values.size == 0:
        return smeared, []
    threshold = config.track_threshold * float(np.percentile(values, 90))
    peaks = [p[smeared[p, x] > threshold] for x, p in enumerate(peaks)]
    tracks = _link_tracks(peaks, smeared, max_dy=max(1.0, 0.25 * u), max_skip=max(1, int(0.5 * u)))
    # the smear bridges white space; a track is cut where its own ink pauses for longer than
    # ``join_gap`` (a marginal note beside a line, two columns' lines side by side)
    tracks = [piece for t in tracks for piece in _split_at_gaps(t, sub, smeared, u, config.join_gap * u)]
    tracks = [t for t in tracks if len(t.ys) >= max(2, 0.5 * u)]
    tracks = _merge_tracks(tracks, smeared, u, config)
    # the page is deskewed: a steep track follows a stamp, a flourish or upright writing
    return smeared, [t for t in tracks if abs(t.slope()) <= config.max_slope]


def _baseline_tracks(sub: np.ndarray, probabilities: np.ndarray, u: float, config: SegmenterConfig
                     ) -> tuple[np.ndarray, list[_Track]]:
    """The smeared ink of a block and its line tracks from a learned baseline map (both in grid cells).

    The map's ridges, where more probable than ``baseline_threshold``, are linked into
    tracks as the ink's are, raised by ``baseline_shift`` text heights to the writing's
    middle; collinear pieces are joined, tracks closer than 0.6 text heights merged. The
    ink's valleys still decide where one line's zone ends and the next one's begins.
    """
    smeared = _smear(sub, u, config)
    # a touch of smoothing along the line bridges the map's breaks between letters
    ridge = cv2.GaussianBlur(probabilities, (0, 0), sigmaX=max(0.5, 0.5 * u), sigmaY=0.5)
    peaks = [p[ridge[p, x] > config.baseline_threshold] for x, p in enumerate(_ridge_peaks(ridge))]
    tracks = _link_tracks(peaks, ridge, max_dy=max(1.0, 0.25 * u), max_skip=max(1, int(0.5 * u)))
    tracks = [t for t in tracks if len(t.ys) >= max(2, 0.5 * u)]
    for t in tracks:
        t.ys = [y - config.baseline_shift * u for y in t.ys]
    # the network has already told a line's ascenders from the next line: no shadow test
    # on the ink's valleys, only tracks running on top of each other merge
    tracks = _merge_tracks(tracks, smeared, u, replace(config, valley_ratio=math.inf))
    return smeared, [t for t in tracks if abs(t.slope()) <= config.max_slope]


def _zones(smeared: np.ndarray, tracks: list[_Track], reach: float, extend: int) -> np.ndarray:
    """Label map (0 = none, k + 1 = track k): each column cut between tracks at the valley.

    In each column the tracks present there, top to bottom, own the rows from the
    previous cut to the smeared ink's lowest point before the next track's ridge; the
    first and last reach ``reach`` beyond their ridge. All columns at once: the valleys
    by one ``minimum.reduceat`` over (value, row) keys, the labels by a cumulative sum
    of the label changes at the cuts.
    """
    h, w = smeared.shape
    xs = np.arange(w)
    ys = np.stack([t.y_at(xs) for t in tracks])  # tracks × columns
    x0s = np.array([t.x0 for t in tracks])[:, None]
    x1s = np.array([t.x1 for t in tracks])[:, None]
    present = (xs >= x0s - extend) & (xs < x1s + extend)
    key = np.where(present, ys, np.inf)
    order = np.argsort(key, axis=0, kind="stable")  # per column: tracks by height, absent ones last
    ranked = np.take_along_axis(key, order, axis=0)
    valid = np.isfinite(ranked)
    centres = np.round(np.where(valid, ranked, 0.0)).astype(np.int64)
    # the cut below each track: the valley before the next one, or ``reach`` below the last
    bottoms = np.minimum(h, np.round(np.where(valid, ranked, 0.0) + reach).astype(np.int64) + 1)
    pair = valid[:-1] & valid[1:]
    above, below = centres[:-1], centres[1:]
    bottoms[:-1] = np.where(pair, below, bottoms[:-1])
    deep = pair & (below - above > 1)
    if deep.any():
        # float32 bits order non-negative floats: (bits << 32 | row) has its minimum at the
        # first lowest row, as np.argmin would
        bits = np.maximum(smeared, 0).astype(np.float32).view(np.int32).T.astype(np.int64)
        flat = ((bits << 32) | np.arange(h, dtype=np.int64)[None, :]).ravel()
        r, c = np.nonzero(deep)
        bounds = np.empty(2 * r.size, np.int64)
        bounds[0::2] = c * h + above[r, c] + 1
        bounds[1::2] = c * h + below[r, c]
        bottoms[r, c] = np.minimum.reduceat(flat, bounds)[0::2] & 0xFFFFFFFF
    labels = order + 1
    # label changes down each column: at the first track's top, at each cut, and after the last
    tops = np.maximum(0, np.round(np.where(valid[0], ranked[0], 0.0) - reach)).astype(np.int64)
    n_here = valid.sum(axis=0)
    changes = np.zeros((h + 2, w), np.int64)
    cols = np.flatnonzero(n_here)
    np.add.at(changes, (tops[cols], cols), labels[0, cols])
    r, c = np.nonzero(valid)
    last = r == n_here[c] - 1
    nxt = np.minimum(r + 1, labels.shape[0] - 1)
    step = np.where(last, -labels[r, c], labels[nxt, c] - labels[r, c])
    np.add.at(changes, (np.minimum(bottoms[r, c], h), c), step)
    return np.cumsum(changes, axis=0)[:h].astype(np.int32)


# ----------------------------------------------------------------------------- lines


def _majority(lab: np.ndarray, line: np.ndarray, n: int, n_lines: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component (``n`` labels): the line id (1..``n_lines``) most of its pixels carry, that
    many pixels, and its pixels carrying any line (``lab`` and ``line`` per ink pixel, 0 = none).

    >>> _majority(np.array([1, 1, 1, 2]), np.array([2, 2, 1, 0]), 3, 2)[0].tolist()
    [0, 2, 0]
    """
    voting = line > 0
    n_zones = n_lines + 1
    if n * n_zones <= 4_000_000:
        votes = np.bincount(lab[voting] * n_zones + line[voting], minlength=n * n_zones).reshape(n, n_zones)
        return votes.argmax(axis=1), votes.max(axis=1), votes.sum(axis=1)
    # many components and lines: count the (component, line) pairs that occur
    pairs, counts = np.unique(lab[voting] * n_zones + line[voting], return_counts=True)
    comp, zone = pairs // n_zones, pairs % n_zones
    total = np.bincount(comp, weights=counts, minlength=n)
    order = np.lexsort((-counts, comp))
    first = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
    line_of = np.zeros(n, np.int64)
    best = np.zeros(n)
    line_of[comp[first]] = zone[first]
    best[comp[first]] = counts[first]
    return line_of, best, total


def _assign(labels: np.ndarray, px: _Pixels, stats: np.ndarray, keep: np.ndarray, seed: np.ndarray,
            pixel_zone: np.ndarray, unit: float, n_lines: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel line id (0 = none), as a map and per ink pixel: each component joins the zone
    holding most of its pixels.

    A tall word component shared by two zones (touching ascenders and descenders) is cut
    along the zone boundary. Small marks (dots, accents, specks) join a line only when
    they lie near its words, so paper specks do not stretch a line's outline.
    """
    n = stats.shape[0]
    ys, xs, lab = px.ys, px.xs, px.lab  # all work below is on the ink pixels only
    zon = pixel_zone[ys, xs].astype(np.int64)
    line_of, best, total = _majority(lab, zon, n, n_lines)
    line_of = np.where(keep & (total > 0), line_of, 0)
    split = seed & (line_of > 0) & (best < 0.8 * total) & (stats[:, cv2.CC_STAT_HEIGHT] > 1.5 * unit)
    own = np.where(seed, line_of, 0)[lab]
    cut = split[lab]
    own[cut] = zon[cut]
    marks = np.flatnonzero(keep & ~seed & (line_of > 0))
    if marks.size:
        boxes, _ = _line_boxes(own, ys, xs, n_lines)
        box = boxes[line_of[marks]]
        x, y, w, h = (stats[marks, i] for i in range(4))
        near = ((x + w >= box[:, 2] - unit) & (x <= box[:, 3] + unit)
                & (y + h >= box[:, 0] - 0.6 * unit) & (y <= box[:, 1] + 0.6 * unit))
        mark_line = np.zeros(n, np.int64)
        mark_line[marks[near]] = line_of[marks[near]]
        extra = mark_line[lab]
        own = np.where(extra > 0, extra, own)
    owner = np.zeros(labels.shape, np.int32)
    owner[ys, xs] = own
    return owner, own


def _line_boxes(own: np.ndarray, ys: np.ndarray, xs: np.ndarray, n_lines: int) -> tuple[np.ndarray, np.ndarray]:
    """Per line id: the box (y0, y1, x0, x1) of its pixels and their count (row 0 unused).

    ``own`` holds the line id of the pixels at ``(ys, xs)``. A line without pixels gets a
    box far outside the page, so nothing is ever near it.
    """
    boxes = np.full((n_lines + 1, 4), -(10**9), np.int64)
    assigned = own > 0
    ids, ys, xs = own[assigned].astype(np.int64), ys[assigned], xs[assigned]
    counts = np.bincount(ids, minlength=n_lines + 1)
    if ids.size == 0:
        return boxes, counts
    order = np.argsort(ids, kind="stable")
    ids, ys, xs = ids[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    present = ids[starts]
    boxes[present, 0] = np.minimum.reduceat(ys, starts)
    boxes[present, 1] = np.maximum.reduceat(ys, starts) + 1
    boxes[present, 2] = np.minimum.reduceat(xs, starts)
    boxes[present, 3] = np.maximum.reduceat(xs, starts) + 1
    return boxes, counts


def _absorb_fragments(owner: np.ndarray, boxes: np.ndarray, counts: np.ndarray, block_of: list[int],
                      unit: float) -> None:
    """Merge small lines into a neighbour they sit beside (in place).

    A word set a little high or low, a capital or a flourish can raise a short track of
    its own; when such a piece lies mostly within the vertical extent of a longer line
    of its block and close to it, it belongs to that line.
    """
    present = np.flatnonzero(counts)
    if present.size < 2:
        return
    small = float(np.median(counts[present])) * 0.3
    for c in present[np.argsort(counts[present])].tolist():
        if counts[c] == 0 or counts[c] >= small:
            continue
        y0, y1, x0, x1 = boxes[c]
        best, best_overlap = 0, 0.5 * (y1 - y0)
        for k in np.flatnonzero(counts > counts[c]).tolist():
            if block_of[k - 1] != block_of[c - 1]:
                continue
            ky0, ky1, kx0, kx1 = boxes[k]
            overlap = min(y1, ky1) - max(y0, ky0)
            if overlap > best_overlap and max(0, x0 - kx1, kx0 - x1) <= 2 * unit:
                best, best_overlap = k, overlap
        if best:
            window = owner[y0:y1, x0:x1]
            window[window == c] = best
            boxes[best] = (min(y0, boxes[best][0]), max(y1, boxes[best][1]),
                           min(x0, boxes[best][2]), max(x1, boxes[best][3]))
            counts[best] += counts[c]
            counts[c] = 0


def _split_insertions(owner: np.ndarray, own: np.ndarray, px: _Pixels, stats: np.ndarray, keep: np.ndarray,
                      middles: list[tuple[_Track, int, int]], q: int, unit: float, config: SegmenterConfig,
                      added: list[tuple[int, float, int]]) -> bool:
    """Give words written between lines a line of their own (in place); appends each new line's
    host line id, centre y and left x (grid cells) to ``added``; whether any ink changed lines.

    A line's zone reaches up to the valley before the line above, so a word written in
    between (an insertion, a correction) joins the line below and garbles its crop.
    Such words are the line's components whose lowest ink stays ``insertion_gap`` text
    heights above the line's middle (its track), grouped left to right while less than a
    text height apart. A group becomes a line when it spans ``insertion_width`` text
    heights, holds letters (not only dots, accents or bars), is no taller than the writing
    (taller ink there is a flourish, a paraph or a stamp), is not one long stroke (an
    underline) and lies over the line's own words (not a superscript beyond its end). A
    group centred within 0.6 text heights of the middle of the line above is that line's
    own words, which the cut between the zones gave to this one (close lines, tall
    writing): it goes back to that line instead.
    """
    n_lines = len(middles)
    if not n_lines or not own.size:
        return False
    n = stats.shape[0]
    line_of = _majority(px.lab, own.astype(np.int64), n, n_lines)[0]
    x, y, cw, ch = (stats[:, i].astype(np.float64) for i in range(4))
    relabel = np.zeros(n, np.int64)
    for k in np.unique(line_of[keep & (line_of > 0)]).tolist():
        members = np.flatnonzero(keep & (line_of == k))
        track, by0, bx0 = middles[k - 1]
        middle = (track.y_at((x[members] + cw[members] / 2) / q - bx0) + by0 + 0.5) * q
        above = y[members] + ch[members] <= middle - config.insertion_gap * unit
        host = members[~above]
        floating = members[above]
        if floating.size == 0 or host.size == 0:
            continue
        for group in _runs_of(floating[np.argsort(x[floating])], x, cw, unit):
            gx0, gx1 = float(x[group].min()), float((x[group] + cw[group]).max())
            gy0, gy1 = float(y[group].min()), float((y[group] + ch[group]).max())
            letters = int(((ch[group] >= 0.4 * unit) & (cw[group] >= 0.2 * unit)).sum())
            under = np.clip(np.minimum(x[host] + cw[host], gx1) - np.maximum(x[host], gx0), 0, None).sum()
            if (gx1 - gx0 < config.insertion_width * unit or not letters or gy1 - gy0 > 1.2 * unit
                    or (letters < 2 and gx1 - gx0 > 5 * (gy1 - gy0)) or under < 0.5 * (gx1 - gx0)):
                continue
            # the line above's own words, given to this line by the zones' cut: back to it
            above_id = _line_above(middles, k, 0.5 * (gx0 + gx1), q)
            if above_id and abs(0.5 * (gy0 + gy1) - _middle_at(middles[above_id - 1], 0.5 * (gx0 + gx1), q)) \
                    <= 0.6 * unit:
                relabel[group] = above_id
                continue
            relabel[group] = n_lines + 1 + len(added)
            added.append((k, 0.5 * (gy0 + gy1) / q, int(gx0 / q)))
    if relabel.any():
        moved = relabel[px.lab]
        hit = moved > 0
        own[hit] = moved[hit]
        owner[px.ys[hit], px.xs[hit]] = moved[hit].astype(owner.dtype)
    return bool(relabel.any())


def _middle_at(middle: tuple[_Track, int, int], x: float, q: int) -> float:
    """A line's middle (its track) at page column ``x``, in analysis pixels."""
    track, by0, bx0 = middle
    return float((track.y_at(np.array([x / q - bx0]))[0] + by0 + 0.5) * q)


def _line_above(middles: list[tuple[_Track, int, int]], k: int, x: float, q: int) -> int:
    """The id of the line running nearest above line ``k`` at page column ``x`` (0: none)."""
    own_y = _middle_at(middles[k - 1], x, q)
    best, best_y = 0, -math.inf
    for j, (track, by0, bx0) in enumerate(middles, start=1):
        if j == k or not track.x0 + bx0 <= x / q < track.x1 + bx0:
            continue
        y = _middle_at((track, by0, bx0), x, q)
        if best_y < y < own_y:
            best, best_y = j, y
    return best


def _runs_of(comps: np.ndarray, x: np.ndarray, cw: np.ndarray, unit: float) -> list[np.ndarray]:
    """Components (sorted by left edge) grouped left to right while less than ``unit`` apart."""
    groups: list[list[int]] = []
    right = -math.inf
    for c in comps.tolist():
        if x[c] > right + unit:
            groups.append([])
            right = -math.inf
        groups[-1].append(c)
        right = max(right, x[c] + cw[c])
    return [np.asarray(g) for g in groups]


def _envelope(mask: np.ndarray, step: int, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges and the upper / lower ink edge per bin of a line mask (interpolated over gaps)."""
    h, w = mask.shape
    edges = np.unique(np.minimum(np.arange(0, w + step, step), w))
    inked = mask.any(axis=0)
    col_top = np.where(inked, mask.argmax(axis=0), h)
    col_bottom = np.where(inked, h - mask[::-1].argmax(axis=0), 0)
    tops = np.minimum.reduceat(col_top, edges[:-1]).astype(np.float64)
    bottoms = np.maximum.reduceat(col_bottom, edges[:-1]).astype(np.float64)
    filled = np.logical_or.reduceat(inked, edges[:-1])
    mids = (edges[:-1] + edges[1:]) / 2
    if not filled.any():
        return edges, np.zeros(mids.size), np.full(mids.size, float(h))
    top = np.interp(mids, mids[filled], tops[filled])
    bottom = np.interp(mids, mids[filled], bottoms[filled])
    # the outline clears a neighbouring bin's taller letters: no notches at letter edges
    top_p, bottom_p = np.pad(top, 1, mode="edge"), np.pad(bottom, 1, mode="edge")
    top = np.minimum(np.minimum(top_p[:-2], top_p[1:-1]), top_p[2:]) - pad
    bottom = np.maximum(np.maximum(bottom_p[:-2], bottom_p[1:-1]), bottom_p[2:]) + pad
    return edges, np.clip(top, 0, h), np.clip(bottom, 0, h)


def _baseline_fit(mask: np.ndarray, unit: float) -> np.ndarray:
    """Polynomial coefficients (x → y) through the lower edge of the writing's core, in mask pixels."""
    h, w = mask.shape
    step = max(2, round(unit))
    # row ink counts in windows three bins wide, all windows at once from a running sum
    running = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(mask, axis=1, dtype=np.int64)], axis=1)
    starts = np.arange(0, w, step)
    counts = running[:, np.minimum(w, starts + 2 * step)] - running[:, np.maximum(0, starts - step)]
    peak = counts.max(axis=0)
    ok = peak > 0
    if not ok.any():
        return np.array([0.75 * h])
    # the core's lower edge: the last row still carrying a fair share of the window's ink
    strong = counts >= 0.35 * np.maximum(peak, 1)
    last_row = h - strong[::-1].argmax(axis=0)
    x_arr = np.minimum(w - 1, starts + step / 2)[ok].astype(np.float64)
    y_arr = last_row[ok].astype(np.float64)
    degree = 0 if x_arr.size < 3 else (1 if x_arr.size < 10 else 2)
    keep = np.ones(x_arr.size, bool)
    coeffs = np.array([_median(y_arr)])
    for _ in range(3):
        if keep.sum() <= degree:
            break
        coeffs = np.polyfit(x_arr[keep], y_arr[keep], degree)
        resid = y_arr - np.polyval(coeffs, x_arr)
        # descenders and loops stick out: refit without the points far off the line
        keep = np.abs(resid) <= max(0.25 * unit, 1.5 * _median(np.abs(resid[keep])))
    return coeffs


def _simplify(points: list[Point]) -> list[Point]:
    """Drop repeated points and the inner points of axis-parallel runs of a closed outline."""
    pts = np.asarray(points, np.float64)
    if len(pts) > 4:
        distinct = np.any(np.abs(pts - np.roll(pts, 1, axis=0)) > 1e-6, axis=1)
        if distinct.sum() >= 4:
            pts = pts[distinct]
        prev, nxt = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
        same_x = (prev[:, 0] == pts[:, 0]) & (pts[:, 0] == nxt[:, 0])
        same_y = (prev[:, 1] == pts[:, 1]) & (pts[:, 1] == nxt[:, 1])
        if (~(same_x | same_y)).sum() >= 4:
            pts = pts[~(same_x | same_y)]
    return [(float(x), float(y)) for x, y in pts]


def _downscale(crop: np.ndarray, height: int) -> np.ndarray:
    """Crops taller than ``height`` are resized to it (the recogniser's own resize, aspect kept)."""
    return crop if crop.shape[0] <= height else resize_to_height(crop, height)


def _build_line(gray: np.ndarray, mine: np.ndarray, owner: np.ndarray, line_id: int, origin: tuple[int, int],
                scale: float, unit: float, config: SegmenterConfig) -> SegmentedLine:
    """Outline, baseline and crop of one line, from its ink mask (analysis pixels at ``origin``)."""
    ox, oy = origin
    pad = max(1, round(config.padding * unit))
    edges, top, bottom = _envelope(mine, max(2, round(unit / 2)), pad)
    h_full, w_full = gray.shape
    inv = 1.0 / scale
    left, right = float(edges[0] - pad), float(edges[-1] + pad)
    # along the top left to right, back along the bottom: clockwise on screen
    px = np.concatenate([[left], np.stack([edges[:-1], edges[1:]], axis=1).ravel(), [right]]).astype(np.float64)
    upper = np.concatenate([[top[0]], np.repeat(top, 2), [top[-1]]])
    lower = np.concatenate([[bottom[0]], np.repeat(bottom, 2), [bottom[-1]]])
    ring_x = np.clip((ox + np.concatenate([px, px[::-1]])) * inv, 0.0, float(w_full))
    ring_y = np.clip((oy + np.concatenate([upper, lower[::-1]])) * inv, 0.0, float(h_full))
    polygon = _simplify(list(zip(ring_x.tolist(), ring_y.tolist(), strict=True)))
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    bbox = BBox(math.floor(min(xs)), math.floor(min(ys)), min(w_full, math.ceil(max(xs))),
                min(h_full, math.ceil(max(ys))))
    coeffs = _baseline_fit(mine, unit)
    bx = np.linspace(float(edges[0]), float(edges[-1]), 2 if coeffs.size <= 2 else 6)
    base_x = np.clip((ox + bx) * inv, 0.0, float(w_full))
    base_y = np.clip((oy + np.polyval(coeffs, bx)) * inv, float(bbox.y0), float(bbox.y1))
    baseline: list[Point] = list(zip(base_x.tolist(), base_y.tolist(), strict=True))
    crop = gray[bbox.y0: bbox.y1, bbox.x0: bbox.x1].copy()
    # white (255) outside the outline: painting is a maximum with a mask of 0 and 255
    outside = np.full(crop.shape, 255, np.uint8)
    outline = np.round(np.asarray(polygon) - (bbox.x0, bbox.y0)).astype(np.int32)
    cv2.fillPoly(outside, [outline], 0)
    np.maximum(crop, outside, out=crop)
    # other lines' strokes reaching into the outline (ascenders, descenders) are painted out
    if scale == 1.0:
        window = owner[bbox.y0: bbox.y1, bbox.x0: bbox.x1]
    else:
        rows = np.minimum((np.arange(bbox.y0, bbox.y1) * scale).astype(np.int64), owner.shape[0] - 1)
        cols = np.minimum((np.arange(bbox.x0, bbox.x1) * scale).astype(np.int64), owner.shape[1] - 1)
        window = owner[np.ix_(rows, cols)]
    others = ((window > 0) & (window != line_id)).view(np.uint8)
    if others.any():
        np.maximum(crop, cv2.dilate(others, np.ones((3, 3), np.uint8)) * np.uint8(255), out=crop)
    if config.crop_above > 0 and config.crop_below > 0:
        # the recogniser reads a line framed as its training lines were: letters drawn smaller
        # in a looser frame cost it 7-10 points of CER (models/training/data.py, FRAME_RANGE)
        text_height = unit * inv
        top = math.floor(float(base_y.min()) - config.crop_above * text_height) - bbox.y0
        bottom = math.ceil(float(base_y.max()) + config.crop_below * text_height) - bbox.y0
        crop = frame_rows(crop, top, bottom, 255)
    return SegmentedLine(bbox, polygon, baseline, _downscale(crop, config.crop_height))


# ------------------------------------------------------------------------------ API


def _in_edge_band(y0: float, y1: float, x0: float, x1: float, h: float, w: float) -> bool:
    """Does the box lie wholly in a strip along an edge of an ``h × w`` scan (binding, paper edge)?"""
    return x1 < 0.06 * w or x0 > 0.94 * w or y1 < 0.03 * h or y0 > 0.97 * h


def segment_lines(gray: np.ndarray, config: SegmenterConfig = SegmenterConfig(),
                  baselines: np.ndarray | None = None) -> list[SegmentedLine]:
    """Text lines of a grayscale page (paper light, ink dark) in reading order.

    Lines run along ridges of the page's ink, or, given ``baselines``, a map of baseline
    probabilities over the whole page at any resolution (a learned detector's, see
    :mod:`sparkhtr.core.baselines`), along that map's ridges; outlines and crops come from
    the ink either way.

    Reading order: blocks (columns left to right, then top to bottom), lines top to
    bottom within a block. Geometry is in ``gray``'s pixels: ``bbox``, a closed
    clockwise ``polygon`` around the line's ink, a ``baseline`` from left to right; the
    ``crop`` spans the box's columns and the rows from ``crop_above``
    text heights above the baseline to ``crop_below`` below it (the box's rows when
    either is 0), with everything outside the polygon (and other lines' strokes inside
    it) set to 255, downscaled to ``config.crop_height`` if taller.
    A blank page, or one too small to hold writing, gives ``[]``; only an input that is
    not a 2-D uint8 array raises :class:`~sparkhtr.errors.SegmentationError`.

    >>> import numpy as np
    >>> segment_lines(np.full((300, 400), 255, np.uint8))
    []
    """
    gray = _require_gray(gray)
    h_full, w_full = gray.shape
    if min(h_full, w_full) < MIN_PAGE_SIDE:
        return []
    scale = min(1.0, config.max_side / max(h_full, w_full))
    work = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = _find_ink(work, config)
    if found is None:
        return []
    labels, stats, keep, seed, unit, px = found
    h, w = work.shape
    # analysis grid: about 8 cells per text height, enough to resolve lines, cheap to smear
    q = max(1, round(unit / 8))
    gh, gw = math.ceil(h / q), math.ceil(w / q)
    grid = _to_grid(px, seed, q, gh, gw)
    u = unit / q  # text height in grid cells
    if baselines is not None:
        if baselines.ndim != 2 or min(baselines.shape) < 2:
            raise SegmentationError(f"expected a 2-D baseline map, got shape {baselines.shape}")
        baselines = cv2.resize(baselines.astype(np.float32), (gw, gh), interpolation=cv2.INTER_LINEAR)
    cy, cx = np.nonzero(grid)
    blocks = _xy_cut(cy, cx, grid[cy, cx].astype(np.float64), (), config.column_gap * u, config.block_gap * u,
                     strip=config.edge_strip * gw, width=gw)
    share = _horizontal_share(px, grid, q, u) if config.upright_ratio > 0 or config.line_share > 0 else None
    if share is not None and config.upright_ratio > 0:
        # after the cut: upright notes and margin rules still shape the blocks, but make no lines
        upright = _upright_components(px, stats.shape[0], share, config.upright_ratio)
        if upright.any():
            keep &= ~upright
            seed &= ~upright
            if not seed.any():
                return []
            grid = _to_grid(px, seed, q, gh, gw)

    pixel_zone = np.zeros((h, w), np.int32)  # line id per pixel (0 = none)
    order: list[tuple[int, float, int]] = []  # (block, centre y, left x) of line id k at index k - 1
    middles: list[tuple[_Track, int, int]] = []  # line id k's track and its block's origin (grid cells)
    margin = max(1, int(u))
    for b_index, block in enumerate(blocks):
        # a strip along an edge of the scan: the facing page, the binding or the paper's edge
        if (block.x1 - block.x0 < 3 * u and (block.x0 < 0.05 * gw or block.x1 > 0.95 * gw)) \
                or block.x1 <= config.edge_strip * gw or block.x0 >= (1.0 - config.edge_strip) * gw \
                or _in_edge_band(block.y0, block.y1, block.x0, block.x1, gh, gw):
            continue
        # the block's box with a margin for marks beyond its words; its cuts keep it to its own ground
        y0, y1 = max(0, block.y0 - margin), min(gh, block.y1 + margin)
        x0, x1 = max(0, block.x0 - margin), min(gw, block.x1 + margin)
        territory = block.mask(y0, y1, x0, x1)
        if baselines is None:
            smeared, tracks = _block_tracks(grid[y0:y1, x0:x1] * territory, u, config)
        else:
            smeared, tracks = _baseline_tracks(grid[y0:y1, x0:x1] * territory, baselines[y0:y1, x0:x1] * territory,
                                               u, config)
        if not tracks:
            continue
        zone = _zones(smeared, tracks, reach=1.2 * u, extend=max(1, int(u)))
        zone[~territory] = 0
        zone[zone > 0] += len(order)
        zone_px = cv2.resize(zone, (zone.shape[1] * q, zone.shape[0] * q), interpolation=cv2.INTER_NEAREST)
        ya, xa = y0 * q, x0 * q
        yb, xb = min(h, ya + zone_px.shape[0]), min(w, xa + zone_px.shape[1])
        zone_px = zone_px[: yb - ya, : xb - xa]
        region = pixel_zone[ya:yb, xa:xb]
        region[zone_px > 0] = zone_px[zone_px > 0]
        order.extend((b_index, float(np.nanmedian(np.asarray(t.ys))) + y0, t.x0 + x0) for t in tracks)
        middles.extend((t, y0, x0) for t in tracks)
    if not order:
        return []

    owner, own = _assign(labels, px, stats, keep, seed, pixel_zone, unit, len(order))
    boxes, counts = _line_boxes(own, px.ys, px.xs, len(order))
    _absorb_fragments(owner, boxes, counts, [b for b, _, _ in order], unit)
    inserted: dict[int, int] = {}  # line id of words written between lines -> the line below
    if config.insertion_gap > 0 and config.insertion_width > 0:
        own = owner[px.ys, px.xs]  # after the fragments joined their lines
        added: list[tuple[int, float, int]] = []
        if _split_insertions(owner, own, px, stats, keep, middles, q, unit, config, added):
            inserted = {len(order) + i + 1: k for i, (k, _, _) in enumerate(added)}
            order.extend((order[k - 1][0], y, x) for k, y, x in added)
            boxes, counts = _line_boxes(own, px.ys, px.xs, len(order))
    pad = max(1, round(config.padding * unit))
    # the ink of a well-filled line: tiny "lines" (ticks, specks, stray marks) hold a few percent of it
    ink_ref = float(np.percentile(counts[counts > 0], 80)) if (counts > 0).any() else 0.0
    line_share = None
    if share is not None and config.line_share > 0:
        owned = owner[px.ys, px.xs]  # after the fragments joined their lines
        line_share = np.bincount(owned, weights=share, minlength=counts.size) / np.maximum(counts, 1)

    def is_line(line_id: int) -> bool:
        y_lo, y_hi, x_lo, x_hi = boxes[line_id].tolist()
        height, width = y_hi - y_lo, x_hi - x_lo
        if height < config.min_line_height * unit or counts[line_id] < config.min_line_ink * ink_ref:
            return False
        # a line of writing runs along: a "line" about as tall as wide and taller than the
        # writing is a blob (a stamp, a seal, a flourish, a tangle of strokes, upright debris)
        if height > config.blob_height * unit and height > config.blob_aspect * width:
            return False
        # and a line whose writing, taken together, does not run horizontally (a seal, a
        # stamp's texture, a tangle of flourishes) is no line of writing
        if line_share is not None and line_share[line_id] < config.line_share:
            return False
        # so is a line of its own in a strip along the scan's edge (a block reaching there
        # may hold one: specks and shadows along the paper's edge below the last line)
        return not _in_edge_band(y_lo, y_hi, x_lo, x_hi, h, w)

    kept = [line_id for line_id in np.flatnonzero(counts).tolist() if is_line(line_id)]
    standing = set(kept)
    for line_id, host in inserted.items():
        if line_id not in standing:  # too little to stand alone: the words stay in the line below
            y_lo, y_hi, x_lo, x_hi = boxes[line_id].tolist()
            window = owner[y_lo:y_hi, x_lo:x_hi]
            window[window == line_id] = host
            boxes[host] = (min(y_lo, boxes[host][0]), max(y_hi, boxes[host][1]),
                           min(x_lo, boxes[host][2]), max(x_hi, boxes[host][3]))
    results: list[tuple[tuple[int, float, int], SegmentedLine]] = []
    for line_id in kept:
        y_lo, y_hi, x_lo, x_hi = boxes[line_id].tolist()
        by0, by1 = max(0, y_lo - pad), min(h, y_hi + pad)
        bx0, bx1 = max(0, x_lo - pad), min(w, x_hi + pad)
        mine = (owner[by0:by1, bx0:bx1] == line_id).astype(np.uint8)
        results.append((order[line_id - 1], _build_line(gray, mine, owner, line_id, (bx0, by0), scale, unit, config)))
    results.sort(key=lambda r: r[0][:2])
    # lines side by side in one block (a note beside a line, a line broken by a wide gap)
    # are read left to right
    for i in range(len(results) - 1):
        (b0, y0_, x0_), (b1, y1_, x1_) = results[i][0], results[i + 1][0]
        if b0 == b1 and abs(y1_ - y0_) < 0.5 * u and x1_ < x0_:
            results[i], results[i + 1] = results[i + 1], results[i]
    return [line for _, line in results[: config.max_lines]]


def segment_whole_image(gray: np.ndarray, config: SegmenterConfig = SegmenterConfig()) -> list[SegmentedLine]:
    """The whole image as one line, for inputs that are already line images.

    The box and outline are the full image, the baseline runs at 75 % of its height,
    and the crop is the image, downscaled to ``config.crop_height`` if taller. An empty
    image gives ``[]``.

    >>> import numpy as np
    >>> [line] = segment_whole_image(np.full((128, 600), 255, np.uint8))
    >>> line.bbox, line.crop.shape, line.baseline
    (BBox(x0=0, y0=0, x1=600, y1=128), (64, 300), [(0.0, 96.0), (600.0, 96.0)])
    """
    gray = _require_gray(gray)
    h, w = gray.shape
    if h == 0 or w == 0:
        return []
    polygon: list[Point] = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    base_y = float(math.floor(0.75 * h))
    baseline: list[Point] = [(0.0, base_y), (float(w), base_y)]
    return [SegmentedLine(BBox(0, 0, w, h), polygon, baseline, _downscale(gray.copy(), config.crop_height))]
