"""Rebuilding a trainable CRNN from its ONNX export (BatchNorm folded) for further training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from models.training.data import LineSample, collate  # noqa: E402
from models.training.export import export_onnx, parity  # noqa: E402
from models.training.from_onnx import (  # noqa: E402
    OnnxLayoutError,
    main,
    onnx_state_dict,
    rebuild,
)
from models.training.model import CRNN, WIDTH_STRIDE  # noqa: E402

SIZES = {"channels": (8, 16, 24, 32), "hidden": 16, "layers": 2}


def _randomised_batchnorm(model: CRNN, seed: int) -> CRNN:
    # non-trivial statistics, so a folding mistake shows in the logits
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    return model.eval()


def _lines(widths, height: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((height, w)) * 255).astype(np.uint8) for w in widths]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = _randomised_batchnorm(CRNN(num_classes=12, height=32, **SIZES), seed=1)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(model, 32, path)
    return model, path


def test_sizes_are_read_off_the_weights(exported):
    _, path = exported
    weights, sizes = onnx_state_dict(path)
    assert sizes == {**SIZES, "num_classes": 12}
    assert weights["rnn.weight_ih_l1_reverse"].shape == (64, 32)
    assert weights["project.0.weight"].shape == (256, 32 * 2)  # channels x height // 16


def test_rebuilt_model_computes_what_the_onnx_file_does(exported):
    original, path = exported
    calibration = [collate(_lines([60, 90, 120], seed=2), WIDTH_STRIDE)[0]]
    rebuilt = rebuild(path, 32, calibration).eval()
    samples = [LineSample(img, "x", "toy", str(i)) for i, img in enumerate(_lines([40, 97, 256, 513], seed=3))]
    report = parity(rebuilt, path, samples, batch=2)
    assert report["max_abs_logit_diff"] < 1e-4 and report["identical_decodes"] == 1.0
    batch, _ = collate([s.image for s in samples], WIDTH_STRIDE)
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(torch.from_numpy(batch)).numpy(),
                                   original(torch.from_numpy(batch)).numpy(), atol=1e-4)


def test_batchnorm_statistics_are_those_of_the_calibration_lines(exported):
    # in training mode a batch normalises with its own statistics: on the very batch the
    # statistics came from, training and eval mode must agree
    _, path = exported
    batch = collate(_lines([64, 64, 80, 72], seed=4), WIDTH_STRIDE)[0]
    rebuilt = rebuild(path, 32, [batch])
    for m in rebuilt.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    rebuilt.rnn.dropout = 0.0  # between the LSTM layers
    with torch.no_grad():
        evaluated = rebuilt.eval()(torch.from_numpy(batch))
        trained = rebuilt.train()(torch.from_numpy(batch))
    np.testing.assert_allclose(trained.numpy(), evaluated.numpy(), atol=2e-3)


def test_a_graph_that_is_not_a_crnn_is_refused(tmp_path):
    from tests.helpers.tiny_model import build_tiny_ctc

    build_tiny_ctc(tmp_path / "tiny.onnx")
    with pytest.raises(OnnxLayoutError, match=r"expected 6 \(\+ 2 per residual block\) Conv"):
        onnx_state_dict(tmp_path / "tiny.onnx")


def test_no_calibration_lines_is_an_error(exported):
    with pytest.raises(ValueError, match="no calibration"):
        rebuild(exported[1], 32, [])


def test_training_resumes_from_the_rebuilt_checkpoint_with_a_warm_up(tmp_path, shared_data, capsys):
    from models.training import train
    from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet
    from sparkhtr.registry import file_sha256

    alphabet = Alphabet(DEFAULT_CHARACTERS)
    torch.manual_seed(0)
    folder = tmp_path / "model"
    folder.mkdir()
    export_onnx(CRNN(alphabet.num_classes, 48).eval(), 48, folder / "model.onnx")
    manifest = {"name": "toy", "version": "0.0.1", "kind": "ctc-line-recognizer", "file": "model.onnx",
                "input_height": 48, "input_channels": 1, "normalization": "normalize_line",
                "alphabet": DEFAULT_CHARACTERS, "sha256": file_sha256(folder / "model.onnx"), "training_steps": 10}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "run"
    args = ["--model", str(folder), "--out", str(out), "--data", str(shared_data), "--calibration-lines", "2",
            "--datasets", "hooker,poilus"]
    assert main(args) == 0
    assert main(args) == 2  # an existing resume point is not overwritten without --force
    train.main(["--out", str(out), "--data", str(shared_data), "--datasets", "mss19", "--limit", "2",
                "--max-steps", "12", "--max-width", "300", "--eval-every", "1000", "--dropout", "0"])
    printed = capsys.readouterr().out
    assert "loaded 2 train / 2 val lines" in printed and "resumed at step 10 (best CER inf, dropout 0.0)" in printed
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["state"]["step"] == 12 and ckpt["state"]["warmup_start"] == 10
    assert ckpt["config"]["dropout"] == 0.0
    assert "optimizer" in ckpt and ckpt["state"]["rebuilt_from"] == "toy 0.0.1"
    train.main(["--out", str(out), "--data", str(shared_data), "--datasets", "mss19", "--limit", "2",
                "--max-steps", "13", "--max-width", "300", "--eval-every", "1000"])
    assert "resumed at step 12 (best CER inf, dropout 0.0)" in capsys.readouterr().out  # kept across resumes
    assert train.learning_rate(10, 1e-3, warmup_start=10) == pytest.approx(1e-3 / 500)
    assert train.learning_rate(509, 1e-3, warmup_start=10) == pytest.approx(1e-3)


def test_the_command_line_needs_a_model_folder(tmp_path: Path):
    from sparkhtr.errors import ModelError

    with pytest.raises(ModelError, match=r"no manifest\.json"):
        main(["--model", str(tmp_path / "absent"), "--out", str(tmp_path / "run")])
