"""onnxruntime's layout rewrites (NCHWc) on and off, for both bundled networks, in one run.

``ORT_ENABLE_ALL`` adds layout transforms (blocked NCHWc convolutions) to the graph
optimisations of ``ORT_ENABLE_EXTENDED``. This times both levels on the same inputs and
prints the ratio per network, with the largest output difference between the two:

- the baseline segmenter (kraken-blla) on pages (the real pages of ``--data`` when
  present, else the bundled sample pages), preprocessed as the pipeline does;
- the line recogniser on the line crops of the same pages, batched as the pipeline
  batches them (by width, padded).

    python bench/onnx_layout.py --data ../shared/data --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sparkhtr.core.baselines import BaselineDetector
from sparkhtr.core.decode import iter_pages
from sparkhtr.core.preprocess import preprocess_page
from sparkhtr.core.recognize import LineRecognizer, padded_width, plan_batches
from sparkhtr.core.segment import segment_lines
from sparkhtr.registry import DEFAULT_MODEL, resolve_model

LEVELS = {"all (layout transforms)": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
          "extended (none)": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}


def page_files(data: Path | None, count: int) -> list[Path]:
    """Up to ``count`` page images: the real pages' when ``data`` has them, else the samples'."""
    if data is not None and (data / "pages").is_dir():
        files = sorted(p for p in (data / "pages").glob("*/*") if p.suffix.lower() in {".jpg", ".png", ".tif"})
    else:
        files = sorted((Path(__file__).resolve().parent.parent / "samples" / "pages").glob("*.*"))
    # spread over the collections rather than the first few of one
    step = max(1, len(files) // count)
    return files[::step][:count]


def time_levels(model_path: str, inputs: list[np.ndarray], threads: int, repeats: int) -> dict[str, dict]:
    """Per optimisation level: median seconds per pass over ``inputs`` and the outputs of the last pass."""
    results = {}
    for label, level in LEVELS.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = level
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        session.run(None, {name: inputs[0]})  # warm-up: allocations, kernel choice
        times, outputs = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            outputs = [session.run(None, {name: x})[0] for x in inputs]
            times.append(time.perf_counter() - started)
        results[label] = {"seconds": statistics.median(times), "outputs": outputs}
    return results


def report(network: str, unit: str, count: int, results: dict[str, dict]) -> dict:
    (a_label, a), (b_label, b) = results.items()
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a["outputs"], b["outputs"], strict=True))
    row = {"network": network, unit: count, **{f"{k} s/{unit[:-1]}": v["seconds"] / count for k, v in results.items()},
           "ratio all/extended": a["seconds"] / b["seconds"], "max |diff|": diff}
    print(f"{network}: {a_label} {a['seconds'] / count:.3f} s/{unit[:-1]}, {b_label} {b['seconds'] / count:.3f} "
          f"s/{unit[:-1]}, ratio {a['seconds'] / b['seconds']:.2f}, outputs differ by at most {diff:.2e}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="../shared/data (its pages); the samples without")
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    grays = []
    for path in page_files(args.data, args.pages):
        page = next(iter_pages(path.read_bytes(), path.name))
        grays.append(preprocess_page(page.image).image)
    detector = BaselineDetector(resolve_model("kraken-blla"), device="cpu", threads=args.threads)
    page_inputs = [detector.network_input(g) for g in grays]
    rows = [report("kraken-blla", "pages", len(page_inputs),
                   time_levels(str(detector.manifest.model_path), page_inputs, args.threads, args.repeats))]

    recognizer = LineRecognizer(resolve_model(DEFAULT_MODEL), device="cpu", threads=args.threads)
    prepared = recognizer.prepare_all([line.crop for g in grays for line in segment_lines(g)])
    height = recognizer.manifest.input_height
    multiple = recognizer.policy.width_multiple or recognizer.manifest.width_stride
    batches = []
    for members in plan_batches([p.shape[1] for p in prepared], height, recognizer.policy):
        width = padded_width(max(prepared[i].shape[1] for i in members), multiple)
        tensor = np.zeros((len(members), 1, height, width), np.float32)
        for row, i in enumerate(members):
            tensor[row, 0, :, : prepared[i].shape[1]] = prepared[i]
        batches.append(tensor)
    rows.append(report(DEFAULT_MODEL, "lines", len(prepared),
                       time_levels(str(recognizer.manifest.model_path), batches, args.threads, args.repeats)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
