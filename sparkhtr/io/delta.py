"""Delta tables with or without the Delta jar: one small facade over two backends.

* ``native``: the Delta jar is on the classpath and the session is configured
  for it (Databricks, clusters started with ``--packages io.delta:...``):
  ``df.write.format("delta")`` and ``spark.read.format("delta")``.
* ``delta-rs``: everywhere else. Spark tasks write Parquet through a Python Data
  Source and delta-rs commits them as one Delta version
  (:mod:`sparkhtr.io._delta_rs`); reads hand the snapshot's file list to Spark's
  own Parquet reader.

Both backends check schemas the same way before writing: a DataFrame must have
the table's columns and types (nullability and column order do not matter);
new columns need ``merge_schema=True``. A DataFrame from :func:`read_delta`
(and a view from :func:`register_tables`) is a snapshot on the delta-rs
backend: read again after a write to see it.

Force a backend with the Spark conf ``spark.sparkhtr.delta.backend``
(``native`` or ``delta-rs``), e.g. where the Delta classes are built in but the
extension conf is not visible.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
import weakref
from collections.abc import Sequence

import pyarrow.compute as pc
from deltalake import DeltaTable as RsDeltaTable
from deltalake import Field as RsField
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from sparkhtr.errors import TableError
from sparkhtr.io import _delta_rs

__all__ = ["delta_backend", "read_delta", "register_tables", "replace_groups", "table_exists", "write_delta"]

NATIVE = "native"
DELTA_RS = "delta-rs"
BACKEND_CONF = "spark.sparkhtr.delta.backend"
_DELTA_CLASS = "io.delta.tables.DeltaTable"
_DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
_DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
_MODES = ("append", "overwrite")

_backends: weakref.WeakKeyDictionary[SparkSession, str] = weakref.WeakKeyDictionary()


def delta_backend(spark: SparkSession) -> str:
    """``"native"`` when the session can use the Delta jar, else ``"delta-rs"`` (cached per session).

    Native needs all three: the class ``io.delta.tables.DeltaTable`` loads through
    the JVM's context class loader, ``spark.sql.extensions`` names
    ``DeltaSparkSessionExtension`` and ``spark_catalog`` is the ``DeltaCatalog``.
    """
    cached = _backends.get(spark)
    if cached is None:
        forced = (spark.conf.get(BACKEND_CONF, "") or "").strip().lower()
        if forced in (NATIVE, DELTA_RS):
            cached = forced
        else:
            extensions = spark.conf.get("spark.sql.extensions", "") or ""
            catalog = spark.conf.get("spark.sql.catalog.spark_catalog", "") or ""
            configured = _DELTA_EXTENSION in extensions.split(",") and catalog == _DELTA_CATALOG
            cached = NATIVE if configured and _jar_loaded(spark) else DELTA_RS
        _backends[spark] = cached
    return cached


def _jar_loaded(spark: SparkSession) -> bool:
    """Whether the Delta classes load in the driver JVM (True under Spark Connect, which has no py4j)."""
    try:
        jvm = spark.sparkContext._jvm
    except Exception:  # Spark Connect sessions refuse sparkContext
        jvm = None
    if jvm is None:
        return True  # Spark Connect: only the server knows; the conf check above decides
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(_DELTA_CLASS, False, loader)
    except Exception:  # py4j's Py4JJavaError wraps the ClassNotFoundException
        return False
    return True


def table_exists(path: str | os.PathLike[str], spark: SparkSession | None = None) -> bool:
    """Whether ``path`` is the root of a Delta table (through the jar when ``spark`` is native)."""
    location = _delta_rs.normalize_path(path)
    if spark is not None and delta_backend(spark) == NATIVE:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(spark, location))
    return bool(RsDeltaTable.is_deltatable(location))


def write_delta(
    df: DataFrame,
    path: str | os.PathLike[str],
    *,
    mode: str = "append",
    partition_by: Sequence[str] | None = None,
    merge_schema: bool = False,
) -> int:
    """Append ``df`` to, or overwrite, the Delta table at ``path`` (created if missing) in one version.

    Returns the number of rows written (-1 where the native backend does not report it).
    An empty DataFrame creates a missing table with its schema, overwrites an existing
    one with nothing, and appends nothing without creating a version.

    Raises :class:`TableError` when the schema or partitioning differs from the table's;
    ``merge_schema=True`` adds the DataFrame's new columns to the table (on the delta-rs
    backend an append then takes two versions: the added columns, then the rows).
    """
    if mode not in _MODES:
        raise TableError(f"mode must be one of {_MODES}, not {mode!r}")
    spark = df.sparkSession
    location = _delta_rs.normalize_path(path)
    backend = delta_backend(spark)
    data_schema = _delta_rs.as_nullable(df.schema)
    assert isinstance(data_schema, StructType)
    current = _current_table(spark, location, backend)
    if current is None:
        table_schema, partitions = data_schema, list(partition_by or [])
    else:
        existing_schema, existing_partitions = current
        partitions = list(partition_by) if partition_by is not None else existing_partitions
        if partitions != existing_partitions:
            raise TableError(f"Delta table {location} is partitioned by {existing_partitions}, not {partitions}")
        table_schema = _validated_schema(location, existing_schema, data_schema, merge_schema)
    _check_partition_columns(table_schema, partitions)
    # Tasks write columns in the table's order; the files then match its schema.
    df = df.select(*[_delta_rs.quoted(name) for name in table_schema.fieldNames()])
    if backend == NATIVE:
        return _write_native(df, location, mode, partitions, merge_schema)
    return _write_delta_rs(df, location, mode, table_schema, partitions, merge_schema)


def replace_groups(
    df: DataFrame,
    path: str | os.PathLike[str],
    *,
    keys: Sequence[str],
    group_column: str = "path",
    groups: Sequence[object] | None = None,
    merge_schema: bool = False,
) -> dict[str, int]:
    """Make the table's rows of each group in ``groups`` exactly ``df``'s rows, in one Delta version (MERGE).

    This is how reruns stay idempotent: every row of a reprocessed input file is
    replaced, including rows the new result no longer has (a page that lost a
    line, a file that lost a page). Rows match on ``keys``; matches are updated,
    new keys inserted, and the table's rows of a listed group whose key ``df``
    lacks are deleted. ``groups`` defaults to the group values present in ``df``;
    pass them explicitly to clear groups that now have no rows at all. Other
    groups are untouched. A missing table is created. ``df`` must not repeat a key.

    Returns the rows inserted, updated and deleted (``{"inserted", "updated", "deleted"}``).
    On the delta-rs backend ``df`` is collected to the driver as Arrow: callers bound
    its size (the runner merges a bounded number of files at a time).

    >>> replace_groups(lines_df, "out/lines", keys=["path", "page", "line"], groups=paths)  # doctest: +SKIP
    {'inserted': 12, 'updated': 30, 'deleted': 2}
    """
    spark = df.sparkSession
    location = _delta_rs.normalize_path(path)
    backend = delta_backend(spark)
    missing = [k for k in [*keys, group_column] if k not in df.columns]
    if missing:
        raise TableError(f"replace_groups: the data has no column {missing[0]!r}")
    if groups is None:
        groups = [r[0] for r in df.select(group_column).distinct().collect()]
    current = _current_table(spark, location, backend)
    if current is None:
        written = write_delta(df, location, mode="append")
        return {"inserted": written, "updated": 0, "deleted": 0}
    table_schema = _validated_schema(location, current[0], _as_struct(df.schema), merge_schema)
    if len(table_schema.fields) > len(current[0].fields):
        _add_columns(spark, location, backend, table_schema.fields[len(current[0].fields):])
    df = df.select(*[_delta_rs.quoted(name) for name in table_schema.fieldNames()])
    if backend == NATIVE:
        return _replace_native(df, location, list(keys), group_column, list(groups))
    data = df.toArrow()
    duplicates = data.group_by(list(keys)).aggregate([([], "count_all")]).filter(pc.field("count_all") > 1)
    if duplicates.num_rows:
        example = duplicates.slice(0, 1).select(list(keys)).to_pylist()[0]
        raise TableError(f"replace_groups: {duplicates.num_rows} keys repeat in the data, e.g. {example}")
    metrics = _delta_rs.replace_groups(location, data, list(keys), group_column, list(groups))
    return {name: metrics.get(f"num_target_rows_{name}", 0) for name in ("inserted", "updated", "deleted")}


def _as_struct(schema: StructType) -> StructType:
    nullable = _delta_rs.as_nullable(schema)
    assert isinstance(nullable, StructType)
    return nullable


def _add_columns(spark: SparkSession, location: str, backend: str, fields: Sequence[StructField]) -> None:
    """Schema evolution for MERGE: add ``fields`` (nullable) to the table first, as their own version."""
    if backend == NATIVE:
        columns = ", ".join(f"{_delta_rs.quoted(f.name)} {f.dataType.simpleString()}" for f in fields)
        spark.sql(f"ALTER TABLE delta.{_delta_rs.quoted(location)} ADD COLUMNS ({columns})")
        return
    RsDeltaTable(location).alter.add_columns(
        [RsField.from_json(json.dumps(f.jsonValue())) for f in _as_struct(StructType(list(fields))).fields]
    )


def _replace_native(df: DataFrame, location: str, keys: list[str], group_column: str, groups: list[object]) -> dict:
    from delta.tables import DeltaTable

    spark = df.sparkSession
    target = DeltaTable.forPath(spark, location)
    group_type = df.schema[group_column].dataType
    wanted = spark.createDataFrame([(g,) for g in groups], StructType([StructField(group_column, group_type)]))
    existing = target.toDF().join(wanted, group_column, "left_semi").select(*keys)
    stale = existing.join(df.select(*keys), keys, "left_anti")
    flag = _delta_rs.DELETE_FLAG
    source = df.withColumn(flag, F.lit(False)).unionByName(
        stale.withColumn(flag, F.lit(True)), allowMissingColumns=True
    )
    condition = " AND ".join(f"t.{_delta_rs.quoted(k)} = s.{_delta_rs.quoted(k)}" for k in keys)
    assignments = {_delta_rs.quoted(c): f"s.{_delta_rs.quoted(c)}" for c in df.columns}
    (
        target.alias("t").merge(source.alias("s"), condition)
        .whenMatchedDelete(condition=f"s.{flag}")
        .whenMatchedUpdate(condition=f"NOT s.{flag}", set=assignments)
        .whenNotMatchedInsert(condition=f"NOT s.{flag}", values=assignments)
        .execute()
    )
    try:
        metrics = target.history(1).first()["operationMetrics"] or {}
    except Exception:  # metrics are best effort
        metrics = {}
    names = {"inserted": "numTargetRowsInserted", "updated": "numTargetRowsUpdated", "deleted": "numTargetRowsDeleted"}
    return {name: int(metrics.get(key, -1)) for name, key in names.items()}


def _current_table(spark: SparkSession, location: str, backend: str) -> tuple[StructType, list[str]] | None:
    """The existing table's schema and partition columns, or None when there is no table."""
    if not table_exists(location, spark):
        return None
    if backend == NATIVE:
        from delta.tables import DeltaTable

        schema = spark.read.format("delta").load(location).schema
        partitions = DeltaTable.forPath(spark, location).detail().first()["partitionColumns"]
        return schema, list(partitions)
    table = RsDeltaTable(location)
    return _delta_rs.spark_schema(table), list(table.metadata().partition_columns)


