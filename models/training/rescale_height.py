"""A trained CRNN checkpoint made to read lines at another height, as a starting point for training.

The convolutions do not care about the input's size; only the linear layer after the CNN
does, since it takes ``channels × height / 16`` features per frame. Its weights are
interpolated along the feature rows (3 at height 48, 4 at height 64) and scaled so that they
sum as before: a feature map that is the same on every row projects exactly as it did. The
letters reach the filters larger (or smaller) than in training, so the result reads somewhat
worse until a decay at the new height adapts it (0.19.x at 48 → 64: 15.34 → 15.99 % greedy
before training, 13.71 % after 3000 steps).

    python -m models.training.rescale_height --checkpoint checkpoints/avg/A.pt --height 64 \\
        --out checkpoints/h64/last.pt
    python -m models.training.train --out checkpoints/h64 --height 64 --restart-decay ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from models.training.model import HEIGHT_STRIDE, crnn_from_config


def rescale_projection(weight: torch.Tensor, old_rows: int, new_rows: int) -> torch.Tensor:
    """The projection's ``[out, channels * old_rows]`` weight as ``[out, channels * new_rows]``.

    Features are flattened channel-major (``c * rows + r``, as ``CRNN.forward`` does), so each
    channel's row weights are interpolated linearly and scaled by ``old_rows / new_rows``.

    >>> w = torch.arange(6.0).reshape(1, 6)  # 2 channels x 3 rows
    >>> rescale_projection(w, 3, 4).reshape(2, 4).sum(1)  # each channel sums as before
    tensor([ 3., 12.])
    """
    out, features = weight.shape
    if features % old_rows:
        raise ValueError(f"{features} features are not a multiple of {old_rows} rows")
    per_channel = weight.reshape(out, features // old_rows, old_rows)
    if new_rows == old_rows:
        return weight.clone()
    # linear along the rows, ends kept in place (a single row is repeated)
    resized = torch.nn.functional.interpolate(per_channel, size=new_rows, mode="linear", align_corners=True)
    return (resized * (old_rows / new_rows)).reshape(out, -1).contiguous()


def rescale_checkpoint(checkpoint: dict, height: int) -> dict:
    """A copy of a training checkpoint (``model``, ``config``, ``state``) for lines ``height`` pixels high.

    The optimizer's moments are dropped (the projection's shape changed), so training resumes
    behind a warm-up; any scheduled decay is forgotten, so the next run's ``--decay-steps`` starts one.

    >>> from models.training.model import CRNN
    >>> ckpt = {"model": CRNN(num_classes=5, height=48).state_dict(), "config": {"num_classes": 5, "height": 48}}
    >>> rescale_checkpoint(ckpt, 64)["model"]["project.0.weight"].shape
    torch.Size([256, 512])
    """
    if height % HEIGHT_STRIDE or height <= 0:
        raise ValueError(f"the height must be a positive multiple of {HEIGHT_STRIDE}, not {height}")
    config = {**checkpoint["config"], "height": height}
    old_rows, new_rows = checkpoint["config"]["height"] // HEIGHT_STRIDE, height // HEIGHT_STRIDE
    state = dict(checkpoint["model"])
    state["project.0.weight"] = rescale_projection(state["project.0.weight"], old_rows, new_rows)
    model = crnn_from_config(config)
    model.load_state_dict(state)  # fails loudly on any other mismatch
    train_state = {k: v for k, v in checkpoint.get("state", {}).items() if k != "decay_start"}
    train_state["rescaled_from_height"] = checkpoint["config"]["height"]
    return {"model": model.state_dict(), "config": config, "state": train_state}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="a training checkpoint (train.py, average.py)")
    p.add_argument("--height", required=True, type=int, help="the new input height (a multiple of 16)")
    p.add_argument("--out", required=True, type=Path, help="where to write the new checkpoint (e.g. RUN/last.pt)")
    args = p.parse_args(argv)
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    rescaled = rescale_checkpoint(checkpoint, args.height)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(rescaled, args.out)
    print(json.dumps({"checkpoint": str(args.out), "height": args.height,
                      "from_height": checkpoint["config"]["height"], "step": rescaled["state"].get("step")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
