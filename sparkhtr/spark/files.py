"""Reading input files: Spark's ``binaryFile`` source, plus the files it silently drops.

Spark's file scan skips zero-length files, so a truncated-to-nothing upload would
vanish without a trace. :func:`read_binary_files` adds them back as rows with empty
``content``, which :class:`~sparkhtr.spark.binary_to_image.BinaryToImage` turns into
error rows: every input file is accounted for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType


def scan_path(listed: str) -> str:
    """A path as ``inputFiles()`` lists it (URI-encoded, ``file:///x``) spelt as the scan's ``path`` column.

    >>> scan_path("file:///data/two%20pages.tif")
    'file:/data/two pages.tif'
    """
    return re.sub(r"^file:/+", "file:/", unquote(listed))


_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def literal_path(path: str) -> str:
    r"""``path`` with Hadoop glob characters escaped, so loading it reads exactly that file.

    Spark globs every path it loads: a scan named ``a[1].png`` would otherwise look
    for ``a1.png``.

    >>> print(literal_path("file:/scans/box {2}/p[1]*.png"))
    file:/scans/box \{2\}/p\[1\]\*.png
    """
    return _GLOB_CHARS.sub(r"\\\1", path)


def read_binary_files(spark: SparkSession, inputs: Sequence[str], glob: str | None = None) -> DataFrame:
    """``binaryFile`` rows (path, modificationTime, length, content) of every file under ``inputs``.

    Folders are read recursively; ``glob`` filters file names (``pathGlobFilter``).
    Zero-length files, which the scan skips, are included with empty ``content``.
    """
    reader = spark.read.format("binaryFile").option("recursiveFileLookup", "true")
    if glob:
        reader = reader.option("pathGlobFilter", glob)
    return with_empty_files(reader.load(list(inputs)))


def read_listed_files(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """``binaryFile`` rows of exactly ``paths`` (as the scan's ``path`` column spells them), empty files included.

    Used to read the content of only the files a rerun must process, not the whole input.
    """
    return with_empty_files(spark.read.format("binaryFile").load([literal_path(p) for p in paths]))


def with_empty_files(files: DataFrame, listed: Sequence[str] | None = None) -> DataFrame:
    """``files`` (a ``binaryFile`` scan) plus a row with empty ``content`` for each zero-length file it skipped.

    ``listed`` is every file the scan was given, as URIs; by default the scan's own
    file index (``inputFiles()``), which lists empty files too.
    """
    spark = files.sparkSession
    if listed is None:
        listed = files.inputFiles()
    if not listed:
        return files
    listing = spark.createDataFrame([(scan_path(p),) for p in listed], StructType([StructField("path", StringType())]))
    missing = listing.join(files.select("path"), "path", "left_anti")
    empty = missing.select(
        "path",
        F.lit(None).cast(files.schema["modificationTime"].dataType).alias("modificationTime"),
        F.lit(0).cast(files.schema["length"].dataType).alias("length"),
        F.lit(b"").cast("binary").alias("content"),
    )
    return files.unionByName(empty)
