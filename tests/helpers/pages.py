"""Small page images and table checks shared by the Spark tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pyspark.sql import DataFrame


def write_page(path: Path, words: list[str]) -> None:
    """A small page image with one printed line per word (enough for the pipeline to find lines)."""
    page = np.full((60 + 50 * len(words), 420), 255, np.uint8)
    for i, word in enumerate(words):
        cv2.putText(page, word, (20, 60 + 50 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 0, 2)
    cv2.imwrite(str(path), page)


def duplicates(df: DataFrame, columns: list[str]) -> int:
    """How many keys appear more than once in ``df``."""
    return df.groupBy(*columns).count().where("count > 1").count()