def _validated_schema(location: str, table: StructType, data: StructType, merge_schema: bool) -> StructType:
    """The table's schema after the write, or TableError naming what differs."""
    problems, new_fields = _delta_rs.schema_diff(table, data)
    if new_fields and not merge_schema:
        problems.append(
            "new columns "
            + ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in new_fields)
            + " (pass merge_schema=True to add them)"
        )
    if problems:
        raise TableError(f"schema of the data does not match Delta table {location}: " + "; ".join(problems))
    return StructType([*table.fields, *new_fields])


def _check_partition_columns(schema: StructType, partitions: Sequence[str]) -> None:
    types = {f.name: f.dataType for f in schema.fields}
    for name in partitions:
        if name not in types:
            raise TableError(f"partition column {name} is not in the schema {schema.simpleString()}")
        if not isinstance(types[name], _delta_rs.PARTITION_TYPES):
            raise TableError(f"partition column {name} has type {types[name].simpleString()}; use a string or integer")
    if partitions and len(partitions) == len(schema.fields):
        raise TableError("a Delta table needs at least one column that is not a partition column")


def _write_native(df: DataFrame, location: str, mode: str, partitions: list[str], merge_schema: bool) -> int:
    from delta.tables import DeltaTable

    writer = df.write.format("delta").mode(mode).option("mergeSchema", str(merge_schema).lower())
    if partitions:
        writer = writer.partitionBy(*partitions)
    writer.save(location)
    try:
        metrics = DeltaTable.forPath(df.sparkSession, location).history(1).first()["operationMetrics"] or {}
        return int(metrics["numOutputRows"])
    except Exception:  # metrics are best effort (absent for some operations / versions)
        return -1


