"""Streaming: files arriving between (and during) watches end up in the tables exactly once."""

from __future__ import annotations

from pathlib import Path

from sparkhtr.io.delta import read_delta
from sparkhtr.watch import finish_watch, watch_to_tables
from tests.helpers.pages import duplicates, write_page


def watch_once(spark, inputs: Path, out: Path, checkpoint: Path):
    query = watch_to_tables(spark, str(inputs), str(out), checkpoint=str(checkpoint), available_now=True,
                            max_files_per_trigger=2)
    query.awaitTermination(600)
    return finish_watch(query)


def test_restarted_watch_processes_only_new_files_and_loses_none(spark, tmp_path):
    inputs, out, checkpoint = tmp_path / "in", tmp_path / "tables", tmp_path / "checkpoint"
    inputs.mkdir()
    for i in range(3):
        write_page(inputs / f"scan {i}.png", [f"first {i}"])
    first = watch_once(spark, inputs, out, checkpoint)
    assert (first.status, first.files, first.files_skipped, first.pages) == ("stopped", 3, 0, 3)

    for i in range(3, 5):
        write_page(inputs / f"scan {i}.png", [f"later {i}"])
    (inputs / "empty.png").write_bytes(b"")
    second = watch_once(spark, inputs, out, checkpoint)
    assert (second.files, second.pages, second.errors) == (3, 3, 1)  # only the new files, the empty one an error row

    pages, lines = read_delta(spark, str(out / "pages")), read_delta(spark, str(out / "lines"))
    assert sorted(r.path.rsplit("/", 1)[-1] for r in pages.collect()) == sorted(p.name for p in inputs.iterdir())
    assert duplicates(pages, ["path", "page"]) == 0 and duplicates(lines, ["path", "page", "line"]) == 0
    runs = {r.run_id: r.status for r in read_delta(spark, str(out / "runs")).collect()}
    assert runs == {first.run_id: "stopped", second.run_id: "stopped"}
