"""How much does the recogniser's CER depend on how tightly a line is framed?

Line images reach the recogniser framed by whoever cut them: the data set's annotators, the
bundled segmenter, another tool. This bench reads each val line as it is stored and with its
top and bottom edges moved: paper added above and below (a loose crop: the writing is drawn
smaller after the resize to the model's height) or rows cut off (a tight crop). It prints the
CER of each framing per val set, and each framing's CER minus the stored framing's, measured
in one run on the same lines and the same model.

    python bench/framing.py --data ../shared/data --json bench/results/framing.json
    python bench/framing.py --model /tmp/candidate --decoder greedy --limit 150
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.lines import frame_rows
from sparkhtr.core.recognize import DECODERS, LineRecognizer
from sparkhtr.evaluation import evaluate_lines, load_line_parquet
from sparkhtr.registry import resolve_model

# (name, share of the height added above, below); negative cuts rows off
FRAMINGS: tuple[tuple[str, float, float], ...] = (
    ("stored", 0.0, 0.0),
    ("paper +20 % above and below", 0.2, 0.2),
    ("paper +30 % above", 0.3, 0.0),
    ("paper +30 % below", 0.0, 0.3),
    ("10 % cut above and below", -0.1, -0.1),
)


def reframe_gray(gray: np.ndarray, top: float, bottom: float) -> np.ndarray:
    """A grayscale line with paper (its median level) added above and below, or rows cut off.

    >>> line = np.full((10, 4), 200, np.uint8); line[4:6] = 0
    >>> reframe_gray(line, 0.2, -0.3).shape, int(reframe_gray(line, 0.2, 0.0)[0, 0])
    ((9, 4), 200)
    """
    h = gray.shape[0]
    return frame_rows(gray, -round(top * h), h + round(bottom * h), int(np.median(gray)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SPARKHTR_DATA", "../shared/data")))
    p.add_argument("--model", default=None, help="model name or folder (default: the bundled default)")
    p.add_argument("--decoder", default="greedy", choices=DECODERS,
                   help="greedy (default: the model alone) or beam / auto (with its language model)")
    p.add_argument("--limit", type=int, default=None, help="lines per val set")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    files = sorted((args.data / "lines" / "val").glob("*.parquet"))
    if not files:
        print(f"no val line sets under {args.data / 'lines' / 'val'}", file=sys.stderr)
        return 2
    manifest = resolve_model(args.model)
    recognizer = LineRecognizer(manifest, device="cpu", threads=args.threads, decoder=args.decoder)
    alphabet = Alphabet(manifest.alphabet)
    images, refs, groups = [], [], []
    for path in files:
        lines, texts = load_line_parquet(path, args.limit)
        images += lines
        refs += [alphabet.normalize(t) for t in texts]
        groups += [path.stem] * len(lines)
    reports = {}
    for name, top, bottom in FRAMINGS:
        hyps = [r.text for r in recognizer.recognize([reframe_gray(im, top, bottom) for im in images])]
        reports[name] = evaluate_lines(refs, hyps, groups)
    sets = [g for g in reports["stored"] if g != "all"]
    print(f"model {manifest.ref}, decoder {args.decoder}, {len(images)} val lines")
    print("| framing | " + " | ".join(sets) + " | all | vs stored |")
    print("|---" * (len(sets) + 3) + "|")
    stored = reports["stored"]["all"]["cer"]
    for name, report in reports.items():
        cells = " | ".join(f"{100 * report[g]['cer']:.2f}" for g in [*sets, "all"])
        print(f"| {name} | {cells} | {100 * (report['all']['cer'] - stored):+.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": manifest.ref, "decoder": args.decoder, "lines": len(images),
                                               "framings": {n: {"top": t, "bottom": b} for n, t, b in FRAMINGS},
                                               "cer": reports}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
