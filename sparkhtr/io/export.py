"""Export recognised pages from the ``pages`` / ``lines`` tables: one ALTO, PAGE XML or text file per page.

    sparkhtr export --tables out/tables --format alto --out out/alto

File names come from the source path only through :func:`export_name`: the last
path component, sanitised to letters, digits, ``_ . -`` (so ``..``, absolute paths,
URIs, separators, NUL, newlines and other controls can never leave the output
folder), shortened to a safe length, then ``.p<page>.<ext>``. Sources whose
sanitised names are the same (ignoring case, for case-insensitive file systems)
get ``~`` and 10 hex digits of the SHA-256 of their full path; ``~`` never occurs in
a plain name, so names stay distinct. Pages with ``status='error'`` are skipped and
counted.

Memory: Spark joins each page with its lines (grouped per page) and the driver
pulls one partition at a time (``toLocalIterator``), with partitions of about
:data:`PAGES_PER_PARTITION` pages, so a million pages never sit on the driver
together. Files are written by the driver, so ``out`` is a local folder.

>>> export_name("s3://bucket/scans/../../etc/passwd", 1, "xml")
'passwd.p1.xml'
>>> export_name("/data/Lettre n°3 (copie).tif", 2, "xml", disambiguate=True)
'Lettre_n_3_copie_.tif~2473914c33.p2.xml'
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkhtr.core.types import BBox
from sparkhtr.errors import ConfigError
from sparkhtr.io.layout import LayoutLine, LayoutPage, as_points, base_name, path_hash

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["EXPORT_FORMATS", "ExportSummary", "export_name", "export_tables", "pages_with_lines", "read_tables",
           "render", "safe_stem", "table_page"]

EXPORT_FORMATS = ("alto", "page", "txt")
PAGES_PER_PARTITION = 500
MAX_STEM_BYTES = 150  # file names stay far below the usual 255-byte limit with the suffixes
_UNSAFE = re.compile(r"[^\w.\-]+")  # \w: Unicode letters and digits, and "_"
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_stem(path: str) -> str:
    """A file-name-safe form of the last component of ``path`` (never empty, never a dot name).

    >>> [safe_stem(p) for p in ["a/b/scan 1.png", "..", "/", "x\\nx\\x00.tif", ".hidden", "con.txt"]]
    ['scan_1.png', 'page', 'page', 'x_x_.tif', 'hidden', '_con.txt']
    """
    name = unicodedata.normalize("NFC", base_name(path))
    name = _UNSAFE.sub("_", name).lstrip(".-").rstrip(". ")
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_STEM_BYTES:
        name = encoded[:MAX_STEM_BYTES].decode("utf-8", "ignore").rstrip(". ")
    if not name.strip("_."):
        return "page"
    if name.split(".")[0].upper() in _RESERVED:  # Windows device names
        name = "_" + name
    return name


def export_name(path: str, page: int, extension: str, *, disambiguate: bool = False) -> str:
    """The output file name of ``page`` of ``path``: ``<safe stem>[~<hash>].p<page>.<extension>``."""
    stem = safe_stem(path)
    if disambiguate:
        stem += "~" + path_hash(path)
    return f"{stem}.p{int(page)}.{extension}"


@dataclass
class ExportSummary:
    """What an export wrote: files, error pages skipped, and XSD validation results when asked."""

    out: str
    format: str
    written: int = 0
    skipped_errors: int = 0
    validated: int = 0
    invalid: int = 0
    problems: list[str] = field(default_factory=list)  # the first few validation errors


def _table(tables_dir: str | os.PathLike[str], name: str) -> str:
    root = os.fspath(tables_dir)
    return posixpath.join(root, name) if "://" in root else os.path.join(root, name)


def read_tables(spark: SparkSession, tables_dir: str | os.PathLike[str]) -> tuple[DataFrame, DataFrame | None]:
    """The ``pages`` and (when it exists) ``lines`` tables under ``tables_dir``."""
    from sparkhtr.io.delta import read_delta, table_exists

    lines_path = _table(tables_dir, "lines")
    lines = read_delta(spark, lines_path) if table_exists(lines_path, spark) else None
    return read_delta(spark, _table(tables_dir, "pages")), lines


def pages_with_lines(pages: DataFrame, lines: DataFrame | None) -> DataFrame:
    """``pages`` (path, page, width, height, status, recognizer, processed_at) with a ``lines`` array each.

    Only the lines of these pages are grouped (a semi join first), so a filtered
    ``pages`` keeps the work small; the order of the array is not defined.
    """
    from pyspark.sql import functions as F

    pages = pages.select("path", "page", "width", "height", "status", "recognizer", "processed_at")
    if lines is None:
        return pages.withColumn("lines", F.lit(None))
    line = F.struct("line", "text", "confidence", "bbox", "polygon", "baseline")
    grouped = (lines.join(pages.select("path", "page"), ["path", "page"], "left_semi")
               .groupBy("path", "page").agg(F.collect_list(line).alias("lines")))
    return pages.join(grouped, ["path", "page"], "left")


def table_page(row: Any) -> LayoutPage:
    """A :class:`LayoutPage` from a row of :func:`pages_with_lines` (lines sorted by their number)."""
    lines = sorted(row["lines"] or [], key=lambda ln: ln["line"])
    return LayoutPage(
        row["path"], int(row["page"]), int(row["width"] or 0), int(row["height"] or 0),
        tuple(LayoutLine(ln["text"] or "", as_points(ln["polygon"]), as_points(ln["baseline"]),
                         BBox(*ln["bbox"]) if ln["bbox"] is not None and None not in ln["bbox"] else None,
                         ln["confidence"]) for ln in lines))


def _export_rows(spark: SparkSession, tables_dir: str | os.PathLike[str]) -> tuple[DataFrame, int]:
    """Ok pages with their lines and a ``collides`` flag, in partitions of bounded size; and the error count."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    pages, lines = read_tables(spark, tables_dir)
    counts = {r["ok"]: r["count"] for r in pages.groupBy((F.col("status") == "ok").alias("ok")).count().collect()}
    ok, errors = counts.get(True, 0), counts.get(False, 0) + counts.get(None, 0)

    stem_key = F.udf(lambda path: safe_stem(path).casefold(), "string", useArrow=True)
    rows = pages_with_lines(pages.where(F.col("status") == "ok"), lines)
    partitions = max(1, math.ceil(ok / PAGES_PER_PARTITION))
    keyed = rows.withColumn("stem_key", stem_key("path")).repartition(partitions, "stem_key")
    same = Window.partitionBy("stem_key")
    # two sources share a name when the smallest and largest path of the name differ
    return keyed.withColumn("collides", F.min("path").over(same) != F.max("path").over(same)), errors


