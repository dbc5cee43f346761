"""Page images of script-font lines with known line boxes, for the segmenter's tests (unit and Spark)."""

from __future__ import annotations

import math

import cv2
import numpy as np

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards hex"
FONT = cv2.FONT_HERSHEY_SCRIPT_SIMPLEX


def script_page(n_lines: int, width: int = 1000, columns: int = 1, spacing: int = 80, x0: int = 60,
                scale: float = 1.4, wave: float = 0.0) -> tuple[np.ndarray, list]:
    """A page of script-font lines and their true boxes (x0, y0, x1, y1), in reading order.

    >>> page, boxes = script_page(3)
    >>> page.shape, len(boxes)
    ((340, 1000), 3)

    ``wave`` bends each line along a sine of that amplitude (pixels), word by word.
    """
    height = 100 + spacing * n_lines
    page = np.full((height, width * columns), 245, np.uint8)
    boxes = []
    for col in range(columns):
        for k in range(n_lines):
            text = WORDS[: 24 + (k * 7) % 16].strip()
            x = col * width + x0
            base = 100 + spacing * k
            top, bottom, left = math.inf, -math.inf, x
            for word in text.split():
                (w, h), descent = cv2.getTextSize(word, FONT, scale, 3)
                y = base + round(wave * math.sin(2 * math.pi * (x - col * width) / width))
                cv2.putText(page, word, (x, y), FONT, scale, 25, 3)
                top, bottom = min(top, y - h), max(bottom, y + descent)
                x += w + int(0.6 * h)
            boxes.append((left, top, x - int(0.6 * h), bottom))
    return page, boxes


def page_with_insertion(scale: float) -> tuple[np.ndarray, list, tuple[int, int, int, int]]:
    """Five lines and a word written in the gap above the third line's words, and its box."""
    page, truth = script_page(5, spacing=110)
    (w, h), descent = cv2.getTextSize("over", FONT, scale, 2)
    x, base = truth[2][0] + 150, truth[2][1] - 14
    cv2.putText(page, "over", (x, base), FONT, scale, 25, 2)
    return page, truth, (x, base - h, x + w, base + descent)
