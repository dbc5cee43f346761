"""Reading input files: Spark's ``binaryFile`` source, plus the files it silently drops.

Spark's file scan skips, without a word:

* zero-length files: :func:`read_binary_files` adds them back as rows with empty
  ``content``, which :class:`~sparkhtr.spark.binary_to_image.BinaryToImage` turns
  into error rows;
* files whose names start with ``.`` or ``_`` (Hadoop's "hidden" files) and, on
  local disks, names that are not valid UTF-8 (the JVM cannot open them): on local
  file systems these are found with ``os.walk`` and read by the Python workers
  themselves (:func:`local_files_spark_skips`); a non-UTF-8 name is shown with
  ``\\x..`` escapes. Folders whose names start with ``.`` or ``_`` are not inputs,
  as in Spark (``_checkpoints``, ``.git``). On remote stores (``s3a://`` …) hidden
  files are still skipped by Spark: name scans without a leading ``.`` or ``_``.

Every other input file is accounted for: a row per page, or an error row.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlparse

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType, TimestampType

from sparkhtr.core.decode import DecodeLimits

# Files read by the Python workers themselves are capped like BinaryToImage's default maxBytes;
# a bigger one keeps its length and null content, and becomes an error row there.
LOCAL_READ_MAX_BYTES = DecodeLimits.max_bytes


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
    files = with_empty_files(reader.load([_as_loaded(root) for root in inputs]))
    skipped = [f for root in inputs for f in local_files_spark_skips(root, glob)]
    return files.unionByName(read_local_files(spark, skipped)) if skipped else files


def _as_loaded(root: str) -> str:
    """An input as Spark must be given it: a local path that exists is literal (``box [1]/``), else a glob.

    >>> _as_loaded("/nonexistent/*.png")
    '/nonexistent/*.png'
    """
    local = _local_root(root)
    return literal_path(root) if local is not None and os.path.exists(local) else root


def read_listed_files(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """``binaryFile`` rows of exactly ``paths`` (as the scan's ``path`` column spells them), empty files included.

    Used to read the content of only the files a rerun must process, not the whole input.
    """
    local = [f for f in _local_files_named(paths)]
    named_locally = {f.path for f in local}
    scanned = [p for p in paths if p not in named_locally]
    files = with_empty_files(spark.read.format("binaryFile").load([literal_path(p) for p in scanned])) if scanned \
        else read_local_files(spark, [])
    return files.unionByName(read_local_files(spark, local)) if local else files


@dataclass(frozen=True)
class LocalFile:
    """A local file Spark's scan skips: its ``path`` as the tables spell it and its name as the OS has it."""

    path: str
    os_path: bytes
    length: int
    modified: datetime


def spark_skips(name: bytes) -> bool:
    """Whether Spark's file index skips a file of this name (hidden, or not valid UTF-8).

    >>> spark_skips(b"_scan.png"), spark_skips(b".scan.png"), spark_skips(b"scan\\xe9.png"), spark_skips(b"a.png")
    (True, True, True, False)
    """
    if name.startswith((b".", b"_")):
        return True
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _table_path(os_path: bytes) -> str:
    """``file:`` path as the scan would spell it; bytes that are not UTF-8 as ``\\xNN`` escapes."""
    return "file:" + os_path.decode("utf-8", "backslashreplace")


def _local_root(root: str) -> bytes | None:
    if root.startswith("file:"):
        return os.fsencode(unquote(urlparse(root).path))
    return None if "://" in root else os.fsencode(os.path.abspath(root))


def _stat(os_path: bytes) -> LocalFile:
    st = os.stat(os_path)
    modified = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=st.st_mtime_ns // 1000)
    return LocalFile(_table_path(os_path), os_path, st.st_size, modified)


def local_files_spark_skips(root: str, glob: str | None = None) -> list[LocalFile]:
    """The files under a local ``root`` that Spark's ``binaryFile`` scan skips (see :func:`spark_skips`).

    Folders Spark does not enter (names starting with ``.`` or ``_``) are not walked.
    Remote roots return nothing.
    """
    top = _local_root(root)
    if top is None or not os.path.exists(top):
        return []
    if os.path.isfile(top):
        name = os.path.basename(top)
        return [_stat(top)] if spark_skips(name) and _matches(name, glob) else []
    found = []
    for folder, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith((b".", b"_"))]
        for name in names:
            full = os.path.join(folder, name)
            if spark_skips(name) and _matches(name, glob) and os.path.isfile(full):
                found.append(_stat(full))
    return found


