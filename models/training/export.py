"""Export a training checkpoint to a bundled model folder and check ONNX/torch parity.

    python -m models.training.export --checkpoint checkpoints/crnn48/best.pt \
        --out models/sparkhtr-latin-crnn --version 0.1.0

Writes ``model.onnx`` (dynamic batch and width) and ``manifest.json`` (with the
file's sha256), then compares onnxruntime and torch on real val lines: max logit
difference and identical greedy decodes. Prints a JSON report; exits non-zero when
parity fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from models.training.data import DATASETS, collate, data_root, load_split
from models.training.model import CRNN, WIDTH_STRIDE, crnn_from_config
from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.ctc import greedy_decode
from sparkhtr.registry import file_sha256


def load_checkpoint(path: Path) -> tuple[CRNN, dict]:
    """The CRNN and its config from a training checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    config = ckpt["config"]
    model = crnn_from_config(config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, {**config, "state": ckpt.get("state", {}), "averaged_from": ckpt.get("averaged_from")}


def export_onnx(model: CRNN, height: int, path: Path, opset: int = 17) -> None:
    """TorchScript-based export with dynamic batch and width axes."""
    dummy = torch.zeros(2, 1, height, 256)
    torch.onnx.export(
        model, (dummy,), str(path), dynamo=False, opset_version=opset,
        input_names=["images"], output_names=["log_probs"],
        dynamic_axes={"images": {0: "batch", 3: "width"}, "log_probs": {0: "batch", 1: "frames"}},
    )


def parity(model: CRNN, onnx_path: Path, samples, batch: int = 16) -> dict[str, float]:
    """Max |logit difference| and the fraction of lines whose greedy decodes agree."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    max_diff, same, total = 0.0, 0, 0
    for start in range(0, len(samples), batch):
        images, widths = collate([s.image for s in samples[start:start + batch]], WIDTH_STRIDE)
        with torch.no_grad():
            ref = model(torch.from_numpy(images)).numpy()
        out = session.run(None, {"images": images})[0]
        max_diff = max(max_diff, float(np.abs(ref - out).max()))
        lengths = -(-widths // WIDTH_STRIDE)
        for (a, _), (b, _) in zip(greedy_decode(ref, lengths), greedy_decode(out, lengths), strict=True):
            same += a == b
            total += 1
    return {"max_abs_logit_diff": max_diff, "identical_decodes": same / max(total, 1), "lines": total}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--name", default="sparkhtr-latin-crnn")
    p.add_argument("--version", required=True)
    p.add_argument("--data", default=None)
    p.add_argument("--parity-lines", type=int, default=64, help="val lines per dataset for the parity check")
    args = p.parse_args(argv)

    model, config = load_checkpoint(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    export_onnx(model, config["height"], onnx_path)
    manifest = {
        "name": args.name,
        "version": args.version,
        "kind": "ctc-line-recognizer",
        "file": "model.onnx",
        "input_height": config["height"],
        "input_channels": 1,
        "normalization": "sparkhtr.core.lines.normalize_line: paper 0, ink 1 (median/1st-percentile stretch)",
        "width_stride": WIDTH_STRIDE,
        "alphabet": config["characters"],
        "sha256": file_sha256(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "training_steps": config["state"].get("step"),
        # models.training.average: the weights are a mean of these checkpoints, not one run's
        **({"averaged_from": config["averaged_from"]} if config.get("averaged_from") else {}),
        "data_licences": {
            "hooker": "CC-BY-SA 4.0 (HTR-United); images (c) RBG Kew, reproduced with permission",
            "poilus": "CC-BY 4.0", "mss19": "CC-BY 4.0",
            "peraire": "CC-BY 4.0 (credit Bibliotheque Sebert, Esperanto-France)",
        },
        "licence": "CC-BY-SA 4.0 (inherits the share-alike terms of the hooker training data)",
    }
    previous = args.out / "manifest.json"
    if previous.is_file():
        # keep the folder's language model (same alphabet); its weights want retuning with
        # bench/lm_decoding.py and models.training.charlm for the new model
        spec = json.loads(previous.read_text(encoding="utf-8")).get("language_model")
        if spec and (args.out / spec["file"]).is_file():
            manifest["language_model"] = spec
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    alphabet = Alphabet(config["characters"])
    val = load_split(data_root(args.data), "val", alphabet, config["height"], 2400, DATASETS, args.parity_lines)
    report = {"onnx_bytes": onnx_path.stat().st_size, **parity(model, onnx_path, val)}
    print(json.dumps(report))
    ok = report["identical_decodes"] >= 0.99 and report["max_abs_logit_diff"] < 1e-2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
