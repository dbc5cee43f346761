"""One recognition run: binary files in, ``pages``/``lines``/``runs`` Delta tables out.

Shared by the CLI and ``jobs/recognize.py``; knows nothing of argument parsing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Accumulator, StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkhtr import __version__
from sparkhtr.core.baselines import DEFAULT_SEGMENTER
from sparkhtr.core.recognize import DEFAULT_DECODER
from sparkhtr.errors import ConfigError
from sparkhtr.io.delta import read_delta, replace_groups, table_exists
from sparkhtr.spark.files import read_binary_files, read_listed_files
from sparkhtr.spark.incremental import FilePlan, drop_unchanged_content, plan_files
from sparkhtr.spark.pipeline import build_pipeline, lines_table, pages_table, recognizer_stage, segmenter_stage
from sparkhtr.spark.schemas import RUNS_TABLE

ProgressCallback = Callable[["Progress"], None]


@dataclass(frozen=True)
class Progress:
    """A progress report: files decoded of ``files_total``, pages and lines recognised so far."""

    files_done: int
    files_total: int
    pages: int
    lines: int
    seconds: float


@dataclass
class RunSummary:
    """What a run did; also the ``runs`` table row.

    ``files`` counts every input file listed; ``files_skipped`` those found already
    processed (unchanged path, length and modification time, or unchanged content).
    """

    run_id: str
    input: str
    files: int
    pages: int
    errors: int
    lines: int
    seconds: float
    recognizer: str | None
    segmenter: str | None
    files_skipped: int = 0
    status: str = "running"
    error: str | None = None

    @property
    def files_processed(self) -> int:
        return self.files - self.files_skipped

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def pages_per_minute(self) -> float:
        return 60.0 * self.pages / self.seconds if self.seconds else 0.0


@dataclass
class BatchStats:
    """Counts of one committed batch of files."""

    files: int = 0
    pages: int = 0
    errors: int = 0
    lines: int = 0
    segmenter: str | None = None

    def add(self, other: BatchStats) -> None:
        self.files += other.files
        self.pages += other.pages
        self.errors += other.errors
        self.lines += other.lines
        self.segmenter = self.segmenter or other.segmenter


PAGE_KEYS = ("path", "page")
LINE_KEYS = ("path", "page", "line")


def _count_progress(df: DataFrame) -> tuple[DataFrame, list[Accumulator[int]]]:
    """``df`` unchanged, plus accumulators of the files, pages and lines that went through it.

    Every file yields exactly one row with ``page <= 1`` (its first page, or its
    file-level error row), which is what counts files.
    """
    sc = df.sparkSession.sparkContext
    files_acc, pages_acc, lines_acc = sc.accumulator(0), sc.accumulator(0), sc.accumulator(0)

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            files_acc.add(int(pc.sum(pc.less_equal(batch.column("page"), 1)).as_py() or 0))
            pages_acc.add(batch.num_rows)
            lines_acc.add(int(pc.sum(pc.list_value_length(batch.column("lines"))).as_py() or 0))
            yield batch

    return df.mapInArrow(count, df.schema), [files_acc, pages_acc, lines_acc]


def default_pipeline(*, model: str | None = None, device: str = "auto", pdf_dpi: int = 200,
                     decoder: str = DEFAULT_DECODER, segmenter: str = DEFAULT_SEGMENTER) -> PipelineModel:
    """The default pipeline as a fitted model (every stage is a Transformer: nothing to fit)."""
    from sparkhtr.registry import DEFAULT_MODEL

    return PipelineModel(build_pipeline(model=model or DEFAULT_MODEL, device=device, pdf_dpi=pdf_dpi,
                                        decoder=decoder, segmenter=segmenter).getStages())


def write_batch(files: DataFrame, out_dir: str, pipeline: PipelineModel, *, run_id: str, processed_at: datetime,
                counters: list[Accumulator[int]] | None = None) -> BatchStats:
    """Recognise ``files`` (``binaryFile`` rows) and replace their rows in ``out_dir/{lines,pages}``.

    Every file's rows are replaced as a whole (:func:`~sparkhtr.io.delta.replace_groups`
    on ``path``): rerunning a batch, or a batch that repeats a file, never duplicates a
    row. ``lines`` is written before ``pages`` because a ``pages`` row is what marks a
    file as done: a crash between the two commits leaves the file to the next run,
    which replaces its lines.
    """
    recognized = pipeline.transform(files)
    if counters is not None:
        recognized, batch_counters = _count_progress(recognized)
        counters.extend(batch_counters)
    recognized = recognized.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        at = F.lit(processed_at.replace(tzinfo=None)).cast("timestamp")
        pages_df = pages_table(recognized, run_id, at).persist(StorageLevel.MEMORY_AND_DISK)
        stats = pages_df.agg(
            F.countDistinct("path").alias("files"),
            F.count("*").alias("pages"),
            F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("errors"),
            F.sum(F.coalesce(F.col("n_lines"), F.lit(0))).alias("lines"),
            F.first("segmenter", ignorenulls=True).alias("segmenter"),
        ).collect()[0]
        paths = [r[0] for r in pages_df.select("path").distinct().collect()]
        if paths:
            replace_groups(lines_table(recognized, run_id, at), f"{out_dir}/lines", keys=LINE_KEYS, groups=paths)
            replace_groups(pages_df, f"{out_dir}/pages", keys=PAGE_KEYS, groups=paths)
        pages_df.unpersist()
    finally:
        recognized.unpersist()
    return BatchStats(files=int(stats["files"]), pages=int(stats["pages"]), errors=int(stats["errors"] or 0),
                      lines=int(stats["lines"] or 0), segmenter=stats["segmenter"])


def record_run(spark: SparkSession, out_dir: str, summary: RunSummary, started: datetime,
               finished: datetime | None) -> None:
    """Insert or update the run's row in ``out_dir/runs`` (written when a run starts and when it ends)."""
    row = {**asdict(summary), "started_at": started.replace(tzinfo=None),
           "finished_at": finished.replace(tzinfo=None) if finished else None,
           "sparkhtr_version": __version__, "lines_per_second": summary.lines_per_second}
    runs = spark.createDataFrame([tuple(row[f.name] for f in RUNS_TABLE.fields)], RUNS_TABLE)
    # merge_schema: runs tables of earlier versions gain the newer columns.
    replace_groups(runs, f"{out_dir}/runs", keys=["run_id"], group_column="run_id", merge_schema=True)


