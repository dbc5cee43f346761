"""The ``sparkhtr`` command: thin over :mod:`sparkhtr.runner` on an embedded local Spark.

    sparkhtr recognize samples/pages --out out/
    sparkhtr recognize --lines lines/*.png --out preds.jsonl
    sparkhtr watch scans/incoming --out out/
    sparkhtr sql --tables out/ "SELECT path, page, n_lines FROM pages"
    sparkhtr export --tables out/ --format alto --out alto/
    sparkhtr eval --tables out/ --gt ground_truth/
    sparkhtr models
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sparkhtr import __version__
from sparkhtr.errors import SparkHtrError


def _session(args: argparse.Namespace):
    from sparkhtr.spark.session import get_or_create_session

    return get_or_create_session(master=args.master, profile=args.profile)


def _add_decoder_option(p: argparse.ArgumentParser) -> None:
    from sparkhtr.core.recognize import DECODERS, DEFAULT_DECODER

    p.add_argument("--decoder", default=DEFAULT_DECODER, choices=DECODERS,
                   help="beam: beam search with the model's character language model (lower CER); "
                        "greedy: best path (faster); auto: beam when the model ships a language model "
                        f"(default {DEFAULT_DECODER})")


def _add_segmenter_option(p: argparse.ArgumentParser) -> None:
    from sparkhtr.core.baselines import DEFAULT_SEGMENTER, SEGMENTERS

    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, choices=SEGMENTERS,
                   help="learned (default): along the baselines the bundled kraken-blla-int8 network finds "
                        "(fewer stamps and printed headers taken for lines, lower page CER; ~2 s a page on 2 CPU "
                        "cores); classical: lines from the page's ink alone (~0.2 s a page)")


def _add_spark_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--master", default=None, help="Spark master (default local[*], or $SPARKHTR_MASTER)")
    p.add_argument("--profile", default="local", help="Spark conf profile name or .conf path (default local)")


def cmd_recognize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sparkhtr.runner import Progress, recognize_lines, recognize_to_tables

    spark = _session(args)
    if args.lines:
        rows = recognize_lines(spark, args.inputs, model=args.model, device=args.device, glob=args.glob,
                               decoder=args.decoder)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({k: row[k] for k in ("path", "text", "confidence")}, ensure_ascii=False) + "\n")
        errors = sum(1 for r in rows if r["error"])
        print(f"{len(rows)} line images → {out} ({errors} errors)")
        for row in rows:
            if row["error"]:
                print(f"  error: {row['path']}: {row['error']}", file=sys.stderr)
        return 0
    bar = tqdm(total=0, unit="file", disable=args.no_progress, dynamic_ncols=True)

    def show(p: Progress) -> None:
        bar.total = p.files_total
        bar.n = p.files_done
        rate = p.lines / p.seconds if p.seconds else 0.0
        bar.set_postfix_str(f"pages {p.pages}, lines {p.lines}, {rate:.1f} lines/s", refresh=True)

    summary = recognize_to_tables(spark, args.inputs, args.out, model=args.model, device=args.device,
                                  glob=args.glob, pdf_dpi=args.pdf_dpi, progress=show, reprocess=args.reprocess,
                                  retry_errors=args.retry_errors, files_per_commit=args.files_per_commit,
                                  decoder=args.decoder, segmenter=args.segmenter)
    bar.close()
    print(
        f"run {summary.run_id}: {summary.files} files ({summary.files_skipped} already done), "
        f"{summary.pages} pages ({summary.errors} errors), "
        f"{summary.lines} lines in {summary.seconds:.1f} s "
        f"({summary.pages_per_minute:.1f} pages/min, {summary.lines_per_second:.1f} lines/s)\n"
        f"recognizer {summary.recognizer}, segmenter {summary.segmenter}\n"
        f"tables: {args.out}/pages, {args.out}/lines, {args.out}/runs"
    )
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from sparkhtr.watch import finish_watch, watch_to_tables

    spark = _session(args)
    query = watch_to_tables(spark, args.input, args.out, checkpoint=args.checkpoint, model=args.model,
                            device=args.device, pdf_dpi=args.pdf_dpi, glob=args.glob,
                            max_files_per_trigger=args.max_files_per_trigger, interval_seconds=args.interval,
                            available_now=args.once, decoder=args.decoder,
                            segmenter=args.segmenter)
    print(f"watching {args.input} → {args.out} (Ctrl-C stops; a restart resumes from the checkpoint)")
    with contextlib.suppress(KeyboardInterrupt):
        query.awaitTermination(args.timeout)
    summary = finish_watch(query)
    print(
        f"watch {summary.run_id} {summary.status}: {summary.files} new files ({summary.files_skipped} already done), "
        f"{summary.pages} pages ({summary.errors} errors), {summary.lines} lines in {summary.seconds:.1f} s"
    )
    if summary.error:
        print(f"sparkhtr: {summary.error}", file=sys.stderr)
    return 1 if summary.status == "failed" else 0


def cmd_sql(args: argparse.Namespace) -> int:
    from sparkhtr.io.delta import register_tables

    spark = _session(args)
    names = register_tables(spark, args.tables, catalog_schema=args.catalog_schema)
    if not names:
        print(f"no tables under {args.tables}", file=sys.stderr)
        return 2
    result = spark.sql(args.query)
    if args.format == "json":
        for row in result.limit(args.limit).toLocalIterator():
            print(json.dumps(row.asDict(recursive=True), default=str, ensure_ascii=False))
    else:
        result.show(args.limit, truncate=args.truncate, vertical=args.format == "vertical")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from sparkhtr.core.baselines import DEFAULT_SEGMENTER_MODEL
    from sparkhtr.registry import DEFAULT_MODEL, list_models

    for m in list_models():
        mark = {DEFAULT_MODEL: " (default)", DEFAULT_SEGMENTER_MODEL: " (--segmenter learned)"}.get(m.name, "")
        detail = f"{len(m.alphabet)} chars" if m.kind == "ctc-line-recognizer" else "pages"
        print(f"{m.ref}{mark}\t{m.kind}\theight {m.input_height}\t{detail}\t{m.model_path}")
    return 0


def cmd_eval_lines(args: argparse.Namespace) -> int:
    from sparkhtr.core.recognize import LineRecognizer
    from sparkhtr.evaluation import evaluate_parquets
    from sparkhtr.registry import resolve_model

    root = Path(args.data) / "lines" / args.split
    files = sorted(root.glob("*.parquet")) if root.is_dir() else [Path(p) for p in args.files]
    if not files:
        print(f"no Parquet files under {root}", file=sys.stderr)
        return 2
    if args.beam_width < 0:
        print(f"--beam-width must not be negative, got {args.beam_width}", file=sys.stderr)
        return 2
    recognizer = LineRecognizer(resolve_model(args.model), device=args.device, threads=args.threads,
                                decoder=args.decoder, beam_width=args.beam_width)
    report = evaluate_parquets(recognizer, files, args.limit, keep_lines=bool(args.predictions))
    if args.predictions:
        with Path(args.predictions).open("w", encoding="utf-8") as out:
            for record in report.pop("lines"):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{'dataset':<12}{'lines':>7}{'CER %':>9}{'WER %':>9}")
    for name, row in report["datasets"].items():
        print(f"{name:<12}{row['lines']:>7}{100 * row['cer']:>9.2f}{100 * row['wer']:>9.2f}")
    print(f"{report['lines_per_second']:.1f} lines/s ({args.threads or 'all'} threads), model {report['model']}")
    if report["too_narrow"]:
        # broken crops (a few pixels wide for a whole line's text): no CTC model can read them
        narrow = ", ".join(f"{name} {row['lines']} ({row['characters']} characters)"
                           for name, row in report["too_narrow"].items())
        without = ", ".join(f"{name} {100 * row['cer']:.2f}"
                            for name, row in report["datasets_without_too_narrow"].items())
        print(f"lines narrower than their text needs (fewer model frames than CTC must emit): {narrow}; "
              f"CER % without them: {without}")
    print("most confident lines kept: " + ", ".join(
        f"{100 * row['share']:.0f} % (confidence ≥ {row['min_confidence']:.3f}) CER {100 * row['cer']:.2f} %"
        for row in report["confidence_coverage"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sparkhtr.io.export import export_tables

    spark = _session(args)
    s = export_tables(spark, args.tables, args.out, args.format, schemas_dir=args.validate)
    print(f"{s.written} {s.format} files → {s.out} ({s.skipped_errors} error pages skipped)")
    if s.validated:
        print(f"{s.validated - s.invalid}/{s.validated} valid against the {s.format.upper()} XSD in {args.validate}")
    for problem in s.problems:
        print(f"  invalid: {problem}", file=sys.stderr)
    return 1 if s.invalid else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from sparkhtr.evaluation import evaluate_tables, format_page_report

    spark = _session(args)
    report = evaluate_tables(spark, args.tables, args.gt, normalize=args.normalize, model=args.model)
    if not report["ground_truth_pages"]:
        print(f"no ALTO / PAGE ground truth under {args.gt}", file=sys.stderr)
        return 2
    print(format_page_report(report, limit=args.limit))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkhtr", description="Spark-native handwritten text recognition")
    parser.add_argument("--version", action="version", version=f"sparkhtr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    rec = sub.add_parser("recognize", help="recognise files or folders into Delta tables (or line images to JSONL)")
    rec.add_argument("inputs", nargs="+", help="files or folders (any path Spark can read)")
    rec.add_argument("--out", required=True, help="tables folder (or JSONL file with --lines)")
    rec.add_argument("--lines", action="store_true", help="each image is one text line: no segmentation")
    rec.add_argument("--model", default=None, help="bundled model name or model folder (default: bundled default)")
    rec.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _add_decoder_option(rec)
    rec.add_argument("--glob", default=None, help="only files whose name matches this glob, e.g. '*.png'")
    rec.add_argument("--pdf-dpi", type=int, default=200)
    _add_segmenter_option(rec)
    rec.add_argument("--no-progress", action="store_true")
    rec.add_argument("--reprocess", action="store_true",
                     help="also redo files recognised by another model version or segmented another way "
                          "(their rows are replaced)")
    rec.add_argument("--retry-errors", action="store_true", help="also redo files recorded with errors")
    rec.add_argument("--files-per-commit", type=int, default=1000,
                     help="files recognised and committed together (bounds driver memory and lost work)")
    _add_spark_options(rec)
    rec.set_defaults(func=cmd_recognize)

    watch = sub.add_parser("watch", help="recognise files as they arrive (Structured Streaming) into Delta tables")
    watch.add_argument("input", help="folder or bucket prefix to watch")
    watch.add_argument("--out", required=True, help="tables folder")
    watch.add_argument("--checkpoint", default=None, help="checkpoint folder (default OUT/_checkpoints/watch-<hash>)")
    watch.add_argument("--max-files-per-trigger", type=int, default=100)
    watch.add_argument("--interval", type=float, default=10.0, help="seconds between micro-batches")
    watch.add_argument("--once", action="store_true", help="process the files there now, then stop (availableNow)")
    watch.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    watch.add_argument("--model", default=None)
    watch.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _add_decoder_option(watch)
    watch.add_argument("--glob", default=None)
    watch.add_argument("--pdf-dpi", type=int, default=200)
    _add_segmenter_option(watch)
    _add_spark_options(watch)
    watch.set_defaults(func=cmd_watch)

    sql = sub.add_parser("sql", help="run Spark SQL over the pages, lines and runs tables")
    sql.add_argument("--tables", required=True, help="tables folder written by `recognize`")
    sql.add_argument("query")
    sql.add_argument("--catalog-schema", default=None,
                     help="with the Delta jar: register catalog tables <schema>.pages/lines/runs, not temp views")
    sql.add_argument("--format", choices=["table", "vertical", "json"], default="table")
    sql.add_argument("--limit", type=int, default=50)
    sql.add_argument("--truncate", type=int, default=80)
    _add_spark_options(sql)
    sql.set_defaults(func=cmd_sql)

    ev = sub.add_parser("eval-lines", help="CER/WER of a model on labelled line images (Parquet)")
    ev.add_argument("files", nargs="*", help="Parquet files with text and image columns (instead of --data)")
    ev.add_argument("--data", default="../shared/data", help="data folder with lines/<split>/*.parquet")
    ev.add_argument("--split", default="val")
    ev.add_argument("--model", default=None)
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _add_decoder_option(ev)
    ev.add_argument("--beam-width", type=int, default=0,
                    help="beams of the beam-search decoder (0 = as the model's manifest says)")
    ev.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all cores)")
    ev.add_argument("--limit", type=int, default=None, help="lines per file")
    ev.add_argument("--json", default=None, help="also write the report as JSON here")
    ev.add_argument("--predictions", default=None, metavar="JSONL",
                    help="write one JSON object per line here: dataset, index, reference, text, confidence, cer")
    ev.set_defaults(func=cmd_eval_lines)

    exp = sub.add_parser("export", help="write one ALTO, PAGE XML or text file per recognised page")
    exp.add_argument("--tables", required=True, help="tables folder written by `recognize`")
    exp.add_argument("--format", choices=["alto", "page", "txt"], default="alto")
    exp.add_argument("--out", required=True, help="local output folder")
    exp.add_argument("--validate", default=None, metavar="SCHEMAS_DIR",
                     help="validate each XML file against the XSDs in this folder (e.g. ../shared/schemas)")
    _add_spark_options(exp)
    exp.set_defaults(func=cmd_export)

    gt = sub.add_parser("eval", help="CER/WER of recognised pages against ALTO / PAGE ground truth")
    gt.add_argument("--tables", required=True, help="tables folder written by `recognize`")
    gt.add_argument("--gt", required=True, help="folder of ALTO / PAGE XML files (searched recursively)")
    gt.add_argument("--normalize", choices=["basic", "alphabet"], default="basic",
                    help="basic: NFC, whitespace folded; alphabet: also drop what --model cannot emit")
    gt.add_argument("--model", default=None, help="model whose alphabet --normalize alphabet uses")
    gt.add_argument("--limit", type=int, default=50, help="page rows printed (all in --json)")
    gt.add_argument("--json", default=None, help="also write the report as JSON here")
    _add_spark_options(gt)
    gt.set_defaults(func=cmd_eval)

    models = sub.add_parser("models", help="list bundled models")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sparkhtr`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SparkHtrError as exc:
        print(f"sparkhtr: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
