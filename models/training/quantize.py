"""Static int8 quantisation of a bundled network's convolutions, shared by the segmenter and recogniser scripts.

onnxruntime's ``quantize_static`` in QDQ form, Conv nodes only: weights int8 per output
channel, activations uint8 with ranges calibrated (MinMax) on inputs the caller prepares
the way the pipeline does. Recurrent layers, normalisations and the output stay float.
The CPU then runs the convolutions on its integer units (VNNI where present).

>>> quantized_version("0.19.1")
'0.19.1+int8'
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def quantized_version(version: str) -> str:
    """The version a quantised copy of a model carries: the source's, marked ``+int8``."""
    return f"{version}+int8"


def quantize_convolutions(source: Path, out: Path, inputs: list[np.ndarray], input_name: str,
                          keep_first_float: bool = False) -> None:
    """Write ``out``, ``source`` with its Conv nodes quantised to int8, ranges calibrated on ``inputs``.

    Each input is one complete feed of ``input_name`` (a batch of one page or one line).
    ``keep_first_float`` leaves the first Conv in float: it reads the image itself, where
    int8 rounding costs the most, and with one input channel it is cheap anyway.

    >>> quantize_convolutions(Path("model.onnx"), Path("int8.onnx"), [x], "images")  # doctest: +SKIP
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not inputs:
        raise SystemExit("no calibration inputs")

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds: Iterator[np.ndarray] = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.feeds, None)
            return None if x is None else {input_name: x}

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        exclude = []
        if keep_first_float:
            import onnx

            exclude = [next(n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv")]
        quantize_static(str(prepared), str(out), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=exclude)


def write_quantized_manifest(source_folder: Path, out_folder: Path, calibration: str, first_float: bool = False,
                             **extra: Any) -> dict[str, Any]:
    """The source's ``manifest.json`` for the quantised ``out_folder/model.onnx``, written there and returned.

    Name: the output folder's; version: :func:`quantized_version`; sha256 and size of the new
    file; ``quantization`` says how and from what (``calibration`` names the inputs); ``extra``
    adds fields (parity figures).
    """
    manifest = json.loads((source_folder / "manifest.json").read_text(encoding="utf-8"))
    onnx_path = out_folder / "model.onnx"
    source_sha = manifest["sha256"]
    first = " (the first kept float)" if first_float else ""
    manifest.update({
        "name": out_folder.name,
        "version": quantized_version(manifest["version"]),
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "size_bytes": onnx_path.stat().st_size,
        "quantization": (f"onnxruntime quantize_static, QDQ, Conv only{first}, int8 weights per channel, "
                         f"uint8 activations calibrated (MinMax) on {calibration}; "
                         f"from {manifest['name']}@{manifest['version']} (sha256 {source_sha[:12]}…)"),
        **extra,
    })
    (out_folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    return manifest
