"""``LineSegmenter``: page image → array of text lines (geometry and crops) in reading order.

``learned`` (default) follows the baselines a neural network (the bundled
``kraken-blla-int8``) sees on the page: fewer stamps, seals and printed headers taken for
lines and a lower page CER than ``classical``, which finds lines in the page's ink alone,
at about 2 s a page on two CPU cores against 0.2 s (see the README's segmentation
figures; on GPU executors use ``device='cuda'``).

>>> LineSegmenter(method="whole").getMethod()
'whole'
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_type
from pyspark.sql.types import IntegerType, StringType, StructField

from sparkhtr.core.baselines import DEFAULT_SEGMENTER, DEFAULT_SEGMENTER_MODEL, BaselineDetector
from sparkhtr.core.geometry import to_source
from sparkhtr.core.preprocess import to_gray
from sparkhtr.core.segment import SegmenterConfig, segment_lines, segment_whole_image
from sparkhtr.core.types import SegmentedLine
from sparkhtr.errors import ConfigError
from sparkhtr.registry import resolve_model
from sparkhtr.spark.base import (
    ArrowTransformer,
    image_to_struct,
    map_ok_rows,
    replace_fields,
    struct_to_image,
    with_param_accessors,
)
from sparkhtr.spark.recognizer import task_cores_and_gpu
from sparkhtr.spark.schemas import IMAGE, LINES, require_columns

# Bumped when a method's lines change, so --reprocess redoes pages read the old way. classical @2:
# crops framed around the baseline (SegmenterConfig.crop_above / crop_below); classical @3 and
# learned @2: words written between lines are lines of their own (SegmenterConfig.insertion_gap)
METHODS = {"classical": "sparkhtr-classical@3", "whole": "whole-image@1", "learned": "sparkhtr-learned@2"}


def segmenter_ref(method: str, segmenter_model: str = DEFAULT_SEGMENTER_MODEL, interlinear: bool = True) -> str:
    """What the tables' ``segmenter`` column records for a method (and, for ``learned``, its model).

    Without the interlinear pass (``interlinear=False``: words written between lines stay in
    the line below) the lines differ, so the reference says so and ``--reprocess`` tells
    the two apart.

    >>> segmenter_ref("classical"), segmenter_ref("classical", interlinear=False)
    ('sparkhtr-classical@3', 'sparkhtr-classical@3:no-interlinear')
    """
    if method not in METHODS:
        raise ConfigError(f"LineSegmenter method must be one of {sorted(METHODS)}, got {method!r}")
    suffix = "" if interlinear or method == "whole" else ":no-interlinear"
    if method != "learned":
        return METHODS[method] + suffix
    manifest = resolve_model(segmenter_model)
    if manifest.kind != "baseline-segmenter":
        raise ConfigError(f"LineSegmenter segmenterModel {manifest.ref} is a {manifest.kind!r}, "
                          "not a baseline-segmenter")
    return f"{METHODS[method]}+{manifest.ref}{suffix}"


@lru_cache(maxsize=8)
def worker_detector(model: str, sha256: str, device: str, threads: int, gpu_id: int) -> BaselineDetector:
    """This Python worker's baseline detector, created (and its file hashed) once, not per Arrow batch."""
    manifest = resolve_model(model)
    if manifest.sha256 != sha256:
        raise ConfigError(f"segmenter model {model!r} on this worker has sha256 {manifest.sha256}, driver saw {sha256}")
    return BaselineDetector(manifest, device=device, threads=threads, gpu_id=gpu_id)


