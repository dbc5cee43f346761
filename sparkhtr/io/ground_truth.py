"""Ground truth from ALTO / PAGE XML files, and how it is matched to recognised pages.

A ground-truth page is keyed by ``(image name, page)``:

* **image name**: the last path component of PAGE ``Page/@imageFilename`` or ALTO
  ``Description/sourceImageInformation/fileName``; where the file names none, the XML
  file's name without ``.xml`` and without a ``.p<N>`` page suffix.
* **page** (1-based, for multi-page TIFF / PDF sources): the ``.p<N>`` suffix of the
  XML file name, as ``sparkhtr export`` writes it (``scan.tif.p2.xml``); else, in an
  ALTO file with several ``Page`` elements, that page's ``PHYSICAL_IMG_NR`` (or its
  position); else 1. (A single-page ALTO file is page 1 whatever its
  ``PHYSICAL_IMG_NR``, which is often a position in a whole book.)

A recognised page ``(path, page)`` matches when the file name of ``path`` equals
the image name, page for page; failing that, when the names without their
extensions are equal (ground truth made for ``scan.jpg``, recognised ``scan.png``).
When several recognised files qualify (the same name in several folders), the one
whose folders end with the XML file's folders below the ground-truth root wins, or
the one whose path hash is in the XML file name (``scan.png~1a2b3c4d5e.p1.xml``, as
``sparkhtr export`` disambiguates names); if that does not single one out, the page
is *ambiguous* and left out.

>>> gt = GroundTruthPage("letter.png", 1, "", LayoutPage("letter.png"))
>>> match_ground_truth([gt], [("s3://b/a/letter.png", 1), ("s3://b/a/letter.png", 2)])
(['s3://b/a/letter.png'], [])
>>> ground_truth_key(LayoutPage(""), "scan.tif.p2.xml", 1)
('scan.tif', 2)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sparkhtr.errors import ConfigError
from sparkhtr.io.layout import LayoutPage, base_name, clean_text, path_hash

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["GroundTruthPage", "ground_truth_key", "image_name", "load_ground_truth", "match_ground_truth",
           "read_ground_truth"]

_PAGE_SUFFIX = re.compile(r"\.p(\d+)$")
_PATH_HASH = re.compile(r"~([0-9a-f]{10})\.p\d+\.xml$", re.IGNORECASE)


@dataclass(frozen=True)
class GroundTruthPage:
    """A ground-truth page, its key and the folder of its XML file below the ground-truth root."""

    image: str
    page: int
    folder: str  # "/"-separated, "" at the root
    layout: LayoutPage
    path_hash: str | None = None  # from an exported file name: "~" + 10 hex digits of sha256(path)


def file_stem(name: str) -> str:
    """``name`` without its last extension.

    >>> file_stem("scan.01.png"), file_stem("scan"), file_stem(".profile")
    ('scan.01', 'scan', '.profile')
    """
    head, dot, _ = name.rpartition(".")
    return head if dot and head.strip(".") else name


def image_name(path: str) -> str:
    """The file name of ``path`` as an XML file can record it (characters XML cannot hold dropped).

    >>> image_name("file:/scans/a\\x00b.png")
    'ab.png'
    """
    return clean_text(base_name(path))


def ground_truth_key(layout: LayoutPage, xml_name: str, pages_in_file: int) -> tuple[str, int]:
    """``(image name, page)`` of a page read from the XML file ``xml_name`` (see the module docstring)."""
    stem = xml_name[:-4] if xml_name.lower().endswith(".xml") else xml_name
    suffix = _PAGE_SUFFIX.search(stem)
    if suffix:
        stem = stem[: suffix.start()]
    image = base_name(layout.path) or stem
    if suffix:
        return image, int(suffix.group(1))
    return image, layout.page if pages_in_file > 1 else 1


def load_ground_truth(root: str | os.PathLike[str]) -> tuple[list[GroundTruthPage], list[str]]:
    """Every ALTO / PAGE page under ``root`` (a folder, searched recursively, or one XML file).

    Returns the pages (sorted by XML path) and ``"path: reason"`` for the ``.xml`` files
    that are not ALTO or PAGE XML.
    """
    from sparkhtr.io.layout_xml import LayoutXmlError, read_layout

    base = Path(root)
    if base.is_file():
        files, base = [base], base.parent
    elif base.is_dir():
        files = sorted(p for p in base.rglob("*") if p.suffix.lower() == ".xml" and p.is_file())
    else:
        raise ConfigError(f"no ground truth at {root}")
    pages: list[GroundTruthPage] = []
    skipped: list[str] = []
    for path in files:
        try:
            layouts = read_layout(path.read_bytes(), str(path))
        except LayoutXmlError as exc:
            skipped.append(f"{path}: {exc}")
            continue
        folder = path.parent.relative_to(base).as_posix()
        for layout in layouts:
            image, page = ground_truth_key(layout, path.name, len(layouts))
            digest = _PATH_HASH.search(path.name)
            pages.append(GroundTruthPage(image, page, "" if folder == "." else folder, layout,
                                         digest.group(1).lower() if digest else None))
    return pages, skipped


def _folder_parts(path: str) -> list[str]:
    return [p for p in re.split(r"[/\\]", path) if p][:-1]


def match_ground_truth(ground_truth: Sequence[GroundTruthPage], recognised: Iterable[tuple[str, int]]
                       ) -> tuple[list[str | None], list[int]]:
    """The recognised path matching each ground-truth page (None when none), and the indices left ambiguous.

    ``recognised`` holds ``(path, page)`` keys; only those whose file stem and page
    occur in the ground truth matter, so callers may pass a pre-filtered set.
    """
    by_name: dict[tuple[str, int], set[str]] = {}
    by_stem: dict[tuple[str, int], set[str]] = {}
    for path, page in recognised:
        name = image_name(path)
        by_name.setdefault((name, page), set()).add(path)
        by_stem.setdefault((file_stem(name), page), set()).add(path)
    matches: list[str | None] = []
    ambiguous: list[int] = []
    for k, gt in enumerate(ground_truth):
        candidates = by_name.get((gt.image, gt.page)) or by_stem.get((file_stem(gt.image), gt.page)) or set()
        if len(candidates) > 1 and gt.folder:
            tail = gt.folder.split("/")
            candidates = {c for c in candidates if _folder_parts(c)[-len(tail):] == tail} or candidates
        if len(candidates) > 1 and gt.path_hash:
            candidates = {c for c in candidates if path_hash(c) == gt.path_hash} or candidates
        matches.append(next(iter(candidates)) if len(candidates) == 1 else None)
        if len(candidates) > 1:
            ambiguous.append(k)
    return matches, ambiguous


def read_ground_truth(spark: SparkSession, root: str | os.PathLike[str], *, level: str = "lines") -> DataFrame:
    """The ground truth under ``root`` as a DataFrame, one row per line (``level="lines"``) or page.

    Lines: ``image, page, line, text, bbox, polygon, baseline, folder, gt_file``
    (``line`` 1-based in reading order, geometry typed as in the ``lines`` table).
    Pages: ``image, page, width, height, n_lines, text, folder, gt_file`` (``text`` =
    lines in reading order joined by newlines, as in the ``pages`` table). Parsing
    runs on the driver: ground truth is small next to what it is compared with.
    """
    from pyspark.sql.types import ArrayType, IntegerType, StringType, StructField, StructType

    from sparkhtr.spark.schemas import BBOX, POINT

    pages, _ = load_ground_truth(root)
    key = [StructField("image", StringType(), False), StructField("page", IntegerType(), False)]
    where = [StructField("folder", StringType(), False), StructField("gt_file", StringType(), True)]
    if level == "pages":
        schema = StructType([*key, StructField("width", IntegerType(), True),
                             StructField("height", IntegerType(), True), StructField("n_lines", IntegerType(), False),
                             StructField("text", StringType(), False), *where])
        rows = [(p.image, p.page, p.layout.width or None, p.layout.height or None, len(p.layout.lines),
                 p.layout.text, p.folder, p.layout.source) for p in pages]
        return spark.createDataFrame(rows, schema)
    if level != "lines":
        raise ConfigError(f"level must be 'lines' or 'pages', not {level!r}")
    schema = StructType([*key, StructField("line", IntegerType(), False), StructField("text", StringType(), False),
                         StructField("bbox", BBOX, True), StructField("polygon", ArrayType(POINT, True), True),
                         StructField("baseline", ArrayType(POINT, True), True), *where])
    rows = []
    for p in pages:
        for number, line in enumerate(p.layout.lines, start=1):
            box = line.box()
            rows.append((p.image, p.page, number, line.text, (box.x0, box.y0, box.x1, box.y1) if box else None,
                         [tuple(pt) for pt in line.polygon], [tuple(pt) for pt in line.baseline],
                         p.folder, p.layout.source))
    return spark.createDataFrame(rows, schema)
