"""delta-rs backend of :mod:`sparkhtr.io.delta`: Spark writes Parquet, delta-rs commits.

Used where the Delta jar is not on the classpath. A Spark 4 Python Data Source
(:class:`DeltaDataSource`, format ``"sparkhtr_delta"``) receives Arrow batches in
each task, writes them as Parquet files into the table folder and returns their
Delta ``add`` metadata (size, partition values, statistics). The driver-side
``commit`` turns all tasks' files into ONE Delta transaction through delta-rs;
``abort`` deletes them, so a failed job leaves the table as it was.

Spark runs ``commit`` and ``abort`` in a separate Python worker, not in the
driver's process: nothing computed there can be returned directly. The commit
therefore records the write id and row count in the Delta commit info, where
:func:`rows_written` finds them.

This module is private; use :mod:`sparkhtr.io.delta`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import posixpath
import re
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake import Field as DeltaField
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions
from pyspark.sql import SparkSession
from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from sparkhtr.errors import TableError

FORMAT_NAME = "sparkhtr_delta"
"""Short name the data source is registered under (``df.write.format(FORMAT_NAME)``)."""

WRITE_ID_KEY = "sparkhtr.writeId"
ROWS_KEY = "sparkhtr.numRecords"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# Delta (and Spark's Delta writer) truncate string statistics to a 32-character prefix.
STRING_STATS_PREFIX = 32
# abort sweeps the table folder again until it stays clean this long (at most ABORT_SWEEP_LIMIT s):
# Spark fails the job at the first failed task while its siblings are still being killed, and a
# sibling that finishes its file in that moment reports to no one
ABORT_QUIET_SECONDS = 1.0
ABORT_SWEEP_LIMIT = 10.0
PARTITION_TYPES = (StringType, ByteType, ShortType, IntegerType, LongType, BooleanType, DateType)

# Spark's ExternalCatalogUtils.escapePathName set: Spark's partition discovery
# unescapes exactly these, so directories written here read back as Spark's own.
_ESCAPED_CHARS = frozenset("\"#%'*/:=?\\\x7f{[]^") | frozenset(chr(c) for c in range(1, 0x20))

# ---------------------------------------------------------------------------
# schemas: a Spark StructType's JSON *is* a Delta schema string (same format)
# ---------------------------------------------------------------------------


def as_nullable(data_type: DataType) -> DataType:
    """Return ``data_type`` with every field, element and value nullable.

    Delta's own DataFrame writer stores tables this way, so Spark-inferred
    NOT NULL flags (literals, ``range``) never make two writes incompatible.

    >>> as_nullable(StructType([StructField("a", ArrayType(LongType(), False), False)])).simpleString()
    'struct<a:array<bigint>>'
    >>> as_nullable(StructType([StructField("a", LongType(), False)])).fields[0].nullable
    True
    """
    if isinstance(data_type, StructType):
        return StructType([StructField(f.name, as_nullable(f.dataType), True, f.metadata) for f in data_type.fields])
    if isinstance(data_type, ArrayType):
        return ArrayType(as_nullable(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(as_nullable(data_type.keyType), as_nullable(data_type.valueType), True)
    return data_type


def schema_diff(table: StructType, data: StructType) -> tuple[list[str], list[StructField]]:
    """Compare a DataFrame's schema with a table's, ignoring nullability and column order.

    Returns the problems (missing columns, changed types) and the data's new columns.

    >>> t = StructType([StructField("a", LongType()), StructField("b", StringType())])
    >>> d = StructType([StructField("b", IntegerType()), StructField("c", StringType())])
    >>> problems, new = schema_diff(t, d)
    >>> problems
    ['missing column a bigint', 'column b: table has string, data has int']
    >>> [f.name for f in new]
    ['c']
    """
    data_types = {f.name: f.dataType.simpleString() for f in data.fields}
    problems = []
    for f in table.fields:
        table_type = f.dataType.simpleString()
        if f.name not in data_types:
            problems.append(f"missing column {f.name} {table_type}")
        elif data_types[f.name] != table_type:
            problems.append(f"column {f.name}: table has {table_type}, data has {data_types[f.name]}")
    table_names = set(table.fieldNames())
    return problems, [f for f in data.fields if f.name not in table_names]


def to_delta_schema(schema: StructType) -> DeltaSchema:
    """Convert a Spark schema to a delta-rs schema (through the shared JSON format)."""
    try:
        return DeltaSchema.from_json(schema.json())
    except Exception as exc:  # delta-rs raises its own errors for types Delta lacks
        raise TableError(f"schema cannot be stored in Delta: {schema.simpleString()}: {exc}") from exc


def spark_schema(table: DeltaTable) -> StructType:
    """Return a Delta table's schema as a Spark ``StructType``."""
    return StructType.fromJson(json.loads(table.schema().to_json()))


