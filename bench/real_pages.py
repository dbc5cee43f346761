"""Issue-2 measurements on the 35 real pages of ``../shared/data/pages``, in one run.

1. End to end through local Spark into Delta (``recognize_to_tables``): pages/min,
   lines/s, every page has a row; then lines found vs ground truth per page and the
   CER of the page text (ground-truth lines in reading order, ``\\n``-joined). Beside it, the
   CER of the text of the found lines inside the annotated region (see
   ``bench/segmentation_eval.py``): the poilus ground truth transcribes only the will's body,
   so the notes and stamps elsewhere on those pages count as insertions in the headline.
   And the CER of the page's lines in any order (``order_free_edit_counts``: lines paired
   one to one by text): the ground truth's line order is not always the reading order
   (hooker JDH_2_16_88_004 lists "take last directions…" before "to go & see him … to"),
   and a line read in another order costs its whole length twice in the headline.
2. The time split across stages, measured in one process on the same pages with the
   same core functions (decode, preprocess, segment, recognise).

    python bench/real_pages.py --data ../shared/data --json bench/results/real_pages_learned.json  # the default
    python bench/real_pages.py --segmenter classical --json bench/results/real_pages.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from segmentation_eval import annotated_region, inside, polygon_box

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.baselines import DEFAULT_SEGMENTER, SEGMENTERS
from sparkhtr.core.decode import iter_pages
from sparkhtr.core.metrics import cer, order_free_edit_counts
from sparkhtr.core.preprocess import preprocess_page
from sparkhtr.core.recognize import DECODERS, DEFAULT_DECODER, LineRecognizer
from sparkhtr.core.segment import segment_lines
from sparkhtr.registry import resolve_model


def ground_truth(pages_dir: Path) -> dict[str, tuple[str, list[str], list[tuple[float, ...]]]]:
    """File name → (dataset, ground-truth line texts in reading order, their boxes)."""
    truth: dict[str, tuple[str, list[str], list[tuple[float, ...]]]] = {}
    for jsonl in sorted(pages_dir.glob("*/pages.jsonl")):
        for raw in jsonl.read_text(encoding="utf-8").splitlines():
            row = json.loads(raw)
            truth[row["image"]] = (jsonl.parent.name, [line["text"] for line in row["lines"]],
                                   [polygon_box(line["polygon"]) for line in row["lines"]])
    return truth


def spark_run(pages_dir: Path, out: Path, model: str | None, decoder: str, segmenter: str = DEFAULT_SEGMENTER) -> dict:
    from sparkhtr.io.delta import read_delta
    from sparkhtr.runner import recognize_to_tables
    from sparkhtr.spark.session import get_or_create_session

    spark = get_or_create_session()
    summary = recognize_to_tables(spark, [str(pages_dir)], str(out), model=model, glob="*.jpg", decoder=decoder,
                                  segmenter=segmenter)
    rows = read_delta(spark, str(out / "pages")).where(f"run_id = '{summary.run_id}'").collect()
    lines = (read_delta(spark, str(out / "lines")).where(f"run_id = '{summary.run_id}'")
             .select("path", "page", "line", "text", "bbox").orderBy("path", "page", "line").collect())
    return {"summary": summary, "rows": rows, "lines": lines}


def stage_split(pages_dir: Path, model: str | None, threads: int, decoder: str,
                segmenter: str = DEFAULT_SEGMENTER) -> dict[str, float]:
    recognizer = LineRecognizer(resolve_model(model), device="cpu", threads=threads, decoder=decoder)
    detector = None
    if segmenter == "learned":
        from sparkhtr.core.baselines import DEFAULT_SEGMENTER_MODEL, BaselineDetector

        detector = BaselineDetector(resolve_model(DEFAULT_SEGMENTER_MODEL), device="cpu", threads=threads)
    seconds = {"decode": 0.0, "preprocess": 0.0, "segment": 0.0, "recognize": 0.0}
    for path in sorted(pages_dir.glob("*/*.jpg")):
        data = path.read_bytes()
        t = time.perf_counter()
        pages = list(iter_pages(data, str(path)))
        seconds["decode"] += time.perf_counter() - t
        for page in pages:
            t = time.perf_counter()
            pre = preprocess_page(page.image)
            seconds["preprocess"] += time.perf_counter() - t
            t = time.perf_counter()
            lines = detector.segment(pre.image) if detector else segment_lines(pre.image)
            seconds["segment"] += time.perf_counter() - t
            t = time.perf_counter()
            recognizer.recognize([line.crop for line in lines])
            seconds["recognize"] += time.perf_counter() - t
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SPARKHTR_DATA", "../shared/data"))
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None, help="tables folder (default: a temporary one)")
    p.add_argument("--decoder", default=DEFAULT_DECODER, choices=DECODERS)
    p.add_argument("--json", default=None)
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, choices=SEGMENTERS,
                   help=f"default: {DEFAULT_SEGMENTER}, the pipeline's")
    args = p.parse_args(argv)
    pages_dir = Path(args.data) / "pages"
    if not pages_dir.is_dir():
        print(f"no pages under {pages_dir}", file=sys.stderr)
        return 2
    truth = ground_truth(pages_dir)
    out = Path(args.out or tempfile.mkdtemp(prefix="sparkhtr-real-"))
    run = spark_run(pages_dir, out, args.model, args.decoder, args.segmenter)
    summary = run["summary"]
    alphabet = Alphabet(resolve_model(args.model).alphabet)
    per_page = []
    refs, hyps = [], []
    by_dataset: dict[str, tuple[list[str], list[str]]] = {}
    in_region: dict[str, tuple[list[str], list[str]]] = {}
    any_order: dict[str, list[int]] = {}  # dataset -> [edits, characters]
    found_lines: dict[str, list] = {}
    for line in run["lines"]:
        found_lines.setdefault(line.path, []).append(line)
    for row in sorted(run["rows"], key=lambda r: r.path):
        name = row.path.rsplit("/", 1)[-1]
        dataset, gt, gt_boxes = truth.get(name, ("?", [], []))
        found = row.n_lines or 0
        gt_lines = [alphabet.normalize(t) for t in gt]
        ref, hyp = "\n".join(gt_lines), row.text or ""
        per_page.append({"page": name, "dataset": dataset, "status": row.status, "gt_lines": len(gt),
                         "found_lines": found, "rel_diff": (found - len(gt)) / max(len(gt), 1),
                         "cer": cer([ref], [hyp])})
        refs.append(ref)
        hyps.append(hyp)
        by_dataset.setdefault(dataset, ([], []))[0].append(ref)
        by_dataset[dataset][1].append(hyp)
        edits, chars = order_free_edit_counts(gt_lines, [ln.text or "" for ln in found_lines.get(row.path, [])])
        counts = any_order.setdefault(dataset, [0, 0])
        counts[0] += edits
        counts[1] += chars
        per_page[-1]["cer_any_order"] = edits / max(chars, 1)
        if gt_boxes:
            region = annotated_region(gt_boxes)
            kept = [ln.text or "" for ln in found_lines.get(row.path, [])
                    if ln.bbox is not None and inside(region, (ln.bbox.x0, ln.bbox.y0, ln.bbox.x1, ln.bbox.y1))]
            in_region.setdefault(dataset, ([], []))[0].append(ref)
            in_region[dataset][1].append("\n".join(kept))
    within = sum(abs(p["rel_diff"]) <= 0.10 for p in per_page)
    diffs = [abs(p["rel_diff"]) for p in per_page]
    split = stage_split(pages_dir, args.model, threads=1, decoder=args.decoder, segmenter=args.segmenter)
    total = sum(split.values())
    report = {
        "pages_expected": len(truth), "pages_rows": len(per_page),
        "pages_ok": sum(p["status"] == "ok" for p in per_page),
        "within_10pct": within, "within_10pct_fraction": within / max(len(per_page), 1),
        "median_abs_rel_diff": statistics.median(diffs) if diffs else None, "max_abs_rel_diff": max(diffs or [0]),
        "page_text_cer": cer(refs, hyps),
        "page_text_cer_by_dataset": {k: cer(r, h) for k, (r, h) in sorted(by_dataset.items())},
        "in_region_text_cer": cer([r for rs, _ in in_region.values() for r in rs],
                                  [h for _, hs in in_region.values() for h in hs]),
        "in_region_text_cer_by_dataset": {k: cer(r, h) for k, (r, h) in sorted(in_region.items())},
        "any_order_text_cer": sum(e for e, _ in any_order.values()) / max(sum(c for _, c in any_order.values()), 1),
        "any_order_text_cer_by_dataset": {k: e / max(c, 1) for k, (e, c) in sorted(any_order.items())},
        "spark_seconds": summary.seconds, "pages_per_minute": summary.pages_per_minute,
        "lines_per_second": summary.lines_per_second, "lines": summary.lines,
        "stage_seconds_one_core": split, "stage_fraction": {k: v / total for k, v in split.items()},
        "per_page": per_page, "model": summary.recognizer, "segmenter": summary.segmenter, "cores": os.cpu_count(),
    }
    print(f"pages: {report['pages_rows']} rows for {report['pages_expected']} pages ({report['pages_ok']} ok)")
    print(f"line count within ±10 %: {within}/{len(per_page)} pages; median |diff| "
          f"{100 * report['median_abs_rel_diff']:.1f} %, max {100 * report['max_abs_rel_diff']:.1f} %")
    print(f"page text CER: {100 * report['page_text_cer']:.2f} %  (model {summary.recognizer}); "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in report["page_text_cer_by_dataset"].items()))
    print(f"text of the found lines inside the annotated region: CER {100 * report['in_region_text_cer']:.2f} %; "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in report["in_region_text_cer_by_dataset"].items()))
    print(f"page lines in any order (paired by text): CER {100 * report['any_order_text_cer']:.2f} %; "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in report["any_order_text_cer_by_dataset"].items()))
    print(f"end to end (local Spark, {os.cpu_count()} cores): {summary.pages_per_minute:.1f} pages/min, "
          f"{summary.lines_per_second:.1f} lines/s, {summary.seconds:.1f} s")
    print("| stage | seconds (1 core) | share |\n|---|---|---|")
    for k, v in split.items():
        print(f"| {k} | {v:.2f} | {100 * v / total:.1f} % |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