def _write_delta_rs(
    df: DataFrame, location: str, mode: str, schema: StructType, partitions: list[str], merge_schema: bool
) -> int:
    _delta_rs.ensure_registered(df.sparkSession)
    spec = _delta_rs.WriteSpec(location, schema, partitions, uuid.uuid4().hex, merge_schema)
    try:
        df.write.format(_delta_rs.FORMAT_NAME).mode(mode).options(**spec.to_options()).save(location)
    except Exception as exc:
        # The commit runs in a Python worker: its TableError reaches us as Spark's
        # AnalysisException text. Task failures (the data's own errors) pass unchanged.
        if "sparkhtr.errors.TableError" not in str(exc) and "TableError:" not in str(exc):
            raise
        raise TableError(_last_error_line(str(exc), "TableError:")) from exc
    return _delta_rs.rows_written(location, spec.write_id)


def _last_error_line(text: str, marker: str) -> str:
    """The message after the last ``marker`` in a Python traceback carried in a Spark error.

    >>> _last_error_line("Traceback...\\nsparkhtr.errors.TableError: it changed\\n SQLSTATE: 38000", "TableError:")
    'it changed'
    """
    tail = text.rsplit(marker, 1)[-1]
    return tail.strip().splitlines()[0].strip() if tail.strip() else text


