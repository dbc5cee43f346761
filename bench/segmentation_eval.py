"""Line segmentation on the real pages: lines found vs ground truth, box matching, time.

For each page of ``<data>/pages/<dataset>/pages.jsonl``: decode, preprocess (gray,
deskew, contrast), :func:`sparkhtr.core.segment.segment_lines`, map the lines back to
the scan's pixels (``geometry.to_source``, the ground truth's space) and compare:

- count: lines found vs ground-truth lines, relative difference ``(found - gt) / gt``;
- recall: share of ground-truth lines whose polygon's box has IoU > 0.5 with the box of
  some found line; precision: share of found lines whose box has IoU > 0.5 with some
  ground-truth line's box;
- time of ``segment_lines`` alone (decode and preprocessing are timed separately);
- count inside the annotated region: found lines whose box centre lies in the box around all
  ground-truth lines, grown by one median ground-truth line height. Some ground truths (the
  poilus wills) transcribe only the body and leave out clerks' notes, stamps and page
  numbers elsewhere on the page; this count says how the segmenter does where the ground
  truth looked, the plain count above stays the headline.

    python bench/segmentation_eval.py --data ../shared/data --json /tmp/segmentation.json
    python bench/segmentation_eval.py --draw /tmp/seg   # PNGs with found (green) and true (red) boxes
    python bench/segmentation_eval.py --segmenter classical   # lines from the ink alone
    python bench/segmentation_eval.py --segmenter-model kraken-blla   # the float network (default: kraken-blla-int8)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sparkhtr.core.baselines import DEFAULT_SEGMENTER, SEGMENTERS
from sparkhtr.core.decode import iter_pages
from sparkhtr.core.geometry import to_source
from sparkhtr.core.preprocess import preprocess_page
from sparkhtr.core.segment import segment_lines
from sparkhtr.core.types import SegmentedLine

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes.

    >>> iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def polygon_box(points: list[list[float]]) -> Box:
    """Bounding box of a polygon given as ``[[x, y], ...]``.

    >>> polygon_box([[1, 2], [5, 1], [3, 7]])
    (1, 1, 5, 7)
    """
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def matching(truth: list[Box], found: list[Box], threshold: float = 0.5) -> tuple[int, int]:
    """(ground-truth boxes matched by a found box, found boxes matched by a ground-truth box).

    >>> matching([(0, 0, 10, 10), (0, 20, 10, 30)], [(0, 1, 10, 11)])
    (1, 1)
    """
    if not truth or not found:
        return 0, 0
    scores = np.array([[iou(t, f) for f in found] for t in truth])
    good = scores > threshold
    return int(good.any(axis=1).sum()), int(good.any(axis=0).sum())


def annotated_region(truth: list[Box]) -> Box:
    """Box around every ground-truth line, grown by one median line height on each side.

    >>> annotated_region([(10, 10, 100, 30), (10, 40, 90, 60)])
    (-10.0, -10.0, 120.0, 80.0)
    """
    grow = float(np.median([b[3] - b[1] for b in truth]))
    return (min(b[0] for b in truth) - grow, min(b[1] for b in truth) - grow,
            max(b[2] for b in truth) + grow, max(b[3] for b in truth) + grow)


def inside(region: Box, box: Box) -> bool:
    """Whether the centre of ``box`` lies in ``region``.

    >>> inside((0, 0, 10, 10), (6, 6, 14, 14)), inside((0, 0, 10, 10), (8, 8, 14, 14))
    (True, False)
    """
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def draw(path: Path, image: np.ndarray, truth: list[Box], lines: list[SegmentedLine]) -> None:
    """Save the page with true boxes (red), found polygons (green) and baselines (blue)."""
    import cv2

    canvas = cv2.cvtColor(image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY),
                          cv2.COLOR_GRAY2BGR)
    for t in truth:
        cv2.rectangle(canvas, (int(t[0]), int(t[1])), (int(t[2]), int(t[3])), (0, 0, 255), 2)
    for k, line in enumerate(lines):
        cv2.polylines(canvas, [np.array(line.polygon, np.int32)], True, (0, 170, 0), 2)
        cv2.polylines(canvas, [np.array(line.baseline, np.int32)], False, (255, 0, 0), 2)
        cv2.putText(canvas, str(k), (line.bbox.x0, line.bbox.y0 + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (0, 120, 0), 2)
    scale = 1000 / max(canvas.shape[:2])
    cv2.imwrite(str(path), cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def evaluate(data: Path, draw_dir: Path | None = None, segmenter: str = DEFAULT_SEGMENTER, threads: int = 0,
             height: int | None = None, segmenter_model: str | None = None) -> dict:
    """Per-page results and the summary over all pages under ``data/pages``.

    ``segmenter='learned'`` segments along the baselines of ``segmenter_model`` (by default
    the bundled ``kraken-blla-int8``; its time counts in ``segment_s``), run on pages scaled
    down to ``height`` rows (default: the model's, 1800 for the bundled ones).
    """
    detector = None
    if segmenter == "learned":
        from sparkhtr.core.baselines import DEFAULT_SEGMENTER_MODEL, BaselineDetector
        from sparkhtr.registry import resolve_model

        detector = BaselineDetector(resolve_model(segmenter_model or DEFAULT_SEGMENTER_MODEL), device="cpu",
                                    threads=threads, height=height)
    pages = []
    for jsonl in sorted((data / "pages").glob("*/pages.jsonl")):
        for raw in jsonl.read_text(encoding="utf-8").splitlines():
            row = json.loads(raw)
            t0 = time.perf_counter()
            page = next(iter_pages((jsonl.parent / row["image"]).read_bytes(), row["image"]))
            t1 = time.perf_counter()
            pre = preprocess_page(page.image)
            t2 = time.perf_counter()
            lines = detector.segment(pre.image) if detector else segment_lines(pre.image)
            t3 = time.perf_counter()
            src_h, src_w = page.image.shape[:2]
            pre_h, pre_w = pre.image.shape
            # preprocess_page removed the skew by rotating the page by -skew_degrees
            lines = to_source(lines, -pre.skew_degrees, (pre_w, pre_h), (src_w, src_h))
            truth = [polygon_box(line["polygon"]) for line in row["lines"]]
            found = [(ln.bbox.x0, ln.bbox.y0, ln.bbox.x1, ln.bbox.y1) for ln in lines]
            matched_truth, matched_found = matching(truth, found)
            gt = len(truth)
            region = annotated_region(truth) if truth else None
            in_region = sum(inside(region, f) for f in found) if region else len(found)
            pages.append({
                "dataset": jsonl.parent.name, "image": row["image"], "gt": gt, "found": len(found),
                "rel_diff": (len(found) - gt) / gt if gt else float(len(found)),
                "found_in_region": in_region, "rel_diff_in_region": (in_region - gt) / gt if gt else float(in_region),
                "recall": matched_truth / gt if gt else 1.0,
                "precision": matched_found / len(found) if found else 1.0,
                "matched_gt": matched_truth, "skew": pre.skew_degrees,
                "decode_s": t1 - t0, "preprocess_s": t2 - t1, "segment_s": t3 - t2,
            })
            if draw_dir is not None:
                draw(draw_dir / (Path(row["image"]).stem + ".png"), page.image, truth, lines)
    rel = [abs(p["rel_diff"]) for p in pages]
    rel_region = [abs(p["rel_diff_in_region"]) for p in pages]
    total_gt = sum(p["gt"] for p in pages)
    summary = {
        "pages": len(pages),
        "within_10pct": sum(r <= 0.10 + 1e-9 for r in rel) / len(pages),
        "within_30pct": sum(r <= 0.30 + 1e-9 for r in rel) / len(pages),
        "median_abs_rel_err": statistics.median(rel),
        "within_10pct_in_region": sum(r <= 0.10 + 1e-9 for r in rel_region) / len(pages),
        "median_abs_rel_err_in_region": statistics.median(rel_region),
        "max_abs_rel_err": max(rel),
        "line_recall_iou50": sum(p["matched_gt"] for p in pages) / total_gt,
        "mean_page_recall": statistics.mean(p["recall"] for p in pages),
        "mean_page_precision": statistics.mean(p["precision"] for p in pages),
        "lines_gt": total_gt,
        "lines_found": sum(p["found"] for p in pages),
        "mean_segment_s": statistics.mean(p["segment_s"] for p in pages),
        "max_segment_s": max(p["segment_s"] for p in pages),
        "mean_preprocess_s": statistics.mean(p["preprocess_s"] for p in pages),
    }
    return {"summary": summary, "pages": pages}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints a table and the summary, optionally writes JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SPARKHTR_DATA", "../shared/data"),
                   help="shared data folder holding pages/<dataset>/pages.jsonl (default: $SPARKHTR_DATA)")
    p.add_argument("--json", default=None, help="write per-page results and the summary here")
    p.add_argument("--draw", default=None, help="folder for PNGs with true and found lines drawn")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, choices=SEGMENTERS,
                   help=f"default: {DEFAULT_SEGMENTER}, the pipeline's")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads for --segmenter learned (0 = all)")
    p.add_argument("--height", type=int, default=None,
                   help="analysis height for --segmenter learned (default: the model's, 1800)")
    p.add_argument("--segmenter-model", default=None,
                   help="baseline-segmenter model for --segmenter learned (default: kraken-blla-int8)")
    args = p.parse_args(argv)
    data = Path(args.data)
    if not (data / "pages").is_dir():
        print(f"no pages folder under {data}", file=sys.stderr)
        return 2
    draw_dir = Path(args.draw) if args.draw else None
    if draw_dir is not None:
        draw_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate(data, draw_dir, args.segmenter, args.threads, args.height, args.segmenter_model)
    print(f"{'page':58} {'gt':>4} {'found':>5} {'rel':>7} {'in reg':>6} {'recall':>6} {'prec':>6} {'seg s':>6}")
    for r in result["pages"]:
        name = f"{r['dataset']}/{r['image']}"[-58:]
        print(f"{name:58} {r['gt']:4d} {r['found']:5d} {r['rel_diff']:+7.1%} {r['found_in_region']:6d} "
              f"{r['recall']:6.1%} {r['precision']:6.1%} {r['segment_s']:6.3f}")
    s = result["summary"]
    print(f"\npages within ±10 %: {s['within_10pct']:.1%}   within ±30 %: {s['within_30pct']:.1%}")
    print(f"counting only lines inside the annotated region: within ±10 % {s['within_10pct_in_region']:.1%}, "
          f"median |difference| {s['median_abs_rel_err_in_region']:.1%}")
    print(f"relative count error: median {s['median_abs_rel_err']:.1%}, max {s['max_abs_rel_err']:.1%}")
    print(f"GT lines matched (IoU > 0.5): {s['line_recall_iou50']:.1%} of {s['lines_gt']}; "
          f"mean page precision {s['mean_page_precision']:.1%} ({s['lines_found']} lines found)")
    print(f"segment_lines: mean {s['mean_segment_s']:.3f} s/page, max {s['max_segment_s']:.3f} s "
          f"(preprocess mean {s['mean_preprocess_s']:.3f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
