"""``--bf16``: the passes in bfloat16, the weights and the loss in float32; ``--snapshot-every``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from models.training.model import CRNN  # noqa: E402


def _ctc_loss(model: CRNN, images: torch.Tensor, targets: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logp = model(images)
    assert logp.dtype == (torch.bfloat16 if bf16 else torch.float32)  # the pass ran in the precision asked for
    logp = logp.float()
    b, t, _ = logp.shape
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    return ctc(logp.transpose(0, 1), targets.flatten(), torch.full((b,), t), torch.full((b,), targets.shape[1]))


def test_a_bfloat16_pass_gives_nearly_the_float32_loss_and_gradients():
    torch.manual_seed(0)
    model = CRNN(num_classes=12, height=48, refine_hidden=16, cnn_residual=1, dropout=0.0).train()
    images = torch.rand(4, 1, 48, 160)
    targets = torch.randint(1, 12, (4, 9))
    exact = _ctc_loss(model, images, targets, bf16=False)
    exact.backward()
    exact_grad = model.head[1].weight.grad.clone()
    model.zero_grad()
    rounded = _ctc_loss(model, images, targets, bf16=True)
    rounded.backward()
    assert rounded.dtype == torch.float32 and model.head[1].weight.grad.dtype == torch.float32
    assert rounded.item() == pytest.approx(exact.item(), rel=0.02)
    cosine = torch.nn.functional.cosine_similarity(model.head[1].weight.grad.flatten(), exact_grad.flatten(), dim=0)
    assert cosine > 0.99


def test_training_with_bf16_keeps_float32_weights_moves_them_and_snapshots_them(tmp_path, shared_data, capsys):
    from models.training import train
    from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet

    alphabet = Alphabet(DEFAULT_CHARACTERS)
    out = tmp_path / "run"
    out.mkdir()
    start = CRNN(alphabet.num_classes, 48, dropout=0.0).state_dict()
    config = {"height": 48, "characters": DEFAULT_CHARACTERS, "num_classes": alphabet.num_classes, "dropout": 0.0}
    torch.save({"model": start, "config": config,
                "state": {"step": 0, "epoch": 0, "best_cer": 1.0, "lr_scale": 1.0, "bad_evals": 0,
                          "train_seconds": 0.0}}, out / "last.pt")
    train.main(["--out", str(out), "--data", str(shared_data), "--datasets", "mss19", "--limit", "2",
                "--max-width", "300", "--eval-every", "1000", "--max-steps", "3", "--bf16", "--snapshot-every", "2"])
    assert "stopped at step 3" in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    weights = ckpt["model"]
    assert all(v.dtype in (torch.float32, torch.int64) for v in weights.values())
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert not torch.equal(weights["head.1.weight"], start["head.1.weight"])
    # the snapshot of step 2: weights, config and state, no optimizer (a run resumed from it warms up afresh)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step-2.pt"]
    snapshot = torch.load(out / "snapshots" / "step-2.pt", map_location="cpu", weights_only=False)
    assert "optimizer" not in snapshot and snapshot["state"]["step"] == 2
    assert snapshot["config"]["characters"] == DEFAULT_CHARACTERS
    assert not torch.equal(snapshot["model"]["head.1.weight"], weights["head.1.weight"])
