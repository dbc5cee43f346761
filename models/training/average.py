"""Average the weights of several training checkpoints (late in a decayed run) into one.

    python -m models.training.average checkpoints/crnn48/snapshots/step-9400.pt \
        checkpoints/crnn48/snapshots/step-9700.pt checkpoints/crnn48/last.pt \
        --out checkpoints/crnn48/averaged.pt --evaluate

Checkpoints taken a few hundred steps apart at a low learning rate sit in the same basin;
their mean often decodes better than any one of them. Floating-point tensors (weights and
BatchNorm running statistics) are averaged, integer ones (batch counters) are taken from
the last checkpoint, as are its config and training state, so ``models.training.export``
reads the result like any checkpoint. ``--evaluate`` prints the greedy val CER of every
input and of the average.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors; other tensors come from the last state.

    >>> a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    >>> b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    >>> out = average_state_dicts([a, b])
    >>> out["w"].tolist(), int(out["n"])
    ([2.0, 4.0], 9)
    """
    if not states:
        raise ValueError("nothing to average")
    keys = states[-1].keys()
    if any(s.keys() != keys for s in states):
        raise ValueError("checkpoints of different architectures")
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        last = states[-1][key]
        if last.is_floating_point():
            out[key] = torch.stack([s[key].to(torch.float64) for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--evaluate", action="store_true", help="greedy val CER of every input and of the average")
    p.add_argument("--data", default=None, help="shared data folder (default $SPARKHTR_DATA or ../shared/data)")
    args = p.parse_args(argv)

    ckpts = [torch.load(path, map_location="cpu", weights_only=False) for path in args.checkpoints]
    averaged = {**ckpts[-1], "model": average_state_dicts([c["model"] for c in ckpts]),
                "averaged_from": [str(path) for path in args.checkpoints]}
    averaged.pop("optimizer", None)  # not a resume point: the optimiser state belongs to one run
    tmp = args.out.with_suffix(".tmp")
    torch.save(averaged, tmp)
    tmp.replace(args.out)
    print(f"{args.out}: mean of {len(ckpts)} checkpoints")
    if args.evaluate:
        from models.training.data import DATASETS, data_root, load_split
        from models.training.model import crnn_from_config
        from models.training.train import evaluate
        from sparkhtr.core.alphabet import Alphabet

        config = ckpts[-1]["config"]
        alphabet = Alphabet(config["characters"])
        val = load_split(data_root(args.data), "val", alphabet, config["height"], 2400, DATASETS, None)
        for name, state in [*zip(map(str, args.checkpoints), (c["model"] for c in ckpts), strict=True),
                            (str(args.out), averaged["model"])]:
            model = crnn_from_config(config)
            model.load_state_dict(state)
            report = evaluate(model, val, alphabet)
            print(json.dumps({"checkpoint": name, **{k: round(100 * v["cer"], 2) for k, v in report.items()}}),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
