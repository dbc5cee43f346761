"""The whole bad-input corpus through the full pipeline on local Spark: no file goes missing, no job fails.

``read_binary_files`` → ``build_pipeline()`` (bundled model) → ``pages_table``: every
corpus file must come out with at least one row, ``ok`` or ``error`` with a message,
as its entry expects. The file names Spark's own binaryFile scan loses or fails on
are listed with what happens (``SPARK_SCAN_LOSES``) and tested one by one.
"""

from __future__ import annotations

import collections
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparkhtr.spark.binary_to_image import BinaryToImage
from tests.helpers.badinputs import CORPUS_LIMITS, build_corpus, summarize, text_page, write_corpus

pytestmark = pytest.mark.spark

# Names Spark's own binaryFile scan loses, each with what it does; read_binary_files and the
# local profile (RawLocalFileSystem) must give them rows all the same (see the last test).
SPARK_SCAN_LOSES = {
    "...png": "hidden: Spark's file index skips names starting with '.' or '_' (shouldFilterOutPathName)",
    "..double-dot-prefix.png": "hidden, as above",
    ".hidden.png": "hidden, as above",
    "_underscore.png": "hidden, as above",
    "colon:name.png": "Hadoop's checksummed LocalFileSystem opens '.colon:name.png.crc', a relative Path that "
                      "cannot hold ':' (URISyntaxException): FAILED_READ_FILE fails the whole job",
    "latin1-\udce9.png": "the JVM decodes names as UTF-8: 0xE9 becomes U+FFFD, the listed file does not exist, "
                         "and the index drops it silently",
}


def table_path(path: Path) -> str:
    """How the ``path`` column spells a local file: bytes that are not UTF-8 as ``\\xNN`` escapes."""
    return "file:" + os.fsencode(path).decode("utf-8", "backslashreplace")


@pytest.fixture(scope="module")
def corpus_run(spark, tmp_path_factory):
    """(written files, pages-table rows) of the whole corpus through the pipeline."""
    from sparkhtr.spark.files import read_binary_files
    from sparkhtr.spark.pipeline import build_pipeline, pages_table

    corpus = build_corpus()
    assert set(SPARK_SCAN_LOSES) <= {entry.name for entry in corpus}
    folder = tmp_path_factory.mktemp("badinputs")
    written = write_corpus(folder, corpus)
    files = read_binary_files(spark, [str(folder)])
    pipeline = build_pipeline(device="cpu")
    pipeline.getStages()[0].setMaxBytes(CORPUS_LIMITS.max_bytes)
    recognized = pipeline.fit(files).transform(files)
    rows = pages_table(recognized, run_id="bad-inputs").select("path", "page", "status", "error", "n_lines").collect()
    return written, rows


def test_every_corpus_file_gets_rows_and_the_job_succeeds(corpus_run):
    written, rows = corpus_run
    by_path = collections.defaultdict(list)
    for row in rows:
        by_path[row.path].append(row)
    expected = {table_path(path): entry for path, entry in written}
    assert sorted(set(by_path) - set(expected)) == []  # no row for a file that was not written
    missing = sorted(entry.name for path, entry in expected.items() if path not in by_path)
    assert missing == []
    problems, outcomes = [], {}
    for path, entry in expected.items():
        file_rows = sorted(by_path[path], key=lambda r: r.page)
        statuses = {r.status for r in file_rows}
        outcomes[entry.name] = "ok" if statuses == {"ok"} else "error" if statuses == {"error"} else "mixed"
        if not statuses <= {"ok", "error"}:
            problems.append(f"{entry.name!r}: statuses {statuses}")
        for r in file_rows:
            if r.status == "error" and not (r.error and r.error.strip()):
                problems.append(f"{entry.name!r} page {r.page}: error row without a message")
            if r.status == "ok" and (r.n_lines is None or r.page < 1):
                problems.append(f"{entry.name!r} page {r.page}: ok row without n_lines")
        if entry.expect == "ok" and statuses != {"ok"}:
            problems.append(f"{entry.name!r}: expected pages, got {[r.error for r in file_rows][:2]}")
        if entry.expect == "ok" and entry.pages is not None and len(file_rows) != entry.pages:
            problems.append(f"{entry.name!r}: expected {entry.pages} rows, got {len(file_rows)}")
        if entry.expect == "error":
            errors = [r.error for r in file_rows if r.status == "error"]
            if not errors:
                problems.append(f"{entry.name!r}: expected an error row")
            elif not any(e.split(":", 1)[0] in _names(entry.error) for e in errors):
                problems.append(f"{entry.name!r}: expected {entry.error.__name__}, got {errors[0]}")
            elif entry.match and not any(entry.match in e for e in errors):
                problems.append(f"{entry.name!r}: no error mentions {entry.match!r}: {errors[0]}")
    print(json.dumps(summarize(outcomes, [e for _, e in written]), sort_keys=True))
    assert not problems, "\n".join(problems)