def recognize_to_tables(spark: SparkSession, inputs: Sequence[str], out_dir: str, *, model: str | None = None,
                        device: str = "auto", glob: str | None = None, pdf_dpi: int = 200,
                        progress: ProgressCallback | None = None, reprocess: bool = False,
                        retry_errors: bool = False, files_per_commit: int = 1000,
                        decoder: str = DEFAULT_DECODER, segmenter: str = DEFAULT_SEGMENTER) -> RunSummary:
    """Recognise the new and changed files under ``inputs`` into ``out_dir/{pages,lines,runs}``; rerun-safe.

    Files already in ``pages`` are skipped before anything is decoded
    (:mod:`sparkhtr.spark.incremental`); ``reprocess`` also redoes files recognised by
    another model version or segmented another way (``segmenter``: ``learned``, the
    default, or ``classical``), ``retry_errors`` files recorded with errors. Files are
    committed ``files_per_commit`` at a time, each batch's rows replacing any earlier
    rows of the same files, so a failed run loses at most its current batch and a
    rerun finishes the job without duplicates. The run's row in ``runs`` says
    ``running`` until it ends ``succeeded`` or ``failed``.

    >>> recognize_to_tables(spark, ["samples/pages"], "/tmp/out")  # doctest: +SKIP
    RunSummary(run_id='...', input='samples/pages', files=5, pages=6, errors=0, lines=131, ...)
    """
    if files_per_commit < 1:
        raise ConfigError(f"files_per_commit must be at least 1, not {files_per_commit}")
    pipeline = default_pipeline(model=model, device=device, pdf_dpi=pdf_dpi, decoder=decoder, segmenter=segmenter)
    recognizer = recognizer_stage(pipeline).recognizerRef(spark)
    run_id = uuid.uuid4().hex
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    summary = RunSummary(run_id=run_id, input=",".join(inputs), files=0, pages=0, errors=0, lines=0, seconds=0.0,
                         recognizer=recognizer, segmenter=None)
    record_run(spark, out_dir, summary, started, None)
    counters: list[Accumulator[int]] = []
    total = BatchStats()
    stop = threading.Event()
    plan_total = [0]

    def report(seconds: float) -> None:
        if progress is not None:
            values = [sum(c.value for c in counters[i::3]) for i in range(3)]
            progress(Progress(values[0], plan_total[0], values[1], values[2], seconds))

    def poll() -> None:
        while not stop.wait(0.5):
            report(time.perf_counter() - t0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        listing = read_binary_files(spark, inputs, glob)
        pages_path = f"{out_dir}/pages"
        done = read_delta(spark, pages_path) if table_exists(pages_path, spark) else None
        plan = plan_files(listing, done, recognizer, reprocess=reprocess, retry_errors=retry_errors,
                          segmenter=segmenter_stage(pipeline).segmenterRef())
        summary.files, plan_total[0] = plan.listed, plan.to_process
        summary.files_skipped = plan.skipped
        record_run(spark, out_dir, summary, started, None)  # a driver killed from here on leaves its plan
        for files in _batches(spark, listing, plan, files_per_commit):
            total.add(write_batch(files, out_dir, pipeline, run_id=run_id, processed_at=started, counters=counters))
        plan.todo.unpersist()
        summary.status = "succeeded"
    except BaseException as exc:
        summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        stop.set()
        poller.join()
        summary.pages, summary.errors, summary.lines = total.pages, total.errors, total.lines
        summary.segmenter = total.segmenter
        if summary.status == "succeeded":  # files dropped by their unchanged content count as skipped too
            summary.files_skipped = summary.files - total.files
        summary.seconds = time.perf_counter() - t0
        report(summary.seconds)
        try:
            record_run(spark, out_dir, summary, started, datetime.now(timezone.utc))
        except Exception:
            if summary.status == "succeeded":
                raise  # otherwise the run's own failure is the error to see
    return summary


def _batches(spark: SparkSession, listing: DataFrame, plan: FilePlan, size: int) -> Iterator[DataFrame]:
    """The files to process with their content, ``size`` files at a time.

    A first run that fits one batch reads the original scan; otherwise each batch
    loads only its own paths, so skipped files are never read.
    """
    if plan.to_process == 0:
        return
    if plan.to_process == plan.listed and plan.listed <= size:
        yield drop_unchanged_content(listing, plan.todo)
        return
    paths = [r[0] for r in plan.todo.select("path").orderBy("path").toLocalIterator()]
    for start in range(0, len(paths), size):
        chunk = paths[start:start + size]
        yield drop_unchanged_content(read_listed_files(spark, chunk), plan.todo)


def recognize_lines(spark: SparkSession, inputs: Sequence[str], *, model: str | None = None, device: str = "auto",
                    glob: str | None = None, decoder: str = DEFAULT_DECODER) -> list[dict[str, object]]:
    """Each input image is one text line: ``[{"path", "text", "confidence", "error"}]`` sorted by path."""
    from sparkhtr.registry import DEFAULT_MODEL

    files = read_binary_files(spark, inputs, glob)
    pipeline = build_pipeline(model=model or DEFAULT_MODEL, device=device, lines_mode=True, decoder=decoder)
    recognized = pipeline.fit(files).transform(files)
    rows = recognized.select(
        "path", "page", "status", "error",
        F.col("lines")[0]["text"].alias("text"), F.col("lines")[0]["confidence"].alias("confidence"),
    ).orderBy("path", "page").collect()
    return [{"path": r["path"], "page": r["page"], "text": r["text"] or "",
             "confidence": float(r["confidence"] or 0.0), "error": r["error"]} for r in rows]
