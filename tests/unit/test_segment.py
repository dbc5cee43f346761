import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sparkhtr.core.preprocess import deskew
from sparkhtr.core.segment import SegmenterConfig, segment_lines, segment_whole_image
from sparkhtr.errors import SegmentationError

WORDS = "the quick brown fox jumps over a lazy dog"


def _page(n_lines: int, width: int = 1000, columns: int = 1, spacing: int = 80, x0: int = 60
          ) -> tuple[np.ndarray, list]:
    """A page of script-font lines and their true boxes (x0, y0, x1, y1), in reading order."""
    height = 100 + spacing * n_lines
    page = np.full((height, width * columns), 245, np.uint8)
    boxes = []
    for col in range(columns):
        for k in range(n_lines):
            text = WORDS[: 24 + (k * 7) % 16]
            org = (col * width + x0, 100 + spacing * k)
            cv2.putText(page, text, org, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.4, 25, 3)
            (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.4, 3)
            boxes.append((org[0], org[1] - h, org[0] + w, org[1] + base))
    return page, boxes


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _box(line) -> tuple[int, int, int, int]:
    return (line.bbox.x0, line.bbox.y0, line.bbox.x1, line.bbox.y1)


def test_single_column_lines_in_order_with_matching_boxes():
    page, truth = _page(6)
    lines = segment_lines(page)
    assert len(lines) == 6
    for line, box in zip(lines, truth, strict=True):
        assert _iou(_box(line), box) > 0.5
    assert [line.bbox.y0 for line in lines] == sorted(line.bbox.y0 for line in lines)


def test_two_columns_are_read_column_by_column():
    page, truth = _page(5, width=900, columns=2)
    lines = segment_lines(page)
    assert len(lines) == 10
    centres = [(line.bbox.x0 + line.bbox.x1) / 2 for line in lines]
    assert all(c < 900 for c in centres[:5]) and all(c > 900 for c in centres[5:])
    for line, box in zip(lines, truth, strict=True):
        assert _iou(_box(line), box) > 0.5


def test_slightly_rotated_page():
    page, _ = _page(6)
    rotated = deskew(page, -2.0)  # rotate by +2 degrees: a skewed scan
    assert len(segment_lines(rotated)) == 6


def test_geometry_and_crops():
    page, _ = _page(3)
    config = SegmenterConfig(crop_height=40)
    for line in segment_lines(page, config):
        assert line.crop.dtype == np.uint8 and line.crop.shape[0] <= 40
        assert len(line.polygon) >= 4 and len(line.baseline) >= 2
        xs = [p[0] for p in line.polygon]
        ys = [p[1] for p in line.polygon]
        assert line.bbox.x0 <= min(xs) and max(xs) <= line.bbox.x1
        assert line.bbox.y0 <= min(ys) and max(ys) <= line.bbox.y1
        base_y = line.baseline[0][1]
        assert line.bbox.y0 < base_y <= line.bbox.y1
        assert line.baseline[0][0] < line.baseline[-1][0]


def test_neighbours_are_painted_out_of_crops():
    page = np.full((300, 600), 250, np.uint8)
    cv2.putText(page, "gjpqy gjpqy", (40, 120), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2.0, 20, 4)
    cv2.putText(page, "bdfhk bdfhk", (40, 190), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2.0, 20, 4)
    lines = segment_lines(page, SegmenterConfig(crop_height=400))
    assert len(lines) == 2
    for line in lines:
        assert line.crop.min() < 100  # its own ink is kept


def test_blank_tiny_and_extreme_pages():
    assert segment_lines(np.full((800, 600), 255, np.uint8)) == []
    assert segment_lines(np.full((1, 1), 0, np.uint8)) == []
    noise = np.random.default_rng(0).integers(235, 256, (500, 500), dtype=np.uint8)
    assert len(segment_lines(noise)) <= 2
    wide = np.full((40, 20000), 250, np.uint8)
    cv2.putText(wide, "a long strip", (100, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    assert len(segment_lines(wide)) <= 1
    with pytest.raises(SegmentationError):
        segment_lines(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(SegmentationError):
        segment_lines(np.zeros((10, 10), np.float32))


def test_scan_border_is_not_a_line():
    page, _ = _page(4)
    page[:, :15] = 0  # dark scanner edge
    page[-12:, :] = 0
    assert len(segment_lines(page)) == 4


def test_whole_image_mode():
    image = np.full((128, 600), 255, np.uint8)
    [line] = segment_whole_image(image)
    assert (line.bbox.x1, line.bbox.y1) == (600, 128)
    assert line.crop.shape == (64, 300)
    assert segment_whole_image(np.zeros((0, 5), np.uint8)) == []


def test_committed_sample_pages_line_counts():
    from sparkhtr.core.decode import iter_pages
    from sparkhtr.core.preprocess import preprocess_page

    root = Path(__file__).resolve().parents[2] / "samples"
    rows = [json.loads(x) for x in (root / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        pages = list(iter_pages((root / row["file"]).read_bytes()))
        found = segment_lines(preprocess_page(pages[row["page"] - 1].image).image)
        assert abs(len(found) - len(row["lines"])) <= max(1, len(row["lines"]) // 10), row["file"]


def test_real_pages_line_counts_are_close(shared_data):
    from sparkhtr.core.decode import iter_pages
    from sparkhtr.core.preprocess import preprocess_page

    ratios = []
    for jsonl in sorted((shared_data / "pages").glob("*/pages.jsonl")):
        for raw in jsonl.read_text(encoding="utf-8").splitlines():
            row = json.loads(raw)
            page = next(iter_pages((jsonl.parent / row["image"]).read_bytes()))
            found = len(segment_lines(preprocess_page(page.image).image))
            ratios.append(found / len(row["lines"]))
    assert len(ratios) == 35
    # the classical segmenter is a baseline: most pages within ±30 %, none wildly off
    assert sum(0.7 <= r <= 1.3 for r in ratios) >= 25
    assert all(0.3 <= r <= 2.0 for r in ratios)
