"""Accuracy: a line recogniser on labelled line images, and recognised pages against ALTO / PAGE ground truth.

Reads the Parquet layout of ``../shared/data/lines/<split>/<dataset>.parquet``
(columns ``text`` and ``image`` with encoded image bytes), or any Parquet file with
those columns.

>>> report = evaluate_lines(["ab"], ["ab"], ["demo"])
>>> report["all"]["cer"], report["demo"]["lines"]
(0.0, 1)
"""

from __future__ import annotations

import io
import posixpath
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.ctc import frames_needed
from sparkhtr.core.metrics import cer, edit_counts, order_free_edit_counts, wer
from sparkhtr.core.recognize import LineRecognizer
from sparkhtr.core.types import BBox
from sparkhtr.io.layout import LayoutPage, base_name, clean_text

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def evaluate_lines(references: Sequence[str], hypotheses: Sequence[str], groups: Sequence[str]
                   ) -> dict[str, dict[str, float]]:
    """CER, WER and line counts per group and for ``all``."""
    report: dict[str, dict[str, float]] = {}
    for name in [*sorted(set(groups)), "all"]:
        ids = [i for i, g in enumerate(groups) if name in ("all", g)]
        refs = [references[i] for i in ids]
        hyps = [hypotheses[i] for i in ids]
        report[name] = {"cer": cer(refs, hyps), "wer": wer(refs, hyps), "lines": len(ids)}
    return report


def confidence_coverage(references: Sequence[str], hypotheses: Sequence[str], confidences: Sequence[float],
                        shares: Sequence[float] = (0.25, 0.5, 0.75, 1.0)) -> list[dict[str, float]]:
    """CER of the most confident lines: for each share of lines kept (most confident first), the
    lowest confidence kept (a threshold for ``WHERE confidence >= …``) and their CER and WER.

    >>> rows = confidence_coverage(["cat", "dog"], ["cat", "dig"], [0.9, 0.4], shares=(0.5, 1.0))
    >>> [(r["share"], r["min_confidence"], round(r["cer"], 3)) for r in rows]
    [(0.5, 0.9, 0.0), (1.0, 0.4, 0.167)]
    """
    if not len(references) == len(hypotheses) == len(confidences):
        raise ValueError("references, hypotheses and confidences differ in length")
    order = sorted(range(len(references)), key=lambda i: -confidences[i])
    rows = []
    for share in shares:
        kept = order[:max(1, round(share * len(order)))] if order else []
        refs = [references[i] for i in kept]
        hyps = [hypotheses[i] for i in kept]
        rows.append({"share": share, "lines": len(kept),
                     "min_confidence": min((confidences[i] for i in kept), default=0.0),
                     "cer": cer(refs, hyps), "wer": wer(refs, hyps)})
    return rows


def load_line_parquet(path: Path, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Grayscale images and texts of a lines Parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["text", "image"])
    rows = table.slice(0, limit).to_pydict() if limit else table.to_pydict()
    images = [np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in rows["image"]]
    return images, list(rows["text"])


def evaluate_parquets(recognizer: LineRecognizer, files: Sequence[Path], limit: int | None = None,
                      *, keep_lines: bool = False) -> dict[str, Any]:
    """Recognise every line of ``files`` (dataset = file stem) and score against normalised references.

    References go through the model alphabet's normalisation, so characters the model
    cannot emit by design are not counted twice; the report says how many were dropped.
    With ``keep_lines`` the report also holds ``lines``: one record per line (dataset,
    index in its file, reference, text, confidence, CER), for error analysis.

    A line whose image is too narrow for its text (fewer output frames than CTC needs to
    emit the reference, a broken crop) cannot be read by any CTC model: such lines count
    in ``datasets`` like any other, and are listed apart in ``too_narrow`` (lines and
    reference characters per dataset) with ``datasets_without_too_narrow``, the same
    scores without them.

    Example::

        report = evaluate_parquets(LineRecognizer(resolve_model(None)), [Path("val/hooker.parquet")])
        report["datasets"]["hooker"]["cer"]
    """
    alphabet = Alphabet(recognizer.manifest.alphabet)
    refs: list[str] = []
    hyps: list[str] = []
    confidences: list[float] = []
    groups: list[str] = []
    readable: list[bool] = []
    dropped: dict[str, int] = {}
    seconds = 0.0
    for path in files:
        images, texts = load_line_parquet(Path(path), limit)
        start = time.perf_counter()
        results = recognizer.recognize(images)
        seconds += time.perf_counter() - start
        for char, count in alphabet.dropped(texts).items():
            dropped[char] = dropped.get(char, 0) + count
        normalized = [alphabet.normalize(t) for t in texts]
        refs.extend(normalized)
        readable.extend(recognizer.frames(image.shape) >= frames_needed(ref)
                        for image, ref in zip(images, normalized, strict=True))
        hyps.extend(r.text for r in results)
        confidences.extend(r.confidence for r in results)
        groups.extend([Path(path).stem] * len(texts))
    report: dict[str, Any] = {
        "model": recognizer.manifest.ref,
        "datasets": evaluate_lines(refs, hyps, groups),
        "confidence_coverage": confidence_coverage(refs, hyps, confidences),
        "lines_per_second": len(refs) / seconds if seconds else 0.0,
        "seconds": seconds,
        "dropped_reference_characters": dropped,
        "too_narrow": too_narrow_lines(refs, groups, readable),
    }
    if not all(readable):
        keep = [i for i, ok in enumerate(readable) if ok]
        report["datasets_without_too_narrow"] = evaluate_lines(
            [refs[i] for i in keep], [hyps[i] for i in keep], [groups[i] for i in keep])
    if keep_lines:
        report["lines"] = line_records(refs, hyps, confidences, groups)
    return report


