"""Convert kraken's default baseline segmenter (BLLA, Apache-2.0) to a bundled ONNX model folder.

kraken (https://github.com/mittagessen/kraken) ships its default page segmentation
network, ``kraken/blla.mlmodel``, inside its wheel. It is a 1.26 M-parameter
convolutional + 2-D LSTM network that turns a page into per-pixel probabilities of
line starts, line ends, baselines and text regions at a quarter of the input's
resolution. This script loads it with kraken, wraps it with the sigmoid kraken applies
and exports it with dynamic height and width; :mod:`sparkhtr.core.baselines` runs it
with onnxruntime and :func:`sparkhtr.core.segment.segment_lines` turns its baseline map
into lines. kraken itself is needed here only, never at run time: install it in a
virtualenv of its own (its dependencies are heavy and pin their own torch)::

    python -m venv /tmp/krenv && /tmp/krenv/bin/pip install torch==2.13.0 kraken==7.1.1 onnx onnxruntime
    /tmp/krenv/bin/python models/training/convert_kraken_blla.py --out models/kraken-blla

Writes ``model.onnx``, ``manifest.json`` (with the file's sha256) and kraken's
``LICENSE`` beside them, and prints the largest difference between onnxruntime's and
torch's probabilities on two random inputs; exits non-zero above 1e-2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np


def load_kraken_blla() -> Any:  # kraken's TorchVGSLModel (kraken is not a dependency)
    """kraken's default segmentation model (a ``TorchVGSLModel``)."""
    import torch

    # torchvision wheels built for CUDA torch fail to register their C++ operators on the
    # CPU-only torch; kraken needs only torchvision's Python transforms
    register_fake = torch.library.register_fake
    torch.library.register_fake = lambda *a, **k: (lambda f: f)
    try:
        import torchvision  # noqa: F401
    finally:
        torch.library.register_fake = register_fake
    from kraken.lib import vgsl

    return vgsl.TorchVGSLModel.load_model(str(resources.files("kraken").joinpath("blla.mlmodel")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--height", type=int, default=1800,
                        help="pages taller than this are scaled down to it (kraken's own scale, 1800 rows; "
                             "1200 is ~2x faster and finds line counts within 10 %% on 19 instead of 22 of "
                             "the 35 real pages)")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch

    model = load_kraken_blla()
    net = model.nn.eval()

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            logits, _ = self.net(image)
            return torch.sigmoid(logits)

    wrapped = Probabilities().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    example = torch.rand(1, 3, 400, 300)
    torch.onnx.export(wrapped, (example,), str(onnx_path), input_names=["image"], output_names=["probabilities"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    "probabilities": {0: "batch", 2: "rows", 3: "columns"}},
                      opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for shape in [(1, 3, 400, 300), (1, 3, 640, 452)]:
        image = torch.rand(*shape)
        with torch.no_grad():
            expected = wrapped(image).numpy()
        got = session.run(None, {"image": image.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))

    import hashlib

    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    classes = model.user_metadata["class_mapping"]
    manifest = {
        "name": args.out.name,
        "version": f"kraken-{metadata.version('kraken')}",
        "kind": "baseline-segmenter",
        "file": "model.onnx",
        "input_height": args.height,
        "input_channels": 3,
        "normalization": ("pages taller than input_height scaled down to it, 1 - gray/255 (ink 1), "
                          "gray repeated in 3 channels"),
        "alphabet": "",
        "sha256": sha,
        "size_bytes": onnx_path.stat().st_size,
        "output_stride": 4,
        "channels": {"line_start": classes["aux"]["_start_separator"], "line_end": classes["aux"]["_end_separator"],
                     "baseline": classes["baselines"]["default"], "region": classes["regions"]["text"]},
        "source": "kraken/blla.mlmodel from the kraken wheel on PyPI (kraken's default segmentation model)",
        "licence": "Apache-2.0 (kraken; see LICENSE in this folder)",
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "parity_max_abs_diff": worst,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    licence = next(p for p in metadata.distribution("kraken").files or [] if p.name == "LICENSE")
    shutil.copyfile(licence.locate(), args.out / "LICENSE")
    print(json.dumps({"onnx": str(onnx_path), "bytes": manifest["size_bytes"], "parity_max_abs_diff": worst}))
    return 0 if worst <= 1e-2 else 1


if __name__ == "__main__":
    sys.exit(main())
