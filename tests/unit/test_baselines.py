"""The learned baseline detector (bundled kraken-blla, ONNX) and segmentation along its baseline map."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from sparkhtr.core.baselines import DEFAULT_SEGMENTER_MODEL, BaselineDetector
from sparkhtr.core.recognize import LineRecognizer, cuda_available, get_session
from sparkhtr.core.segment import segment_lines
from sparkhtr.errors import ModelError, SegmentationError
from sparkhtr.registry import resolve_model
from tests.unit.test_segment import _box, _iou, _page


def _baseline_map(shape: tuple[int, int], boxes: list, stride: int = 4) -> np.ndarray:
    """A map like the network's (a quarter of the page's resolution): a ridge along each box's bottom."""
    h, w = shape
    probabilities = np.zeros((h // stride, w // stride), np.float32)
    for x0, _, x1, y1 in boxes:
        cv2.line(probabilities, (x0 // stride, (y1 - 8) // stride), (x1 // stride, (y1 - 8) // stride), 1.0, 2)
    return cv2.GaussianBlur(probabilities, (0, 0), 1.0) / 0.6


@pytest.fixture(scope="module")
def detector() -> BaselineDetector:
    # a lower analysis height than the bundled 1800 rows keeps the test quick; the
    # network is fully convolutional and recurrent, so the scale only changes accuracy
    manifest = dataclasses.replace(resolve_model(DEFAULT_SEGMENTER_MODEL), input_height=700)
    return BaselineDetector(manifest, device="cpu", threads=2)


def test_lines_follow_the_given_baseline_map():
    page, truth = _page(6)
    lines = segment_lines(page, baselines=_baseline_map(page.shape, truth))
    assert len(lines) == 6
    for line, box in zip(lines, truth, strict=True):
        assert _iou(_box(line), box) > 0.5


def test_a_baseline_without_ink_makes_no_line_and_ink_without_a_baseline_none_either():
    page, truth = _page(6)
    # a baseline over blank paper below the text, and none for the page's last line
    blank = (truth[0][0], page.shape[0] - 40, truth[0][2], page.shape[0] - 10)
    lines = segment_lines(page, baselines=_baseline_map(page.shape, [*truth[:5], blank]))
    assert len(lines) == 5
    assert all(_iou(_box(line), truth[5]) < 0.1 for line in lines)


def test_two_lines_on_one_baseline_ridge_stay_one_line_and_a_blank_map_gives_no_lines():
    page, truth = _page(3)
    assert segment_lines(page, baselines=np.zeros((page.shape[0] // 4, page.shape[1] // 4), np.float32)) == []
    # the map may be at any resolution: here the page's own
    full = cv2.resize(_baseline_map(page.shape, truth), page.shape[::-1], interpolation=cv2.INTER_LINEAR)
    assert len(segment_lines(page, baselines=full)) == 3


def test_a_baseline_map_that_is_not_2d_is_refused():
    page, _ = _page(2)
    with pytest.raises(SegmentationError, match="baseline map"):
        segment_lines(page, baselines=np.zeros((3, 40, 60), np.float32))


def test_the_bundled_detector_finds_the_lines_of_a_page(detector):
    page, truth = _page(8, spacing=90)
    page = cv2.resize(page, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    truth = [tuple(round(1.5 * v) for v in box) for box in truth]
    probabilities = detector.baseline_map(page)
    scale = 700 / page.shape[0]
    # the map covers the page at a quarter of the network's input resolution
    assert probabilities.shape == (175, -(-round(page.shape[1] * scale) // 4))
    assert probabilities.dtype == np.float32 and probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    lines = segment_lines(page, baselines=probabilities)
    assert len(lines) == 8
    for line, box in zip(lines, truth, strict=True):
        assert _iou(_box(line), box) > 0.5


def test_the_detector_sees_no_baselines_on_blank_paper(detector):
    probabilities = detector.baseline_map(np.full((700, 500), 240, np.uint8))
    assert probabilities.max() < 0.3


def test_network_input_is_the_inverted_page_scaled_down_to_the_analysis_height(detector):
    page = np.full((1400, 800), 255, np.uint8)
    page[400:440, 200:600] = 0
    x = detector.network_input(page)
    assert x.shape == (1, 3, 700, 400) and x.dtype == np.float32
    assert x[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]  # paper → 0
    assert x[0, 0, 210, 200] == pytest.approx(1.0)  # ink → 1
    # smaller images are not blown up
    assert detector.network_input(page[:300, :500]).shape == (1, 3, 300, 500)
    tall = BaselineDetector(detector.manifest, device="cpu", threads=1, height=1000)
    assert tall.network_input(page).shape == (1, 3, 1000, 571)
    # a strip far wider than high is scaled down to twice the analysis height in width
    assert detector.network_input(np.full((300, 5600), 255, np.uint8)).shape == (1, 3, 75, 1400)


def test_pages_too_small_for_the_network_have_no_lines(detector):
    for shape in [(1, 1), (3, 60000), (60000, 3), (7, 500)]:
        assert detector.segment(np.full(shape, 255, np.uint8)) == []
    with pytest.raises(SegmentationError):
        detector.segment(np.zeros((100, 100, 3), np.uint8))


def test_detector_refuses_bad_pages_and_models(detector):
    with pytest.raises(SegmentationError):
        detector.baseline_map(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(SegmentationError):
        detector.baseline_map(np.zeros((4, 100), np.uint8))
    with pytest.raises(ModelError, match="not a baseline-segmenter"):
        BaselineDetector(resolve_model(), device="cpu")


def test_the_detector_runs_without_layout_rewrites_and_the_recognizer_with_them(detector):
    # onnxruntime's NCHWc rewrites ran kraken's network ~4x slower on CPU and the
    # recogniser faster (bench/onnx_layout.py): each session keeps its own setting
    levels = ort.GraphOptimizationLevel
    assert detector.session.get_session_options().graph_optimization_level == levels.ORT_ENABLE_EXTENDED
    recognizer = LineRecognizer(resolve_model(), device="cpu", threads=2)
    assert recognizer.session.get_session_options().graph_optimization_level == levels.ORT_ENABLE_ALL
    path, sha = str(detector.manifest.model_path), detector.manifest.sha256
    assert get_session(path, sha, "cpu", 2) is not get_session(path, sha, "cpu", 2, layout_transforms=False)


def test_the_bundled_segmenter_manifest():
    manifest = resolve_model(DEFAULT_SEGMENTER_MODEL)
    assert manifest.kind == "baseline-segmenter"
    assert manifest.extra["channels"]["baseline"] == 2
    assert (manifest.model_path.parent / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")


@pytest.mark.slow  # ~1.5 min on 2 cores: the int8 network runs on 35 pages at 1800 rows
def test_real_pages_learned(shared_data):
    """The 35 real pages segmented along the bundled network's baselines (see bench/segmentation_eval.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from segmentation_eval import evaluate

    summary = evaluate(shared_data, segmenter="learned")["summary"]
    assert summary["pages"] == 35
    assert summary["line_recall_iou50"] >= 0.75
    assert summary["within_10pct"] >= 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs onnxruntime with a working CUDA device")
def test_cuda_baseline_map_matches_cpu():
    manifest = dataclasses.replace(resolve_model(DEFAULT_SEGMENTER_MODEL), input_height=700)
    page, _ = _page(6)
    cpu = BaselineDetector(manifest, device="cpu", threads=1).baseline_map(page)
    gpu = BaselineDetector(manifest, device="cuda")
    assert gpu.session.get_providers()[0] == "CUDAExecutionProvider"
    np.testing.assert_allclose(gpu.baseline_map(page), cpu, atol=1e-2)


def test_worker_detector_is_made_once_and_checks_the_drivers_sha():
    from sparkhtr.errors import ConfigError
    from sparkhtr.spark.line_segmenter import worker_detector

    sha = resolve_model(DEFAULT_SEGMENTER_MODEL).sha256
    first = worker_detector(DEFAULT_SEGMENTER_MODEL, sha, "cpu", 1, 0)
    assert worker_detector(DEFAULT_SEGMENTER_MODEL, sha, "cpu", 1, 0) is first
    with pytest.raises(ConfigError, match="driver saw"):
        worker_detector(DEFAULT_SEGMENTER_MODEL, "0" * 64, "cpu", 1, 0)