def too_narrow_lines(references: Sequence[str], groups: Sequence[str], readable: Sequence[bool]
                     ) -> dict[str, dict[str, int]]:
    """Lines and reference characters per group of the lines that are not ``readable``.

    >>> too_narrow_lines(["abc", "de"], ["g", "g"], [False, True])
    {'g': {'lines': 1, 'characters': 3}}
    """
    out: dict[str, dict[str, int]] = {}
    for ref, group, ok in zip(references, groups, readable, strict=True):
        if not ok:
            row = out.setdefault(group, {"lines": 0, "characters": 0})
            row["lines"] += 1
            row["characters"] += len(ref)
    return out


def line_records(references: Sequence[str], hypotheses: Sequence[str], confidences: Sequence[float],
                 groups: Sequence[str]) -> list[dict[str, Any]]:
    """One record per line, numbered within its group, with the line's own CER.

    >>> line_records(["ab"], ["xb"], [0.5], ["g"])[0]["cer"]
    0.5
    """
    counters: dict[str, int] = {}
    records = []
    for ref, hyp, conf, group in zip(references, hypotheses, confidences, groups, strict=True):
        index = counters.get(group, 0)
        counters[group] = index + 1
        records.append({"dataset": group, "index": index, "reference": ref, "text": hyp,
                        "confidence": float(conf), "cer": cer([ref], [hyp])})
    return records


# ---------------------------------------------------------------- recognised pages against ground truth

NORMALIZATIONS = ("basic", "alphabet")


def text_normalizer(mode: str = "basic", alphabet: Alphabet | None = None) -> Callable[[str], str]:
    """How both sides of a comparison are normalised, line by line.

    ``basic``: Unicode NFC, characters XML cannot hold dropped (ground truth read from
    XML cannot contain them) and whitespace runs folded to one space. ``alphabet``: also
    map or drop what ``alphabet`` (a model's) cannot emit, as :func:`evaluate_parquets` does.

    >>> text_normalizer()("  e\\u0301te  d'\\u00e9t\\u00e9 ")
    "éte d'été"
    """
    if mode == "alphabet":
        if alphabet is None:
            raise ValueError("alphabet normalisation needs an alphabet")
        return alphabet.normalize
    if mode != "basic":
        raise ValueError(f"normalisation must be one of {NORMALIZATIONS}, not {mode!r}")
    return lambda text: " ".join(clean_text(unicodedata.normalize("NFC", text)).split())


def box_iou(a: BBox, b: BBox) -> float:
    """Intersection over union of two boxes.

    >>> box_iou(BBox(0, 0, 10, 10), BBox(5, 0, 15, 10))
    0.3333333333333333
    """
    ix = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    union = a.width * a.height + b.width * b.height - ix * iy
    return ix * iy / union if union > 0 else 0.0


def match_boxes(truth: Sequence[BBox | None], found: Sequence[BBox | None], threshold: float = 0.5
                ) -> list[tuple[int, int]]:
    """One-to-one ``(truth index, found index)`` pairs with IoU above ``threshold``, best pairs first.

    >>> match_boxes([BBox(0, 0, 10, 10), BBox(0, 20, 10, 30)], [BBox(0, 21, 10, 31), BBox(50, 0, 60, 9)])
    [(1, 0)]
    """
    scored = sorted(((box_iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)
                     if t is not None and f is not None), reverse=True)
    used_t: set[int] = set()
    used_f: set[int] = set()
    pairs = []
    for score, i, j in scored:
        if score <= threshold:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            pairs.append((i, j))
    return sorted(pairs)