@with_param_accessors
class LineSegmenter(ArrowTransformer, HasInputCol, HasOutputCol):
    """Find text lines on each page.

    ``method='classical'`` binarises the page and separates lines and columns (see
    :mod:`sparkhtr.core.segment`); ``method='learned'`` (default) does the same along the baselines
    that ``segmenterModel`` (a ``baseline-segmenter``; by default the bundled ``kraken-blla-int8``, on GPU
    executors better the float ``kraken-blla``)
    finds, on ``device`` (see :mod:`sparkhtr.core.baselines`); ``method='whole'`` treats
    each image as one line (inputs that are already line images). Output: ``lines`` (array of
    ``{line, bbox, polygon, baseline, crop, text, confidence}``, text still empty),
    ``n_lines``, ``width``/``height`` of the page the geometry refers to, and
    ``segmenter``. Geometry is in the source scan's pixels when the preprocessor
    recorded a deskew (``skew_degrees``), so exports line up with the original image.
    The page image is dropped unless ``keepImage``: later stages need only the crops.
    ``cropAbove`` / ``cropBelow`` frame each crop around the line's baseline, in text heights
    (the bundled model's training framing by default; see ``SegmenterConfig``).
    ``interlinearLines`` (default on): words written between two lines (insertions,
    corrections) become lines of their own, read before the line below; off, they stay in
    the line below as before (``SegmenterConfig.insertion_gap`` 0), and ``segmenter`` says so.
    """

    method: Param[str] = Param(Params._dummy(), "method", "'classical', 'learned' or 'whole'",
                               TypeConverters.toString)
    segmenterModel: Param[str] = Param(Params._dummy(), "segmenterModel",
                                       "baseline-segmenter model (bundled name or folder) for method 'learned'",
                                       TypeConverters.toString)
    device: Param[str] = Param(Params._dummy(), "device", "auto|cpu|cuda, for method 'learned'",
                               TypeConverters.toString)
    cropHeight: Param[int] = Param(Params._dummy(), "cropHeight", "line crops taller than this are downscaled",
                                   TypeConverters.toInt)
    keepImage: Param[bool] = Param(Params._dummy(), "keepImage", "keep the page image column",
                                   TypeConverters.toBoolean)
    cropAbove: Param[float] = Param(Params._dummy(), "cropAbove",
                                    "crops start this many text heights above the baseline (0: the ink's box)",
                                    TypeConverters.toFloat)
    cropBelow: Param[float] = Param(Params._dummy(), "cropBelow",
                                    "crops end this many text heights below the baseline (0: the ink's box)",
                                    TypeConverters.toFloat)
    interlinearLines: Param[bool] = Param(Params._dummy(), "interlinearLines",
                                          "words written between two lines become lines of their own "
                                          "(false: they stay in the line below)", TypeConverters.toBoolean)

    @keyword_only
    def __init__(self, *, inputCol: str = "image", outputCol: str = "lines", method: str = DEFAULT_SEGMENTER,
                 cropHeight: int = 64, keepImage: bool = False, cropAbove: float = SegmenterConfig.crop_above,
                 cropBelow: float = SegmenterConfig.crop_below, segmenterModel: str = DEFAULT_SEGMENTER_MODEL,
                 device: str = "auto", interlinearLines: bool = True, handleInvalid: str = "keep") -> None:
        super().__init__()
        self._init_params(self._input_kwargs)





    def segmenterRef(self) -> str:
        """What this stage records in the ``segmenter`` column (see :func:`segmenter_ref`).

        >>> LineSegmenter(method="classical", interlinearLines=False).segmenterRef()
        'sparkhtr-classical@3:no-interlinear'
        """
        return segmenter_ref(self.getMethod(), self.getSegmenterModel(), self.getInterlinearLines())

    def _transform(self, dataset: DataFrame) -> DataFrame:
        in_col, out_col, method = self.getInputCol(), self.getOutputCol(), self.getMethod()
        name = self.segmenterRef()  # a bad method or model fails on the driver
        require_columns(dataset.schema, {in_col: IMAGE.simpleString(), "status": "string"}, "LineSegmenter")
        added = [StructField(out_col, LINES, True), StructField("n_lines", IntegerType(), True),
                 StructField("width", IntegerType(), True), StructField("height", IntegerType(), True),
                 StructField("segmenter", StringType(), True)]
        drop = [] if self.getKeepImage() else [in_col]
        schema = replace_fields(dataset.schema, drop=drop, add=added)
        outputs = {f.name: to_arrow_type(f.dataType) for f in added}
        if min(self.getCropAbove(), self.getCropBelow()) < 0:
            raise ConfigError(f"LineSegmenter cropAbove and cropBelow must be >= 0, got {self.getCropAbove()} "
                              f"and {self.getCropBelow()}")
        config = SegmenterConfig(crop_height=self.getCropHeight(), crop_above=self.getCropAbove(),
                                 crop_below=self.getCropBelow(),
                                 insertion_gap=SegmenterConfig.insertion_gap if self.getInterlinearLines() else 0.0)
        model_ref, device = self.getSegmenterModel(), self.getDevice()
        model_sha = resolve_model(model_ref).sha256 if method == "learned" else ""
        has_source = {"skew_degrees", "source_width", "source_height"} <= set(dataset.columns)
        fail = self.getHandleInvalid() == "error"

        def segment_batch(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
            images = batch.column(in_col)
            if method == "whole":
                segment = segment_whole_image
            elif method == "learned":
                # one detector per Python worker and the task's cores / GPU
                detector = worker_detector(model_ref, model_sha, device, *task_cores_and_gpu())

                segment = detector.segment
            else:
                segment = segment_lines
            source = (batch.column("skew_degrees").to_pylist(), batch.column("source_width").to_pylist(),
                      batch.column("source_height").to_pylist()) if has_source else None

            def compute(i: int) -> dict[str, Any]:
                gray = to_gray(struct_to_image(images[i].as_py()))
                lines = segment(gray, config)
                width, height = gray.shape[1], gray.shape[0]
                if source is not None and source[0][i] is not None:
                    # preprocess_page removed skew_degrees by rotating the page by -skew_degrees
                    lines = to_source(lines, -source[0][i], (width, height), (source[1][i], source[2][i]))
                    width, height = source[1][i], source[2][i]
                return {out_col: [line_struct(k, line) for k, line in enumerate(lines, start=1)],
                        "n_lines": len(lines), "width": width, "height": height, "segmenter": name}

            return [map_ok_rows(batch, compute, outputs, fail, drop=drop)]

        return self._map_batches(dataset, schema, segment_batch)


def line_struct(number: int, line: SegmentedLine) -> dict[str, Any]:
    """A :class:`SegmentedLine` as a ``LINE`` struct value (text filled in later)."""
    b = line.bbox
    return {
        "line": number,
        "bbox": {"x0": int(b.x0), "y0": int(b.y0), "x1": int(b.x1), "y1": int(b.y1)},
        "polygon": [{"x": float(x), "y": float(y)} for x, y in line.polygon],
        "baseline": [{"x": float(x), "y": float(y)} for x, y in line.baseline],
        "crop": image_to_struct(line.crop),
        "text": None,
        "confidence": None,
    }