def render(page: LayoutPage, fmt: str, row: Any = None) -> bytes:
    """The bytes of ``page`` in ``fmt`` (``alto``, ``page`` or ``txt``); ``row`` adds run metadata."""
    from sparkhtr.io.layout_xml import to_alto, to_page_xml

    recognizer = row["recognizer"] if row is not None else None
    created = row["processed_at"] if row is not None else None
    if fmt == "alto":
        return to_alto(page, created=created, settings=f"recognizer {recognizer}" if recognizer else None)
    if fmt == "page":
        return to_page_xml(page, created=created, comments=f"recognizer {recognizer}" if recognizer else None)
    if fmt == "txt":
        return (page.text + "\n" if page.lines else "").encode("utf-8", "replace")
    raise ConfigError(f"format must be one of {EXPORT_FORMATS}, not {fmt!r}")


def export_tables(spark: SparkSession, tables_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                  fmt: str = "alto", *, schemas_dir: str | os.PathLike[str] | None = None) -> ExportSummary:
    """Write one ``fmt`` file per ok page of ``tables_dir`` into the local folder ``out``.

    With ``schemas_dir`` (the folder of ``alto-4-4.xsd`` and ``pagecontent-2019-07-15.xsd``)
    every XML file is also validated against its XSD and the summary counts the invalid ones.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {EXPORT_FORMATS}, not {fmt!r}")
    schema = None
    if schemas_dir is not None and fmt != "txt":
        from sparkhtr.io.layout_xml import load_schema

        schema = load_schema(fmt, schemas_dir)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    df, errors = _export_rows(spark, tables_dir)
    summary = ExportSummary(str(folder), fmt, skipped_errors=errors)
    extension = "txt" if fmt == "txt" else "xml"
    for row in df.toLocalIterator(prefetchPartitions=False):
        page = table_page(row)
        name = export_name(page.path, page.page, extension, disambiguate=bool(row["collides"]))
        if os.path.basename(name) != name or name in (".", ".."):  # export_name guarantees it; never trust it
            raise ConfigError(f"unsafe output name {name!r} for {page.path!r}")
        data = render(page, fmt, row)
        (folder / name).write_bytes(data)
        summary.written += 1
        if schema is not None:
            _validate(schema, data, name, summary)
    return summary


def _validate(schema: Any, data: bytes, name: str, summary: ExportSummary) -> None:
    from lxml import etree

    summary.validated += 1
    if not schema.validate(etree.fromstring(data)):
        summary.invalid += 1
        if len(summary.problems) < 10:
            summary.problems.append(f"{name}: {schema.error_log.last_error}")