@dataclass
class PageScore:
    """Edit counts of one recognised page against its ground truth: its text in reading order, its
    lines in any order (:func:`~sparkhtr.core.metrics.order_free_edit_counts`), and its lines
    matched by box."""

    path: str
    page: int
    folder: str
    gt_file: str | None
    status: str
    gt_lines: int
    lines: int
    char_errors: int
    chars: int
    word_errors: int
    words: int
    matched_lines: int = 0
    line_char_errors: int = 0
    line_chars: int = 0
    any_order_char_errors: int = 0
    any_order_chars: int = 0


def score_page(reference: LayoutPage, hypothesis: LayoutPage | None, normalize: Callable[[str], str], *,
               status: str = "ok") -> PageScore:
    """CER/WER counts of the page text (lines in reading order), of its lines in any order, and per
    line for lines matched by box.

    ``hypothesis`` None (no recognised lines, e.g. an error page) scores as empty text.
    Lines empty after normalisation are left out on both sides.

    >>> from sparkhtr.io.layout import LayoutLine
    >>> ref = LayoutPage("a.png", lines=(LayoutLine("the cat", bbox=BBox(0, 0, 50, 10)),))
    >>> hyp = LayoutPage("s3://x/a.png", lines=(LayoutLine("the bat", bbox=BBox(1, 0, 50, 11)),))
    >>> s = score_page(ref, hyp, text_normalizer())
    >>> (s.char_errors, s.chars, s.word_errors, s.matched_lines, s.line_char_errors, s.any_order_char_errors)
    (1, 7, 1, 1, 1, 1)
    """
    def kept(page: LayoutPage | None) -> list[tuple[str, BBox | None]]:
        pairs = [(normalize(line.text), line.box()) for line in (page.lines if page else ())]
        return [(text, box) for text, box in pairs if text]

    ref, hyp = kept(reference), kept(hypothesis)
    ref_text, hyp_text = "\n".join(t for t, _ in ref), "\n".join(t for t, _ in hyp)
    char_errors, chars = edit_counts([ref_text], [hyp_text])
    word_errors, words = edit_counts([ref_text], [hyp_text], words=True)
    pairs = match_boxes([b for _, b in ref], [b for _, b in hyp])
    line_errors, line_chars = edit_counts([ref[i][0] for i, _ in pairs], [hyp[j][0] for _, j in pairs])
    any_order_errors, any_order_chars = order_free_edit_counts([t for t, _ in ref], [t for t, _ in hyp])
    path = hypothesis.path if hypothesis else reference.path
    return PageScore(path, hypothesis.page if hypothesis else reference.page, posixpath.dirname(path),
                     reference.source, status, len(ref), len(hyp), char_errors, chars, word_errors, words,
                     len(pairs), line_errors, line_chars, any_order_errors, any_order_chars)


def _totals(scores: Sequence[PageScore]) -> dict[str, float]:
    sums = {k: sum(getattr(s, k) for s in scores) for k in (
        "gt_lines", "lines", "char_errors", "chars", "word_errors", "words", "matched_lines",
        "line_char_errors", "line_chars", "any_order_char_errors", "any_order_chars")}
    return {"pages": len(scores), **sums,
            "cer": sums["char_errors"] / max(sums["chars"], 1), "wer": sums["word_errors"] / max(sums["words"], 1),
            "line_cer": sums["line_char_errors"] / max(sums["line_chars"], 1),
            "any_order_cer": sums["any_order_char_errors"] / max(sums["any_order_chars"], 1)}


def summarize_pages(scores: Sequence[PageScore]) -> dict[str, Any]:
    """Per page, per folder (of the recognised path) and overall CER/WER (micro-averaged: edits / characters).

    >>> s = PageScore("d/a.png", 1, "d", None, "ok", 1, 1, 1, 4, 1, 1)
    >>> summarize_pages([s])["all"]["cer"]
    0.25
    """
    folders = sorted({s.folder for s in scores})
    return {
        "pages": [{**asdict(s), **_totals([s])} for s in scores],
        "folders": {f: _totals([s for s in scores if s.folder == f]) for f in folders},
        "all": _totals(scores),
    }


