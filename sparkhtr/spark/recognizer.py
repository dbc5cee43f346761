"""``HandwrittenTextRecognizer``: fills ``text`` and ``confidence`` of every line with an ONNX CTC model.

Lines of all pages in an Arrow batch are recognised together (sorted by width,
batched by pixels), with one model session per Python worker process and
onnxruntime's intra-op threads set to the task's cores.

GPU executors: ``device="cuda"`` (``precision="fp16"`` for half precision) picks the
task's GPU from ``TaskContext.resources()``. With ``taskGpus > 0`` recognition runs as
its own stage under a Spark stage-level ``ResourceProfile`` (lines are repartitioned
first), so decoding and segmentation keep the CPU slots and only recognition tasks
hold a share of a GPU; see ``conf/GPU.md``.

>>> HandwrittenTextRecognizer.pretrained().getModel()
'sparkhtr-latin-crnn'
>>> HandwrittenTextRecognizer(device="cuda", precision="fp16", taskGpus=0.25).getTaskGpus()
0.25
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import pyarrow as pa
from pyspark import AccumulatorParam, keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_type
from pyspark.sql.types import StringType, StructField

from sparkhtr.core import recognize as core
from sparkhtr.core.recognize import (
    DECODERS,
    DEFAULT_DECODER,
    DEVICES,
    PRECISIONS,
    BatchPolicy,
    BeamSettings,
    LineRecognizer,
    cuda_device_index,
    recognizer_ref,
    resolve_decoder,
    task_threads,
)
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import DEFAULT_MODEL, resolve_model
from sparkhtr.spark.base import (
    ArrowTransformer,
    error_message,
    replace_fields,
    struct_to_image,
    with_param_accessors,
)
from sparkhtr.spark.schemas import LINES, require_columns

log = logging.getLogger(__name__)
# Spark confs that set these Params where a stage leaves them unset: a conf profile
# (conf/gpu-cluster.conf) can then switch on GPU recognition for jobs that build the
# default pipeline (``sparkhtr recognize``, ``jobs/recognize.py``).
CONF_PREFIX = "spark.sparkhtr.recognizer."
CONF_PARAMS: dict[str, type] = {"device": str, "precision": str, "decoder": str, "beamWidth": int, "taskGpus": float,
                                "taskCpus": int, "numPartitions": int}
_recognizers: dict[tuple[Any, ...], LineRecognizer] = {}
_lock = threading.Lock()


def task_cores_and_gpu() -> tuple[int, int]:
    """onnxruntime threads and CUDA ordinal for this Spark task: its cores (``SPARKHTR_ORT_THREADS``
    overrides; 0, onnxruntime's choice, outside a task) and, under GPU scheduling, its GPU."""
    from pyspark import TaskContext

    context = TaskContext.get()
    threads, gpu_id = task_threads(0), 0
    if context is not None:
        threads = threads or context.cpus()
        gpus = context.resources().get("gpu")
        if gpus is not None and gpus.addresses:
            gpu_id = cuda_device_index(gpus.addresses[0])
    return threads, gpu_id


def worker_recognizer(model: str, sha256: str, device: str, batch_lines: int, batch_pixels: int,
                      precision: str = "fp32", decoder: str = DEFAULT_DECODER, beam_width: int = 0) -> LineRecognizer:
    """This worker's recogniser for the model, created on first use (the file is hashed once).

    onnxruntime gets the task's cores as intra-op threads (``SPARKHTR_ORT_THREADS``
    overrides) and, under GPU scheduling, the CUDA ordinal of the task's GPU.
    ``batch_lines``/``batch_pixels`` of ``0`` take the device's default policy;
    ``beam_width`` of ``0`` the beams the model's manifest declares.
    """
    threads, gpu_id = task_cores_and_gpu()
    key = (model, sha256, device, threads, gpu_id, batch_lines, batch_pixels, precision, decoder, beam_width)
    with _lock:
        recognizer = _recognizers.get(key)
        if recognizer is None:
            manifest = resolve_model(model)
            if manifest.sha256 != sha256:
                raise ModelError(f"model {model!r} on this worker has sha256 {manifest.sha256}, driver saw {sha256}")
            recognizer = LineRecognizer(manifest, device=device, threads=threads, gpu_id=gpu_id, precision=precision,
                                        decoder=decoder, beam_width=beam_width)
            if batch_lines or batch_pixels:
                recognizer.policy = BatchPolicy.for_device(recognizer.device, batch_lines, batch_pixels)
            _recognizers[key] = recognizer
    return recognizer


class WorkerMetrics(AccumulatorParam):
    """Accumulates per-worker-process counters: ``{pid: {name: value}}``.

    ``session_loads`` and the configuration fields keep the latest value (a process's
    session count only grows); the other counters add up.

    >>> m = WorkerMetrics()
    >>> m.addInPlace({1: {"lines": 2, "session_loads": 1}}, {1: {"lines": 3, "session_loads": 1}})
    {1: {'lines': 5, 'session_loads': 1}}
    """

    LATEST = frozenset({"session_loads", "threads", "gpu_id", "device", "precision", "batch_lines"})

    def zero(self, value: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {}

    def addInPlace(self, a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        for pid, values in b.items():
            mine = a.setdefault(pid, {})
            for name, value in values.items():
                if name in self.LATEST:
                    mine[name] = max(mine.get(name, value), value) if name == "session_loads" else value
                else:
                    mine[name] = mine.get(name, 0) + value
        return a


def summarize_metrics(metrics: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Totals over worker processes: processes, session loads, Arrow batches, inference batches, lines, seconds.

    >>> summarize_metrics({7: {"session_loads": 1, "arrow_batches": 4, "batches": 9, "lines": 300}})["session_loads"]
    1
    """
    total: dict[str, Any] = {"processes": len(metrics)}
    for name in ("session_loads", "arrow_batches", "batches", "lines", "udf_seconds", "infer_seconds",
                 "prepare_seconds"):
        total[name] = sum(m.get(name, 0) for m in metrics.values())
    return total


def stage_scheduling_supported(master: str) -> bool:
    """Whether Spark accepts a task ``ResourceProfile`` on ``master`` (not in plain ``local`` mode).

    >>> stage_scheduling_supported("local[2]"), stage_scheduling_supported("local-cluster[2,1,1024]")
    (False, True)
    >>> stage_scheduling_supported("spark://host:7077"), stage_scheduling_supported("yarn")
    (True, True)
    """
    return master.startswith("local-cluster") or not master.startswith("local")


def recognition_profile(task_gpus: float, task_cpus: int = 1) -> Any:
    """A task-level ``ResourceProfile``: ``task_cpus`` cores and ``task_gpus`` of a GPU per task.

    >>> {k: v.amount for k, v in recognition_profile(0.25).taskResources.items()}
    {'cpus': 1.0, 'gpu': 0.25}

    Task-only profiles reuse the default executors (no dynamic allocation needed);
    supported by Spark on Standalone, YARN and Kubernetes.
    """
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    if not (0 < task_gpus <= 0.5 or (task_gpus >= 1 and float(task_gpus).is_integer())):
        # Spark's own rule for task resource amounts
        raise ConfigError(f"taskGpus must be a fraction of at most 0.5 or a whole number of GPUs, got {task_gpus}")
    requests = TaskResourceRequests().cpus(max(int(task_cpus), 1)).resource("gpu", float(task_gpus))
    return ResourceProfileBuilder().require(requests).build


@with_param_accessors
class HandwrittenTextRecognizer(ArrowTransformer, HasInputCol, HasOutputCol):
    """Recognise the lines produced by :class:`~sparkhtr.spark.line_segmenter.LineSegmenter`.

    Params hold plain values: the model (bundled name, folder path or ``file://`` URI)
    and, once resolved on the driver, its sha256, which every worker checks.
    Adds ``recognizer`` (``name@version``); drops line crops unless ``keepCrops``.
    ``batchLines``/``batchPixels`` of 0 take the device's default batch policy
    (:meth:`~sparkhtr.core.recognize.BatchPolicy.for_device`).

    ``device``, ``precision``, ``taskGpus``, ``taskCpus`` and ``numPartitions`` left unset
    take the Spark confs ``spark.sparkhtr.recognizer.<param>`` when present.

    After a transform has run, :meth:`workerMetrics` reports what each Python worker
    did (session loads, batches, lines, seconds), read back through an accumulator.
    """

    model: Param[str] = Param(Params._dummy(), "model", "bundled model name or model folder path/URI",
                              TypeConverters.toString)
    modelSha256: Param[str] = Param(Params._dummy(), "modelSha256",
                                    "expected sha256 of the ONNX file ('' = the manifest's)", TypeConverters.toString)
    device: Param[str] = Param(Params._dummy(), "device", "auto, cpu or cuda", TypeConverters.toString)
    precision: Param[str] = Param(Params._dummy(), "precision", "fp32, or fp16 (CUDA only)", TypeConverters.toString)
    decoder: Param[str] = Param(Params._dummy(), "decoder",
                                "auto (beam when the model ships a language model), greedy, or beam "
                                "(beam search with the model's character language model)",
                                TypeConverters.toString)
    beamWidth: Param[int] = Param(Params._dummy(), "beamWidth",
                                  "beams of the beam-search decoder (0 = as the model's manifest says: 64 for the "
                                  "bundled model; fewer read faster and a little worse)", TypeConverters.toInt)
    batchLines: Param[int] = Param(Params._dummy(), "batchLines", "most lines per inference batch (0 = device default)",
                                   TypeConverters.toInt)
    batchPixels: Param[int] = Param(Params._dummy(), "batchPixels",
                                    "most padded pixels per inference batch (0 = device default)", TypeConverters.toInt)
    keepCrops: Param[bool] = Param(Params._dummy(), "keepCrops", "keep line crops in the output",
                                   TypeConverters.toBoolean)
    taskGpus: Param[float] = Param(Params._dummy(), "taskGpus",
                                   "GPUs per recognition task under stage-level scheduling (0 = off, e.g. 0.25)",
                                   TypeConverters.toFloat)
    taskCpus: Param[int] = Param(Params._dummy(), "taskCpus", "CPU cores per recognition task when taskGpus > 0",
                                 TypeConverters.toInt)
    numPartitions: Param[int] = Param(Params._dummy(), "numPartitions",
                                      "repartition line rows before recognition (0 = no, or "
                                      "spark.sql.shuffle.partitions when taskGpus > 0)", TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, inputCol: str = "lines", outputCol: str = "lines", model: str = DEFAULT_MODEL,
                 modelSha256: str = "", device: str = "auto", precision: str = "fp32",
                 decoder: str = DEFAULT_DECODER, beamWidth: int = 0, batchLines: int = 0,
                 batchPixels: int = 0, keepCrops: bool = False, taskGpus: float = 0.0, taskCpus: int = 1,
                 numPartitions: int = 0, handleInvalid: str = "keep") -> None:
        super().__init__()
        self._metrics: Any = None
        self._init_params(self._input_kwargs)

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, **kwargs: Any) -> HandwrittenTextRecognizer:
        """A recogniser for a bundled model, its sha256 pinned from the manifest."""
        manifest = resolve_model(name)
        return cls(model=manifest.name, modelSha256=manifest.sha256, **kwargs)

    def setModel(self, value: str) -> HandwrittenTextRecognizer:
        """Set Param ``model`` (and forget a pinned sha256, which belonged to the old model)."""
        return self._set(model=value, modelSha256="")

    def recognizerRef(self, spark: Any) -> str:
        """What this stage writes to the ``recognizer`` column under ``spark``'s confs (see
        :func:`~sparkhtr.core.recognize.recognizer_ref`): the key a rerun compares.

        >>> HandwrittenTextRecognizer(beamWidth=16).recognizerRef(spark)  # doctest: +SKIP
        'sparkhtr-latin-crnn@0.20.3+charlm:beam16'
        """
        params = self.effectiveParams(spark)
        return recognizer_ref(resolve_model(self.getModel()), params["decoder"], params["beamWidth"])

    def workerMetrics(self) -> dict[int, dict[str, Any]]:
        """Per Python worker process (by pid) of the last transform's jobs so far: ``session_loads`` (of this
        stage's model: other stages' networks, such as the learned segmenter's, are not counted),
        ``arrow_batches``, ``batches`` (inference), ``lines``, ``udf_seconds``, ``infer_seconds``,
        ``threads``, ``gpu_id``, ``device``, ``precision``. Empty before a job ran, or on Spark Connect
        (no accumulators there)."""
        return dict(self._metrics.value) if self._metrics is not None else {}

    def effectiveParams(self, spark: Any) -> dict[str, Any]:
        """``device``, ``precision``, ``decoder``, ``beamWidth``, ``taskGpus``, ``taskCpus``, ``numPartitions``:
        the Param where set, else the Spark conf ``spark.sparkhtr.recognizer.<name>``, else the default;
        validated."""
        values: dict[str, Any] = {}
        for name, kind in CONF_PARAMS.items():
            param = self.getParam(name)
            raw = None if self.isSet(param) else spark.conf.get(CONF_PREFIX + name, None)
            try:
                values[name] = kind(raw.strip()) if raw else self.getOrDefault(param)
            except ValueError as exc:
                raise ConfigError(f"Spark conf {CONF_PREFIX}{name}={raw!r} is not a {kind.__name__}") from exc
        if values["device"] not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {values['device']!r}")
        if values["precision"] not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {values['precision']!r}")
        if values["decoder"] not in DECODERS:
            raise ConfigError(f"decoder must be one of {DECODERS}, got {values['decoder']!r}")
        if values["precision"] == "fp16" and values["device"] == "cpu":
            raise ConfigError("precision='fp16' needs device='cuda' or 'auto' (no fp16 kernels on CPU)")
        if min(values["taskGpus"], values["numPartitions"], values["beamWidth"], self.getBatchLines(),
               self.getBatchPixels()) < 0:
            raise ConfigError("taskGpus, numPartitions, beamWidth, batchLines and batchPixels must not be negative")
        return values

    def _schedule(self, dataset: DataFrame, params: dict[str, Any]) -> tuple[DataFrame, Any]:
        """Repartition and the GPU ``ResourceProfile`` for the recognition stage, as the Params ask."""
        spark = dataset.sparkSession
        gpus, partitions = params["taskGpus"], params["numPartitions"]
        if gpus > 0 and partitions == 0:
            partitions = int(spark.conf.get("spark.sql.shuffle.partitions") or "200")
        if partitions > 0:
            # a shuffle boundary: what comes before runs as its own stage in the default (CPU) profile
            dataset = dataset.repartition(partitions)
        if gpus <= 0:
            return dataset, None
        master = spark.conf.get("spark.master", "local[*]") or ""
        if not stage_scheduling_supported(master):
            log.warning("taskGpus=%s ignored: Spark has no stage-level scheduling in %s mode", gpus, master)
            return dataset, None
        if not spark.conf.get("spark.executor.resource.gpu.amount", ""):
            raise ConfigError("taskGpus > 0 needs GPU executors: set spark.executor.resource.gpu.amount and a "
                              "discovery script (see conf/gpu-cluster.conf)")
        return dataset, recognition_profile(gpus, params["taskCpus"])

    def _transform(self, dataset: DataFrame) -> DataFrame:
        in_col, out_col = self.getInputCol(), self.getOutputCol()
        require_columns(dataset.schema, {in_col: LINES.simpleString(), "status": "string", "error": "string"},
                        "HandwrittenTextRecognizer")
        params = self.effectiveParams(dataset.sparkSession)
        manifest = resolve_model(self.getModel())
        pinned = self.getModelSha256()
        if pinned and pinned.lower() != manifest.sha256:
            raise ModelError(f"model {manifest.ref} has sha256 {manifest.sha256}, Param modelSha256 is {pinned}")
        added = [StructField(out_col, LINES, True), StructField("recognizer", StringType(), True)]
        schema = replace_fields(dataset.schema, add=added)
        line_type = to_arrow_type(LINES)
        plain = (self.getModel(), manifest.sha256, params["device"], self.getBatchLines(), self.getBatchPixels(),
                 params["precision"], params["decoder"], params["beamWidth"])
        if resolve_decoder(manifest, params["decoder"]) == "beam":
            BeamSettings.for_model(manifest)  # fail on the driver when the model ships no language model
        ref = recognizer_ref(manifest, params["decoder"], params["beamWidth"])
        keep_crops, fail = self.getKeepCrops(), self.getHandleInvalid() == "error"
        metrics = self._metrics = _accumulator(dataset)

        def recognize_batch(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
            started = time.perf_counter()
            recognizer = worker_recognizer(*plain)
            before = (recognizer.stats.batches, recognizer.stats.infer_seconds, recognizer.stats.prepare_seconds)
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
            out = pa.RecordBatch.from_pydict(columns)
            if metrics is not None:
                stats = recognizer.stats
                metrics.add({os.getpid(): {
                    "session_loads": core.session_loads_by_model.get(recognizer.model_path, 0),
                    "arrow_batches": 1, "lines": len(crops),
                    "batches": stats.batches - before[0], "infer_seconds": stats.infer_seconds - before[1],
                    "prepare_seconds": stats.prepare_seconds - before[2],
                    "udf_seconds": time.perf_counter() - started, "threads": recognizer.session.get_session_options()
                    .intra_op_num_threads, "gpu_id": recognizer.gpu_id, "device": recognizer.device,
                    "precision": recognizer.precision, "batch_lines": recognizer.policy.max_lines}})
            return [out]

        data, profile = self._schedule(dataset, params)
        return self._map_batches(data, schema, recognize_batch, profile)


def _accumulator(dataset: DataFrame) -> Any:
    """A :class:`WorkerMetrics` accumulator, or ``None`` where there are none (Spark Connect)."""
    try:
        return dataset.sparkSession.sparkContext.accumulator({}, WorkerMetrics())
    except Exception:  # Spark Connect has no SparkContext
        return None
