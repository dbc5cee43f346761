"""Streaming: recognise files as they arrive in a folder or bucket prefix, into the same tables.

Structured Streaming's ``binaryFile`` source lists new files at each trigger (at
most ``max_files_per_trigger``) and records them in the checkpoint; each
micro-batch goes through :func:`sparkhtr.runner.write_batch`, the same MERGE as a
batch run. A restart resumes from the checkpoint; a micro-batch replayed after a
crash finds its files already done (or replaces their rows): nothing is
processed twice into the tables, nothing is lost.

>>> query = watch_to_tables(spark, "scans/incoming", "out/tables")  # doctest: +SKIP
>>> query.awaitTermination()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType, TimestampType

from sparkhtr.core.baselines import DEFAULT_SEGMENTER
from sparkhtr.core.recognize import DEFAULT_DECODER
from sparkhtr.errors import ConfigError
from sparkhtr.io.delta import read_delta, table_exists
from sparkhtr.runner import BatchStats, RunSummary, default_pipeline, record_run, write_batch
from sparkhtr.spark.files import with_empty_files
from sparkhtr.spark.incremental import drop_unchanged_content, plan_files
from sparkhtr.spark.pipeline import recognizer_stage

BINARY_FILE_SCHEMA = StructType([
    StructField("path", StringType(), False),
    StructField("modificationTime", TimestampType(), False),
    StructField("length", LongType(), False),
    StructField("content", BinaryType(), True),
])


def default_checkpoint(input_path: str, out_dir: str) -> str:
    """``out_dir/_checkpoints/watch-<hash of the input>``: one checkpoint per watched input.

    >>> default_checkpoint("s3://b/in", "/t").startswith("/t/_checkpoints/watch-")
    True
    """
    digest = hashlib.sha256(input_path.encode()).hexdigest()[:12]
    return f"{out_dir.rstrip('/')}/_checkpoints/watch-{digest}"


@dataclass
class WatchState:
    """Cumulative counts of a watch, written to its ``runs`` row after each micro-batch."""

    summary: RunSummary
    started: datetime
    t0: float = field(default_factory=time.perf_counter)
    total: BatchStats = field(default_factory=BatchStats)
    lock: threading.Lock = field(default_factory=threading.Lock)


def watch_to_tables(
    spark: SparkSession,
    input_path: str,
    out_dir: str,
    *,
    checkpoint: str | None = None,
    model: str | None = None,
    device: str = "auto",
    pdf_dpi: int = 200,
    max_files_per_trigger: int = 100,
    interval_seconds: float = 10.0,
    available_now: bool = False,
    glob: str | None = None,
    decoder: str = DEFAULT_DECODER,
    segmenter: str = DEFAULT_SEGMENTER,
) -> StreamingQuery:
    """Start a streaming query that recognises every new file under ``input_path`` into ``out_dir``.

    ``available_now`` processes what is there in micro-batches and stops (a
    scheduled job's trigger); otherwise a micro-batch runs every
    ``interval_seconds``. The ``runs`` table gets one row per watch, updated after
    each micro-batch and marked ``stopped`` or ``failed`` at the end (see
    :func:`finish_watch`).
    """
    if max_files_per_trigger < 1:
        raise ConfigError(f"max_files_per_trigger must be at least 1, not {max_files_per_trigger}")
    pipeline = default_pipeline(model=model, device=device, pdf_dpi=pdf_dpi, decoder=decoder, segmenter=segmenter)
    recognizer = recognizer_stage(pipeline).recognizerRef(spark)
    state = WatchState(
        summary=RunSummary(run_id=uuid.uuid4().hex, input=f"watch:{input_path}", files=0, pages=0, errors=0, lines=0,
                           seconds=0.0, recognizer=recognizer, segmenter=None),
        started=datetime.now(timezone.utc),
    )
    record_run(spark, out_dir, state.summary, state.started, None)

    checkpoint = checkpoint or default_checkpoint(input_path, out_dir)

    def process(batch: DataFrame, batch_id: int) -> None:
        session = batch.sparkSession
        files = with_empty_files(batch, logged_batch_files(session, checkpoint, batch_id))
        pages_path = f"{out_dir}/pages"
        done = read_delta(session, pages_path) if table_exists(pages_path, session) else None
        plan = plan_files(files, done, recognizer)
        stats = BatchStats()
        if plan.to_process:
            stats = write_batch(drop_unchanged_content(files, plan.todo), out_dir, pipeline,
                                run_id=state.summary.run_id, processed_at=datetime.now(timezone.utc))
        plan.todo.unpersist()
        with state.lock:
            state.total.add(stats)
            _update(state, listed=plan.listed)
            record_run(session, out_dir, state.summary, state.started, None)

    reader = (
        spark.readStream.format("binaryFile").schema(BINARY_FILE_SCHEMA)
        .option("maxFilesPerTrigger", str(max_files_per_trigger))
        .option("recursiveFileLookup", "true")
    )
    if glob:
        reader = reader.option("pathGlobFilter", glob)
    writer = (
        reader.load(input_path).writeStream.foreachBatch(process)
        .option("checkpointLocation", checkpoint)
        .queryName(f"sparkhtr-watch-{state.summary.run_id[:8]}")
    )
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{interval_seconds} seconds")
    query = writer.start()
    _states[query.id] = (state, out_dir)
    return query


_states: dict[str, tuple[WatchState, str]] = {}


def logged_batch_files(spark: SparkSession, checkpoint: str, batch_id: int) -> list[str]:
    """The files the file source assigned to micro-batch ``batch_id``, from its log in the checkpoint.

    A micro-batch's own DataFrame silently lacks zero-length files (and reports no
    input files), but the source's log (``sources/0/<batch>`` or a later
    ``<n>.compact``: ``v1`` then one JSON entry per file) names them all.
    """
    from pyspark.sql import functions as F

    folder = f"{checkpoint.rstrip('/')}/sources/0"
    interval = int(spark.conf.get("spark.sql.streaming.fileSource.log.compactInterval", "10") or 10)
    compact = (batch_id + 1) % interval == 0
    name = f"{folder}/{batch_id}.compact" if compact else f"{folder}/{batch_id}"
    try:
        entries = spark.read.text(name).where(F.col("value").startswith("{"))
        parsed = entries.select(F.from_json("value", "path string, batchId long").alias("e")).select("e.*")
        return [r.path for r in parsed.where(F.col("batchId") == batch_id).collect()]
    except Exception as exc:  # an internal format: if a Spark version changes it, say so and go on
        warnings.warn(f"cannot read the file source log {name} ({exc}); zero-length files of this "
                      "micro-batch will not get error rows", stacklevel=2)
        return []


def _update(state: WatchState, *, listed: int = 0) -> None:
    s, total = state.summary, state.total
    s.files += listed
    s.pages, s.errors, s.lines, s.segmenter = total.pages, total.errors, total.lines, total.segmenter
    s.files_skipped = s.files - total.files
    s.seconds = time.perf_counter() - state.t0


def finish_watch(query: StreamingQuery) -> RunSummary:
    """Stop ``query`` if it runs, and write its final ``runs`` row (``stopped`` or ``failed``)."""
    state, out_dir = _states.pop(query.id)
    if query.isActive:
        # Let a running micro-batch finish: interrupting its Python call mid-MERGE only
        # costs a replay, but Spark reports the interrupt with a StackOverflowError.
        deadline = time.monotonic() + 600
        while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
            time.sleep(0.2)
        query.stop()
    error = query.exception()
    with state.lock:
        _update(state)
        state.summary.status = "failed" if error else "stopped"
        state.summary.error = str(error)[:2000] if error else None
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        record_run(spark, out_dir, state.summary, state.started, datetime.now(timezone.utc))
    return state.summary

