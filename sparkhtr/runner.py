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
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkhtr import __version__
from sparkhtr.io.delta import write_delta
from sparkhtr.spark.files import read_binary_files
from sparkhtr.spark.pipeline import build_pipeline, lines_table, pages_table
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
    """What a run did; also the ``runs`` table row."""

    run_id: str
    input: str
    files: int
    pages: int
    errors: int
    lines: int
    seconds: float
    recognizer: str | None
    segmenter: str | None

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def pages_per_minute(self) -> float:
        return 60.0 * self.pages / self.seconds if self.seconds else 0.0


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


def recognize_to_tables(spark: SparkSession, inputs: Sequence[str], out_dir: str, *, model: str | None = None,
                        device: str = "auto", glob: str | None = None, pdf_dpi: int = 200,
                        progress: ProgressCallback | None = None) -> RunSummary:
    """Run the default pipeline over ``inputs`` and append to ``out_dir/{pages,lines,runs}``.

    >>> recognize_to_tables(spark, ["samples/pages"], "/tmp/out")  # doctest: +SKIP
    RunSummary(run_id='...', input='samples/pages', files=5, pages=6, errors=0, lines=131, ...)
    """
    from sparkhtr.registry import DEFAULT_MODEL

    run_id = uuid.uuid4().hex
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    files = read_binary_files(spark, inputs, glob)
    n_files = files.select("path").count()  # binaryFile reads no content for this
    pipeline = build_pipeline(model=model or DEFAULT_MODEL, device=device, pdf_dpi=pdf_dpi)
    recognized = pipeline.fit(files).transform(files)
    recognized, counters = _count_progress(recognized)
    recognized = recognized.persist(StorageLevel.MEMORY_AND_DISK)

    def report(seconds: float) -> None:
        if progress is not None:
            files_done, pages, lines = (c.value for c in counters)
            progress(Progress(files_done, n_files, pages, lines, seconds))

    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            report(time.perf_counter() - t0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        at = F.lit(started.replace(tzinfo=None)).cast("timestamp")
        pages_df = pages_table(recognized, run_id, at).persist(StorageLevel.MEMORY_AND_DISK)
        stats = pages_df.agg(
            F.count("*").alias("pages"),
            F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("errors"),
            F.sum(F.coalesce(F.col("n_lines"), F.lit(0))).alias("lines"),
            F.first("recognizer", ignorenulls=True).alias("recognizer"),
            F.first("segmenter", ignorenulls=True).alias("segmenter"),
        ).collect()[0]
        seconds_recognized = time.perf_counter() - t0
        write_delta(pages_df, f"{out_dir}/pages", mode="append")
        write_delta(lines_table(recognized, run_id, at), f"{out_dir}/lines", mode="append")
    finally:
        stop.set()
        poller.join()
    seconds = time.perf_counter() - t0
    summary = RunSummary(
        run_id=run_id, input=",".join(inputs), files=n_files, pages=int(stats["pages"]),
        errors=int(stats["errors"] or 0), lines=int(stats["lines"] or 0), seconds=seconds,
        recognizer=stats["recognizer"], segmenter=stats["segmenter"],
    )
    report(seconds_recognized)
    row = {**asdict(summary), "started_at": started.replace(tzinfo=None),
           "finished_at": datetime.now(timezone.utc).replace(tzinfo=None),
           "sparkhtr_version": __version__, "lines_per_second": summary.lines_per_second}
    runs = spark.createDataFrame([tuple(row[f.name] for f in RUNS_TABLE.fields)], RUNS_TABLE)
    write_delta(runs, f"{out_dir}/runs", mode="append")
    recognized.unpersist()
    pages_df.unpersist()
    return summary


def recognize_lines(spark: SparkSession, inputs: Sequence[str], *, model: str | None = None, device: str = "auto",
                    glob: str | None = None) -> list[dict[str, object]]:
    """Each input image is one text line: ``[{"path", "text", "confidence", "error"}]`` sorted by path."""
    from sparkhtr.registry import DEFAULT_MODEL

    files = read_binary_files(spark, inputs, glob)
    pipeline = build_pipeline(model=model or DEFAULT_MODEL, device=device, lines_mode=True)
    recognized = pipeline.fit(files).transform(files)
    rows = recognized.select(
        "path", "page", "status", "error",
        F.col("lines")[0]["text"].alias("text"), F.col("lines")[0]["confidence"].alias("confidence"),
    ).orderBy("path", "page").collect()
    return [{"path": r["path"], "page": r["page"], "text": r["text"] or "",
             "confidence": float(r["confidence"] or 0.0), "error": r["error"]} for r in rows]
