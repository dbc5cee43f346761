"""Render text in handwriting fonts as line crops and full pages with ground truth.

Ink is drawn into a mask (0 = paper, 255 = ink) word by word, so each word gets its
own baseline offset like a hand that wanders; the mask is slanted and rotated with
one affine warp, blurred, then laid onto a paper texture with an ink level that
ranges from black ink to faded pencil. Page ground truth follows the real data's
``pages.jsonl`` (``line_id``, ``text``, ``polygon``, ``baseline``) plus a ``bbox``.

>>> import random
>>> paper = _paper((20, 30), np.random.default_rng(0), 200.0, 0.0)
>>> paper.shape, bool(abs(float(paper.mean()) - 200.0) < 1.0)
((20, 30), True)
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from sparkhtr.synth.fonts import coverage, font_files, load_font
from sparkhtr.synth.text import as_random, random_line

# Font sizes are rounded to this step so a few hundred cached font objects serve
# every line (WOFF2 files are Brotli-compressed: opening one costs milliseconds).
_SIZE_STEP = 2


@dataclass(frozen=True)
class _Calibration:
    """Ink extents of a font per pixel of font size, measured once."""

    ascent: float  # baseline to the top of tall letters (H, b, d, l, f)
    descent: float  # baseline to the bottom of g, j, p, q, y
    x_height: float


@functools.lru_cache(maxsize=256)
def _calibration(path: str) -> _Calibration:
    font = load_font(path, 100)
    top = font.getbbox("Hbdfklt", anchor="ls")[1]
    bottom = font.getbbox("gjpqy", anchor="ls")[3]
    x_top = font.getbbox("xnmu", anchor="ls")[1]
    return _Calibration(max(-top, 1) / 100, max(bottom, 1) / 100, max(-x_top, 1) / 100)


class _Face:
    """A font and its fallback file, with the file that draws each character."""

    def __init__(self, font_path: str) -> None:
        self.path = font_path
        self.files = [str(p) for p in font_files(Path(font_path))]
        self.file_of = {c: str(p) for c, p in coverage(Path(font_path)).items()}
        self.calibration = _calibration(self.files[0])

    def check(self, text: str) -> None:
        missing = sorted({c for c in text if c not in self.file_of and not c.isspace()})
        if missing:
            raise ValueError(f"{Path(self.path).name} cannot draw {''.join(missing)!r}; "
                             "choose another font (sparkhtr.synth.fonts.fonts_for_text)")

    def runs(self, word: str) -> list[tuple[str, str]]:
        """Split ``word`` into runs drawn by one file each (primary file, fallback file)."""
        out: list[tuple[str, str]] = []
        for char in word:
            file = self.file_of.get(char, self.files[0])
            if out and out[-1][1] == file:
                out[-1] = (out[-1][0] + char, file)
            else:
                out.append((char, file))
        return out

    def size_for(self, x_height: float, max_extent: float) -> int:
        """Font size giving ``x_height`` pixels, shrunk if tall letters would exceed ``max_extent``."""
        c = self.calibration
        size = min(x_height / c.x_height, max_extent / (c.ascent + c.descent))
        return max(8, round(size / _SIZE_STEP) * _SIZE_STEP)


@functools.lru_cache(maxsize=64)
def _face(font_path: str) -> _Face:
    return _Face(font_path)


@dataclass
class _Word:
    """A drawn word: ink box and baseline, in the coordinates of the mask it was drawn on."""

    box: tuple[float, float, float, float]
    x_start: float
    x_end: float
    baseline: float


def _word_length(face: _Face, word: str, size: int, stroke: int) -> float:
    return sum(load_font(file, size).getlength(run) for run, file in face.runs(word)) + stroke


def _line_width(face: _Face, words: list[str], size: int, gaps: list[float], stroke: int) -> float:
    space = load_font(face.files[0], size).getlength(" ")
    return sum(_word_length(face, w, size, stroke) for w in words) + space * sum(gaps[: len(words) - 1])


def _draw_words(draw: ImageDraw.ImageDraw, face: _Face, words: list[str], size: int, x: float, baseline: float,
                gaps: list[float], offsets: list[float], stroke: int, boxes: bool = True) -> list[_Word]:
    """Draw ``words`` left to right from ``x`` with per-word baseline ``offsets``.

    ``boxes=False`` skips measuring ink boxes (a tenth of the time) when no ground
    truth geometry is needed.
    """
    space = load_font(face.files[0], size).getlength(" ")
    drawn: list[_Word] = []
    for k, word in enumerate(words):
        y = baseline + offsets[k]
        x_start = x
        x0 = y0 = math.inf
        x1 = y1 = -math.inf
        for run, file in face.runs(word):
            font = load_font(file, size)
            draw.text((x, y), run, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255)
            if boxes:
                bx0, by0, bx1, by1 = font.getbbox(run, anchor="ls", stroke_width=stroke)
                x0, y0, x1, y1 = min(x0, x + bx0), min(y0, y + by0), max(x1, x + bx1), max(y1, y + by1)
            x += font.getlength(run)
        x += stroke
        drawn.append(_Word((x0, y0, x1, y1), x_start, x, y))
        x += space * (gaps[k] if k < len(gaps) else 1.0)
    return drawn


def _paper(shape: tuple[int, int], g: np.random.Generator, level: float, texture: float) -> np.ndarray:
    """Paper brightness: ``level`` plus smooth blotches (low-frequency noise) of amplitude ``texture``."""
    h, w = shape
    cell = max(8, min(h, w) // 3)
    coarse = g.normal(0.0, 1.0, (h // cell + 2, w // cell + 2)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return level + texture * field


def _compose(mask: np.ndarray, g: np.random.Generator, r: random.Random, grain: float | None = None,
             ink_level: float | None = None) -> np.ndarray:
    """Lay an ink mask (uint8, 255 = ink) on paper; returns uint8 gray, paper light, ink dark.

    ``grain`` is the standard deviation of per-pixel noise (random up to 7 when None);
    ``ink_level`` the gray of full ink (random, sometimes faded pencil, when None).
    """
    alpha = mask.astype(np.float32) * (1.0 / 255.0)
    if r.random() < 0.7:
        alpha = cv2.GaussianBlur(alpha, (0, 0), r.uniform(0.3, 1.1))
    paper_level = r.uniform(175, 245)
    paper = _paper(alpha.shape, g, paper_level, r.uniform(0, 8))
    if ink_level is not None:
        ink = ink_level
    elif r.random() < 0.2:  # faded pencil: little contrast, grainy strokes
        ink = paper_level - r.uniform(45, 100)
        alpha *= g.uniform(0.55, 1.0, alpha.shape).astype(np.float32)
    else:
        ink = r.uniform(5, 100)
    # the ink darkness drifts slowly along the line, as a dip pen runs dry
    strength = _paper(alpha.shape, g, 0.9, r.uniform(0, 0.08))
    out = paper - (paper - ink) * np.clip(alpha * strength, 0, 1)
    sigma = r.uniform(0, 7) if grain is None else grain
    if sigma > 0.5:
        out += g.normal(0, sigma, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _affine(shear: float, angle_deg: float, centre: tuple[float, float], pivot_y: float) -> np.ndarray:
    """2×3 matrix: slant ``x' = x - shear·(y - pivot_y)`` then rotate by ``angle_deg`` about ``centre``."""
    slant = np.array([[1.0, -shear, shear * pivot_y], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    rot = np.vstack([cv2.getRotationMatrix2D(centre, angle_deg, 1.0), [0.0, 0.0, 1.0]])
    return (rot @ slant)[:2]


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _ink_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def elastic_distort(mask: np.ndarray, rng: random.Random, amplitude: float = 0.04,
                    spacing: float = 0.5) -> np.ndarray:
    """Warp an image (paper 0) by a smooth random field, as a hand varies the shape of its letters.

    Each pixel moves by a displacement drawn on a coarse grid, one knot every ``spacing``
    times the height, with a standard deviation of ``amplitude`` times the height on each
    axis, and interpolated between the knots (cubic), so strokes bend and letters widen or
    narrow locally while the line keeps its size. Pixels pulled in from outside are paper.

    >>> line = np.zeros((64, 300), np.uint8); line[20:44, 10:290] = 255
    >>> warped = elastic_distort(line, random.Random(0))
    >>> warped.shape == line.shape, bool(abs(int(warped.sum()) - int(line.sum())) < 0.1 * int(line.sum()))
    (True, True)
    >>> bool((warped != line).any()), bool((elastic_distort(line, random.Random(0)) == warped).all())
    (True, True)
    """
    h, w = mask.shape[:2]
    step = max(4.0, spacing * h)
    knots = (math.ceil(h / step) + 1, math.ceil(w / step) + 1)
    g = np.random.default_rng(rng.getrandbits(64))
    shift_x, shift_y = (cv2.resize(g.normal(0.0, amplitude * h, knots).astype(np.float32), (w, h),
                                   interpolation=cv2.INTER_CUBIC) for _ in range(2))
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, grid_x + shift_x, grid_y + shift_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def render_line(text: str, font_path: str | Path, rng: random.Random | np.random.Generator | int | None,
                height: int = 64, *, neighbours: float = 0.3) -> np.ndarray:
    """A handwritten-looking crop of one line: uint8 ``[height, width]``, paper light, ink dark.

    Varies ink darkness, stroke width, slant, per-word baseline, a slight rotation,
    blur, noise and paper texture; with probability ``neighbours`` the ascenders and
    descenders of neighbouring lines show at the top or bottom edge, as in crops cut
    from real pages. Raises ``ValueError`` if the font cannot draw a character.
    """
    r = as_random(rng)
    g = np.random.default_rng(r.getrandbits(64))
    face = _face(str(font_path))
    face.check(text)
    words = text.split()
    if not words:
        raise ValueError("cannot render an empty line")
    # draw at about the output scale: the final resize then changes little
    size = face.size_for(height * r.uniform(0.2, 0.3), height * 0.95)
    c = face.calibration
    asc, desc = c.ascent * size, c.descent * size
    # a stroke of 1 px thickens small dense scripts into blots: only on large type
    stroke = 1 if r.random() < 0.15 and size >= 40 else 0
    gaps = [r.uniform(0.8, 1.6) for _ in words]
    jitter = r.uniform(0, 0.06) * c.x_height * size
    offsets = [r.gauss(0, jitter) for _ in words]
    pad = int(asc + desc)
    width = int(_line_width(face, words, size, gaps, stroke)) + 2 * pad
    canvas_h = int(asc + desc) + 2 * pad
    baseline = pad + asc
    img = Image.new("L", (width, canvas_h), 0)
    _draw_words(ImageDraw.Draw(img), face, words, size, pad, baseline, gaps, offsets, stroke, boxes=False)
    mask = np.asarray(img)

    shear = r.uniform(-0.2, 0.45)
    angle = r.uniform(-1.2, 1.2)
    matrix = _affine(shear, angle, (width / 2, baseline), baseline)
    corners = _apply(matrix, np.array([[0, 0], [width, 0], [0, canvas_h], [width, canvas_h]], float))
    lo = corners.min(axis=0)
    matrix[:, 2] -= lo
    out_w, out_h = (np.ceil(corners.max(axis=0) - lo) + 1).astype(int)
    mask = cv2.warpAffine(mask, matrix, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR, borderValue=0)
    box = _ink_bbox(mask)
    if box is None:
        raise ValueError(f"nothing was drawn for {text!r}")
    x0, y0, x1, y1 = box
    ink_h = y1 - y0
    m_top, m_bot = (int(r.uniform(0.02, 0.25) * ink_h) for _ in range(2))
    m_left, m_right = (int(r.uniform(0.0, 0.4) * ink_h) for _ in range(2))
    crop = np.zeros((ink_h + m_top + m_bot, x1 - x0 + m_left + m_right), np.uint8)
    crop[m_top:m_top + ink_h, m_left:m_left + x1 - x0] = mask[y0:y1, x0:x1]

    if r.random() < neighbours:
        crop = np.maximum(crop, _neighbour_fragments(crop.shape, face, size, stroke, shear, asc, desc, r))
    gray = _compose(crop, g, r)
    out_w = max(8, round(gray.shape[1] * height / gray.shape[0]))
    interp = cv2.INTER_AREA if gray.shape[0] > height else cv2.INTER_LINEAR
    gray = cv2.resize(gray, (out_w, height), interpolation=interp)
    if r.random() < 0.2:  # compression artefacts, as in scanned JPEGs
        ok, enc = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, r.randint(35, 90)])
        if ok:
            gray = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return gray