def test_bombs_fail_alone_and_a_file_fails_before_its_first_page_with_page_0(corpus_run):
    _, rows = corpus_run
    page0 = {r.path.rsplit("/", 1)[-1]: r for r in rows if r.page == 0}
    assert page0["bomb_png_100000x100000.png"].error.startswith("LimitExceededError: ")
    assert "memory budget" in page0["bomb_pdf_nested_forms_10^8.pdf"].error
    assert "max_bytes=2,097,152" in page0["oversize_2MiB_plus_1.png"].error
    assert "password" in page0["encrypted_user_password.pdf"].error
    # a multi-page TIFF cut in its last page keeps the pages before it
    cut = sorted((r.page, r.status) for r in rows if r.path.endswith("/truncated_tif_3pages_at_4788.tif"))
    assert cut == [(1, "ok"), (2, "ok"), (3, "error")]


def _names(error: type) -> set[str]:
    """The class name of ``error`` and of its subclasses (an error row starts with one of them)."""
    return {error.__name__} | {name for sub in error.__subclasses__() for name in _names(sub)}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(text_page(1)).save(buf, "PNG")
    return buf.getvalue()


def _decode_folder(spark, folder, **params):
    from sparkhtr.spark.files import read_binary_files

    files = read_binary_files(spark, [str(folder)])
    return BinaryToImage(**params).transform(files).select("path", "page", "status", "error").collect()


def test_a_file_over_2_gib_is_listed_not_read(spark, tmp_path):
    """binaryFile fails the job on a file over 2 GiB; BinaryToImage filters by length before any read."""
    with open(tmp_path / "huge.tif", "wb") as sparse:  # a hole: takes no disk space
        sparse.truncate(2**31 + 1)
    (tmp_path / "page.png").write_bytes(_png())
    rows = {r.path.rsplit("/", 1)[-1]: r for r in _decode_folder(spark, tmp_path)}
    assert rows["page.png"].status == "ok"
    assert rows["huge.tif"].status == "error" and rows["huge.tif"].page == 0
    assert rows["huge.tif"].error.startswith("LimitExceededError: ") and "2,147,483,649 bytes" in rows["huge.tif"].error


def test_max_bytes_param_applies_before_reading(spark, tmp_path):
    (tmp_path / "page.png").write_bytes(_png())
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    rows = {r.path.rsplit("/", 1)[-1]: r for r in _decode_folder(spark, tmp_path, maxBytes=4000)}
    assert rows["page.png"].status == "ok"
    assert "5,000 bytes exceeds max_bytes=4,000" in rows["noise.png"].error


def test_limit_params_save_and_load(spark, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel

    stage = BinaryToImage(maxPixels=5_000_000, maxPages=7, maxBytes=123_456, maxRenderSeconds=9.5, pdfDpi=150)
    Pipeline(stages=[stage]).fit(spark.range(1)).write().overwrite().save(str(tmp_path / "p"))
    (loaded,) = PipelineModel.load(str(tmp_path / "p")).stages
    assert (loaded.getMaxPixels(), loaded.getMaxPages(), loaded.getMaxBytes(), loaded.getMaxRenderSeconds(),
            loaded.getPdfDpi()) == (5_000_000, 7, 123_456, 9.5, 150)
    assert BinaryToImage().getMaxRenderSeconds() == 120.0


@pytest.mark.parametrize("name", sorted(SPARK_SCAN_LOSES))
def test_names_spark_scan_loses_get_rows(spark, tmp_path, name):
    """Each name binaryFile alone loses (see SPARK_SCAN_LOSES), beside a plain file, gets its decoded row."""
    (tmp_path / "control.png").write_bytes(_png())
    (tmp_path / name).write_bytes(_png())
    rows = {r.path: r for r in _decode_folder(spark, tmp_path)}
    assert set(rows) == {table_path(tmp_path / "control.png"), table_path(tmp_path / name)}
    assert rows[table_path(tmp_path / name)].status == "ok"


def test_a_file_over_2_gib_in_the_rerun_path(spark, tmp_path):
    from sparkhtr.spark.files import read_listed_files, scan_path
    from sparkhtr.spark.incremental import KNOWN_SHA, drop_unchanged_content

    with open(tmp_path / "huge.tif", "wb") as sparse:
        sparse.truncate(2**31 + 1)
    (tmp_path / "page.png").write_bytes(_png())
    paths = [scan_path(f"file://{tmp_path / name}") for name in ("huge.tif", "page.png")]
    # As plan_files gives it on a first run: no known sha, but a column (a literal null would be folded away).
    todo = spark.createDataFrame([(p, None) for p in paths], f"path string, {KNOWN_SHA} string")
    files = drop_unchanged_content(read_listed_files(spark, paths), todo)
    rows = {r.path.rsplit("/", 1)[-1]: r for r in BinaryToImage().transform(files).collect()}
    assert rows["huge.tif"].error.startswith("LimitExceededError: ") and rows["page.png"].status == "ok"


def test_inputs_named_with_glob_characters_are_read_literally(spark, tmp_path):
    from sparkhtr.spark.files import read_binary_files

    box = tmp_path / "box [1] {a,b}"
    box.mkdir()
    (box / "p[1]*.png").write_bytes(_png())
    (box / "_hidden.png").write_bytes(_png())
    for root in (box, box / "p[1]*.png"):
        rows = BinaryToImage().transform(read_binary_files(spark, [str(root)])).collect()
        assert rows and all(r.status == "ok" for r in rows)
    assert len(BinaryToImage().transform(read_binary_files(spark, [str(box)])).collect()) == 2
