"""A learned baseline detector: page → map of baseline probabilities, for the segmenter's tracks.

The bundled ``kraken-blla`` model is kraken's default page segmentation network
(Apache-2.0), converted to ONNX by ``models/training/convert_kraken_blla.py``;
``kraken-blla-int8``, the default, is the same network with int8 convolutions
(``models/training/quantize_segmenter.py``): half the time on CPU, the same lines. It sees
the whole page and answers where baselines run, so printed forms' stamps, seals and
flourishes that the classical segmenter mistakes for writing raise no line, and lines
that touch each other stay apart. :func:`sparkhtr.core.segment.segment_lines` takes the
map (``baselines=``) and builds the lines, their outlines and crops from the page's ink as
it does for its own tracks.

>>> from sparkhtr.registry import resolve_model
>>> detector = BaselineDetector(resolve_model(DEFAULT_SEGMENTER_MODEL), device="cpu", threads=1)  # doctest: +SKIP
>>> probabilities = detector.baseline_map(gray_page)  # doctest: +SKIP
"""

from __future__ import annotations

import cv2
import numpy as np

from sparkhtr.core.recognize import get_session
from sparkhtr.core.segment import MIN_PAGE_SIDE, SegmenterConfig, segment_lines
from sparkhtr.core.types import SegmentedLine
from sparkhtr.errors import ModelError, SegmentationError
from sparkhtr.registry import ModelManifest, verify_model

DEFAULT_SEGMENTER_MODEL = "kraken-blla-int8"
# the default segmentation method of LineSegmenter, the pipeline and the CLI: along this
# network's baselines ("classical": the page's ink alone, ten times faster, less accurate)
DEFAULT_SEGMENTER = "learned"
SEGMENTERS = ("learned", "classical")  # the methods a page pipeline (CLI, runner, benches) may choose
MAX_ASPECT = 2.0  # the network sees at most this many times its analysis height in width


class BaselineDetector:
    """Run a ``baseline-segmenter`` ONNX model on grayscale pages (paper light, ink dark).

    A page taller than the manifest's ``input_height`` (the analysis resolution) is scaled
    down to it; a smaller image (a snippet, a few lines) is left as it is, since blown up to
    a page's height its writing would be far larger than any the network was trained on.
    The network is fully convolutional and recurrent (any width works); its output's
    ``baseline`` channel is returned. ``device`` and ``threads`` as for
    :class:`~sparkhtr.core.recognize.LineRecognizer`; the onnxruntime session is cached
    per process. ``height`` overrides the manifest's analysis height (the bundled model's is
    1800 rows, kraken's own scale; 1200 runs about 2 times faster and finds fewer pages'
    line counts right, see its model card).
    """

    def __init__(self, manifest: ModelManifest, *, device: str = "auto", threads: int = 0, gpu_id: int = 0,
                 verify: bool = True, height: int | None = None) -> None:
        if manifest.kind != "baseline-segmenter":
            raise ModelError(f"{manifest.ref} is a {manifest.kind!r}, not a baseline-segmenter")
        path = verify_model(manifest) if verify else manifest.model_path
        self.manifest = manifest
        self.height = int(height or manifest.input_height)
        self.channel = int(manifest.extra.get("channels", {}).get("baseline", 2))
        # no layout rewrites: onnxruntime's NCHWc convolutions run this network about 4 times slower
        self.session = get_session(str(path), manifest.sha256, device, threads, gpu_id, layout_transforms=False)
        self.input_name = self.session.get_inputs()[0].name

    def network_input(self, gray: np.ndarray) -> np.ndarray:
        """The ``(1, channels, H, W)`` float32 tensor for a grayscale page (``H`` at most ``input_height``).

        A page wider than twice the analysis height (a scroll, a strip) is scaled down to
        that width too, which bounds the network's memory (its activations grow with the area).
        """
        if (not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2
                or min(gray.shape) < MIN_PAGE_SIDE):
            raise SegmentationError(f"expected a 2-D uint8 grayscale page, got {getattr(gray, 'shape', type(gray))}")
        h, w = gray.shape
        scaled = gray
        scale = min(self.height / h, MAX_ASPECT * self.height / w)
        if scale < 1.0:
            size = (max(MIN_PAGE_SIDE, round(w * scale)), max(MIN_PAGE_SIDE, round(h * scale)))
            scaled = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        ink = 1.0 - scaled.astype(np.float32) / 255.0
        return np.repeat(ink[None, None], self.manifest.input_channels, axis=1)

    def baseline_map(self, gray: np.ndarray) -> np.ndarray:
        """Baseline probabilities (float32, 0-1) over the page, at the network's output resolution.

        The map covers the whole page: row ``r`` of an ``R``-row map is at ``r * h / R`` in
        the page's ``h`` rows (columns alike), whatever the scale.
        """
        outputs = self.session.run(None, {self.input_name: self.network_input(gray)})[0]
        return np.ascontiguousarray(outputs[0, self.channel], dtype=np.float32)

    def segment(self, gray: np.ndarray, config: SegmenterConfig | None = None) -> list[SegmentedLine]:
        """The page's lines along this network's baselines (:func:`segment_lines` with its map).

        A page too small to hold writing (under 8 pixels a side: a one-pixel image, a
        degenerate PDF page) has no lines, as for the classical segmenter, and is not
        given to the network, which cannot take it.

        >>> detector.segment(np.full((3, 60000), 255, np.uint8))  # doctest: +SKIP
        []
        """
        config = config or SegmenterConfig()
        if isinstance(gray, np.ndarray) and gray.ndim == 2 and min(gray.shape) < MIN_PAGE_SIDE:
            return segment_lines(gray, config)
        return segment_lines(gray, config, baselines=self.baseline_map(gray))
