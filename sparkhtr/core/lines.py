"""Line-image normalisation shared by training and inference.

Training (``models/training``) and the recogniser call the same function, so what
the model saw during training is exactly what it sees in production.

>>> import numpy as np
>>> line = np.full((80, 300), 230, np.uint8); line[30:50, 20:280] = 40
>>> x = normalize_line(line, height=48)
>>> x.shape, x.dtype, float(x.max()) > 0.9, float(x[0, 0]) == 0.0
((48, 180), dtype('float32'), True, True)
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_LINE_WIDTH = 8
# Without a max_width, a resized line is at most this many times wider than high: real
# lines are 20-100, but a 1 × 60000 sliver would become 48 × 2 880 000 (550 MB as float).
MAX_LINE_ASPECT = 512


def resize_to_height(gray: np.ndarray, height: int, max_width: int | None = None) -> np.ndarray:
    """Resize a 2-D uint8 image to ``height`` keeping its aspect ratio.

    The width is at least ``MIN_LINE_WIDTH`` and at most ``max_width`` (by default
    ``MAX_LINE_ASPECT × height``): a thinner or longer image is squeezed to fit.

    >>> import numpy as np
    >>> resize_to_height(np.zeros((64, 640), np.uint8), 32).shape
    (32, 320)
    >>> resize_to_height(np.zeros((1, 60000), np.uint8), 48).shape
    (48, 24576)
    """
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    h, w = gray.shape
    new_w = resized_width(h, w, height, max_width)
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    return cv2.resize(gray, (new_w, height), interpolation=interp)


def resized_width(h: int, w: int, height: int, max_width: int | None = None) -> int:
    """The width :func:`resize_to_height` gives an ``h`` × ``w`` image, without resizing it.

    >>> resized_width(64, 640, 32), resized_width(64, 5, 48)
    (320, 8)
    """
    new_w = max(MIN_LINE_WIDTH, round(w * height / max(h, 1)))
    return min(new_w, max_width if max_width is not None else MAX_LINE_ASPECT * height)


def frame_rows(image: np.ndarray, top: int, bottom: int, paper: int) -> np.ndarray:
    """Rows ``top`` to ``bottom`` of a 2-D uint8 image; rows beyond its edges are ``paper``.

    How a line is framed: a segmenter's crop around a baseline, a looser or tighter crop
    of a stored line (training augmentation, ``bench/framing.py``).

    >>> import numpy as np
    >>> frame_rows(np.zeros((4, 3), np.uint8), -1, 2, 255)[:, 0].tolist()
    [255, 0, 0]
    """
    out = np.full((max(bottom - top, 1), image.shape[1]), paper, np.uint8)
    lo, hi = max(top, 0), min(bottom, image.shape[0])
    if hi > lo:
        out[lo - top: hi - top] = image[lo:hi]
    return out


def normalize_line(gray: np.ndarray, height: int, max_width: int | None = None) -> np.ndarray:
    """Model input for one line: ``float32[height, width]``, background 0, ink 1.

    Contrast is stretched between the background level (the median, since most of a
    line crop is paper) and the darkest ink (1st percentile), which makes faded
    pencil and dark ink look alike to the model.
    """
    resized = resize_to_height(gray, height, max_width)
    pixels = resized.astype(np.float32)
    background = float(np.median(pixels))
    ink = float(np.percentile(pixels, 1.0))
    spread = max(background - ink, 16.0)
    return np.clip((background - pixels) / spread, 0.0, 1.0).astype(np.float32)