def read_delta(spark: SparkSession, path: str | os.PathLike[str]) -> DataFrame:
    """Read the current version of the Delta table at ``path``; TableError when there is none."""
    location = _delta_rs.normalize_path(path)
    if not table_exists(location, spark):
        raise TableError(f"no Delta table at {location}")
    if delta_backend(spark) == NATIVE:
        return spark.read.format("delta").load(location)
    table = RsDeltaTable(location)
    _delta_rs.check_readable(table, location)
    schema = _delta_rs.spark_schema(table)
    files = table.file_uris()
    if not files:
        return spark.createDataFrame([], schema)
    # Spark's own Parquet reader; basePath turns the partition folders back into columns.
    df = spark.read.schema(schema).option("basePath", location).parquet(*files)
    # Spark puts partition columns last; keep the table's order.
    return df.select(*[_delta_rs.quoted(name) for name in schema.fieldNames()])


def register_tables(
    spark: SparkSession,
    tables_dir: str | os.PathLike[str],
    names: Sequence[str] = ("pages", "lines", "runs"),
    *,
    catalog_schema: str | None = None,
) -> list[str]:
    """Register each existing ``tables_dir/<name>`` Delta table for SQL; return the names registered.

    By default as temp views (no metastore needed; re-registering after a write
    refreshes the delta-rs snapshot). With ``catalog_schema`` on the native backend,
    as catalog tables ``<catalog_schema>.<name>`` (``CREATE TABLE … USING delta
    LOCATION …``, the schema created if missing) that other sessions and BI tools
    see; the names returned are then qualified. The delta-rs backend has no catalog
    integration and ignores ``catalog_schema`` (temp views).
    """
    root = _delta_rs.normalize_path(tables_dir)
    join = posixpath.join if "://" in root else os.path.join
    native_catalog = bool(catalog_schema) and delta_backend(spark) == NATIVE
    if native_catalog:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {_delta_rs.quoted(str(catalog_schema))}")
    registered = []
    for name in names:
        location = join(root, name)
        if not table_exists(location, spark):
            continue
        if native_catalog:
            qualified = f"{_delta_rs.quoted(str(catalog_schema))}.{_delta_rs.quoted(name)}"
            literal = location.replace("\\", "\\\\").replace("'", "\\'")
            spark.sql(f"CREATE TABLE IF NOT EXISTS {qualified} USING delta LOCATION '{literal}'")
            registered.append(f"{catalog_schema}.{name}")
        else:
            read_delta(spark, location).createOrReplaceTempView(name)
            registered.append(name)
    return registered
