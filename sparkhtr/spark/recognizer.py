"""``HandwrittenTextRecognizer``: fills ``text`` and ``confidence`` of every line with an ONNX CTC model.

Lines of all pages in an Arrow batch are recognised together (sorted by width,
batched by pixels), with one model session per Python worker process.

>>> HandwrittenTextRecognizer.pretrained().getModel()
'sparkhtr-latin-crnn'
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_type
from pyspark.sql.types import StringType, StructField

from sparkhtr.core.recognize import DEVICES, BatchPolicy, LineRecognizer, task_threads
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import DEFAULT_MODEL, resolve_model
from sparkhtr.spark.base import ArrowTransformer, error_message, replace_fields, struct_to_image, with_param_accessors
from sparkhtr.spark.schemas import LINES, require_columns

_recognizers: dict[tuple[Any, ...], LineRecognizer] = {}
_lock = threading.Lock()


def worker_recognizer(model: str, sha256: str, device: str, batch_lines: int, batch_pixels: int
                      ) -> LineRecognizer:
    """This worker's recogniser for the model, created on first use (the file is hashed once)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    threads, gpu_id = task_threads(0), 0
    if context is not None:
        threads = threads or context.cpus()
        gpus = context.resources().get("gpu")
        if gpus is not None and gpus.addresses:
            gpu_id = int(gpus.addresses[0])
    key = (model, sha256, device, threads, gpu_id, batch_lines, batch_pixels)
    with _lock:
        recognizer = _recognizers.get(key)
        if recognizer is None:
            manifest = resolve_model(model)
            if manifest.sha256 != sha256:
                raise ModelError(f"model {model!r} on this worker has sha256 {manifest.sha256}, driver saw {sha256}")
            recognizer = LineRecognizer(manifest, device=device, threads=threads, gpu_id=gpu_id,
                                        policy=BatchPolicy(max_lines=batch_lines, max_pixels=batch_pixels))
            _recognizers[key] = recognizer
    return recognizer


@with_param_accessors
class HandwrittenTextRecognizer(ArrowTransformer, HasInputCol, HasOutputCol):
    """Recognise the lines produced by :class:`~sparkhtr.spark.line_segmenter.LineSegmenter`.

    Params hold plain values: the model (bundled name, folder path or ``file://`` URI)
    and, once resolved on the driver, its sha256, which every worker checks.
    Adds ``recognizer`` (``name@version``); drops line crops unless ``keepCrops``.
    """

    model: Param[str] = Param(Params._dummy(), "model", "bundled model name or model folder path/URI",
                              TypeConverters.toString)
    modelSha256: Param[str] = Param(Params._dummy(), "modelSha256",
                                    "expected sha256 of the ONNX file ('' = the manifest's)", TypeConverters.toString)
    device: Param[str] = Param(Params._dummy(), "device", "auto, cpu or cuda", TypeConverters.toString)
    batchLines: Param[int] = Param(Params._dummy(), "batchLines", "most lines per inference batch",
                                   TypeConverters.toInt)
    batchPixels: Param[int] = Param(Params._dummy(), "batchPixels", "most padded pixels per inference batch",
                                    TypeConverters.toInt)
    keepCrops: Param[bool] = Param(Params._dummy(), "keepCrops", "keep line crops in the output",
                                   TypeConverters.toBoolean)

    @keyword_only
    def __init__(self, *, inputCol: str = "lines", outputCol: str = "lines", model: str = DEFAULT_MODEL,
                 modelSha256: str = "", device: str = "auto", batchLines: int = 64,
                 batchPixels: int = 64 * 48 * 1024, keepCrops: bool = False, handleInvalid: str = "keep") -> None:
        super().__init__()
        self._init_params(self._input_kwargs)

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, **kwargs: Any) -> HandwrittenTextRecognizer:
        """A recogniser for a bundled model, its sha256 pinned from the manifest."""
        manifest = resolve_model(name)
        return cls(model=manifest.name, modelSha256=manifest.sha256, **kwargs)







    def setModel(self, value: str) -> HandwrittenTextRecognizer:
        return self._set(model=value, modelSha256="")



    def _transform(self, dataset: DataFrame) -> DataFrame:
        in_col, out_col = self.getInputCol(), self.getOutputCol()
        require_columns(dataset.schema, {in_col: LINES.simpleString(), "status": "string", "error": "string"},
                        "HandwrittenTextRecognizer")
        if self.getDevice() not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {self.getDevice()!r}")
        manifest = resolve_model(self.getModel())
        pinned = self.getModelSha256()
        if pinned and pinned.lower() != manifest.sha256:
            raise ModelError(f"model {manifest.ref} has sha256 {manifest.sha256}, Param modelSha256 is {pinned}")
        added = [StructField(out_col, LINES, True), StructField("recognizer", StringType(), True)]
        schema = replace_fields(dataset.schema, add=added)
        line_type = to_arrow_type(LINES)
        plain = (self.getModel(), manifest.sha256, self.getDevice(), self.getBatchLines(), self.getBatchPixels())
        ref, keep_crops, fail = manifest.ref, self.getKeepCrops(), self.getHandleInvalid() == "error"

        def recognize_batch(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
            recognizer = worker_recognizer(*plain)
            status = batch.column("status").to_pylist()
            errors = batch.column("error").to_pylist()
            pages = batch.column(in_col).to_pylist()
            owners: list[tuple[int, int]] = []
            crops = []
            for p, lines in enumerate(pages):
                if status[p] != "ok" or not lines:
                    continue
                for k, line in enumerate(lines):
                    owners.append((p, k))
                    crops.append(struct_to_image(line["crop"]) if line["crop"] else None)
            try:
                results = recognizer.recognize(crops)
            except Exception:
                if fail:
                    raise
                # retry page by page so one bad page does not cost its neighbours their text
                results = []
                for p in sorted({p for p, _ in owners}):
                    ids = [n for n, (q, _) in enumerate(owners) if q == p]
                    try:
                        results.extend(recognizer.recognize([crops[n] for n in ids]))
                    except Exception as exc:
                        status[p], errors[p] = "error", error_message(exc)
                        results.extend([None] * len(ids))
            for (p, k), result in zip(owners, results, strict=True):
                line = pages[p][k]
                if result is not None:
                    line["text"], line["confidence"] = result.text, float(result.confidence)
                if not keep_crops:
                    line["crop"] = None
            columns = {name: batch.column(name) for name in batch.schema.names}
            columns["status"] = pa.array(status, pa.string())
            columns["error"] = pa.array(errors, pa.string())
            columns[out_col] = pa.array(pages, type=line_type)
            columns["recognizer"] = pa.array([ref if s == "ok" else None for s in status], pa.string())
            return [pa.RecordBatch.from_pydict(columns)]

        return self._map_batches(dataset, schema, recognize_batch)
