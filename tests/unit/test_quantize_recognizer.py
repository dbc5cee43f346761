"""int8 recogniser: models/training/quantize_recognizer.py on the bundled model, calibrated on a generated page."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sparkhtr.core.metrics import cer
from sparkhtr.core.recognize import BeamSettings, LineRecognizer
from sparkhtr.registry import read_manifest, resolve_model, verify_model
from tests.helpers.pages import write_page

pytest.importorskip("onnx")  # onnxruntime.quantization needs it (the train and dev extras)


def test_int8_recognizer_folder_loads_and_reads_like_the_float_model(tmp_path):
    from models.training.quantize_recognizer import main

    pages = tmp_path / "pages"
    pages.mkdir()
    write_page(pages / "calibration.png", ["quick brown", "lazy dogs", "seven wizards"])
    out = tmp_path / "sparkhtr-latin-crnn-int8"
    source = resolve_model(None)
    # three short lines: one character of 33 read differently is 3 % drift, so the command's 2 %
    # bound (meant for the 131 sample-page lines) is loosened here; the bound itself is checked below
    args = ["--model", str(source.model_path.parent), "--out", str(out), "--calibration", str(pages)]
    assert main([*args, "--max-drift", "0.1"]) == 0

    manifest = read_manifest(out)
    verify_model(manifest)  # sha256 as recorded
    assert (manifest.name, manifest.version) == ("sparkhtr-latin-crnn-int8", source.version + "+int8")
    assert manifest.alphabet == source.alphabet
    assert "Conv only (the first kept float)" in manifest.extra["quantization"]
    assert manifest.model_path.stat().st_size < source.model_path.stat().st_size  # int8 convolution weights
    extra = json.loads((out / "manifest.json").read_text())
    assert 0.0 <= extra["parity_greedy_cer"] <= 0.1 and 0.0 <= extra["parity_same_greedy"] <= 1.0
    assert (out / "MODEL_CARD.md").read_text().startswith("# sparkhtr-latin-crnn-int8")
    BeamSettings.for_model(manifest)  # the language model came along, sha256 checked

    line = np.full((60, 520), 250, np.uint8)
    cv2.putText(line, "the river", (10, 42), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.4, 20, 3)
    float_text = LineRecognizer(source, device="cpu", threads=1, decoder="greedy").recognize([line])[0].text
    int8_text = LineRecognizer(manifest, device="cpu", threads=1, decoder="greedy").recognize([line])[0].text
    assert float_text and int8_text
    assert cer([float_text], [int8_text]) <= 0.25
    # a drift above --max-drift fails the command (exit 1); below any possible drift here
    assert main([*args, "--max-drift", "-1"]) == 1


def test_quantize_recognizer_refuses_a_folder_without_pages(tmp_path):
    from models.training.quantize_recognizer import main

    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no lines"):
        main(["--out", str(tmp_path / "out"), "--calibration", str(tmp_path / "empty")])
