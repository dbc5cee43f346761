"""Spark schemas of the columns sparkhtr stages add, and the output tables.

Images travel between stages as ``struct<height, width, channels, data>`` with raw
uint8 pixels (row-major), like Spark's own image source, so no stage pays for
re-encoding. Line rows carry only small crops. Nested fields are nullable: an error
row's null struct has null children in Arrow, which a non-nullable child refuses.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

IMAGE = StructType([
    StructField("height", IntegerType(), True),
    StructField("width", IntegerType(), True),
    StructField("channels", IntegerType(), True),
    StructField("data", BinaryType(), True),
])
POINT = StructType([StructField("x", DoubleType(), True), StructField("y", DoubleType(), True)])
BBOX = StructType([StructField(n, IntegerType(), True) for n in ("x0", "y0", "x1", "y1")])
LINE = StructType([
    StructField("line", IntegerType(), True),
    StructField("bbox", BBOX, True),
    StructField("polygon", ArrayType(POINT, True), True),
    StructField("baseline", ArrayType(POINT, True), True),
    StructField("crop", IMAGE, True),
    StructField("text", StringType(), True),
    StructField("confidence", DoubleType(), True),
])
LINES = ArrayType(LINE, True)

PAGES_TABLE = StructType([
    StructField("path", StringType(), False),
    StructField("page", IntegerType(), False),
    StructField("content_sha256", StringType(), True),
    StructField("source_length", LongType(), True),
    StructField("source_modified", TimestampType(), True),
    StructField("width", IntegerType(), True),
    StructField("height", IntegerType(), True),
    StructField("skew_degrees", DoubleType(), True),
    StructField("status", StringType(), False),
    StructField("error", StringType(), True),
    StructField("n_lines", IntegerType(), True),
    StructField("text", StringType(), True),
    StructField("mean_confidence", DoubleType(), True),
    StructField("segmenter", StringType(), True),
    StructField("recognizer", StringType(), True),
    StructField("run_id", StringType(), False),
    StructField("processed_at", TimestampType(), False),
])
LINES_TABLE = StructType([
    StructField("path", StringType(), False),
    StructField("page", IntegerType(), False),
    StructField("line", IntegerType(), False),
    StructField("text", StringType(), True),
    StructField("confidence", DoubleType(), True),
    StructField("bbox", BBOX, True),
    StructField("polygon", ArrayType(POINT, True), True),
    StructField("baseline", ArrayType(POINT, True), True),
    StructField("content_sha256", StringType(), True),
    StructField("recognizer", StringType(), True),
    StructField("run_id", StringType(), False),
    StructField("processed_at", TimestampType(), False),
])
RUNS_TABLE = StructType([
    StructField("run_id", StringType(), False),
    StructField("started_at", TimestampType(), False),
    StructField("finished_at", TimestampType(), True),
    StructField("input", StringType(), False),
    StructField("files", LongType(), False),
    StructField("pages", LongType(), False),
    StructField("errors", LongType(), False),
    StructField("lines", LongType(), False),
    StructField("recognizer", StringType(), True),
    StructField("segmenter", StringType(), True),
    StructField("sparkhtr_version", StringType(), False),
    StructField("seconds", DoubleType(), False),
    StructField("lines_per_second", DoubleType(), False),
    # Added after 0.1: older runs tables gain them on the next run (schema evolution).
    StructField("status", StringType(), True),
    StructField("error", StringType(), True),
    StructField("files_skipped", LongType(), True),
])


def require_columns(schema: StructType, columns: dict[str, str], stage: str) -> None:
    """Fail on the driver, before any task runs, when input columns are missing or mistyped.

    ``columns`` maps a column name to the ``simpleString`` of its expected type, or ``""``
    for any type.
    """
    from sparkhtr.errors import ConfigError

    fields = {f.name: f.dataType for f in schema.fields}
    for name, expected in columns.items():
        if name not in fields:
            raise ConfigError(f"{stage}: input has no column {name!r} (columns: {', '.join(fields)})")
        if expected and fields[name].simpleString() != expected:
            raise ConfigError(
                f"{stage}: column {name!r} is {fields[name].simpleString()}, expected {expected}"
            )
