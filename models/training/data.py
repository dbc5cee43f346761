"""Training data: real lines from ``../shared/data/lines`` and, optionally, synthetic lines.

Images are decoded and normalised once with :func:`sparkhtr.core.lines.normalize_line`
(the same function inference uses) and kept in memory as uint8.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.lines import frame_rows, normalize_line
from sparkhtr.synth.render import elastic_distort

DATASETS = ("hooker", "poilus", "mss19", "peraire")


def data_root(path: str | None = None) -> Path:
    """The shared data folder: ``path``, else ``$SPARKHTR_DATA``, else ``../shared/data``."""
    root = Path(path or os.environ.get("SPARKHTR_DATA", "../shared/data"))
    if not (root / "lines").is_dir():
        raise FileNotFoundError(f"no lines/ folder under {root} (set SPARKHTR_DATA)")
    return root


@dataclass
class LineSample:
    image: np.ndarray  # uint8 [height, width], ink 255
    text: str
    dataset: str
    line_id: str


def load_split(root: Path, split: str, alphabet: Alphabet, height: int, max_width: int,
               datasets: tuple[str, ...] = DATASETS, limit: int | None = None) -> list[LineSample]:
    """Decode and normalise every line of ``split`` for ``datasets``."""
    samples: list[LineSample] = []
    for name in datasets:
        table = pq.read_table(root / "lines" / split / f"{name}.parquet", columns=["line_id", "text", "image"])
        rows = table.to_pydict()
        n = len(rows["text"]) if limit is None else min(limit, len(rows["text"]))
        for i in range(n):
            text = alphabet.normalize(rows["text"][i])
            if not text:
                continue
            gray = np.asarray(Image.open(io.BytesIO(rows["image"][i])).convert("L"))
            x = normalize_line(gray, height, max_width)
            samples.append(LineSample((x * 255).astype(np.uint8), text, name, rows["line_id"][i]))
    return samples


def reframe(image: np.ndarray, top: float, bottom: float) -> np.ndarray:
    """Move a normalised uint8 line's (ink high) top and bottom edges, then resize it back to its height.

    ``top`` and ``bottom`` are shares of the height: positive adds that much paper, negative cuts
    that many rows off. The width follows the height's change, so the writing keeps its
    aspect and only its size within the line and its vertical position change, as they do
    between one segmenter's (or annotator's) crops and another's.

    >>> line = np.zeros((48, 200), np.uint8); line[16:32] = 255
    >>> padded = reframe(line, 0.5, 0.5)  # 96 rows of which 48 ink-free, back to 48
    >>> padded.shape, int(padded[:10].max()), int(padded[24].max())
    ((48, 100), 0, 255)
    >>> reframe(line, -0.25, -0.25).shape  # 24 rows left, scaled up
    (48, 400)
    """
    h, w = image.shape
    framed = frame_rows(image, -round(top * h), h + round(bottom * h), 0)  # 0 is paper
    new_w = max(16, round(w * h / max(framed.shape[0], 1)))
    return cv2.resize(framed, (new_w, h), interpolation=cv2.INTER_AREA if framed.shape[0] > h else cv2.INTER_LINEAR)


# Framing augmentation: how far each edge of a line moves (share of the height, negative
# cuts). Model 0.12.0, trained without it, read val lines with 20 % more paper above and below
# 9.6 points worse (19.0 -> 28.6 % greedy CER, bench/framing.py): it had only seen the data
# sets' own framing, while segmenters frame lines more loosely.
FRAME_RANGE = (-0.12, 0.3)
FRAME_PROBABILITY = 0.5
# Elastic distortion (the displacement's standard deviation as a share of the height): the
# same writer's letters differ in shape from page to page more than an affine warp varies them.
ELASTIC_PROBABILITY = 0.5
ELASTIC_AMPLITUDE = (0.015, 0.04)


def augment(image: np.ndarray, rng: random.Random, *, elastic: bool = False) -> np.ndarray:
    """Cheap geometric and stroke augmentation of a normalised uint8 line (ink high).

    ``elastic`` adds a smooth local warp (:func:`sparkhtr.synth.render.elastic_distort`) to
    half the lines.

    >>> line = np.zeros((64, 300), np.uint8); line[24:40, 20:280] = 255
    >>> out = augment(line, random.Random(3), elastic=True)
    >>> out.shape[0], out.dtype
    (64, dtype('uint8'))
    """
    if rng.random() < FRAME_PROBABILITY:
        image = reframe(image, rng.uniform(*FRAME_RANGE), rng.uniform(*FRAME_RANGE))
    if elastic and rng.random() < ELASTIC_PROBABILITY:
        image = elastic_distort(image, rng, amplitude=rng.uniform(*ELASTIC_AMPLITUDE))
    h, w = image.shape
    # width stretch and slant in one affine warp; border 0 is paper
    scale = rng.uniform(0.8, 1.2)
    shear = rng.uniform(-0.35, 0.35)
    # x' = scale*x + shear*y + offset, offset keeps every pixel at x' >= 0
    new_w = max(16, int(w * scale + abs(shear) * h))
    matrix = np.array([[scale, shear, max(0.0, -shear * h)], [0, 1, 0]], np.float32)
    out = cv2.warpAffine(image, matrix, (new_w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    # vertical jitter: small scale about the centre
    if rng.random() < 0.5:
        vs = rng.uniform(0.85, 1.1)
        dy = rng.uniform(-0.08, 0.08) * h
        m2 = np.array([[1, 0, 0], [0, vs, (1 - vs) * h / 2 + dy]], np.float32)
        out = cv2.warpAffine(out, m2, (out.shape[1], h), flags=cv2.INTER_LINEAR, borderValue=0)
    r = rng.random()
    kernel = np.ones((2, 2), np.uint8)
    if r < 0.15:
        out = cv2.dilate(out, kernel)
    elif r < 0.3:
        out = cv2.erode(out, kernel)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(5, 20), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        contrast = rng.uniform(0.5, 1.0)
        out = (out.astype(np.float32) * contrast).astype(np.uint8)
    return out


def width_batches(widths: list[int], max_lines: int, max_pixels_width: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then group similar widths: sort inside chunks and cut by padded width."""
    order = list(range(len(widths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = max_lines * 32
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: widths[i])
        batch: list[int] = []
        for i in part:
            too_wide = bool(batch) and (len(batch) + 1) * max(widths[i], widths[batch[-1]]) > max_pixels_width
            if too_wide or len(batch) == max_lines:
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(images: list[np.ndarray], pad_to: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Pad uint8 lines to one width (a multiple of ``pad_to``) → float32 [B,1,H,W], widths."""
    h = images[0].shape[0]
    widths = np.array([im.shape[1] for im in images], np.int64)
    w = int(-(-widths.max() // pad_to) * pad_to)
    batch = np.zeros((len(images), 1, h, w), np.float32)
    for k, im in enumerate(images):
        batch[k, 0, :, : im.shape[1]] = im.astype(np.float32) / 255.0
    return batch, widths
