"""Quantise a CTC line recogniser's convolutions to int8 (a new model folder beside it).

The bundled recogniser's CNN is most of its arithmetic; its BiLSTMs and linear layers stay
float (quantising the linear layers too gained little speed and cost CER), and so does the
first convolution, which reads the image itself. Static int8 quantisation
(:mod:`models.training.quantize`) of model 0.20.3 reads the val lines 1.29 times as fast
greedily and 1.17 times with beam search (whose Python decoder then bounds it) on 2 CPU
cores, at a CER within 0.16 points (``models/sparkhtr-latin-crnn/MODEL_CARD.md``, "Int8").

Calibration uses the lines of the project's own generated sample pages (``samples/pages``,
segmented by the classical segmenter and prepared as the recogniser prepares crops), never
the val lines the model is measured on, so the command needs no data beyond the repository::

    python -m models.training.quantize_recognizer   # models/sparkhtr-latin-crnn → models/sparkhtr-latin-crnn-int8
    sparkhtr recognize PAGES --out TABLES --model sparkhtr-latin-crnn-int8 --decoder greedy

Writes ``model.onnx``, ``manifest.json`` (the source's, with the new file's sha256, size,
the quantisation and parity figures), the source's language model and a short
``MODEL_CARD.md``; prints the parity on the calibration lines (largest
probability difference, share of identical greedy decodes, character error rate of the
int8 decodes against the float ones) and exits non-zero when that rate exceeds
``--max-drift``. The output folder is git-ignored: build it
where it is used (6 s on 2 cores).
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
    from sparkhtr.core.recognize import LineRecognizer


def calibration_lines(folder: Path, recognizer: LineRecognizer) -> list[np.ndarray]:
    """Model inputs (``[1, 1, height, width]``) of every line the classical segmenter finds in
    every page of every image in ``folder``, prepared as the recogniser prepares crops."""
    from sparkhtr.core.decode import iter_pages
    from sparkhtr.core.preprocess import preprocess_page
    from sparkhtr.core.segment import segment_lines

    inputs = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        for page in iter_pages(path.read_bytes(), path.name):
            for line in segment_lines(preprocess_page(page.image).image):
                inputs.append(recognizer.prepare(line.crop)[None, None])
    if not inputs:
        raise SystemExit(f"no lines in the pages of {folder}")
    return inputs


def greedy_parity(float_model: LineRecognizer, int8_path: Path, inputs: list[np.ndarray]) -> tuple[float, float, float]:
    """Largest absolute difference of a frame's class probability, share of identical greedy
    decodes, and the character error rate of the int8 model's (``int8_path``) decodes against
    the float one's."""
    import onnxruntime as ort

    from sparkhtr.core.ctc import greedy_decode
    from sparkhtr.core.metrics import cer

    int8 = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    worst, same, texts_float, texts_int8 = 0.0, 0, [], []
    for x in inputs:
        a, b = float_model.infer(x), int8.run(None, {float_model.input_name: x})[0]
        worst = max(worst, float(np.abs(np.exp(a) - np.exp(b)).max()))
        lengths = np.array([a.shape[1]])
        texts_float.append(float_model.alphabet.decode(greedy_decode(a, lengths)[0][0]))
        texts_int8.append(float_model.alphabet.decode(greedy_decode(b, lengths)[0][0]))
        same += texts_float[-1] == texts_int8[-1]
    return worst, same / len(inputs), cer(texts_float, texts_int8)


MODEL_CARD = """# {name}

{source} with its convolutions quantised to int8 by `python -m models.training.quantize_recognizer`
(`manifest.json` → `quantization`). Same alphabet, input, language model and decoding as the
source; read the source's `MODEL_CARD.md` for its data, training and measured CER, and its
"Int8" section for how this variant compares in CER and lines/s.

Parity on the {lines} calibration lines (the generated sample pages' lines): largest
difference of a frame's class probability {worst:.3g}, identical greedy decodes {same:.1%},
character error rate of the int8 greedy decodes against the float ones {drift:.2%}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/sparkhtr-latin-crnn"), help="float model folder")
    parser.add_argument("--out", type=Path, default=Path("models/sparkhtr-latin-crnn-int8"),
                        help="model folder to write")
    parser.add_argument("--calibration", type=Path, default=Path("samples/pages"),
                        help="folder of page images whose lines' activations set the int8 ranges")
    parser.add_argument("--max-drift", type=float, default=0.02,
                        help="largest tolerated character error rate of the int8 greedy decodes against the "
                             "float ones on the calibration lines")
    args = parser.parse_args(argv)

    from models.training.quantize import quantize_convolutions, write_quantized_manifest
    from sparkhtr.core.recognize import LineRecognizer
    from sparkhtr.registry import read_manifest

    source = read_manifest(args.model)
    float_model = LineRecognizer(source, device="cpu", threads=0, decoder="greedy")
    inputs = calibration_lines(args.calibration, float_model)
    # the first convolution stays float: quantised too, 0.20.0's greedy reads of the sample
    # lines drifted 2.35 % from the float model's, with it float 1.42 %
    keep_first_float = True
    quantize_convolutions(source.model_path, args.out / "model.onnx", inputs, float_model.input_name,
                          keep_first_float=keep_first_float)
    spec = source.extra.get("language_model")
    if isinstance(spec, dict) and spec.get("file"):
        shutil.copyfile(args.model / spec["file"], args.out / spec["file"])
    worst, same, drift = greedy_parity(float_model, args.out / "model.onnx", inputs)
    parity = {"parity_max_prob_diff": worst, "parity_same_greedy": same, "parity_greedy_cer": drift}
    calibration = f"{len(inputs)} lines of {args.calibration.name} (classical segmenter)"
    manifest = write_quantized_manifest(args.model, args.out, calibration, first_float=keep_first_float, **parity)
    card = MODEL_CARD.format(name=manifest["name"], source=source.ref, lines=len(inputs), worst=worst, same=same,
                             drift=drift)
    (args.out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(json.dumps({"onnx": str(args.out / "model.onnx"), "bytes": manifest["size_bytes"],
                      "calibration_lines": len(inputs), **parity}))
    return 0 if drift <= args.max_drift else 1


if __name__ == "__main__":
    sys.exit(main())