def _matches(name: bytes, glob: str | None) -> bool:
    return glob is None or fnmatch.fnmatchcase(name.decode("utf-8", "backslashreplace"), glob)


def _local_files_named(paths: Sequence[str]) -> Iterator[LocalFile]:
    """The local files among ``paths`` (table spelling) that Spark's scan would skip."""
    by_folder: dict[bytes, dict[str, bytes]] = {}
    for path in paths:
        os_path = _local_root(path)
        if os_path is None or not spark_skips(os.path.basename(os_path)):
            continue
        if os.path.isfile(os_path):
            yield _stat(os_path)
            continue
        # A name that is not UTF-8 is spelt with escapes: find it among its folder's names.
        folder = os.path.dirname(os_path)
        if folder not in by_folder:
            listed = os.listdir(folder) if os.path.isdir(folder) else []
            by_folder[folder] = {_table_path(os.path.join(folder, n)): os.path.join(folder, n) for n in listed}
        if path in by_folder[folder]:
            yield _stat(by_folder[folder][path])


_LOCAL_SCHEMA = StructType([
    StructField("path", StringType(), False),
    StructField("modificationTime", TimestampType(), True),
    StructField("length", LongType(), True),
    StructField("os_path", BinaryType(), True),
])


def read_local_files(spark: SparkSession, files: Sequence[LocalFile]) -> DataFrame:
    """``binaryFile``-shaped rows of local ``files``, their content read by the Python workers."""
    listed = spark.createDataFrame([(f.path, f.modified, f.length, f.os_path) for f in files], _LOCAL_SCHEMA)
    out_schema = StructType([*_LOCAL_SCHEMA.fields[:3], StructField("content", BinaryType(), True)])

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            contents = []
            lengths = batch.column("length").to_pylist()
            for os_path, length in zip(batch.column("os_path").to_pylist(), lengths, strict=True):
                try:
                    if length is not None and length > LOCAL_READ_MAX_BYTES:
                        contents.append(None)  # BinaryToImage reports the size
                        continue
                    with open(os_path, "rb") as fh:
                        contents.append(fh.read(LOCAL_READ_MAX_BYTES + 1))
                except OSError:
                    contents.append(b"")  # vanished or unreadable: an error row, not a failed task
            yield pa.RecordBatch.from_arrays(
                [batch.column("path"), batch.column("modificationTime"), batch.column("length"),
                 pa.array(contents, pa.binary())], names=["path", "modificationTime", "length", "content"])

    return listed.mapInArrow(read, out_schema)


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


def without_oversized_content(files: DataFrame, content_col: str, max_bytes: int) -> DataFrame:
    """``files`` with null content for the files over ``max_bytes`` (or of unknown length), which are never read.

    binaryFile evaluates filters on ``length`` before it opens a file, and reads no
    content where none is selected: the files within the limit are read as usual, the
    others are listed only. Without this a file over 2 GiB fails the whole job
    (``FAILED_READ_FILE``: its length exceeds the max length allowed), and one over
    ``max_bytes`` is read whole and shipped to Python only to be rejected. A null
    ``length`` (never from binaryFile) cannot be filtered before reading: such rows get
    no content, and an error row.
    """
    length = F.col("length")
    within = files.where(length <= max_bytes)
    beyond = files.where(~(length <= max_bytes) | length.isNull())
    return within.unionByName(beyond.withColumn(content_col, F.lit(None).cast(BinaryType())))
