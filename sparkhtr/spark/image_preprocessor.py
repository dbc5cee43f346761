"""``ImagePreprocessor``: grayscale, orientation and deskew (angle recorded), contrast normalisation of page images.

>>> ImagePreprocessor(deskew=False).getDeskew()
False
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_type
from pyspark.sql.types import DoubleType, IntegerType, StructField

from sparkhtr.core.preprocess import preprocess_page
from sparkhtr.spark.base import (
    ArrowTransformer,
    image_to_struct,
    map_ok_rows,
    replace_fields,
    struct_to_image,
    with_param_accessors,
)
from sparkhtr.spark.schemas import IMAGE, require_columns


@with_param_accessors
class ImagePreprocessor(ArrowTransformer, HasInputCol, HasOutputCol):
    """Page image → grayscale, upright, deskewed, contrast-normalised page image.

    ``autoOrient``: a page scanned sideways or upside down is turned upright
    (:func:`sparkhtr.core.preprocess.estimate_orientation`; a page without clear evidence
    stays as it is). Adds ``skew_degrees`` (the angle removed, quarter turns included) and
    ``source_width``/``source_height`` (the size before deskewing, which rotates onto a
    larger canvas) so geometry can be mapped back to the scan.
    """

    grayscale: Param[bool] = Param(Params._dummy(), "grayscale", "convert to grayscale", TypeConverters.toBoolean)
    deskew: Param[bool] = Param(Params._dummy(), "deskew", "estimate and remove page skew", TypeConverters.toBoolean)
    normalizeContrast: Param[bool] = Param(Params._dummy(), "normalizeContrast",
                                           "flatten the background and stretch contrast", TypeConverters.toBoolean)
    maxSkew: Param[float] = Param(Params._dummy(), "maxSkew", "largest skew searched, degrees",
                                  TypeConverters.toFloat)
    autoOrient: Param[bool] = Param(Params._dummy(), "autoOrient",
                                    "turn pages scanned sideways or upside down upright", TypeConverters.toBoolean)

    @keyword_only
    def __init__(self, *, inputCol: str = "image", outputCol: str = "image", grayscale: bool = True,
                 deskew: bool = True, normalizeContrast: bool = True, maxSkew: float = 15.0,
                 autoOrient: bool = True, handleInvalid: str = "keep") -> None:
        super().__init__()
        self._init_params(self._input_kwargs)







    def _transform(self, dataset: DataFrame) -> DataFrame:
        in_col, out_col = self.getInputCol(), self.getOutputCol()
        require_columns(dataset.schema, {in_col: IMAGE.simpleString(), "status": "string", "error": "string"},
                        "ImagePreprocessor")
        added = [StructField(out_col, IMAGE, True), StructField("skew_degrees", DoubleType(), True),
                 StructField("source_width", IntegerType(), True), StructField("source_height", IntegerType(), True)]
        schema = replace_fields(dataset.schema, add=added)
        outputs = {f.name: to_arrow_type(f.dataType) for f in added}
        options = {"grayscale": self.getGrayscale(), "deskew": self.getDeskew(),
                   "normalize": self.getNormalizeContrast(), "max_skew": self.getMaxSkew(),
                   "orient": self.getAutoOrient()}
        fail = self.getHandleInvalid() == "error"

        def preprocess_batch(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
            images = batch.column(in_col)

            def compute(i: int) -> dict[str, Any]:
                image = struct_to_image(images[i].as_py())
                result = preprocess_page(image, **options)
                return {out_col: image_to_struct(result.image), "skew_degrees": float(result.skew_degrees),
                        "source_width": int(image.shape[1]), "source_height": int(image.shape[0])}

            return [map_ok_rows(batch, compute, outputs, fail)]

        return self._map_batches(dataset, schema, preprocess_batch)
