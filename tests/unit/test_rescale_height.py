"""Making a trained CRNN read lines at another height: the projection's rows interpolated, nothing else moved."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from models.training.model import CRNN, crnn_from_config  # noqa: E402
from models.training.rescale_height import main, rescale_checkpoint, rescale_projection  # noqa: E402


def _trained(height: int = 48) -> CRNN:
    model = CRNN(num_classes=9, height=height, refine_hidden=8, cnn_residual=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def test_features_equal_on_every_row_project_as_before():
    weight = torch.randn(5, 4 * 3)
    wide = rescale_projection(weight, 3, 4)
    assert wide.shape == (5, 16)
    features = torch.randn(4, 1)  # per channel, the same on every row
    assert torch.allclose(weight @ features.expand(4, 3).reshape(-1), wide @ features.expand(4, 4).reshape(-1),
                          atol=1e-5)
    assert torch.equal(rescale_projection(weight, 3, 3), weight)
    with pytest.raises(ValueError, match="not a multiple"):
        rescale_projection(torch.randn(5, 10), 3, 4)


def test_a_checkpoint_rescaled_to_64_reads_64_pixel_lines_with_its_other_weights_untouched():
    model = _trained()
    config = {"num_classes": 9, "height": 48, "refine_hidden": 8, "cnn_residual": 1, "characters": "abc"}
    ckpt = {"model": model.state_dict(), "config": config,
            "state": {"step": 12, "decay_start": 3}, "optimizer": {"unused": 1}}
    rescaled = rescale_checkpoint(ckpt, 64)
    assert rescaled["config"] == {**config, "height": 64}
    assert "optimizer" not in rescaled and "decay_start" not in rescaled["state"]
    assert rescaled["state"] == {"step": 12, "rescaled_from_height": 48}
    for name, value in model.state_dict().items():
        if name != "project.0.weight":
            assert torch.equal(rescaled["model"][name], value), name
    grown = crnn_from_config(rescaled["config"])
    grown.load_state_dict(rescaled["model"])
    assert grown.eval()(torch.rand(2, 1, 64, 40)).shape == (2, 10, 9)
    with pytest.raises(ValueError, match="multiple of 16"):
        rescale_checkpoint(ckpt, 50)


def test_the_command_writes_a_checkpoint_training_resumes_from(tmp_path, capsys):
    src = tmp_path / "a.pt"
    torch.save({"model": _trained().state_dict(), "config": {"num_classes": 9, "height": 48, "refine_hidden": 8,
                                                             "cnn_residual": 1}, "state": {"step": 5}}, src)
    assert main(["--checkpoint", str(src), "--height", "64", "--out", str(tmp_path / "run" / "last.pt")]) == 0
    assert '"from_height": 48' in capsys.readouterr().out
    saved = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["model"]["project.0.weight"].shape == (256, 128 * 4)
