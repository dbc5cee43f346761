"""Page orientation: are pages scanned sideways or upside down turned upright, and never upright ones?

Each page (the real pages of ``<data>/pages`` as decoded, before any preprocessing, and the
generated sample pages of ``samples/pages``) is turned by 0, 90, 180 and 270 degrees
anticlockwise and given to :func:`sparkhtr.core.preprocess.estimate_orientation`, which
should answer the same angle (0 = leave the page as it is). Prints the confusion table per
set (rows: the turn given, columns: the turn found), the share found, and the time per call.

With ``--read``, the pages with ground truth are also read end to end through the core path
(``preprocess_page`` → the learned segmenter → the bundled recogniser, default decoder), turned
each way, with the orientation step on and off: the CER of the page text (ground-truth lines
in reading order) says what turning a page back is worth.

    python bench/orientation.py --data ../shared/data --json bench/results/orientation.json
    python bench/orientation.py --data ../shared/data --read --read-limit 3 --json bench/results/orientation.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_pages import ground_truth as real_ground_truth

from sparkhtr.core.decode import iter_pages
from sparkhtr.core.preprocess import estimate_orientation, preprocess_page, to_gray

TURNS = (0, 90, 180, 270)
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "pages"


def page_sets(data: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """``{set: [(name, gray page), …]}``: the real pages by collection, then the sample pages."""
    sets: dict[str, list[tuple[str, np.ndarray]]] = {}
    for manifest in sorted((data / "pages").glob("*/pages.jsonl")):
        for raw in manifest.read_text().splitlines():
            name = json.loads(raw)["image"]
            page = next(iter_pages((manifest.parent / name).read_bytes(), name))
            sets.setdefault(manifest.parent.name, []).append((name, to_gray(page.image)))
    for path in sorted(SAMPLES.iterdir()):
        for page in iter_pages(path.read_bytes(), path.name):
            sets.setdefault("samples", []).append((f"{path.name}#{page.page}", to_gray(page.image)))
    return sets


def ground_truth(data: Path) -> dict[str, list[str]]:
    """Page name (as :func:`page_sets` names it) → its ground-truth lines in reading order."""
    texts = {name: lines for name, (_, lines, _) in real_ground_truth(data / "pages").items()}
    for raw in (SAMPLES.parent / "ground_truth.jsonl").read_text().splitlines():
        row = json.loads(raw)
        texts[f"{Path(row['file']).name}#{row['page']}"] = [line["text"] for line in row["lines"]]
    return texts


def read_turned(sets: dict[str, list[tuple[str, np.ndarray]]], truth: dict[str, list[str]]) -> dict[str, dict]:
    """Page text CER per set, per turn given, with the orientation step on and off."""
    from sparkhtr.core.alphabet import Alphabet
    from sparkhtr.core.baselines import DEFAULT_SEGMENTER_MODEL, BaselineDetector
    from sparkhtr.core.metrics import cer
    from sparkhtr.core.recognize import LineRecognizer
    from sparkhtr.registry import resolve_model

    manifest = resolve_model(None)
    recognizer = LineRecognizer(manifest, device="cpu", threads=1)
    detector = BaselineDetector(resolve_model(DEFAULT_SEGMENTER_MODEL), device="cpu", threads=1)
    alphabet = Alphabet(manifest.alphabet)
    out: dict[str, dict] = {}
    for name, pages in sets.items():
        refs = ["\n".join(alphabet.normalize(t) for t in truth[page_name]) for page_name, _ in pages]
        for given in TURNS:
            for orient in (True, False):
                if not orient and given != 90:
                    continue  # upright, off changes nothing (no upright page is turned); one turn shows the loss
                hyps = []
                for _, gray in pages:
                    pre = preprocess_page(np.ascontiguousarray(np.rot90(gray, given // 90)), orient=orient)
                    lines = detector.segment(pre.image)
                    hyps.append("\n".join(r.text for r in recognizer.recognize([ln.crop for ln in lines])))
                key = f"turned {given}" + ("" if orient else ", orientation off")
                out.setdefault(name, {})[key] = cer(refs, hyps)
                print(f"{name}: {key}: page CER {100 * out[name][key]:.2f} %", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SPARKHTR_DATA", "../shared/data")))
    p.add_argument("--read", action="store_true", help="also read the turned pages end to end (minutes)")
    p.add_argument("--read-limit", type=int, default=None, help="pages per set read with --read (default: all)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    sets = page_sets(args.data)
    report: dict[str, dict] = {}
    seconds, calls = 0.0, 0
    misses: list[str] = []
    for name, pages in sets.items():
        confusion = {given: {found: 0 for found in TURNS} for given in TURNS}
        for page_name, gray in pages:
            for given in TURNS:
                turned = np.ascontiguousarray(np.rot90(gray, given // 90))
                start = time.perf_counter()
                found = estimate_orientation(turned)
                seconds += time.perf_counter() - start
                calls += 1
                confusion[given][found] += 1
                if found != given:
                    misses.append(f"{name}/{page_name} turned {given}: found {found}")
        report[name] = {"pages": len(pages), "confusion": confusion}
    total = {given: {found: sum(r["confusion"][given][found] for r in report.values()) for found in TURNS}
             for given in TURNS}
    report["all"] = {"pages": sum(len(p) for p in sets.values()), "confusion": total}
    for name, r in report.items():
        print(f"\n{name} ({r['pages']} pages): rows turned by, columns found")
        print("| turned | " + " | ".join(f"found {t}" for t in TURNS) + " | right |")
        print("|---" * (len(TURNS) + 2) + "|")
        for given in TURNS:
            row = r["confusion"][given]
            print(f"| {given} | " + " | ".join(str(row[t]) for t in TURNS) + f" | {row[given]}/{r['pages']} |")
    upright_turned = sum(n for t, n in total[0].items() if t)
    print(f"\nupright pages turned: {upright_turned} of {report['all']['pages']}; "
          f"{1000 * seconds / max(calls, 1):.1f} ms per call ({calls} calls, one core)")
    reading = None
    if args.read:
        reading = read_turned({k: v[: args.read_limit] for k, v in sets.items()}, ground_truth(args.data))
    if args.json:
        Path(args.json).write_text(json.dumps({"sets": report, "misses": misses, "page_text_cer": reading,
                                               "ms_per_call": 1000 * seconds / max(calls, 1)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
