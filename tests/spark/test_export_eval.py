"""Export from the Delta tables (ALTO / PAGE / text, hostile paths), ground truth as a DataFrame, page evaluation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sparkhtr.cli import main
from sparkhtr.evaluation import evaluate_tables
from sparkhtr.io.delta import write_delta
from sparkhtr.io.export import export_tables
from sparkhtr.io.ground_truth import load_ground_truth, read_ground_truth
from sparkhtr.io.layout import LayoutLine, LayoutPage
from sparkhtr.io.layout_xml import load_schema, to_page_xml
from sparkhtr.spark.schemas import LINES_TABLE, PAGES_TABLE

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"
AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)

# (path, page, status, lines); every path is something a file system or bucket could hold
PAGES = [
    ("file:/data/a/scan.png", 1, "ok", ["Dear Sir, <b> & \"co\"", "second line"]),
    ("file:/data/b/scan.png", 1, "ok", ["other folder, same name"]),
    ("file:/data/b/SCAN.png", 1, "ok", ["same name but for case"]),
    ("file:/data/book.tif", 1, "ok", ["page one"]),
    ("file:/data/book.tif", 2, "ok", ["page two", "bell\x07 and nul\x00"]),
    ("s3://bucket/../../etc/passwd", 1, "ok", ["escape attempt"]),
    ("file:/data/evil\n/..\x00.png", 1, "ok", []),
    ("file:/data/" + "x" * 400 + ".png", 1, "ok", ["long name"]),
    ("file:/data/broken.pdf", 0, "error", []),
]


def _tables(spark, root: Path) -> Path:
    pages, lines = [], []
    for path, page, status, texts in PAGES:
        ok = status == "ok"
        pages.append((path, page, None, 10, AT, 400 if ok else None, 300 if ok else None, 0.0, status,
                      None if ok else "corrupt", len(texts) if ok else None, "\n".join(texts) if ok else None,
                      0.8 if texts else None, "classical@1", "toy@1", "run1", AT))
        for k, text in enumerate(texts, start=1):
            y = 40.0 * k
            polygon = [(10.0, y), (300.0, y), (300.0, y + 30.0), (10.0, y + 30.0)]
            lines.append((path, page, k, text, 0.5 + 0.1 * k, (10, int(y), 300, int(y) + 30), polygon,
                          [(10.0, y + 25.0), (300.0, y + 25.0)], None, "toy@1", "run1", AT))
    write_delta(spark.createDataFrame(pages, PAGES_TABLE), str(root / "pages"))
    write_delta(spark.createDataFrame(lines, LINES_TABLE), str(root / "lines"))
    return root


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    return _tables(spark, tmp_path_factory.mktemp("export") / "tables")


@pytest.mark.parametrize("fmt", ["alto", "page", "txt"])
def test_export_writes_one_safe_file_per_ok_page(spark, tables, tmp_path, fmt):
    out = tmp_path / fmt
    schemas = SCHEMAS if SCHEMAS.is_dir() else None
    summary = export_tables(spark, tables, out, fmt, schemas_dir=schemas)
    ok_pages = sum(1 for p in PAGES if p[2] == "ok")
    assert summary.written == ok_pages and summary.skipped_errors == 1
    files = sorted(out.iterdir())
    assert len(files) == ok_pages  # no two pages share a file, nothing went elsewhere
    assert all(f.parent == out and f.is_file() for f in files)
    assert not list(tmp_path.glob("etc")) and not (out.parent / "passwd.p1.xml").exists()
    names = {f.name for f in files}
    ext = "txt" if fmt == "txt" else "xml"
    assert {f"book.tif.p1.{ext}", f"book.tif.p2.{ext}", f"passwd.p1.{ext}"} <= names
    assert sum(n.startswith("scan.png~") or n.startswith("SCAN.png~") for n in names) == 3  # case-insensitive clash
    if fmt == "txt":
        assert (out / "book.tif.p2.txt").read_text(encoding="utf-8") == "page two\nbell\x07 and nul\x00\n"
        return
    if schemas is not None:
        assert summary.validated == ok_pages and summary.invalid == 0, summary.problems
    pages, skipped = load_ground_truth(out)
    assert not skipped and len(pages) == ok_pages
    by_key = {(p.image, p.page): p for p in pages}
    assert [ln.text for ln in by_key[("book.tif", 2)].layout.lines] == ["page two", "bell and nul"]
    first = by_key[("scan.png", 1)].layout if fmt == "page" else None
    if first is not None:
        assert first.lines[0].polygon == ((10.0, 40.0), (300.0, 40.0), (300.0, 70.0), (10.0, 70.0))


def test_ground_truth_dataframe_and_evaluation(spark, tables, tmp_path, capsys):
    gt = tmp_path / "gt"
    assert main(["export", "--tables", str(tables), "--format", "page", "--out", str(gt)]) == 0
    assert "8 page files" in capsys.readouterr().out
    # an exported page is its own ground truth: nothing to correct, except where we edit it
    # no lines in the ground truth: everything recognised is an insertion
    (gt / "book.tif.p1.xml").write_bytes(to_page_xml(LayoutPage("book.tif", 1, 400, 300, ())))
    (gt / "notes.xml").write_text("<notes/>")
    (gt / "sub").mkdir()
    (gt / "sub" / "broken.pdf.p0.xml").write_bytes((gt / "passwd.p1.xml").read_bytes().replace(
        b"passwd", b"broken.pdf"))

    lines = read_ground_truth(spark, gt)
    assert {"image", "page", "line", "text", "bbox", "polygon", "folder", "gt_file"} <= set(lines.columns)
    book = lines.where("image = 'book.tif' AND page = 2").orderBy("line").collect()
    assert [r.text for r in book] == ["page two", "bell and nul"] and book[0].bbox.x1 == 300
    pages = read_ground_truth(spark, gt, level="pages")
    assert pages.where("image = 'scan.png'").count() == 2

    report = evaluate_tables(spark, tables, gt)
    by_page = {(Path(r["path"]).name, r["page"]): r for r in report["pages"]}
    assert by_page[("book.tif", 2)]["cer"] == 0.0 and by_page[("book.tif", 2)]["line_cer"] == 0.0
    assert by_page[("book.tif", 2)]["matched_lines"] == 2
    assert by_page[("book.tif", 1)]["chars"] == 0 and by_page[("book.tif", 1)]["char_errors"] == len("page one")
    assert by_page[("broken.pdf", 0)]["status"] == "error"
    # same file name in two folders: the path hash in the exported file names tells them apart
    assert report["ambiguous"] == [] and report["unmatched"] == []
    assert {r["path"] for r in report["pages"]} >= {"file:/data/a/scan.png", "file:/data/b/scan.png"}
    assert len(report["skipped"]) == 1 and "notes.xml" in report["skipped"][0]
    assert report["all"]["pages"] == len(PAGES)

    out_json = tmp_path / "report.json"
    assert main(["eval", "--tables", str(tables), "--gt", str(gt), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "book.tif p2" in printed and "all" in printed and "not ALTO / PAGE: 1" in printed
    assert json.loads(out_json.read_text())["all"]["pages"] == len(PAGES)


def test_ambiguous_ground_truth_is_reported(spark, tables, tmp_path):
    gt = tmp_path / "gt"
    gt.mkdir()
    # names scan.png in two folders, and the XML file's name and folder do not say which
    (gt / "scan.xml").write_bytes(to_page_xml(LayoutPage("scan.png", 1, 400, 300, (LayoutLine("x"),))))
    report = evaluate_tables(spark, tables, gt)
    assert report["all"]["pages"] == 0 and len(report["ambiguous"]) == 1 and not report["unmatched"]
    (gt / "a").mkdir()
    (gt / "scan.xml").rename(gt / "a" / "scan.xml")  # now its folder names the source folder
    report = evaluate_tables(spark, tables, gt)
    assert report["all"]["pages"] == 1 and report["pages"][0]["path"] == "file:/data/a/scan.png"


def test_schema_loading_needs_no_network():
    if not SCHEMAS.is_dir():
        pytest.skip(f"XSDs not found at {SCHEMAS}")
    assert load_schema("alto", SCHEMAS) is not None