# ---------------------------------------------------------------------------
# paths and partition values
# ---------------------------------------------------------------------------


def escape_path_name(value: str) -> str:
    """Escape a partition column name or value for a directory name, as Spark does.

    >>> escape_path_name("a b/c=d")
    'a b%2Fc%3Dd'
    """
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED_CHARS else c for c in value)


def partition_value(value: Any) -> str | None:
    """Serialise a partition value the way the Delta protocol stores it.

    Empty strings become null, as in Spark's writers (Hive cannot tell them apart).

    >>> [partition_value(v) for v in ("x", "", None, True, 7, _dt.date(2024, 1, 2))]
    ['x', None, None, 'true', '7', '2024-01-02']
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value) or None


def partition_dir(columns: Sequence[str], values: Sequence[str | None]) -> str:
    """Relative Hive-style directory of one partition.

    >>> partition_dir(["kind", "n"], ["a/b", None])
    'kind=a%2Fb/n=__HIVE_DEFAULT_PARTITION__'
    """
    return "/".join(
        f"{escape_path_name(c)}={HIVE_NULL if v is None else escape_path_name(v)}"
        for c, v in zip(columns, values, strict=True)
    )


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """Return the pyarrow filesystem and in-filesystem root of a table path or URI."""
    return pafs.FileSystem.from_uri(path)


# ---------------------------------------------------------------------------
# per-file statistics (Delta's JSON ``stats`` of an add action)
# ---------------------------------------------------------------------------


def _stats_kind(arrow_type: pa.DataType) -> str | None:
    """Which min/max statistics a leaf type gets (None: only its null count)."""
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_date32(arrow_type):
        return "date"
    # timestamp_ntz bounds have no agreed JSON form across Delta readers: leave them out.
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None and arrow_type.unit == "us":
        return "timestamp"
    return None


@dataclass
class _LeafStats:
    kind: str | None
    nulls: int = 0
    low: Any = None
    high: Any = None
    usable: bool = True  # False once a value makes min/max unsafe (NaN)


class FileStats:
    """Accumulates numRecords and per-leaf min/max/nullCount over the batches of one file."""

    def __init__(self) -> None:
        self.num_records = 0
        self._leaves: dict[tuple[str, ...], _LeafStats] = {}

    def update(self, batch: pa.RecordBatch) -> None:
        """Add one batch's rows to the statistics."""
        self.num_records += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            self._update((name,), column)

    def _update(self, path: tuple[str, ...], array: pa.Array) -> None:
        if pa.types.is_struct(array.type):
            # flatten() folds the struct's own nulls into its children, as Delta counts them.
            for child_field, child in zip(array.type, array.flatten(), strict=True):
                self._update((*path, child_field.name), child)
            return
        leaf = self._leaves.setdefault(path, _LeafStats(_stats_kind(array.type)))
        leaf.nulls += array.null_count
        if leaf.kind is None or not leaf.usable or array.null_count == len(array):
            return
        if leaf.kind == "float" and pc.any(pc.is_nan(array)).as_py():
            # Arrow's min/max skip NaN but Spark orders NaN above everything: a bound
            # without it would let readers skip files that match.
            leaf.usable = False
            return
        if leaf.kind in ("date", "timestamp"):
            array = array.cast(pa.int64() if leaf.kind == "timestamp" else pa.int32())
        bounds = pc.min_max(array)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        leaf.low = low if leaf.low is None else min(leaf.low, low)
        leaf.high = high if leaf.high is None else max(leaf.high, high)

    def to_json(self) -> str:
        """The Delta ``stats`` string: numRecords, minValues, maxValues, nullCount."""
        mins: dict[str, Any] = {}
        maxs: dict[str, Any] = {}
        nulls: dict[str, Any] = {}
        for path, leaf in self._leaves.items():
            _nested_set(nulls, path, leaf.nulls)
            if leaf.kind is None or not leaf.usable or leaf.low is None:
                continue
            low, high = _json_bound(leaf.kind, leaf.low, False), _json_bound(leaf.kind, leaf.high, True)
            if low is not None:
                _nested_set(mins, path, low)
            if high is not None:
                _nested_set(maxs, path, high)
        return json.dumps(
            {"numRecords": self.num_records, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
            separators=(",", ":"),
        )


def _nested_set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def _json_bound(kind: str, value: Any, upper: bool) -> Any:
    """A JSON-safe bound, loosened where needed so that it stays a true bound (None: omit it).

    >>> _json_bound("timestamp", 1_000_500, True), _json_bound("timestamp", 1_000_500, False)
    ('1970-01-01T00:00:01.001Z', '1970-01-01T00:00:01.000Z')
    >>> _json_bound("string", "x" * 40, False) == "x" * 32, _json_bound("string", "x" * 40, True)
    (True, None)
    """
    if kind == "float":
        return value if math.isfinite(value) else None
    if kind == "string":
        if len(value) <= STRING_STATS_PREFIX:
            return value
        # A prefix is still a lower bound; a truncated maximum would not be an upper one.
        return None if upper else value[:STRING_STATS_PREFIX]
    if kind == "date":
        return (_dt.date(1970, 1, 1) + _dt.timedelta(days=value)).isoformat()
    if kind == "timestamp":
        # Delta stats carry milliseconds: floor the minimum, ceil the maximum.
        millis = -(-value // 1000) if upper else value // 1000
        stamp = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=millis)
        return stamp.isoformat(timespec="milliseconds") + "Z"
    return value


# ---------------------------------------------------------------------------
# the Python data source
# ---------------------------------------------------------------------------


@dataclass
class AddedFile:
    """One Parquet file a task wrote: the fields of a Delta ``add`` action."""

    path: str  # relative to the table root, unescaped (delta-rs URL-encodes it in the log)
    size: int
    partition_values: dict[str, str | None]
    modification_time: int
    stats: str
    num_records: int


@dataclass
class DeltaCommitMessage(WriterCommitMessage):
    """What one task sends to the driver's commit: the files it wrote."""

    files: list[AddedFile] = field(default_factory=list)


class _OpenFile:
    """A Parquet file being written by one task, with its running statistics."""

    def __init__(self, fs: pafs.FileSystem, root: str, relpath: str, schema: pa.Schema, values: dict) -> None:
        self.fs, self.relpath, self.partition_values = fs, relpath, values
        self.full_path = f"{root.rstrip('/')}/{relpath}"
        self.fs.create_dir(posixpath.dirname(self.full_path), recursive=True)
        self.writer: pq.ParquetWriter | None = pq.ParquetWriter(self.full_path, schema, filesystem=fs)
        self.stats = FileStats()

    def write(self, batch: pa.RecordBatch) -> None:
        assert self.writer is not None
        self.writer.write_batch(batch)
        self.stats.update(batch)

    def close(self) -> AddedFile:
        assert self.writer is not None
        self.writer.close()
        self.writer = None
        info = self.fs.get_file_info(self.full_path)
        mtime = info.mtime_ns // 1_000_000 if info.mtime_ns else int(time.time() * 1000)
        return AddedFile(
            self.relpath, info.size, self.partition_values, mtime, self.stats.to_json(), self.stats.num_records
        )

    def discard(self) -> None:
        """Close and delete the file; used when the task fails half-way."""
        try:
            if self.writer is not None:
                self.writer.close()
        finally:
            _delete_quietly(self.fs, self.full_path)


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    # OSError covers a file already gone: the cleanup's goal is reached either way.
    with contextlib.suppress(OSError):
        fs.delete_file(path)


@dataclass
class WriteSpec:
    """Everything a task and the commit need, built on the driver and passed as options."""

    path: str
    table_schema: StructType  # the schema the table has after this write (nullable)
    partition_by: list[str]
    write_id: str
    merge_schema: bool

    @classmethod
    def from_options(cls, options: Mapping[str, str], data_schema: StructType) -> WriteSpec:
        """Read the options :func:`sparkhtr.io.delta.write_delta` sets (defaults for direct use)."""
        schema_json = options.get("tableSchema")
        schema = StructType.fromJson(json.loads(schema_json)) if schema_json else as_nullable(data_schema)
        assert isinstance(schema, StructType)
        return cls(
            path=options["path"],
            table_schema=schema,
            partition_by=json.loads(options.get("partitionBy") or "[]"),
            write_id=options.get("writeId") or uuid.uuid4().hex,
            merge_schema=(options.get("mergeSchema") or "false").lower() == "true",
        )

    def to_options(self) -> dict[str, str]:
        """The options that rebuild this spec in :meth:`from_options`."""
        return {
            "tableSchema": self.table_schema.json(),
            "partitionBy": json.dumps(self.partition_by),
            "writeId": self.write_id,
            "mergeSchema": str(self.merge_schema).lower(),
        }


class DeltaDataSource(DataSource):
    """Write-only Spark data source that appends to / overwrites a Delta table via delta-rs."""

    @classmethod
    def name(cls) -> str:
        """The format name, ``sparkhtr_delta``."""
        return FORMAT_NAME

    def writer(self, schema: StructType, overwrite: bool) -> DeltaArrowWriter:
        """Return the writer Spark pickles to each task and to the commit worker."""
        return DeltaArrowWriter(WriteSpec.from_options(self.options, schema), overwrite)


class DeltaArrowWriter(DataSourceArrowWriter):
    """Tasks write Parquet files; commit makes them one Delta version; abort deletes them."""

    def __init__(self, spec: WriteSpec, overwrite: bool) -> None:
        self.spec = spec
        self.overwrite = overwrite

    def write(self, iterator: Iterator[pa.RecordBatch]) -> DeltaCommitMessage:
        """Write this task's batches: one Parquet file per partition value."""
        from pyspark import TaskContext
        from pyspark.sql.pandas.types import to_arrow_schema

        spec = self.spec
        context = TaskContext.get()
        task = context.partitionId() if context else 0
        data_fields = [f for f in spec.table_schema.fields if f.name not in spec.partition_by]
        file_schema = to_arrow_schema(StructType(data_fields), timezone="UTC")
        fs, root = filesystem(spec.path)
        open_files: dict[tuple[str | None, ...], _OpenFile] = {}
        try:
            for batch in iterator:
                for key, part in _split(batch, spec.partition_by):
                    handle = open_files.get(key)
                    if handle is None:
                        # The write id in every name lets abort find files of killed tasks too.
                        name = f"part-{task:05d}-{spec.write_id}-{uuid.uuid4().hex[:12]}.c000.snappy.parquet"
                        folder = partition_dir(spec.partition_by, key)
                        relpath = f"{folder}/{name}" if folder else name
                        values = dict(zip(spec.partition_by, key, strict=True))
                        handle = open_files[key] = _OpenFile(fs, root, relpath, file_schema, values)
                    # Cast: Spark sends NOT NULL flags and the session time zone; files keep the table's types.
                    handle.write(part.select(file_schema.names).cast(file_schema))
            return DeltaCommitMessage([handle.close() for handle in open_files.values()])
        except BaseException:
            for handle in open_files.values():
                handle.discard()
            raise

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        """Commit every task's files as one Delta version (runs in a Python worker)."""
        spec = self.spec
        files = [f for m in messages if isinstance(m, DeltaCommitMessage) for f in m.files]
        actions = [AddAction(f.path, f.size, f.partition_values, f.modification_time, True, f.stats) for f in files]
        rows = sum(f.num_records for f in files)
        props = CommitProperties(custom_metadata={WRITE_ID_KEY: spec.write_id, ROWS_KEY: rows})
        delta_schema = to_delta_schema(spec.table_schema)
        if not DeltaTable.is_deltatable(spec.path):
            create_table_with_add_actions(
                spec.path, delta_schema, actions, mode="error", partition_by=spec.partition_by, commit_properties=props
            )
            return
        table = DeltaTable(spec.path)
        # Checked again here: the table may have changed since the driver validated.
        problems, new_fields = schema_diff(spark_schema(table), spec.table_schema)
        if new_fields and not spec.merge_schema:
            problems.append("new columns " + ", ".join(f.name for f in new_fields))
        if table.metadata().partition_columns != spec.partition_by:
            problems.append(f"partitioned by {table.metadata().partition_columns}, not {spec.partition_by}")
        if problems:
            raise TableError(f"Delta table {spec.path} changed during the write: " + "; ".join(problems))
        if not actions and not self.overwrite:
            return  # appending nothing: no empty version
        if new_fields and not self.overwrite:
            # delta-rs keeps the old schema on append: add the columns first (a version of its own).
            table.alter.add_columns([DeltaField.from_json(json.dumps(f.jsonValue())) for f in new_fields])
            table = DeltaTable(spec.path)
        # Overwrite replaces the schema in the same version; this call must stay the last
        # statement: Spark calls abort (deleting the files) if commit raises.
        table.create_write_transaction(
            actions,
            "overwrite" if self.overwrite else "append",
            delta_schema,
            partition_by=spec.partition_by,
            commit_properties=props,
        )

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        """Delete the files of this write (tasks that failed or were killed return no message).

        The folder is swept for files named with this write's id until no new one has
        appeared for ``ABORT_QUIET_SECONDS``: a task still running when the job failed may
        finish its file after the first sweep.
        """
        fs, root = filesystem(self.spec.path)
        root = root.rstrip("/")
        for path in {f"{root}/{f.path}" for m in messages if isinstance(m, DeltaCommitMessage) for f in m.files}:
            _delete_quietly(fs, path)
        deadline = time.monotonic() + ABORT_SWEEP_LIMIT
        quiet_since = time.monotonic()
        while True:
            found = self._files_of_this_write(fs, root)
            for path in found:
                _delete_quietly(fs, path)
            now = time.monotonic()
            if found:
                quiet_since = now
            if now - quiet_since >= ABORT_QUIET_SECONDS or now >= deadline:
                return
            time.sleep(0.1)

    def _files_of_this_write(self, fs: pafs.FileSystem, root: str) -> list[str]:
        """Data files under ``root`` whose names carry this write's id."""
        try:
            listing = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
        except OSError:
            return []
        return [
            info.path
            for info in listing
            if info.type == pafs.FileType.File
            and self.spec.write_id in posixpath.basename(info.path)
            and "/_delta_log/" not in info.path
        ]


def _split(batch: pa.RecordBatch, columns: Sequence[str]) -> Iterator[tuple[tuple[str | None, ...], pa.RecordBatch]]:
    """Split a batch by its partition columns' serialised values."""
    if not columns:
        yield (), batch
        return
    keys = zip(*(batch.column(c).to_pylist() for c in columns), strict=True)
    rows: dict[tuple[str | None, ...], list[int]] = {}
    for index, key in enumerate(keys):
        rows.setdefault(tuple(partition_value(v) for v in key), []).append(index)
    if len(rows) == 1:
        yield next(iter(rows)), batch
        return
    for key, indices in rows.items():
        yield key, batch.take(pa.array(indices, pa.int64()))


# ---------------------------------------------------------------------------
# driver helpers
# ---------------------------------------------------------------------------

_registered: weakref.WeakSet[SparkSession] = weakref.WeakSet()


def ensure_registered(spark: SparkSession) -> None:
    """Register :class:`DeltaDataSource` with the session, once per session."""
    if spark not in _registered:
        spark.dataSource.register(DeltaDataSource)
        _registered.add(spark)


def rows_written(path: str, write_id: str, history: int = 20) -> int:
    """Rows committed by the write ``write_id`` (0 when it committed nothing)."""
    for entry in DeltaTable(path).history(history):
        if entry.get(WRITE_ID_KEY) == write_id:
            return int(entry.get(ROWS_KEY, 0))
    return 0


def quoted(name: str) -> str:
    """A column name quoted for ``DataFrame.select`` (dots and spaces are names, not paths).

    >>> quoted("a.b`c")
    '`a.b``c`'
    """
    return "`" + name.replace("`", "``") + "`"


def check_readable(table: DeltaTable, path: str) -> None:
    """Refuse tables whose Parquet files alone do not give the rows (Spark reads the files directly)."""
    mapping = table.metadata().configuration.get("delta.columnMapping.mode") or "none"
    if mapping != "none":
        raise TableError(f"Delta table {path} uses column mapping ({mapping}); it needs the Delta jar to read")
    if "deletionVectors" in (table.protocol().reader_features or []) and table.deletion_vectors().read_all().num_rows:
        raise TableError(f"Delta table {path} has deletion vectors; it needs the Delta jar to read")


def normalize_path(path: str | os.PathLike[str]) -> str:
    """Absolute local path for local tables (``file:`` URIs included), other URIs unchanged.

    Tasks and the commit worker may run in another working directory, and Spark's
    reader must see the same spelling as delta-rs' file list.

    >>> normalize_path("s3://bucket/t"), normalize_path("file:///tmp/a%20b")
    ('s3://bucket/t', '/tmp/a b')
    """
    text = os.fspath(path)
    if text.startswith("file:"):
        return os.path.abspath(urllib.parse.unquote(urllib.parse.urlparse(text).path))
    return text if "://" in text else os.path.abspath(text)


# ---------------------------------------------------------------------------
# MERGE: replace whole groups of rows (e.g. every row of one input file)
# ---------------------------------------------------------------------------

DELETE_FLAG = "__sparkhtr_delete"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _sql_name(name: str) -> str:
    """A column name usable unquoted in delta-rs merge expressions (TableError otherwise)."""
    if not _IDENTIFIER.match(name):
        raise TableError(f"column {name!r} cannot be used in a merge; use letters, digits and underscores")
    return name


def merge_source(
    data: pa.Table, existing_keys: pa.Table, keys: Sequence[str], delete_flag: str = DELETE_FLAG
) -> pa.Table:
    """``data`` plus one delete-marked row per key of ``existing_keys`` that ``data`` lacks.

    The flag column tells the MERGE which source rows are deletions of stale target
    rows (a page that lost lines, a file that lost pages).

    >>> data = pa.table({"k": [1], "v": ["new"]})
    >>> merge_source(data, pa.table({"k": [1, 2]}), ["k"]).to_pylist()
    [{'k': 1, 'v': 'new', '__sparkhtr_delete': False}, {'k': 2, 'v': None, '__sparkhtr_delete': True}]
    """
    stale = existing_keys.select(list(keys)).join(data.select(list(keys)), list(keys), join_type="left anti")
    columns = {
        f.name: stale.column(f.name).cast(f.type) if f.name in keys else pa.nulls(stale.num_rows, f.type)
        for f in data.schema
    }
    deletions = pa.table(columns, schema=data.schema)
    flagged = [
        t.append_column(delete_flag, pa.array([flag] * t.num_rows, pa.bool_()))
        for t, flag in ((data, False), (deletions, True))
    ]
    return pa.concat_tables(flagged).combine_chunks()


def _keys_of_groups(
    table: DeltaTable, schema: pa.Schema, keys: Sequence[str], group_column: str, groups: Sequence[Any]
) -> pa.Table:
    """The key columns of the table's rows in ``groups``, through delta-rs' own query engine (DataFusion).

    DataFusion prunes files on statistics; a plain pyarrow dataset cannot, since
    files written by delta-rs' MERGE hold ``string_view`` columns beside Spark's ``string``.
    """
    from deltalake import QueryBuilder

    columns = ", ".join(f'"{_sql_name(k)}"' for k in keys)
    parts = [schema.empty_table().select(list(keys))]
    values = list(groups)
    for start in range(0, len(values), 5000):
        listed = ", ".join(_sql_literal(v) for v in values[start:start + 5000])
        sql = f'SELECT {columns} FROM t WHERE "{_sql_name(group_column)}" IN ({listed})'
        found = pa.table(QueryBuilder().register("t", table).execute(sql).read_all())
        parts.append(found.cast(pa.schema([schema.field(k) for k in keys])))
    return pa.concat_tables(parts)


def _sql_literal(value: Any) -> str:
    """A SQL literal of a group value (strings quoted, quotes doubled).

    >>> _sql_literal("it's"), _sql_literal(3)
    ("'it''s'", '3')
    """
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TableError(f"group values must be strings or integers, not {type(value).__name__}")
    return str(value)


def replace_groups(
    location: str, data: pa.Table, keys: Sequence[str], group_column: str, groups: Sequence[Any]
) -> dict[str, int]:
    """Make the rows of ``groups`` in the table exactly ``data``'s rows for them, in ONE Delta version.

    Rows are matched on ``keys``: matches are updated, new keys inserted, and target
    rows of a listed group whose key is not in ``data`` deleted. ``data`` must have
    the table's columns (cast to its Arrow types here). Returns delta-rs' merge
    metrics (``num_target_rows_inserted``/``updated``/``deleted``).
    """
    table = DeltaTable(location)
    target_schema = pa.schema(table.schema().to_arrow())
    data = data.select(target_schema.names).cast(target_schema)
    existing = _keys_of_groups(table, target_schema, keys, group_column, groups)
    if existing.num_rows == 0:
        # Nothing of these groups in the table (new files): a plain append is the same
        # result in one version, without MERGE's scan and rewrite of the target's files.
        if data.num_rows:
            write_deltalake(table, data, mode="append")
        return {"num_target_rows_inserted": data.num_rows, "num_target_rows_updated": 0,
                "num_target_rows_deleted": 0}
    source = merge_source(data, existing, keys)
    predicate = " AND ".join(f"t.{_sql_name(k)} = s.{_sql_name(k)}" for k in keys)
    assignments = {_sql_name(name): f"s.{name}" for name in target_schema.names}
    metrics = (
        table.merge(source, predicate, source_alias="s", target_alias="t")
        .when_matched_delete(f"s.{DELETE_FLAG}")
        .when_matched_update(assignments, f"NOT s.{DELETE_FLAG}")
        .when_not_matched_insert(assignments, f"NOT s.{DELETE_FLAG}")
        .execute()
    )
    return {k: int(v) for k, v in metrics.items() if k.startswith("num_")}
