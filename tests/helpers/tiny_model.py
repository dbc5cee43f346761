"""A tiny, deterministic ONNX CTC model for tests where the real model is not the point.

The model averages each 4-pixel-wide column strip of the input; a strip with ink
(mean > 0.25) emits class 1, a blank strip emits the blank. So an image with k
separated ink blobs decodes to k copies of the alphabet's first character.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sparkhtr.registry import file_sha256


def build_tiny_ctc(path: Path, height: int = 16, classes: int = 3) -> None:
    """Write the ONNX model: images[B,1,H,W] → log_probs[B,W/4,classes]."""
    pool = helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[height, 4], strides=[height, 4])
    squeeze = helper.make_node("Squeeze", ["pooled", "axes_hw"], ["strip"])  # B, W/4 (after dropping C and H)
    unsq = helper.make_node("Unsqueeze", ["strip", "axis_last"], ["strip3"])  # B, T, 1
    # logits = strip3 * w + b per class: blank high when no ink, class 1 high with ink
    mul = helper.make_node("Mul", ["strip3", "weights"], ["scaled"])
    add = helper.make_node("Add", ["scaled", "bias"], ["logits"])
    soft = helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=2)
    weights = np.zeros(classes, np.float32)
    bias = np.full(classes, -10.0, np.float32)
    weights[0], bias[0] = -40.0, 10.0  # blank
    weights[1], bias[1] = 40.0, 0.0  # class 1 wins once the strip mean exceeds 0.125
    graph = helper.make_graph(
        [pool, squeeze, unsq, mul, add, soft], "tiny_ctc",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, height, "width"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "frames", classes])],
        [numpy_helper.from_array(np.array([1, 2], np.int64), "axes_hw"),
         numpy_helper.from_array(np.array([2], np.int64), "axis_last"),
         numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def make_tiny_model_dir(folder: Path, height: int = 16, alphabet: str = "ab") -> Path:
    """A model folder (model.onnx + manifest.json) for the tiny model."""
    folder.mkdir(parents=True, exist_ok=True)
    build_tiny_ctc(folder / "model.onnx", height, len(alphabet) + 1)
    manifest = {
        "name": "tiny-ctc", "version": "0.0.1", "kind": "ctc-line-recognizer", "input_height": height,
        "input_channels": 1, "normalization": "normalize_line", "alphabet": alphabet, "width_stride": 4,
        "sha256": file_sha256(folder / "model.onnx"),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def blob_line(blobs: int, height: int = 40, blob_width: int = 24, gap: int = 40) -> np.ndarray:
    """A white line image with ``blobs`` dark rectangles (the tiny model reads each as one character)."""
    width = gap + blobs * (blob_width + gap)
    image = np.full((height, width), 240, np.uint8)
    for k in range(blobs):
        x = gap + k * (blob_width + gap)
        image[height // 4: 3 * height // 4, x: x + blob_width] = 20
    return image


def add_language_model(folder: Path, texts: list[str], order: int = 3, alpha: float = 0.5, beta: float = 1.0) -> Path:
    """Give a model folder a character LM trained on ``texts`` (declared in its manifest)."""
    from sparkhtr.core.lm import CharNgramLM

    manifest = json.loads((folder / "manifest.json").read_text())
    CharNgramLM.train(texts, manifest["alphabet"], order).save(folder / "charlm.npz")
    manifest["language_model"] = {"file": "charlm.npz", "sha256": file_sha256(folder / "charlm.npz"),
                                  "order": order, "alpha": alpha, "beta": beta, "beam_width": 8}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder
