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
import json
import shutil
import sys
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

    from models.training.quantize import quantize_convolutions, write_quantized_manifest
    from sparkhtr.core.baselines import BaselineDetector
    from sparkhtr.registry import read_manifest

    source = read_manifest(args.model)
    detector = BaselineDetector(source, device="cpu", threads=0)
    inputs = calibration_inputs(args.calibration, detector)
    input_name = detector.input_name
    onnx_path = args.out / "model.onnx"
    quantize_convolutions(source.model_path, onnx_path, inputs, input_name)

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

    manifest = write_quantized_manifest(args.model, args.out, f"{len(inputs)} generated sample pages",
                                        parity_max_abs_diff=worst, parity_mean_abs_diff=float(np.mean(means)))
    shutil.copyfile(args.model / "LICENSE", args.out / "LICENSE")
    print(json.dumps({"onnx": str(onnx_path), "bytes": manifest["size_bytes"], "calibration_pages": len(inputs),
                      "parity_max_abs_diff": worst, "parity_mean_abs_diff": manifest["parity_mean_abs_diff"]}))
    return 0 if worst <= args.max_diff else 1


if __name__ == "__main__":
    sys.exit(main())
