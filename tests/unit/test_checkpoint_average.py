"""Averaging training checkpoints: floats averaged, counters and state from the last."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from models.training.average import average_state_dicts, main  # noqa: E402
from models.training.model import CRNN  # noqa: E402


def _checkpoint(path, seed: int, step: int) -> dict:
    torch.manual_seed(seed)
    model = CRNN(num_classes=7, height=48, channels=(4, 4, 4, 4), hidden=8)
    ckpt = {"model": model.state_dict(), "optimizer": {}, "state": {"step": step},
            "config": {"height": 48, "characters": "abcdef", "num_classes": 7}}
    torch.save(ckpt, path)
    return ckpt


def test_average_of_two_crnn_checkpoints_is_their_mean_and_loads(tmp_path):
    a = _checkpoint(tmp_path / "a.pt", 0, 100)
    b = _checkpoint(tmp_path / "b.pt", 1, 200)
    assert main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--out", str(tmp_path / "avg.pt")]) == 0
    saved = torch.load(tmp_path / "avg.pt", map_location="cpu", weights_only=False)
    assert "optimizer" not in saved and saved["state"]["step"] == 200
    for key, value in saved["model"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (a["model"][key] + b["model"][key]) / 2)
        else:
            assert torch.equal(value, b["model"][key])
    CRNN(num_classes=7, height=48, channels=(4, 4, 4, 4), hidden=8).load_state_dict(saved["model"])


def test_average_refuses_mixed_architectures_and_empty_input():
    small = CRNN(num_classes=7, height=48, channels=(4, 4, 4, 4), hidden=8).state_dict()
    other = CRNN(num_classes=9, height=48, channels=(4, 4, 4, 4), hidden=8).state_dict()
    other["extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match="different architectures"):
        average_state_dicts([small, other])
    with pytest.raises(ValueError, match="nothing"):
        average_state_dicts([])
