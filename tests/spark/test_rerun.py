"""Rerun-safe runs: skipped before decoding, changed files replaced, no duplicates after a failure."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

import sparkhtr.runner as runner
from sparkhtr.io.delta import read_delta
from sparkhtr.registry import resolve_model
from sparkhtr.runner import recognize_to_tables
from tests.helpers.faults import FailOnPath, with_first_stage
from tests.helpers.pages import duplicates, write_page


def keys(df: DataFrame, columns: list[str]) -> list[tuple]:
    return sorted(tuple(r) for r in df.select(*columns).collect())


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        write_page(folder / f"page {i}.png", [f"line{i} alpha", f"words {i}"])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def tables(spark, out: Path) -> tuple[DataFrame, DataFrame, DataFrame]:
    return tuple(read_delta(spark, str(out / name)) for name in ("pages", "lines", "runs"))  # type: ignore[return-value]


def test_rerun_skips_unchanged_and_replaces_changed_files(spark, tmp_path, inputs):
    out = tmp_path / "tables"
    first = recognize_to_tables(spark, [str(inputs)], str(out))
    assert (first.files, first.files_skipped, first.pages, first.errors) == (5, 0, 5, 1)
    pages, lines, _ = tables(spark, out)
    pages_before, lines_before = keys(pages, ["path", "page", "run_id"]), keys(lines, ["path", "page", "line"])
    assert lines_before and all(run == first.run_id for *_, run in pages_before)

    again = recognize_to_tables(spark, [str(inputs)], str(out))
    assert (again.files, again.files_skipped, again.pages, again.lines) == (5, 5, 0, 0)
    pages, lines, runs = tables(spark, out)
    assert keys(pages, ["path", "page", "run_id"]) == pages_before  # nothing added, nothing changed
    assert keys(lines, ["path", "page", "line"]) == lines_before

    # One file rewritten with other content (fewer lines), one touched, one added.
    write_page(inputs / "page 0.png", ["changed"])
    os.utime(inputs / "page 1.png", (1_000_000_000, 1_000_000_000))
    write_page(inputs / "new [1].png", ["fresh page", "two", "three"])
    third = recognize_to_tables(spark, [str(inputs)], str(out), files_per_commit=1)
    assert (third.files, third.files_processed) == (6, 2)  # the touched file is skipped by its content hash
    pages, lines, runs = tables(spark, out)
    by_path = {r.path.rsplit("/", 1)[-1]: r for r in pages.collect()}
    assert by_path["page 0.png"].run_id == third.run_id and by_path["new [1].png"].run_id == third.run_id
    assert by_path["page 1.png"].run_id == first.run_id and by_path["page 2.png"].run_id == first.run_id
    changed = lines.where(lines.path.endswith("page 0.png"))
    assert changed.count() == by_path["page 0.png"].n_lines  # the old file's extra lines are gone
    assert set(r.run_id for r in changed.collect()) == {third.run_id}
    assert duplicates(pages, ["path", "page"]) == 0 and duplicates(lines, ["path", "page", "line"]) == 0

    statuses = {r.run_id: (r.status, r.files, r.files_skipped) for r in runs.collect()}
    assert statuses == {first.run_id: ("succeeded", 5, 0), again.run_id: ("succeeded", 5, 5),
                        third.run_id: ("succeeded", 6, 4)}


def test_new_model_version_reprocesses_only_when_asked(spark, tmp_path, inputs):
    out = tmp_path / "tables"
    recognize_to_tables(spark, [str(inputs)], str(out))
    bundled = resolve_model(None)
    newer = tmp_path / "model"
    shutil.copytree(bundled.model_path.parent, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["version"] = manifest["version"] + "-retrained"
    (newer / "manifest.json").write_text(json.dumps(manifest))

    skipped = recognize_to_tables(spark, [str(inputs)], str(out), model=str(newer))
    assert skipped.files_skipped == 5
    redone = recognize_to_tables(spark, [str(inputs)], str(out), model=str(newer), reprocess=True)
    # The broken file has no recogniser: a new model would not change its error row.
    assert (redone.files_processed, redone.pages) == (4, 4)
    pages, lines, _ = tables(spark, out)
    ref = f"{manifest['name']}@{manifest['version']}+charlm"  # the bundled LM came along: beam search
    assert {r.recognizer for r in pages.where("status = 'ok'").collect()} == {ref}
    assert {r.recognizer for r in lines.collect()} == {ref}
    assert duplicates(pages, ["path", "page"]) == 0 and duplicates(lines, ["path", "page", "line"]) == 0
    retried = recognize_to_tables(spark, [str(inputs)], str(out), model=str(newer), retry_errors=True)
    assert (retried.files_processed, retried.errors) == (1, 1)


def test_failed_run_then_rerun_leaves_one_row_per_key_and_none_missing(spark, tmp_path, inputs, monkeypatch):
    out = tmp_path / "tables"
    original = runner.default_pipeline
    monkeypatch.setattr(runner, "default_pipeline", with_first_stage(original, FailOnPath("page 2.png")))
    with pytest.raises(Exception, match="injected failure"):
        recognize_to_tables(spark, [str(inputs)], str(out), files_per_commit=2)  # batches sorted by path
    monkeypatch.setattr(runner, "default_pipeline", original)
    pages, _, runs = tables(spark, out)
    committed = {r.path for r in pages.collect()}
    assert 0 < len(committed) < 5  # the first batch committed, the failing one did not
    failed = runs.collect()[0]
    assert failed.status == "failed" and "injected failure" in failed.error

    rerun = recognize_to_tables(spark, [str(inputs)], str(out), files_per_commit=2)
    assert rerun.files_skipped == len(committed)
    pages, lines, _ = tables(spark, out)
    listed = sorted(p.name for p in inputs.iterdir())
    assert sorted(r.path.rsplit("/", 1)[-1] for r in pages.collect()) == listed  # none missing
    assert duplicates(pages, ["path", "page"]) == 0 and duplicates(lines, ["path", "page", "line"]) == 0


def test_another_segmenter_counts_as_another_model_for_reprocess(spark):
    from sparkhtr.spark.incremental import done_files
    from sparkhtr.spark.line_segmenter import segmenter_ref

    classical, learned = segmenter_ref("classical"), segmenter_ref("learned")
    assert learned.startswith("sparkhtr-learned@2+kraken-blla-int8@") and classical != learned
    assert segmenter_ref("learned", "kraken-blla").startswith("sparkhtr-learned@2+kraken-blla@")
    rec = "sparkhtr-latin-crnn@0.16.0+charlm"
    pages = spark.createDataFrame(
        [("a", "s1", 1, None, "ok", rec, classical), ("b", "s2", 2, None, "ok", rec, learned),
         ("c", None, 3, None, "error", None, None)],
        "path string, content_sha256 string, source_length long, source_modified timestamp, status string, "
        "recognizer string, segmenter string")

    def done(**kwargs) -> set[str]:
        return {r.path for r in done_files(pages, rec, **kwargs).collect()}

    assert done() == {"a", "b", "c"}  # without reprocess everything recorded is done
    assert done(reprocess=True, segmenter=learned) == {"b", "c"}  # "a" was segmented the classical way
    assert done(reprocess=True, segmenter=classical) == {"a", "c"}
    assert done(reprocess=True) == {"a", "b", "c"}  # same recogniser, segmenter not asked about


def test_another_beam_width_counts_as_another_recognizer(spark, tmp_path, inputs):
    out = tmp_path / "tables"
    recognize_to_tables(spark, [str(inputs)], str(out))
    shipped = resolve_model(None).ref + "+charlm"
    spark.conf.set("spark.sparkhtr.recognizer.beamWidth", "4")  # as a --profile file would set it
    try:
        redone = recognize_to_tables(spark, [str(inputs)], str(out), reprocess=True)
        again = recognize_to_tables(spark, [str(inputs)], str(out), reprocess=True)
    finally:
        spark.conf.unset("spark.sparkhtr.recognizer.beamWidth")
    assert redone.files_processed == 4  # the four readable pages, read again with 4 beams
    assert redone.recognizer == again.recognizer == shipped + ":beam4"
    assert again.files_processed == 0  # same model, same beams: nothing to redo
    pages, lines, _ = tables(spark, out)
    assert {r.recognizer for r in pages.where("status = 'ok'").collect()} == {shipped + ":beam4"}
    assert {r.recognizer for r in lines.collect()} == {shipped + ":beam4"}
