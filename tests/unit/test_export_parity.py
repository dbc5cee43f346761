"""The torch → ONNX export keeps logits and greedy decodes (dynamic batch and width)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from models.training.data import (  # noqa: E402
    LineSample,
    collate,
)
from models.training.export import export_onnx, parity  # noqa: E402
from models.training.model import CRNN, WIDTH_STRIDE  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = CRNN(num_classes=12, height=32).eval()
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(model, 32, path)
    return model, path


def test_parity_on_random_lines_of_several_widths(exported):
    model, path = exported
    rng = np.random.default_rng(0)
    samples = [LineSample((rng.random((32, w)) * 255).astype(np.uint8), "x", "toy", str(w))
               for w in (40, 97, 256, 513, 130)]
    report = parity(model, path, samples, batch=3)
    assert report["lines"] == 5
    assert report["max_abs_logit_diff"] < 1e-3
    assert report["identical_decodes"] == 1.0


def test_output_frames_follow_the_width_stride(exported):
    import onnxruntime as ort

    _, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch, _ = collate([np.zeros((32, 200), np.uint8), np.zeros((32, 120), np.uint8)], WIDTH_STRIDE)
    out = session.run(None, {"images": batch})[0]
    assert out.shape == (2, 200 // WIDTH_STRIDE, 12)
    np.testing.assert_allclose(np.exp(out).sum(-1), 1.0, rtol=1e-4)


def test_parity_on_real_val_lines(exported, shared_data):
    from models.training.data import load_split
    from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet

    model, path = exported
    samples = load_split(shared_data, "val", Alphabet(DEFAULT_CHARACTERS), 32, 2400, ("hooker",), limit=8)
    report = parity(model, path, samples, batch=4)
    assert report["max_abs_logit_diff"] < 1e-3 and report["identical_decodes"] == 1.0


def test_an_averaged_checkpoint_exports_with_its_sources_in_the_manifest(tmp_path, shared_data):
    import json

    from models.training import average, export
    from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet

    alphabet = Alphabet(DEFAULT_CHARACTERS)
    config = {"height": 48, "characters": DEFAULT_CHARACTERS, "num_classes": alphabet.num_classes}
    sources = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f"step-{seed}.pt"
        torch.save({"model": CRNN(alphabet.num_classes, 48).state_dict(), "config": config,
                    "state": {"step": 10 + seed}}, path)
        sources.append(str(path))
    assert average.main([*sources, "--out", str(tmp_path / "mean.pt")]) == 0
    out = tmp_path / "model"
    assert export.main(["--checkpoint", str(tmp_path / "mean.pt"), "--out", str(out), "--version", "0.0.1",
                        "--data", str(shared_data), "--parity-lines", "2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["averaged_from"] == sources and manifest["training_steps"] == 11
