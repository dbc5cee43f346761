"""Which input files a run must process: everything new or changed, nothing already done.

Reruns over a bucket of a million processed files must cost a listing, not a
decode of every file. The decision is made in two steps, both in Spark:

1. **Metadata** (no file content read): a file whose path, length and
   modification time equal those recorded in the ``pages`` table is done.
2. **Content** (only for files whose metadata changed): the file's SHA-256,
   computed by Spark's ``sha2`` on its bytes, equal to the recorded
   ``content_sha256`` means it is still done (a copy or a touch); anything else is
   processed again and its rows replaced.

A file processed by another recogniser version counts as done unless the run asks
to ``reprocess``; a file recorded with errors counts as done unless it asks to
``retry_errors``.

>>> plan = plan_files(listing, pages, "sparkhtr-latin-crnn@0.2.0")  # doctest: +SKIP
>>> plan.todo.count(), plan.listed  # doctest: +SKIP
(12, 1000000)
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkhtr.core.decode import DecodeLimits
from sparkhtr.spark.files import without_oversized_content

# Columns the plan carries for each file to process.
KNOWN_SHA = "known_content_sha256"

_LISTING = ("path", "length", "modificationTime")


@dataclass(frozen=True)
class FilePlan:
    """The files to process (``todo``: path, length, modificationTime, known sha or null) and how many were listed."""

    todo: DataFrame
    listed: int
    to_process: int

    @property
    def skipped(self) -> int:
        """Files skipped on metadata alone."""
        return self.listed - self.to_process


def done_files(pages: DataFrame, recognizer: str, *, reprocess: bool = False, retry_errors: bool = False,
               segmenter: str | None = None) -> DataFrame:
    """Per path in ``pages``, what was recorded (sha, length, mtime) if the file counts as done, else nothing.

    Error rows without a recogniser (a file that did not decode) never block a
    ``reprocess``: a new model would not change them. With ``segmenter``, pages segmented
    another way (another method or segmentation model) count as another model's too.
    """
    other_model = F.col("recognizer").isNotNull() & (F.col("recognizer") != F.lit(recognizer))
    if segmenter is not None:
        other_model = other_model | (F.col("segmenter").isNotNull() & (F.col("segmenter") != F.lit(segmenter)))
    per_file = pages.groupBy("path").agg(
        F.first("content_sha256", ignorenulls=True).alias("done_sha"),
        F.first("source_length", ignorenulls=True).alias("done_length"),
        F.first("source_modified", ignorenulls=True).alias("done_modified"),
        F.max(_flag(F.col("status") == "error")).alias("had_error"),
        F.max(_flag(other_model)).alias("other_model"),
    )
    keep = F.lit(True)
    if reprocess:
        keep = keep & (F.col("other_model") == 0)
    if retry_errors:
        keep = keep & (F.col("had_error") == 0)
    return per_file.where(keep).select("path", "done_sha", "done_length", "done_modified", F.lit(True).alias("done"))


def _flag(condition: Column) -> Column:
    return F.when(condition, 1).otherwise(0)


def plan_files(
    listing: DataFrame,
    pages: DataFrame | None,
    recognizer: str,
    *,
    reprocess: bool = False,
    retry_errors: bool = False,
    segmenter: str | None = None,
) -> FilePlan:
    """Step 1: the files of ``listing`` (a ``binaryFile`` scan) whose metadata says they may need processing.

    Only ``path``, ``length`` and ``modificationTime`` are read, so Spark reads no
    file content. Files whose metadata changed keep the recorded sha in
    ``known_content_sha256`` for step 2 (:func:`drop_unchanged_content`).
    """
    listed = listing.select(*_LISTING)
    if pages is None:
        todo = listed.withColumn(KNOWN_SHA, F.lit(None).cast("string"))
    else:
        done = done_files(pages, recognizer, reprocess=reprocess, retry_errors=retry_errors, segmenter=segmenter)
        joined = listed.join(done, "path", "left")
        same_metadata = (F.col("length") == F.col("done_length")) & F.col("modificationTime").eqNullSafe(
            F.col("done_modified")
        )
        todo = joined.where(F.col("done").isNull() | ~F.coalesce(same_metadata, F.lit(False))).select(
            *_LISTING, F.col("done_sha").alias(KNOWN_SHA)
        )
    todo = todo.cache()
    to_process = todo.count()
    return FilePlan(todo=todo, listed=listed.count(), to_process=to_process)


def drop_unchanged_content(files: DataFrame, todo: DataFrame, max_bytes: int = DecodeLimits.max_bytes) -> DataFrame:
    """Step 2: ``files`` (with ``content``) limited to ``todo``'s paths, minus files whose bytes are unchanged.

    Files over ``max_bytes`` are listed, not read (their content is null; BinaryToImage
    reports them): hashing them would make Spark read them, and fail the whole job on
    one over 2 GiB.
    """
    files = without_oversized_content(files, "content", max_bytes)
    joined = files.join(todo.select("path", KNOWN_SHA), "path", "inner")
    unchanged = F.col(KNOWN_SHA).isNotNull() & (F.sha2(F.col("content"), 256) == F.col(KNOWN_SHA))
    return joined.where(~unchanged).drop(KNOWN_SHA)

