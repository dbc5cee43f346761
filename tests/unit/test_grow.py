"""Growing a trained CRNN (a residual BiLSTM, residual conv blocks): same function at first, then
trainable, exportable, rebuilt from ONNX."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.training.model import CRNN, crnn_from_config, grow_cnn, grow_refine, grow_refine_stages  # noqa: E402

SIZES = {"channels": (8, 16, 24, 32), "hidden": 16, "layers": 2}


def _trained_like(model: CRNN, seed: int) -> CRNN:
    # random non-zero weights everywhere, as a trained model has them
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def _assert_same_function(small: CRNN, grown: CRNN, width: int) -> None:
    # the grown model keeps every weight of the small one and, before training, its outputs
    x = torch.rand(3, 1, 32, width)
    with torch.no_grad():
        assert torch.equal(small.eval()(x), grown.eval()(x))
    for name, value in small.state_dict().items():
        assert torch.equal(grown.state_dict()[name], value)


def test_a_grown_model_computes_what_it_computed_before():
    small = _trained_like(CRNN(num_classes=9, height=32, **SIZES), seed=0)
    grown = grow_refine(small, 24)
    _assert_same_function(small, grown, width=77)
    assert grown.refine.hidden_size == 24 and grown.refine_out.out_features == 2 * SIZES["hidden"]


def _assert_one_step_moves(grown: CRNN, zero_init: torch.Tensor) -> None:
    # a grown part starts at zero (the identity): one SGD step must give it a gradient and move it
    grown.train()
    optimizer = torch.optim.SGD(grown.parameters(), lr=0.1)
    grown(torch.rand(2, 1, 32, 40)).sum().backward()
    assert zero_init.grad.abs().sum() > 0
    optimizer.step()
    assert zero_init.abs().sum() > 0


def test_one_training_step_moves_the_refine_stage():
    grown = grow_refine(_trained_like(CRNN(num_classes=9, height=32, dropout=0.0, **SIZES), seed=1), 8)
    _assert_one_step_moves(grown, grown.refine_out.weight)  # the zero layer learns at once


def test_a_model_is_grown_once():
    with pytest.raises(ValueError, match="already has a refine stage"):
        grow_refine(CRNN(num_classes=9, height=32, refine_hidden=8, **SIZES), 8)


def test_the_config_says_whether_a_checkpoint_has_a_refine_stage():
    assert crnn_from_config({"num_classes": 9, "height": 32}).refine_hidden == 0
    assert crnn_from_config({"num_classes": 9, "height": 32, "refine_hidden": 12}).refine.hidden_size == 12


def _round_trip(grown: CRNN, tmp_path, seed: int) -> tuple[dict, dict, CRNN]:
    """Export ``grown``, read its weights and sizes back off the graph, rebuild it; parity checked."""
    pytest.importorskip("onnx")
    from models.training.data import LineSample, collate
    from models.training.export import export_onnx, parity
    from models.training.from_onnx import onnx_state_dict, rebuild
    from models.training.model import WIDTH_STRIDE

    path = tmp_path / "model.onnx"
    export_onnx(grown.eval(), 32, path)
    weights, sizes = onnx_state_dict(path)
    rng = np.random.default_rng(seed)
    lines = [(rng.random((32, w)) * 255).astype(np.uint8) for w in (40, 97, 200)]
    rebuilt = rebuild(path, 32, [collate(lines, WIDTH_STRIDE)[0]]).eval()
    report = parity(rebuilt, path, [LineSample(img, "x", "toy", str(i)) for i, img in enumerate(lines)], batch=2)
    assert report["max_abs_logit_diff"] < 1e-4 and report["identical_decodes"] == 1.0
    return weights, sizes, rebuilt


def test_a_grown_model_round_trips_through_onnx(tmp_path):
    grown = grow_refine(_trained_like(CRNN(num_classes=9, height=32, **SIZES), seed=2), 12)
    with torch.no_grad():
        grown.refine_out.weight.normal_(0, 0.2)  # as after training: the stage counts
    weights, sizes, _ = _round_trip(grown, tmp_path, seed=3)
    assert sizes == {**SIZES, "num_classes": 9, "refine_hidden": 12}
    assert weights["refine.weight_hh_l0_reverse"].shape == (48, 12)


def test_training_grows_a_checkpoint_and_resumes_it(tmp_path, shared_data, capsys):
    from models.training import train
    from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet

    alphabet = Alphabet(DEFAULT_CHARACTERS)
    out = tmp_path / "run"
    out.mkdir()
    config = {"height": 48, "characters": DEFAULT_CHARACTERS, "num_classes": alphabet.num_classes, "dropout": 0.0}
    torch.save({"model": CRNN(alphabet.num_classes, 48, dropout=0.0).state_dict(), "config": config,
                "state": {"step": 5, "epoch": 0, "best_cer": 1.0, "lr_scale": 1.0, "bad_evals": 0,
                          "train_seconds": 0.0}}, out / "last.pt")
    common = ["--out", str(out), "--data", str(shared_data), "--datasets", "mss19", "--limit", "2",
              "--max-width", "300", "--eval-every", "1000"]
    train.main([*common, "--max-steps", "7", "--grow-refine", "16"])
    assert "grew a residual BiLSTM of 16 units" in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["config"]["refine_hidden"] == 16 and ckpt["state"]["warmup_start"] == 5
    assert ckpt["model"]["refine_out.weight"].abs().sum() > 0
    train.main([*common, "--max-steps", "8", "--grow-refine", "16"])  # resumes; grows nothing twice
    printed = capsys.readouterr().out
    assert "grew" not in printed and "resumed at step 7" in printed
    assert torch.load(out / "last.pt", map_location="cpu", weights_only=False)["state"]["step"] == 8
    assert (out / "grown-5.pt").is_file() and not (out / "grown-7.pt").exists()

    # then the CNN: the grown starting point is kept for averaging and computes what step 8 did
    at_step_8 = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    before = crnn_from_config(at_step_8["config"])
    before.load_state_dict(at_step_8["model"])
    train.main([*common, "--max-steps", "9", "--grow-cnn", "1"])
    assert "grew 1 residual convolution block(s)" in capsys.readouterr().out
    start = torch.load(out / "grown-8.pt", map_location="cpu", weights_only=False)
    assert start["config"]["cnn_residual"] == 1 and start["config"]["refine_hidden"] == 16
    grown = crnn_from_config(start["config"])
    grown.load_state_dict(start["model"])
    x = torch.rand(2, 1, 48, 60)
    with torch.no_grad():
        assert torch.allclose(before.eval()(x), grown.eval()(x), atol=1e-6)
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["state"]["step"] == 9 and ckpt["model"]["cnn.22.body.4.weight"].abs().sum() > 0

    # a model that has blocks grows to the number asked for; once there, a resumed run adds none
    train.main([*common, "--max-steps", "10", "--grow-cnn", "2"])
    assert "grew 1 residual convolution block(s) at the CNN's top (2 in all)" in capsys.readouterr().out
    assert (out / "grown-9.pt").is_file()
    train.main([*common, "--max-steps", "11", "--grow-cnn", "2"])
    assert "grew" not in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["config"]["cnn_residual"] == 2 and ckpt["state"]["step"] == 11
    assert ckpt["model"]["cnn.23.body.4.weight"].abs().sum() > 0

    # a second residual BiLSTM stage on top of the first, recorded in the config
    train.main([*common, "--max-steps", "12", "--grow-refine-stages", "2"])
    assert "grew 1 residual BiLSTM stage(s) (2 in all)" in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["config"]["refine_stages"] == 2 and ckpt["model"]["refine_extra.0.out.weight"].abs().sum() > 0
    assert crnn_from_config(ckpt["config"]).refine_stages == 2


def test_stacked_refine_stages_compute_what_the_model_computed_before():
    small = _trained_like(CRNN(num_classes=9, height=32, refine_hidden=8, **SIZES), seed=8)
    grown = grow_refine_stages(small, 3)
    _assert_same_function(small, grown, width=53)
    assert small.refine_stages == 1 and grown.refine_stages == 3
    assert grown.refine_extra[1].lstm.hidden_size == 8 and grown.refine_extra[1].out.out_features == 2 * SIZES["hidden"]
    # a checkpoint's config rebuilds the stack, and an older config (no key) means one stage
    config = {"num_classes": 9, "height": 32, "refine_hidden": 8, "refine_stages": 3}
    assert crnn_from_config(config).refine_stages == 3
    assert crnn_from_config({"num_classes": 9, "height": 32, "refine_hidden": 8}).refine_stages == 1


def test_a_stage_needs_a_refine_stage_to_stack_on():
    with pytest.raises(ValueError, match="no refine stage"):
        grow_refine_stages(CRNN(num_classes=9, height=32, **SIZES), 2)


def test_one_training_step_moves_a_stacked_stage():
    grown = grow_refine_stages(_trained_like(CRNN(num_classes=9, height=32, dropout=0.0, refine_hidden=8, **SIZES),
                                             seed=9), 2)
    _assert_one_step_moves(grown, grown.refine_extra[0].out.weight)


def test_a_cnn_grown_model_computes_what_it_computed_before():
    small = _trained_like(CRNN(num_classes=9, height=32, refine_hidden=8, **SIZES), seed=4)
    grown = grow_cnn(small, 2)
    _assert_same_function(small, grown, width=61)
    assert grown.cnn_residual == 2 and len(grown.cnn) == len(small.cnn) + 2
    assert crnn_from_config({"num_classes": 9, "height": 32, "cnn_residual": 2}).cnn_residual == 2


def test_one_training_step_moves_the_residual_block():
    grown = grow_cnn(_trained_like(CRNN(num_classes=9, height=32, dropout=0.0, **SIZES), seed=5))
    _assert_one_step_moves(grown, grown.cnn[-1].body[-1].weight)  # the zero scale learns at once


def test_a_cnn_grown_model_round_trips_through_onnx(tmp_path):
    grown = grow_cnn(grow_refine(_trained_like(CRNN(num_classes=9, height=32, **SIZES), seed=6), 12))
    with torch.no_grad():
        grown.refine_out.weight.normal_(0, 0.2)
        grown.cnn[-1].body[-1].weight.normal_(0, 0.5)  # as after training: the block counts
    weights, sizes, rebuilt = _round_trip(grown, tmp_path, seed=7)
    assert sizes == {**SIZES, "num_classes": 9, "refine_hidden": 12, "cnn_residual": 1}
    assert weights["cnn.22.body.3.weight"].shape == (32, 32, 3, 3)
    assert rebuilt.cnn_residual == 1


def test_stacked_refine_stages_round_trip_through_onnx(tmp_path):
    grown = grow_refine_stages(_trained_like(CRNN(num_classes=9, height=32, refine_hidden=12, cnn_residual=1,
                                                  **SIZES), seed=10), 3)
    with torch.no_grad():
        for stage in grown.refine_extra:
            stage.out.weight.normal_(0, 0.2)  # as after training: the stages count
    weights, sizes, rebuilt = _round_trip(grown, tmp_path, seed=11)
    assert sizes == {**SIZES, "num_classes": 9, "refine_hidden": 12, "refine_stages": 3, "cnn_residual": 1}
    assert weights["refine_extra.1.lstm.weight_hh_l0_reverse"].shape == (48, 12)
    assert rebuilt.refine_stages == 3
