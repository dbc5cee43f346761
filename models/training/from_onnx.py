"""Rebuild a trainable CRNN checkpoint from a bundled ONNX model, to train it further.

    python -m models.training.from_onnx --model models/sparkhtr-latin-crnn --out checkpoints/crnn48

Writes ``<out>/last.pt``, which ``models.training.train --out <out>`` resumes from (with a
fresh optimizer and a short warm-up, as the ONNX file carries no optimizer state). This is
how training goes on when its checkpoints are gone (a new machine), and how a collection's
own lines fine-tune the shipped model.

The exporter folds every BatchNorm into the convolution before it, so the ONNX file keeps
``conv(x) + b`` but not the normalisation statistics. They are measured again: the rebuilt
convolution keeps the folded weights, and its BatchNorm is set from the mean ``m`` and
standard deviation ``s`` of the convolution's output on real training lines
(``running_mean = m``, ``running_var = s**2``, ``weight = s``, ``bias = b + m``). In eval mode
that is exactly ``conv(x) + b``; in training mode, where a batch's own statistics replace
``m`` and ``s``, it stays close to it, so training resumes where the model left off.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.training.data import DATASETS, collate, data_root, load_split
from models.training.model import CRNN, WIDTH_STRIDE


class OnnxLayoutError(ValueError):
    """The ONNX graph is not a CRNN as ``models.training.export`` writes it."""


def _lstm_gates_to_torch(weights: np.ndarray) -> np.ndarray:
    """ONNX orders LSTM gates input, output, forget, cell; torch input, forget, cell, output.

    >>> _lstm_gates_to_torch(np.arange(4)).tolist()
    [0, 2, 3, 1]
    """
    i, o, f, c = np.split(weights, 4, axis=0)
    return np.concatenate([i, f, c, o], axis=0)


def conv_norm_pairs(model: CRNN) -> list[tuple[str, str]]:
    """The CNN's convolutions in order, each with the BatchNorm that follows it (module names).

    >>> conv_norm_pairs(CRNN(2))[:2]
    [('cnn.0', 'cnn.1'), ('cnn.4', 'cnn.5')]
    >>> conv_norm_pairs(CRNN(2, cnn_residual=1))[-1]
    ('cnn.22.body.3', 'cnn.22.body.4')
    """
    pairs: list[tuple[str, str]] = []
    conv = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            conv = name
        elif isinstance(module, nn.BatchNorm2d) and conv is not None:
            pairs.append((conv, name))
            conv = None
    return pairs


def onnx_state_dict(onnx_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Torch parameters of the CRNN in ``onnx_path`` (BatchNorm folded) and its sizes.

    The sizes (``channels``, ``hidden``, ``layers``, ``num_classes``, ``refine_hidden`` when the
    model has a refine stage, ``refine_stages`` when it has more than one and ``cnn_residual``
    when it has residual blocks at the CNN's top)
    are read off the weight shapes and the node counts. BatchNorm entries are absent:
    :func:`rebuild` measures them.

    >>> onnx_state_dict(Path("models/sparkhtr-latin-crnn/model.onnx"))[1]["hidden"]  # doctest: +SKIP
    192
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        # the exporter shares equal initializers (zero biases, say) through Identity nodes
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    convs = [n for n in graph.node if n.op_type == "Conv"]
    lstms = [n for n in graph.node if n.op_type == "LSTM"]
    matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in values]
    # each refine stage (model.grow_refine, grow_refine_stages) adds its output layer's MatMul
    # before the head's and its own LSTM node after the BiLSTM's; each residual block at the
    # CNN's top (model.grow_cnn) two Conv nodes after the six
    stages = len(matmuls) - 2
    blocks = (len(convs) - 6) // 2
    if len(convs) < 6 or len(convs) % 2 or stages < 0 or len(lstms) < 1 + stages:
        raise OnnxLayoutError(f"{onnx_path}: expected 6 (+ 2 per residual block) Conv, 2 (+ 1 per refine stage) "
                              f"MatMul and LSTM nodes, found {len(convs)}, {len(matmuls)} and {len(lstms)}")

    def bias_after(node) -> np.ndarray:
        # the Add that consumes the MatMul's output carries the Linear's bias
        for other in graph.node:
            if other.op_type == "Add" and node.output[0] in other.input:
                name = next(i for i in other.input if i != node.output[0])
                return values[name]
        raise OnnxLayoutError(f"{onnx_path}: no bias after {node.name}")

    state: dict[str, np.ndarray] = {}
    conv_names = [conv for conv, _ in conv_norm_pairs(CRNN(2, cnn_residual=blocks))]
    for name, node in zip(conv_names, convs, strict=True):
        state[f"{name}.weight"] = values[node.input[1]]
        state[f"{name}.folded_bias"] = values[node.input[2]]
    linears = {"project.0": matmuls[0], "head.1": matmuls[-1]}
    refine_names = [("refine", "refine_out")] + [(f"refine_extra.{i}.lstm", f"refine_extra.{i}.out")
                                                  for i in range(stages - 1)]
    lstm_prefixes = ["rnn"] * (len(lstms) - stages) + [lstm for lstm, _ in refine_names[:stages]]
    for (_, out), node in zip(refine_names, matmuls[1:-1], strict=False):
        linears[out] = node
    for prefix, node in linears.items():
        state[f"{prefix}.weight"] = values[node.input[1]].T
        state[f"{prefix}.bias"] = bias_after(node)
    layers = dict.fromkeys(lstm_prefixes, 0)
    for prefix, node in zip(lstm_prefixes, lstms, strict=True):
        w, r, b = (values[name] for name in node.input[1:4])
        units, layer = int(r.shape[-1]), layers[prefix]
        for direction, suffix in enumerate(("", "_reverse")):
            state[f"{prefix}.weight_ih_l{layer}{suffix}"] = _lstm_gates_to_torch(w[direction])
            state[f"{prefix}.weight_hh_l{layer}{suffix}"] = _lstm_gates_to_torch(r[direction])
            state[f"{prefix}.bias_ih_l{layer}{suffix}"] = _lstm_gates_to_torch(b[direction, :4 * units])
            state[f"{prefix}.bias_hh_l{layer}{suffix}"] = _lstm_gates_to_torch(b[direction, 4 * units:])
        layers[prefix] += 1
    channels = [state[f"{name}.weight"].shape[0] for name in conv_names]
    sizes = {
        "channels": (channels[0], channels[1], channels[2], channels[4]),
        "hidden": int(values[lstms[0].input[2]].shape[-1]),
        "layers": layers["rnn"],
        "num_classes": int(state["head.1.bias"].shape[0]),
    }
    if stages:
        sizes["refine_hidden"] = int(values[lstms[-1].input[2]].shape[-1])
    if stages > 1:
        sizes["refine_stages"] = stages
    if blocks:
        sizes["cnn_residual"] = blocks
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}, sizes


def _conv_output_statistics(model: CRNN, batches: Iterable[np.ndarray]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel mean and variance of each convolution's output (before BatchNorm).

    ``model`` is in eval mode with BatchNorm reproducing the folded bias, so every layer sees
    the input it saw in the exported model and one pass measures all layers.
    """
    sums: dict[str, list] = {}
    hooks = []
    modules = dict(model.named_modules())
    for name, _ in conv_norm_pairs(model):
        def hook(_m, _inp, out, name=name):
            flat = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
            acc = sums.setdefault(name, [0, 0.0, 0.0])
            acc[0] += flat.shape[1]
            acc[1] = acc[1] + flat.sum(1)
            acc[2] = acc[2] + (flat * flat).sum(1)
        hooks.append(modules[name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            for batch in batches:
                model(torch.from_numpy(batch))
    finally:
        for h in hooks:
            h.remove()
    if not sums:
        raise ValueError("no calibration batches")
    stats = {}
    for name, (n, s1, s2) in sums.items():
        mean = s1 / n
        stats[name] = (mean.float(), (s2 / n - mean * mean).clamp_min(0).float())
    return stats


def rebuild(onnx_path: Path, height: int, calibration: Iterable[np.ndarray]) -> CRNN:
    """A torch CRNN equal to ``onnx_path`` in eval mode, with BatchNorm statistics re-measured.

    ``calibration`` yields padded ``float32[batch, 1, height, width]`` line batches (as
    ``models.training.data.collate`` makes them), ideally training lines.

    >>> model = rebuild(Path("model.onnx"), 48, batches)  # doctest: +SKIP
    >>> model.eval()(images)  # the ONNX model's log-probabilities  # doctest: +SKIP
    """
    weights, sizes = onnx_state_dict(onnx_path)
    model = CRNN(sizes["num_classes"], height, channels=sizes["channels"], hidden=sizes["hidden"],
                 layers=sizes["layers"], refine_hidden=int(sizes.get("refine_hidden", 0)),
                 cnn_residual=int(sizes.get("cnn_residual", 0)),
                 refine_stages=int(sizes.get("refine_stages", 1))).eval()
    norm_of = dict(conv_norm_pairs(model))
    modules = dict(model.named_modules())
    folded = {}
    state = model.state_dict()
    for name, value in weights.items():
        if name.endswith(".folded_bias"):
            folded[name.removesuffix(".folded_bias")] = value
        elif name not in state or state[name].shape != value.shape:
            raise OnnxLayoutError(f"{name}: {tuple(value.shape)} does not fit the CRNN")
        else:
            state[name] = value
    for conv, bias in folded.items():
        bn = norm_of[conv]
        eps = modules[bn].eps
        # identity normalisation plus the folded bias: the exported function, exactly
        state[f"{bn}.running_mean"] = torch.zeros_like(bias)
        state[f"{bn}.running_var"] = torch.full_like(bias, 1 - eps)
        state[f"{bn}.weight"] = torch.ones_like(bias)
        state[f"{bn}.bias"] = bias
    model.load_state_dict(state)
    for conv, (mean, var) in _conv_output_statistics(model, calibration).items():
        bn = modules[norm_of[conv]]
        std = (var + bn.eps).sqrt()
        with torch.no_grad():
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.bias.copy_(bn.bias + mean)
            bn.weight.copy_(std)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="bundled model folder (manifest.json + ONNX)")
    p.add_argument("--out", required=True, type=Path, help="training folder; last.pt is written there")
    p.add_argument("--data", default=None, help="shared data folder (default $SPARKHTR_DATA or ../shared/data)")
    p.add_argument("--datasets", default=",".join(DATASETS), help="line sets to measure BatchNorm on (as train.py)")
    p.add_argument("--calibration-lines", type=int, default=128, help="train lines per dataset for BatchNorm")
    p.add_argument("--force", action="store_true", help="overwrite an existing last.pt")
    args = p.parse_args(argv)

    from sparkhtr.core.alphabet import Alphabet
    from sparkhtr.registry import read_manifest

    manifest = read_manifest(args.model)
    target = args.out / "last.pt"
    if target.exists() and not args.force:
        print(f"{target} exists: training would resume from it; --force replaces it", file=sys.stderr)
        return 2
    height = manifest.input_height
    alphabet = Alphabet(manifest.alphabet)
    lines = load_split(data_root(args.data), "train", alphabet, height, 2400, tuple(args.datasets.split(",")),
                       args.calibration_lines)
    lines.sort(key=lambda s: s.image.shape[1])  # similar widths batch with little padding
    batches = (collate([s.image for s in lines[i:i + 16]], WIDTH_STRIDE)[0] for i in range(0, len(lines), 16))
    model = rebuild(manifest.model_path, height, batches)
    if model.head[1].out_features != alphabet.num_classes:
        raise OnnxLayoutError(f"{model.head[1].out_features} classes in the ONNX file, "
                              f"{alphabet.num_classes} in the manifest's alphabet")
    config = {"height": height, "characters": "".join(alphabet.characters), "num_classes": alphabet.num_classes,
              "refine_hidden": model.refine_hidden, "cnn_residual": model.cnn_residual,
              "refine_stages": max(1, model.refine_stages)}
    state = {"step": int(manifest.extra.get("training_steps") or 0), "epoch": 0, "best_cer": math.inf,
             "lr_scale": 1.0, "bad_evals": 0, "train_seconds": 0.0,
             "rebuilt_from": f"{manifest.name} {manifest.version}"}
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "state": state, "config": config}, target)
    print(json.dumps({"checkpoint": str(target), "step": state["step"], "calibration_lines": len(lines),
                      "rebuilt_from": state["rebuilt_from"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
