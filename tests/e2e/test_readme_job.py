"""The README's main job end to end: sample pages → local Spark → Delta → SQL, and back to ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkhtr.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

pytestmark = pytest.mark.spark


def test_readme_job_on_sample_pages(spark, tmp_path, capsys):
    from sparkhtr.core.alphabet import Alphabet
    from sparkhtr.core.metrics import cer
    from sparkhtr.io.delta import read_delta
    from sparkhtr.registry import resolve_model

    out = tmp_path / "tables"
    assert main(["recognize", str(SAMPLES / "pages"), "--out", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "6 pages (0 errors)" in summary

    truth = [json.loads(line) for line in (SAMPLES / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]
    pages = {(Path(r.path).name, r.page): r for r in read_delta(spark, str(out / "pages")).collect()}
    assert len(pages) == len(truth) == 6
    alphabet = Alphabet(resolve_model().alphabet)
    refs, hyps = [], []
    for row in truth:
        page = pages[(Path(row["file"]).name, row["page"])]
        assert page.status == "ok" and page.error is None
        assert page.recognizer == resolve_model().ref + "+charlm"  # beam search with the bundled LM
        # the default (learned) segmenter finds every line of these clean pages, give or take one
        assert page.segmenter.startswith("sparkhtr-learned@2+kraken-blla-int8@")
        assert abs(page.n_lines - len(row["lines"])) <= max(1, len(row["lines"]) // 10)
        refs.append("\n".join(alphabet.normalize(line["text"]) for line in row["lines"]))
        hyps.append(page.text)
    # a real model reads these pages; an empty or random output is near 100 % CER
    assert cer(refs, hyps) < 0.6

    lines = read_delta(spark, str(out / "lines"))
    assert lines.count() == sum(p.n_lines for p in pages.values())
    runs = read_delta(spark, str(out / "runs")).collect()
    assert len(runs) == 1 and runs[0].pages == 6 and runs[0].errors == 0 and runs[0].files == 5

    query = "SELECT count(*) AS n, sum(n_lines) AS l FROM pages WHERE status = 'ok'"
    assert main(["sql", "--tables", str(out), query, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result == {"n": 6, "l": lines.count()}

    # ALTO export that validates against the official XSD (when ../shared/schemas is there)
    schemas = ROOT.parent / "shared" / "schemas"
    validate = ["--validate", str(schemas)] if (schemas / "alto-4-4.xsd").is_file() else []
    assert main(["export", "--tables", str(out), "--format", "alto", "--out", str(tmp_path / "alto"), *validate]) == 0
    printed = capsys.readouterr().out
    assert "6 alto files" in printed and (not validate or "6/6 valid" in printed)
    # and the page CER against the samples' PAGE ground truth agrees with the figure above
    assert main(["eval", "--tables", str(out), "--gt", str(SAMPLES / "ground_truth"), "--normalize", "alphabet",
                 "--json", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert report["all"]["pages"] == 6 and report["all"]["cer"] == pytest.approx(cer(refs, hyps), abs=0.02)


def test_lines_mode_writes_jsonl(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from sparkhtr.core.decode import iter_pages
    from sparkhtr.core.segment import segment_lines

    page = next(iter_pages((SAMPLES / "pages" / "sample_01.png").read_bytes()))
    for k, line in enumerate(segment_lines(page.image)[:3]):
        Image.fromarray(np.asarray(line.crop)).save(tmp_path / f"line{k}.png")
    out = tmp_path / "preds.jsonl"
    assert main(["recognize", "--lines", str(tmp_path), "--out", str(out), "--glob", "*.png"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["line0.png", "line1.png", "line2.png"]
    assert all(set(r) == {"path", "text", "confidence"} and r["text"] for r in rows)
