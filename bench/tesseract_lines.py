"""The bundled model vs Tesseract on the same labelled val lines, in one run: CER, WER and lines/s.

    python bench/tesseract_lines.py --data ../shared/data --json bench/results/tesseract_lines.json

Tesseract (Debian's ``tesseract-ocr`` with ``eng`` and ``fra``) reads each line with
``--psm 7`` (one text line); all lines of a dataset go through one process via a list
file so that start-up is not counted per line. Both systems are scored against the
same references, normalised to the model's alphabet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.recognize import LineRecognizer
from sparkhtr.evaluation import evaluate_lines, load_line_parquet
from sparkhtr.registry import resolve_model


def write_pngs(images, folder: str | Path) -> list[str]:
    """Save each image as ``folder/<k>.png`` (Tesseract reads files); return the paths in order."""
    paths = []
    for k, image in enumerate(images):
        path = Path(folder) / f"{k:05d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


LANGUAGES = "eng+fra"


def installed_languages() -> set[str]:
    """Languages Tesseract has traineddata for (``tesseract --list-langs``)."""
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


def tesseract_lines(images, languages: str) -> tuple[list[str], float]:
    """Texts Tesseract reads from ``images`` (one line each) and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(images, tmp)
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(paths) + "\n")
        start = time.perf_counter()
        out = subprocess.run(["tesseract", str(listing), "stdout", "--psm", "7", "-l", languages],
                             capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - start
    texts = [" ".join(t.split()) for t in out.split("\f")][: len(images)]
    return texts + [""] * (len(images) - len(texts)), seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SPARKHTR_DATA", "../shared/data"))
    p.add_argument("--split", default="val")
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads (the machine's cores)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if shutil.which("tesseract") is None:
        print("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-fra)", file=sys.stderr)
        return 2
    # a missing traineddata only warns and reads with the rest: slower and worse with it, so
    # a run without French would not be the comparison it claims to be
    missing = set(LANGUAGES.split("+")) - installed_languages()
    if missing:
        print(f"tesseract lacks {sorted(missing)} (apt-get install "
              f"{' '.join('tesseract-ocr-' + m for m in sorted(missing))})", file=sys.stderr)
        return 2
    files = sorted((Path(args.data) / "lines" / args.split).glob("*.parquet"))
    recognizer = LineRecognizer(resolve_model(args.model), device="cpu", threads=args.threads)
    alphabet = Alphabet(recognizer.manifest.alphabet)
    refs, ours, theirs, groups = [], [], [], []
    ours_s = theirs_s = 0.0
    for path in files:
        images, texts = load_line_parquet(path, args.limit)
        start = time.perf_counter()
        ours.extend(r.text for r in recognizer.recognize(images))
        ours_s += time.perf_counter() - start
        read, seconds = tesseract_lines(images, LANGUAGES)
        theirs.extend(alphabet.normalize(t) for t in read)
        theirs_s += seconds
        refs.extend(alphabet.normalize(t) for t in texts)
        groups.extend([path.stem] * len(texts))
    report = {
        "model": recognizer.manifest.ref, "lines": len(refs),
        "sparkhtr": {"datasets": evaluate_lines(refs, ours, groups), "lines_per_second": len(refs) / ours_s},
        "tesseract": {"datasets": evaluate_lines(refs, theirs, groups), "lines_per_second": len(refs) / theirs_s,
                      "version": subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
                      .stdout.splitlines()[0]},
    }
    print("| dataset | lines | sparkhtr CER % | Tesseract CER % | sparkhtr WER % | Tesseract WER % |")
    print("|---|---|---|---|---|---|")
    for name, row in report["sparkhtr"]["datasets"].items():
        t = report["tesseract"]["datasets"][name]
        print(f"| {name} | {row['lines']} | {100 * row['cer']:.1f} | {100 * t['cer']:.1f} | "
              f"{100 * row['wer']:.1f} | {100 * t['wer']:.1f} |")
    print(f"lines/s on {args.threads} threads: sparkhtr {report['sparkhtr']['lines_per_second']:.1f}, "
          f"Tesseract {report['tesseract']['lines_per_second']:.1f} ({report['tesseract']['version']})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
