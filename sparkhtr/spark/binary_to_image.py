"""``BinaryToImage``: binaryFile rows → one row per page (PNG, JPEG, TIFF pages, PDF pages).

>>> stage = BinaryToImage(pdfDpi=150)
>>> stage.getPdfDpi(), stage.getOutputCol()
(150, 'image')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql.types import IntegerType, StringType, StructField

from sparkhtr.core.decode import DecodeLimits, content_sha256, iter_pages
from sparkhtr.errors import SparkHtrError
from sparkhtr.spark.base import ArrowTransformer, error_message, image_to_struct, replace_fields, with_param_accessors
from sparkhtr.spark.schemas import IMAGE, require_columns

# Flush decoded pages to Spark once this many pixel bytes are pending, so a
# 1000-page PDF never sits in one Arrow batch.
FLUSH_BYTES = 64 * 2**20
_DEFAULT_LIMITS = DecodeLimits()


@with_param_accessors
class BinaryToImage(ArrowTransformer, HasInputCol, HasOutputCol):
    """Decode the ``content`` of ``spark.read.format("binaryFile")`` rows into page images.

    Output: the input columns without ``content``, plus ``content_sha256``, ``page``
    (1-based; ``0`` for a file that fails before its first page), ``image``,
    ``status`` (``ok``/``error``) and ``error``.
    """

    pathCol: Param[str] = Param(Params._dummy(), "pathCol", "column with the file path", TypeConverters.toString)
    pdfDpi: Param[int] = Param(Params._dummy(), "pdfDpi", "PDF rendering resolution", TypeConverters.toInt)
    colorMode: Param[str] = Param(Params._dummy(), "colorMode", "'gray' (default) or 'rgb'", TypeConverters.toString)
    maxPixels: Param[int] = Param(Params._dummy(), "maxPixels", "largest page in pixels", TypeConverters.toInt)
    maxPages: Param[int] = Param(Params._dummy(), "maxPages", "most pages decoded per file", TypeConverters.toInt)
    maxBytes: Param[int] = Param(Params._dummy(), "maxBytes", "largest file in bytes", TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, inputCol: str = "content", outputCol: str = "image", pathCol: str = "path",
                 pdfDpi: int = 200, colorMode: str = "gray", maxPixels: int = _DEFAULT_LIMITS.max_pixels,
                 maxPages: int = _DEFAULT_LIMITS.max_pages, maxBytes: int = _DEFAULT_LIMITS.max_bytes,
                 handleInvalid: str = "keep") -> None:
        super().__init__()
        self._init_params(self._input_kwargs)











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
        limits = DecodeLimits(max_bytes=self.getMaxBytes(), max_pixels=self.getMaxPixels(),
                              max_pages=self.getMaxPages())
        dpi, color = self.getPdfDpi(), self.getColorMode() == "rgb"
        fail = self.getHandleInvalid() == "error"
        keep = [n for n in dataset.columns if n != content_col]

        def decode_batch(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
            contents = batch.column(content_col)
            paths = batch.column(path_col).to_pylist()
            rows: list[tuple[int, str | None, int, dict[str, Any] | None, str, str | None]] = []
            pending = 0
            for i in range(batch.num_rows):
                data = contents[i].as_py() or b""
                digest = content_sha256(data)
                page_no = 0
                try:
                    for page in iter_pages(data, paths[i] or "", limits=limits, pdf_dpi=dpi, color=color):
                        page_no = page.page
                        rows.append((i, digest, page.page, image_to_struct(page.image), "ok", None))
                        pending += page.image.nbytes
                        if pending >= FLUSH_BYTES:
                            yield _page_batch(batch, keep, rows, out_col)
                            rows, pending = [], 0
                except SparkHtrError as exc:
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
