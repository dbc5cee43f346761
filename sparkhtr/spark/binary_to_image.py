"""``BinaryToImage``: binaryFile rows → one row per page (PNG, JPEG, TIFF pages, PDF pages).

The decoding limits of :class:`~sparkhtr.core.decode.DecodeLimits` are Params
(``maxBytes``, ``maxPixels``, ``maxPages``, ``maxRenderSeconds``) with the same
defaults; that module's docstring says why those values.

>>> stage = BinaryToImage(pdfDpi=150)
>>> stage.getPdfDpi(), stage.getOutputCol()
(150, 'image')
>>> stage.getMaxPixels(), stage.getMaxPages(), stage.getMaxBytes() // 2**20, stage.getMaxRenderSeconds()
(100000000, 1000, 256, 120.0)
>>> BinaryToImage(colorMode="cmyk")
Traceback (most recent call last):
...
sparkhtr.errors.ConfigError: colorMode must be one of ('gray', 'rgb'), got 'cmyk'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql.types import IntegerType, LongType, StringType, StructField

from sparkhtr.core.decode import DecodeLimits, content_sha256, iter_pages
from sparkhtr.errors import ConfigError, DecodeError, LimitExceededError
from sparkhtr.spark.base import ArrowTransformer, error_message, image_to_struct, replace_fields, with_param_accessors
from sparkhtr.spark.files import without_oversized_content
from sparkhtr.spark.schemas import IMAGE, require_columns

# Flush decoded pages to Spark once this many pixel bytes are pending, so a
# 1000-page PDF never sits in one Arrow batch.
FLUSH_BYTES = 64 * 2**20
_DEFAULT_LIMITS = DecodeLimits()
COLOR_MODES = ("gray", "rgb")


@with_param_accessors
class BinaryToImage(ArrowTransformer, HasInputCol, HasOutputCol):
    """Decode the ``content`` of ``spark.read.format("binaryFile")`` rows into page images.

    Output: the input columns without ``content``, plus ``content_sha256``, ``page``
    (1-based; ``0`` for a file that fails before its first page), ``image``,
    ``status`` (``ok``/``error``) and ``error``.

    With ``handleInvalid='keep'`` every input row gives at least one output row: a file
    that cannot be decoded, and any unexpected failure while decoding it, becomes an
    error row. When the input has binaryFile's ``length`` column, a file over ``maxBytes``
    is never read (its error row says why): the input plan is evaluated twice, for the
    files within the limit and for the others, which for a file scan costs a second,
    listing-only scan.
    """

    pathCol: Param[str] = Param(Params._dummy(), "pathCol", "column with the file path", TypeConverters.toString)
    pdfDpi: Param[int] = Param(Params._dummy(), "pdfDpi", "PDF rendering resolution", TypeConverters.toInt)
    colorMode: Param[str] = Param(Params._dummy(), "colorMode", "'gray' (default) or 'rgb'", TypeConverters.toString)
    maxPixels: Param[int] = Param(Params._dummy(), "maxPixels", "largest page in pixels", TypeConverters.toInt)
    maxPages: Param[int] = Param(Params._dummy(), "maxPages", "most pages decoded per file", TypeConverters.toInt)
    maxBytes: Param[int] = Param(Params._dummy(), "maxBytes", "largest file in bytes", TypeConverters.toInt)
    maxRenderSeconds: Param[float] = Param(Params._dummy(), "maxRenderSeconds",
                                           "longest time to load and render one PDF page", TypeConverters.toFloat)

    @keyword_only
    def __init__(self, *, inputCol: str = "content", outputCol: str = "image", pathCol: str = "path",
                 pdfDpi: int = 200, colorMode: str = "gray", maxPixels: int = _DEFAULT_LIMITS.max_pixels,
                 maxPages: int = _DEFAULT_LIMITS.max_pages, maxBytes: int = _DEFAULT_LIMITS.max_bytes,
                 maxRenderSeconds: float = _DEFAULT_LIMITS.max_render_seconds, handleInvalid: str = "keep") -> None:
        super().__init__()
        self._init_params(self._input_kwargs)
        self._decode_options()  # fail on bad values now, not in the workers

    def _decode_options(self) -> tuple[DecodeLimits, int, bool]:
        """Limits, dpi and colour flag from the Params, validated (``ConfigError``)."""
        limits = DecodeLimits(max_bytes=self.getMaxBytes(), max_pixels=self.getMaxPixels(),
                              max_pages=self.getMaxPages(), max_render_seconds=self.getMaxRenderSeconds())
        if self.getPdfDpi() <= 0:
            raise ConfigError(f"pdfDpi must be positive, got {self.getPdfDpi()!r}")
        if self.getColorMode() not in COLOR_MODES:
            raise ConfigError(f"colorMode must be one of {COLOR_MODES}, got {self.getColorMode()!r}")
        return limits, self.getPdfDpi(), self.getColorMode() == "rgb"

    def _transform(self, dataset: DataFrame) -> DataFrame:
        content_col, path_col, out_col = self.getInputCol(), self.getPathCol(), self.getOutputCol()
        require_columns(dataset.schema, {content_col: "binary", path_col: "string"}, "BinaryToImage")
        schema = replace_fields(dataset.schema, drop=[content_col], add=[
            StructField("content_sha256", StringType(), True),
            StructField("page", IntegerType(), False),
            StructField(out_col, IMAGE, True),
            StructField("status", StringType(), False),
            StructField("error", StringType(), True),
        ])
        limits, dpi, color = self._decode_options()
        fail = self.getHandleInvalid() == "error"
        keep = [n for n in dataset.columns if n != content_col]
        sized = "length" in dataset.columns and isinstance(dataset.schema["length"].dataType, (LongType, IntegerType))
        if sized:
            dataset = without_oversized_content(dataset, content_col, limits.max_bytes)

        def decode_batch(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
            contents = batch.column(content_col)
            paths = batch.column(path_col).to_pylist()
            lengths = batch.column("length").to_pylist() if sized else [None] * batch.num_rows
            rows: list[tuple[int, str | None, int, dict[str, Any] | None, str, str | None]] = []
            pending = 0
            for i in range(batch.num_rows):
                path = paths[i] or ""
                data = contents[i].as_py()
                digest = None if data is None else content_sha256(data)
                page_no = 0
                try:
                    if data is None and sized:
                        if lengths[i] is None:
                            raise DecodeError(f"{path!r}: unknown length (null 'length'): the file was not read")
                        if lengths[i] > limits.max_bytes:
                            raise LimitExceededError(
                                f"{path!r}: {lengths[i]:,} bytes exceeds max_bytes={limits.max_bytes:,}")
                        if lengths[i] > 0:  # a reader upstream left the content out
                            raise DecodeError(f"{path!r}: the content of this {lengths[i]:,}-byte file was not read")
                    for page in iter_pages(data or b"", path, limits=limits, pdf_dpi=dpi, color=color):
                        page_no = page.page
                        rows.append((i, digest, page.page, image_to_struct(page.image), "ok", None))
                        pending += page.image.nbytes
                        if pending >= FLUSH_BYTES:
                            yield _page_batch(batch, keep, rows, out_col)
                            rows, pending = [], 0
                except Exception as exc:  # typed errors for bad input; anything else must not lose the file
                    if fail:
                        raise
                    rows.append((i, digest, page_no + 1 if page_no else 0, None, "error", error_message(exc)))
            if rows:
                yield _page_batch(batch, keep, rows, out_col)

        return self._map_batches(dataset, schema, decode_batch)


def _page_batch(batch: pa.RecordBatch, keep: list[str], rows: list[tuple], out_col: str) -> pa.RecordBatch:
    taken = batch.select(keep).take(pa.array([r[0] for r in rows], pa.int64()))
    arrays = {name: taken.column(name) for name in keep}
    arrays["content_sha256"] = pa.array([r[1] for r in rows], pa.string())
    arrays["page"] = pa.array([r[2] for r in rows], pa.int32())
    arrays[out_col] = pa.array([r[3] for r in rows])
    arrays["status"] = pa.array([r[4] for r in rows], pa.string())
    arrays["error"] = pa.array([r[5] for r in rows], pa.string())
    if arrays[out_col].type == pa.null():
        arrays[out_col] = pa.nulls(len(rows), pa.struct([("height", pa.int32()), ("width", pa.int32()),
                                                          ("channels", pa.int32()), ("data", pa.binary())]))
    return pa.RecordBatch.from_pydict(arrays)
