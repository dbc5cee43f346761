import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sparkhtr.cli import build_parser, main
from sparkhtr.errors import ConfigError
from sparkhtr.evaluation import confidence_coverage, evaluate_lines
from sparkhtr.spark.session import load_profile
from tests.helpers.tiny_model import blob_line


def test_models_lists_the_bundled_default(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "sparkhtr-latin-crnn@" in out and "(default)" in out
    assert "kraken-blla-int8@" in out and "baseline-segmenter" in out and "(--segmenter learned)" in out
    assert "kraken-blla@" in out


def test_parser_knows_every_command():
    parser = build_parser()
    args = parser.parse_args(["recognize", "a", "b", "--out", "o", "--device", "cpu"])
    assert args.inputs == ["a", "b"] and args.device == "cpu" and not args.lines
    assert args.segmenter == "learned"
    assert parser.parse_args(["recognize", "a", "--out", "o", "--segmenter", "classical"]).segmenter == "classical"
    assert parser.parse_args(["sql", "--tables", "t", "SELECT 1"]).query == "SELECT 1"
    with pytest.raises(SystemExit):
        parser.parse_args(["recognize", "a", "--out", "o", "--device", "tpu"])


def test_eval_lines_on_a_parquet_of_blob_lines(tmp_path, tiny_model_dir, capsys):
    texts, images = [], []
    for k in (1, 2, 3, 2):
        buf = io.BytesIO()
        Image.fromarray(blob_line(k)).save(buf, "PNG")
        images.append(buf.getvalue())
        texts.append("a" * k if k != 3 else "aab")  # one line the tiny model cannot get right
    pq.write_table(pa.table({"text": texts, "image": images}), tmp_path / "toy.parquet")
    report_path = tmp_path / "report.json"
    predictions_path = tmp_path / "preds.jsonl"
    code = main(["eval-lines", str(tmp_path / "toy.parquet"), "--data", str(tmp_path / "none"),
                 "--model", str(tiny_model_dir), "--device", "cpu", "--threads", "1", "--json", str(report_path),
                 "--predictions", str(predictions_path)])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert "lines" not in report  # per-line records go to --predictions only
    predictions = [json.loads(row) for row in predictions_path.read_text().splitlines()]
    assert [(p["dataset"], p["index"], p["reference"]) for p in predictions] == [
        ("toy", k, text) for k, text in enumerate(texts)]
    assert [p["cer"] for p in predictions] == pytest.approx([0, 0, 1 / 3, 0])
    assert all(0 < p["confidence"] <= 1 for p in predictions)
    assert report["datasets"]["toy"]["lines"] == 4
    assert report["datasets"]["toy"]["cer"] == pytest.approx(1 / 8)
    out = capsys.readouterr().out
    assert "lines/s" in out and "most confident lines kept" in out
    coverage = report["confidence_coverage"]
    assert [row["lines"] for row in coverage] == [1, 2, 3, 4]
    assert coverage[-1]["cer"] == pytest.approx(1 / 8)
    assert report["too_narrow"] == {} and "datasets_without_too_narrow" not in report
    assert "narrower than their text needs" not in out


def test_eval_lines_sets_apart_lines_too_narrow_for_their_text(tmp_path, tiny_model_dir, capsys):
    # a 10-pixel-wide crop labelled with four characters: the tiny model (height 16, stride 4)
    # gives it 2 frames, CTC needs 4; the other line reads right
    texts = ["aa", "abab"]
    images = []
    for image in (blob_line(2), np.full((40, 10), 240, np.uint8)):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "PNG")
        images.append(buf.getvalue())
    pq.write_table(pa.table({"text": texts, "image": images}), tmp_path / "toy.parquet")
    report_path = tmp_path / "report.json"
    assert main(["eval-lines", str(tmp_path / "toy.parquet"), "--data", str(tmp_path / "none"), "--model",
                 str(tiny_model_dir), "--device", "cpu", "--threads", "1", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["datasets"]["toy"]["lines"] == 2  # the official figure keeps every line
    assert report["datasets"]["toy"]["cer"] > 0.5
    assert report["too_narrow"] == {"toy": {"lines": 1, "characters": 4}}
    assert report["datasets_without_too_narrow"]["toy"] == {"cer": 0.0, "wer": 0.0, "lines": 1}
    out = capsys.readouterr().out
    assert "narrower than their text needs" in out and "toy 1 (4 characters)" in out and "toy 0.00" in out


def test_unknown_model_is_a_clean_error(capsys):
    assert main(["eval-lines", "x.parquet", "--data", "/nonexistent", "--model", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_evaluate_lines_groups():
    report = evaluate_lines(["ab", "cd"], ["ab", "xd"], ["g1", "g2"])
    assert report["g1"]["cer"] == 0.0 and report["g2"]["cer"] == 0.5 and report["all"]["cer"] == 0.25


def test_confidence_coverage_keeps_the_most_confident_lines_first():
    refs = ["abcd", "abcd", "abcd", "abcd"]
    hyps = ["abcd", "abxd", "xxcd", "xxxx"]
    rows = confidence_coverage(refs, hyps, [0.9, 0.2, 0.5, 0.1], shares=(0.25, 0.5, 0.75, 1.0))
    assert [row["cer"] for row in rows] == pytest.approx([0.0, 2 / 8, 3 / 12, 7 / 16])
    assert [row["min_confidence"] for row in rows] == [0.9, 0.5, 0.2, 0.1]
    assert confidence_coverage([], [], [])[0]["lines"] == 0
    with pytest.raises(ValueError, match="differ in length"):
        confidence_coverage(["a"], [], [0.5])


def test_conf_profiles():
    local = load_profile("local")
    assert local["spark.python.worker.reuse"] == "true"
    assert "spark.executor.resource.gpu.amount" in load_profile("gpu-cluster")
    with pytest.raises(ConfigError):
        load_profile("no-such-profile")