def _neighbour_fragments(shape: tuple[int, int], face: _Face, size: int, stroke: int, shear: float,
                         asc: float, desc: float, r: random.Random) -> np.ndarray:
    """Descenders of the line above and/or ascenders of the line below, cut by the crop edges."""
    h, w = shape
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    for where in ("above", "below"):
        if r.random() < 0.5:
            continue
        text = "".join(ch for ch in random_line(r) if ch in face.file_of or ch == " ").split()
        if not text:
            continue
        # a baseline just outside the crop: only descenders (above) or the tips of
        # ascenders and capitals (below) reach in, never whole letters
        x_height = face.calibration.x_height * size
        y = -r.uniform(0.2, 0.9) * desc if where == "above" else h + r.uniform(min(x_height, 0.95 * asc), asc)
        gaps = [r.uniform(0.8, 1.6) for _ in text]
        _draw_words(draw, face, text, size, -r.uniform(0, w / 3), y, gaps, [0.0] * len(text), stroke, boxes=False)
    frag = np.asarray(img)
    if shear:
        frag = cv2.warpAffine(frag, np.array([[1, -shear, shear * h / 2], [0, 1, 0]], np.float32), (w, h))
    return frag


def render_page(lines: list[str], font_path: str | Path, rng: random.Random | np.random.Generator | int | None,
                width: int = 1400, height: int | None = None, *,
                margins: tuple[float, float, float, float] | None = None, two_columns: bool = False,
                skew_degrees: float = 0.0, grain: float | None = None,
                ink_level: float | None = None) -> tuple[np.ndarray, list[dict]]:
    """A page of handwriting and its ground truth lines.

    ``height`` defaults to A4 proportions; ``margins`` are (top, right, bottom, left)
    pixels (default: a little randomised, about 7–9 % of the page). With
    ``two_columns`` the lines fill the left column, then the right one (reading
    order). ``skew_degrees`` rotates the whole sheet, as a crooked scan does;
    ``grain`` sets the pixel noise (0 keeps PNG files small) and ``ink_level`` the
    gray of the ink (None: random for both, sometimes faded pencil). The
    font size is chosen so the longest line fits its column and all lines fit the
    page. Returns the uint8 grayscale page and, per line in reading order,
    ``{"line_id", "text", "bbox": [x0, y0, x1, y1], "polygon": [[x, y], ...],
    "baseline": [[x, y], ...]}`` in page pixels.
    """
    r = as_random(rng)
    g = np.random.default_rng(r.getrandbits(64))
    face = _face(str(font_path))
    for line in lines:
        face.check(line)
    page_h = height or round(width * 2**0.5)
    top, right, bottom, left = margins or (page_h * r.uniform(0.05, 0.09), width * r.uniform(0.04, 0.08),
                                           page_h * r.uniform(0.05, 0.09), width * r.uniform(0.06, 0.11))
    if two_columns:
        gutter = width * 0.05
        col_w = (width - left - right - gutter) / 2
        columns = [(left, left + col_w), (left + col_w + gutter, width - right)]
    else:
        columns = [(left, width - right)]
    per_col = math.ceil(len(lines) / len(columns)) if lines else 1
    pitch = min(width * r.uniform(0.045, 0.062), (page_h - top - bottom) / max(per_col, 1))
    size = face.size_for(pitch * r.uniform(0.24, 0.32), pitch * 1.1)
    stroke = 1 if r.random() < 0.3 and size >= 40 else 0
    words = [line.split() for line in lines]
    gaps = [[r.uniform(0.9, 1.5) for _ in ws] for ws in words]
    indents = [width * r.uniform(0.0, 0.015) for _ in lines]
    avail = min(b - a for a, b in columns) - width * 0.015 - pitch * 0.4  # room for slant and wavering
    for _ in range(8):
        widest = max((_line_width(face, ws, size, gp, stroke) for ws, gp in zip(words, gaps, strict=True)),
                     default=0.0)
        if widest <= avail or size <= 8:
            break
        size = max(8, int(size * avail / widest / _SIZE_STEP) * _SIZE_STEP)
    c = face.calibration
    shear = r.uniform(-0.1, 0.4)
    page = np.zeros((page_h, width), np.uint8)
    truth: list[dict] = []
    for k, ws in enumerate(words):
        col, row = divmod(k, per_col)
        baseline = top + pitch * (row + 0.5) + c.ascent * size * 0.5
        strip_top = max(0, int(baseline - c.ascent * size * 1.6 - 2))
        strip_bottom = min(page_h, int(baseline + c.descent * size * 1.6 + 2))
        local = baseline - strip_top
        img = Image.new("L", (width, strip_bottom - strip_top), 0)
        slope = math.tan(math.radians(r.uniform(-0.8, 0.8)))
        jitter = r.uniform(0.02, 0.07) * c.x_height * size
        x0 = columns[col][0] + indents[k] + (pitch * 0.4 if shear < 0 else 0)
        # the baseline wanders word by word around a slightly sloping line
        space = load_font(face.files[0], size).getlength(" ")
        offsets, x = [], x0
        for w, gap in zip(ws, gaps[k], strict=True):
            offsets.append(slope * (x - x0) + r.gauss(0, jitter))
            x += _word_length(face, w, size, stroke) + gap * space
        drawn = _draw_words(ImageDraw.Draw(img), face, ws, size, x0, local, gaps[k], offsets, stroke)
        matrix = _affine(shear, 0.0, (0.0, 0.0), local)
        strip = cv2.warpAffine(np.asarray(img), matrix, img.size, flags=cv2.INTER_LINEAR, borderValue=0)
        np.maximum(page[strip_top:strip_bottom], strip, out=page[strip_top:strip_bottom])
        polygon, base = _line_geometry(drawn, matrix, strip_top, pad=1.0 + stroke)
        truth.append({"line_id": f"line_{k + 1:03d}", "text": lines[k], "polygon": polygon, "baseline": base})
    if skew_degrees:
        matrix = cv2.getRotationMatrix2D((width / 2, page_h / 2), skew_degrees, 1.0)
        page = cv2.warpAffine(page, matrix, (width, page_h), flags=cv2.INTER_LINEAR, borderValue=0)
        for line in truth:
            line["polygon"] = _apply(matrix, line["polygon"])
            line["baseline"] = _apply(matrix, line["baseline"])
    image = _compose(page, g, r, grain, ink_level)
    for line in truth:
        poly = np.clip(line["polygon"], 0, [width - 1, page_h - 1])
        base = np.clip(line["baseline"], 0, [width - 1, page_h - 1])
        line["bbox"] = [int(np.floor(poly[:, 0].min())), int(np.floor(poly[:, 1].min())),
                        int(np.ceil(poly[:, 0].max())) + 1, int(np.ceil(poly[:, 1].max())) + 1]
        line["polygon"] = np.round(poly, 1).tolist()
        line["baseline"] = np.round(base, 1).tolist()
    return image, truth


def _line_geometry(drawn: list[_Word], matrix: np.ndarray, offset_y: float,
                   pad: float) -> tuple[np.ndarray, np.ndarray]:
    """Polygon around the words' slanted ink boxes and the baseline, in page coordinates."""
    upper, lower, base = [], [], []
    for w in drawn:
        x0, y0, x1, y1 = w.box
        # the polygon also holds the word's baseline (PAGE regions contain their baselines)
        x0, x1 = min(x0, w.x_start), max(x1, w.x_end)
        x0, y0, x1, y1 = x0 - pad, min(y0, w.baseline) - pad, x1 + pad, max(y1, w.baseline) + pad
        upper += [(x0, y0), (x1, y0)]
        lower += [(x0, y1), (x1, y1)]
        base += [(w.x_start, w.baseline), (w.x_end, w.baseline)]
    polygon = _apply(matrix, np.array(upper + lower[::-1], float))
    baseline = _apply(matrix, np.array(base, float))
    polygon[:, 1] += offset_y
    baseline[:, 1] += offset_y
    return polygon, baseline
