"""Quantise the bundled baseline segmenter's convolutions to int8 (a new bundled model folder).

kraken-blla spends nearly all of its CPU time in five convolutions over a quarter of the
page's resolution. Static int8 quantisation (onnxruntime's ``quantize_static``, QDQ,
weights per output channel, activations calibrated) runs them on the CPU's integer units
(VNNI where present): about 2.2 times faster on 2 cores with the same line counts on the
35 real pages (``models/kraken-blla-int8/MODEL_CARD.md``). The LSTMs, normalisations and
the sigmoid stay float.

Calibration uses the project's own generated sample pages (``samples/pages``), never the
real pages the segmenter is measured on, fed as :class:`~sparkhtr.core.baselines.BaselineDetector`
feeds pages (preprocessed, scaled to the analysis height)::

    python -m models.training.quantize_segmenter --model models/kraken-blla --out models/kraken-blla-int8

Writes ``model.onnx``, ``manifest.json`` (the source's, with the new file's sha256, size and
the quantisation) and the source's ``LICENSE``; prints the largest and mean difference of the
baseline probabilities against the float model on the calibration pages and exits non-zero
when the largest exceeds ``--max-diff``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sparkhtr.core.baselines import BaselineDetector


def calibration_inputs(folder: Path, detector: BaselineDetector) -> list[np.ndarray]:
    """The network inputs of every page of every image in ``folder``, preprocessed as the pipeline does."""
    from sparkhtr.core.decode import iter_pages
    from sparkhtr.core.preprocess import preprocess_page

    inputs = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        for page in iter_pages(path.read_bytes(), path.name):
            inputs.append(detector.network_input(preprocess_page(page.image).image))
    if not inputs:
        raise SystemExit(f"no pages in {folder}")
    return inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/kraken-blla"), help="float model folder")
    parser.add_argument("--out", type=Path, default=Path("models/kraken-blla-int8"), help="model folder to write")
    parser.add_argument("--calibration", type=Path, default=Path("samples/pages"),
                        help="folder of page images whose activations set the int8 ranges")
    parser.add_argument("--max-diff", type=float, default=0.25,
                        help="largest tolerated difference of a baseline probability against the float model")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from sparkhtr.core.baselines import BaselineDetector
    from sparkhtr.registry import read_manifest

    source = read_manifest(args.model)
    detector = BaselineDetector(source, device="cpu", threads=0)
    inputs = calibration_inputs(args.calibration, detector)
    input_name = detector.input_name

    class Pages(CalibrationDataReader):
        def __init__(self) -> None:
            self.pages: Iterator[np.ndarray] = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.pages, None)
            return None if x is None else {input_name: x}

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source.model_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(onnx_path), Pages(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    quantised = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    channel = int(source.extra["channels"]["baseline"])
    worst, means = 0.0, []
    for x in inputs:
        expected = detector.session.run(None, {input_name: x})[0][0, channel]
        got = quantised.run(None, {input_name: x})[0][0, channel]
        worst = max(worst, float(np.abs(got - expected).max()))
        means.append(float(np.abs(got - expected).mean()))

    manifest = json.loads((args.model / "manifest.json").read_text(encoding="utf-8"))
    manifest.update({
        "name": args.out.name,
        "version": f"{source.version}+int8",
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "size_bytes": onnx_path.stat().st_size,
        "quantization": (f"onnxruntime quantize_static, QDQ, Conv only, int8 weights per channel, uint8 activations "
                         f"calibrated (MinMax) on {len(inputs)} generated sample pages; "
                         f"from {source.ref} (sha256 {source.sha256[:12]}…)"),
        "parity_max_abs_diff": worst,
        "parity_mean_abs_diff": float(np.mean(means)),
    })
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    shutil.copyfile(args.model / "LICENSE", args.out / "LICENSE")
    print(json.dumps({"onnx": str(onnx_path), "bytes": manifest["size_bytes"], "calibration_pages": len(inputs),
                      "parity_max_abs_diff": worst, "parity_mean_abs_diff": manifest["parity_mean_abs_diff"]}))
    return 0 if worst <= args.max_diff else 1


if __name__ == "__main__":
    sys.exit(main())