def evaluate_tables(spark: SparkSession, tables_dir: str | Path, gt_root: str | Path, *, normalize: str = "basic",
                    model: str | None = None) -> dict[str, Any]:
    """Score the recognised pages of ``tables_dir`` against the ALTO / PAGE ground truth under ``gt_root``.

    Ground-truth pages are matched to recognised pages as
    :mod:`sparkhtr.io.ground_truth` describes; only the candidate pages and their
    lines come to the driver. A matched page with ``status='error'`` scores as empty
    text. The report (see :func:`summarize_pages`) also lists the ground-truth pages
    with no recognised page (``unmatched``) or several (``ambiguous``), and the XML
    files that are not ALTO / PAGE (``skipped``). ``normalize="alphabet"`` uses the
    alphabet of ``model`` (default: the bundled default model).
    """
    from pyspark.sql import functions as F

    from sparkhtr.io.export import pages_with_lines, read_tables, table_page
    from sparkhtr.io.ground_truth import file_stem, image_name, load_ground_truth, match_ground_truth

    alphabet = None
    if normalize == "alphabet":
        from sparkhtr.registry import resolve_model

        alphabet = Alphabet(resolve_model(model).alphabet)
    normalizer = text_normalizer(normalize, alphabet)
    truth, skipped = load_ground_truth(gt_root)
    report: dict[str, Any] = {"tables": str(tables_dir), "ground_truth": str(gt_root), "normalize": normalize}
    rows = []
    if truth:
        pages, lines = read_tables(spark, tables_dir)
        keys = spark.createDataFrame(sorted({(file_stem(t.image), t.page) for t in truth}), "stem string, page int")

        stem = F.udf(lambda path: file_stem(image_name(path)), "string", useArrow=True)
        candidates = pages.withColumn("stem", stem("path")).join(F.broadcast(keys), ["stem", "page"], "left_semi")
        rows = pages_with_lines(candidates, lines).collect()
    by_key = {(r["path"], r["page"]): r for r in rows}
    matches, ambiguous = match_ground_truth(truth, by_key)
    scores = []
    for gt, path in zip(truth, matches, strict=True):
        if path is not None:
            row = by_key[(path, gt.page)]
            scores.append(score_page(gt.layout, table_page(row), normalizer, status=row["status"]))
    report.update(summarize_pages(scores))
    def named(k: int) -> str:
        return f"{truth[k].layout.source} ({truth[k].image} p{truth[k].page})"

    unclear = set(ambiguous)
    report["unmatched"] = [named(k) for k, m in enumerate(matches) if m is None and k not in unclear]
    report["ambiguous"] = [named(k) for k in ambiguous]
    report["skipped"] = skipped
    report["ground_truth_pages"] = len(truth)
    return report


def format_page_report(report: dict[str, Any], limit: int = 50) -> str:
    """A readable text table of :func:`evaluate_tables`' report (at most ``limit`` page rows).

    ``any order``: the CER of the page's lines matched one to one by text, whatever their
    order (the ground truth's line order is not always the reading order).

    >>> s = PageScore("file:/d/a.png", 1, "file:/d", None, "ok", 2, 2, 1, 20, 1, 4, 2, 1, 20, 1, 19)
    >>> print(format_page_report({**summarize_pages([s]), "unmatched": [], "ambiguous": [], "skipped": []}))
    page                                       lines gt/found   CER %  any order   WER %   line CER % (matched)
    a.png p1                                              2/2    5.00       5.26   25.00    5.00 (2/2)
    <BLANKLINE>
    folder                                             pages   CER %  any order   WER %   line CER % (matched)
    file:/d                                                1    5.00       5.26   25.00    5.00 (2/2)
    all                                                    1    5.00       5.26   25.00    5.00 (2/2)
    """
    def cells(row: dict[str, Any]) -> str:
        return (f"{100 * row['cer']:>8.2f}{100 * row['any_order_cer']:>11.2f}{100 * row['wer']:>8.2f}"
                f"{100 * row['line_cer']:>8.2f} ({row['matched_lines']}/{row['gt_lines']})")

    header = f"{'CER %':>8}{'any order':>11}{'WER %':>8}   line CER % (matched)"
    out = [f"{'page':<40}{'lines gt/found':>17}{header}"]
    for row in report["pages"][:limit]:
        name = f"{base_name(row['path'])} p{row['page']}" + ("" if row["status"] == "ok" else f" [{row['status']}]")
        out.append(f"{name[:40]:<40}{str(row['gt_lines']) + '/' + str(row['lines']):>17}{cells(row)}")
    if len(report["pages"]) > limit:
        out.append(f"… {len(report['pages']) - limit} more pages (all of them in --json)")
    out += ["", f"{'folder':<50}{'pages':>7}{header}"]
    for name, row in [*report["folders"].items(), ("all", report["all"])]:
        out.append(f"{name[-50:]:<50}{row['pages']:>7}{cells(row)}")
    for key, what in (("unmatched", "ground-truth pages without a recognised page"),
                      ("ambiguous", "ground-truth pages matching several recognised files"),
                      ("skipped", "XML files that are not ALTO / PAGE")):
        if report.get(key):
            out.append(f"{what}: {len(report[key])}, e.g. {report[key][0]}")
    return "\n".join(out)
