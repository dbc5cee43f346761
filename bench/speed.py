"""Issue-5 speed measurements on CPU executors, in one run on the same inputs; prints ratios.

    python bench/speed.py --data ../shared/data --json bench/results/speed.json --md bench/results/speed.md

Sections (``--sections``, default all):

recognizer
    a. The recogniser's limit: raw onnxruntime on a fixed set of line crops (the val
       lines of ``--data``, else generated lines), batch policies swept with 2 intra-op
       threads, the best one re-measured on all crops (also 1 thread, and 2 processes
       × 1 thread); then ``HandwrittenTextRecognizer`` in ``local[2]`` Spark on the same
       crops (page rows of lines, cached, written to the ``noop`` sink) → the ratio.
       Session loads are read back from the Python workers through the recogniser's
       accumulator (:meth:`HandwrittenTextRecognizer.workerMetrics`).
tesseract
    d. Tesseract (``--psm 7``) on a subset of the same crops, two processes with one
       thread each, as a reference.
e2e
    b. Pages/min from binary files to Delta (``recognize_to_tables``) on the real pages
       of ``--data`` (else generated pages); then the same pages stage by stage, each
       stage's output persisted and counted before the next (2-core wall time per
       stage, write included), and the Arrow bytes per page each stage hands on.
memory
    c. Peak RSS of the JVM and of each Python worker (``/proc/<pid>/status``, sampled
       every 0.25 s, plus the kernel's ``VmHWM``) over a 100-page run and then a
       1,000-page run of small generated pages (a few lines each; 40 distinct pages
       copied under 1,000 names). Runs in a child process, so its JVM is fresh.

For final figures the machine must be quiet: ``bench/run_speed.sh`` waits for other
benchmarks, pauses the training process and always resumes it.
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparkhtr.core.baselines import DEFAULT_SEGMENTER, SEGMENTERS
from sparkhtr.core.recognize import DECODERS, BatchPolicy, LineRecognizer, RecognizerStats
from sparkhtr.perf import MemorySampler, arrow_column_bytes, markdown_table, window_peaks
from sparkhtr.registry import resolve_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = ("recognizer", "tesseract", "e2e", "memory")
# (max_lines, max_pixels) swept with 2 intra-op threads; pixels count at the model's 48 px height
PREVIOUS_DEFAULT = BatchPolicy(max_lines=64, max_pixels=64 * 48 * 1024)
SWEEP = [(2, 2 * 48 * 1024), (4, 4 * 48 * 1024), (8, 8 * 48 * 1024), (16, 8 * 48 * 1024), (16, 16 * 48 * 1024),
         (32, 32 * 48 * 1024), (64, 64 * 48 * 1024), (128, 128 * 48 * 1024)]


@dataclass
class LineSet:
    """Line crops (uint8, paper light) and the page each belongs to."""

    crops: list[np.ndarray]
    pages: list[str]
    source: str


def load_lines(data: Path, per_dataset: int | None, fonts: Path, generated: int = 600) -> LineSet:
    """The val lines of ``data`` (all, or ``per_dataset`` from each file), else generated lines."""
    files = sorted((data / "lines" / "val").glob("*.parquet"))
    if files:
        import pyarrow.parquet as pq
        from PIL import Image

        crops, pages = [], []
        for path in files:
            table = pq.read_table(path, columns=["dataset", "page", "image"])
            if per_dataset:
                table = table.slice(0, per_dataset)
            rows = table.to_pydict()
            crops += [np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in rows["image"]]
            pages += [f"{d}/{p}" for d, p in zip(rows["dataset"], rows["page"], strict=True)]
        return LineSet(crops, pages, f"{len(crops)} val lines of {data / 'lines' / 'val'}")
    from sparkhtr.synth.fonts import fonts_for_text, list_fonts
    from sparkhtr.synth.render import render_line
    from sparkhtr.synth.text import random_paragraph

    rng = random.Random(0)
    usable = list_fonts(fonts)
    crops, pages = [], []
    while len(crops) < (per_dataset * 4 if per_dataset else generated):
        page = f"generated/{len(crops) // 20:03d}"
        for text in random_paragraph(rng, 20, rng.choice(("en", "fr"))):
            candidates = fonts_for_text(usable, text)
            if candidates:
                crops.append(render_line(text, rng.choice(candidates), rng))
                pages.append(page)
    return LineSet(crops, pages, f"{len(crops)} generated lines (no {data}/lines/val)")


# ---------------------------------------------------------------- a. recogniser limit

DEVICE = ["cpu"]  # --device: cpu here; cuda on a GPU node (not measured in this project yet)
DECODER = ["auto"]  # --decoder: every section recognises with it (raw and Spark alike)
SEGMENTER = [DEFAULT_SEGMENTER]  # --segmenter: the page sections segment with it


def time_raw(crops: list[np.ndarray], threads: int, policy: BatchPolicy, repeats: int = 1) -> dict[str, Any]:
    """Lines/s of :meth:`LineRecognizer.recognize` over ``crops`` in this process (best of ``repeats``)."""
    recognizer = LineRecognizer(resolve_model(), device=DEVICE[0], threads=threads, policy=policy,
                                decoder=DECODER[0])
    recognizer.recognize(crops[:16])  # warm-up: allocations, first shapes
    best, stats = float("inf"), RecognizerStats()
    for _ in range(repeats):
        recognizer.stats = RecognizerStats()
        start = time.perf_counter()
        recognizer.recognize(crops)
        seconds = time.perf_counter() - start
        if seconds < best:
            best, stats = seconds, recognizer.stats
    return {"threads": threads, "max_lines": policy.max_lines, "max_pixels": policy.max_pixels,
            "lines": len(crops), "seconds": best, "lines_per_second": len(crops) / best,
            "batches": stats.batches, "padding": stats.padding,
            "infer_share": stats.infer_seconds / best, "prepare_share": stats.prepare_seconds / best}


def _raw_child(args: tuple[list[np.ndarray], BatchPolicy, Any]) -> tuple[float, float, int]:
    crops, policy, barrier = args
    recognizer = LineRecognizer(resolve_model(), device="cpu", threads=1, policy=policy, decoder=DECODER[0])
    recognizer.recognize(crops[:16])
    barrier.wait()
    start = time.time()
    recognizer.recognize(crops)
    return start, time.time(), len(crops)


def time_raw_processes(crops: list[np.ndarray], policy: BatchPolicy, processes: int = 2) -> dict[str, Any]:
    """Lines/s of ``processes`` processes × 1 onnxruntime thread, each on every n-th crop by width."""
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
    shares = [[crops[i] for i in order[k::processes]] for k in range(processes)]
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        with ctx.Pool(processes) as pool:
            results = pool.map(_raw_child, [(s, policy, barrier) for s in shares])
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    return {"processes": processes, "threads": 1, "lines": len(crops), "seconds": wall,
            "lines_per_second": len(crops) / wall}


def pages_frame(spark: Any, lines: LineSet, partitions: int) -> Any:
    """A DataFrame of page rows the recogniser accepts (``lines`` array with crops, ``status``, ``error``)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    from sparkhtr.spark.base import image_to_struct
    from sparkhtr.spark.schemas import LINES

    schema = StructType([StructField("path", StringType()), StructField("page", IntegerType()),
                         StructField("status", StringType()), StructField("error", StringType()),
                         StructField("lines", LINES)])
    grouped: dict[str, list[np.ndarray]] = {}
    for crop, page in zip(lines.crops, lines.pages, strict=True):
        grouped.setdefault(page, []).append(crop)
    rows: dict[str, list[Any]] = {"path": [], "page": [], "status": [], "error": [], "lines": []}
    for page, crops in grouped.items():
        rows["path"].append(page)
        rows["page"].append(1)
        rows["status"].append("ok")
        rows["error"].append(None)
        rows["lines"].append([{"line": k, "bbox": {"x0": 0, "y0": 0, "x1": c.shape[1], "y1": c.shape[0]},
                               "polygon": [], "baseline": [], "crop": image_to_struct(c), "text": None,
                               "confidence": None} for k, c in enumerate(crops, start=1)])
    table = pa.Table.from_pydict(rows, schema=to_arrow_schema(schema))
    return spark.createDataFrame(table, schema=schema).repartition(partitions)


def spark_recognizer(spark: Any, lines: LineSet, policy: BatchPolicy | None, partitions: int,
                     repeats: int) -> dict[str, Any]:
    """Lines/s of ``HandwrittenTextRecognizer`` over the cached page rows, cold and warm, with worker metrics."""
    from pyspark import StorageLevel

    from sparkhtr.spark.recognizer import HandwrittenTextRecognizer, summarize_metrics

    pages = pages_frame(spark, lines, partitions).persist(StorageLevel.MEMORY_ONLY)
    n_pages = pages.count()
    kwargs = {"batchLines": policy.max_lines, "batchPixels": policy.max_pixels} if policy else {}
    stage = HandwrittenTextRecognizer.pretrained(device=DEVICE[0], decoder=DECODER[0], **kwargs)
    out = stage.transform(pages)
    runs = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        out.write.format("noop").mode("overwrite").save()
        runs.append(time.perf_counter() - start)
    metrics = stage.workerMetrics()
    total = summarize_metrics(metrics)
    warm = min(runs[1:]) if len(runs) > 1 else runs[0]
    pages.unpersist()
    cores = spark.sparkContext.defaultParallelism
    return {
        "pages": n_pages, "lines": len(lines.crops), "partitions": partitions, "cold_seconds": runs[0],
        "warm_seconds": warm, "runs_seconds": runs, "lines_per_second": len(lines.crops) / warm,
        "cold_lines_per_second": len(lines.crops) / runs[0], "workers": total,
        "per_worker": {str(k): v for k, v in metrics.items()},
        # share of the 2 cores' wall time spent inside the recogniser's Arrow function
        "udf_core_share": total["udf_seconds"] / (sum(runs) * cores) if runs else 0.0,
        "inference_core_share": total["infer_seconds"] / (sum(runs) * cores) if runs else 0.0,
    }


def section_recognizer(spark_factory: Any, lines: LineSet, sweep_lines: int, partitions: int) -> dict[str, Any]:
    step = max(1, len(lines.crops) // sweep_lines)
    subset = lines.crops[::step]
    sweep = []
    for max_lines, max_pixels in SWEEP:
        row = time_raw(subset, 2, BatchPolicy(max_lines=max_lines, max_pixels=max_pixels), repeats=2)
        sweep.append(row)
        print(f"  sweep 2 threads, {max_lines:>3} lines / {max_pixels / 1e6:.1f} Mpx: "
              f"{row['lines_per_second']:.1f} lines/s (padding {100 * row['padding']:.1f} %)", flush=True)
    best = max(sweep, key=lambda r: r["lines_per_second"])
    policy = BatchPolicy(max_lines=best["max_lines"], max_pixels=best["max_pixels"])
    default = BatchPolicy.for_device("cpu")
    limit = time_raw(lines.crops, 2, policy, repeats=2)
    print(f"  raw limit, 2 threads, all {len(lines.crops)} lines: {limit['lines_per_second']:.1f} lines/s", flush=True)
    one = time_raw(lines.crops, 1, policy)
    procs = time_raw_processes(lines.crops, policy, 2)
    print(f"  raw 1 thread: {one['lines_per_second']:.1f}; 2 processes × 1 thread: "
          f"{procs['lines_per_second']:.1f} lines/s", flush=True)
    spark = spark_factory()
    in_spark = spark_recognizer(spark, lines, policy, partitions, repeats=2)
    in_spark_default = spark_recognizer(spark, lines, None, partitions, repeats=1) if policy != default else None
    # before/after of the CPU default: it was 64 lines / 3.1 Mpx until the sweep showed small batches win
    in_spark_previous = spark_recognizer(spark, lines, PREVIOUS_DEFAULT, partitions, repeats=1)
    print(f"  Spark with the previous default batches (64 lines / 3.1 Mpx): "
          f"{in_spark_previous['lines_per_second']:.1f} lines/s", flush=True)
    # the machine is shared: measure the limit again after the Spark runs and keep the best
    again = time_raw(lines.crops, 2, policy)
    if again["lines_per_second"] > limit["lines_per_second"]:
        limit = again
    print(f"  raw limit after the Spark runs: {again['lines_per_second']:.1f} lines/s", flush=True)
    print(f"  Spark local[2]: {in_spark['lines_per_second']:.1f} lines/s warm "
          f"({in_spark['cold_lines_per_second']:.1f} cold); sessions loaded: "
          f"{in_spark['workers']['session_loads']} in {in_spark['workers']['processes']} worker processes for "
          f"{in_spark['workers']['arrow_batches']} Arrow batches / {in_spark['workers']['batches']} inference batches",
          flush=True)
    return {"source": lines.source, "sweep": sweep, "best_policy": {"max_lines": policy.max_lines,
                                                                      "max_pixels": policy.max_pixels},
            "raw_limit": limit, "raw_one_thread": one, "raw_two_processes": procs, "spark": in_spark,
            "spark_default_policy": in_spark_default, "spark_previous_default_policy": in_spark_previous,
            "ratio": in_spark["lines_per_second"] / limit["lines_per_second"],
            "ratio_vs_two_processes": in_spark["lines_per_second"] / procs["lines_per_second"]}


# ---------------------------------------------------------------- d. Tesseract

def _tesseract_share(args: tuple[list[str], str]) -> tuple[float, float]:
    paths, listing = args
    Path(listing).write_text("\n".join(paths) + "\n")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    start = time.time()
    subprocess.run(["tesseract", listing, "stdout", "--psm", "7", "-l", "eng+fra"], capture_output=True, env=env,
                   check=True)
    return start, time.time()


def section_tesseract(lines: LineSet, n: int, policy: BatchPolicy, processes: int = 2) -> dict[str, Any] | None:
    if shutil.which("tesseract") is None:
        return None
    from concurrent.futures import ThreadPoolExecutor

    from tesseract_lines import write_pngs  # bench/ is on sys.path when run as a script

    step = max(1, len(lines.crops) // n)
    crops = lines.crops[::step][:n]
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(crops, tmp)
        jobs = [(paths[k::processes], str(Path(tmp) / f"list{k}.txt")) for k in range(processes)]
        with ThreadPoolExecutor(processes) as pool:
            spans = list(pool.map(_tesseract_share, jobs))
    wall = max(s[1] for s in spans) - min(s[0] for s in spans)
    ours = time_raw(crops, 2, policy, repeats=2)
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"  Tesseract ({processes} processes × 1 thread) on {len(crops)} lines: {len(crops) / wall:.1f} lines/s; "
          f"sparkhtr on the same lines: {ours['lines_per_second']:.1f}", flush=True)
    return {"version": version, "lines": len(crops), "processes": processes, "seconds": wall,
            "lines_per_second": len(crops) / wall, "sparkhtr_lines_per_second": ours["lines_per_second"]}


# ---------------------------------------------------------------- b. end to end

def arrow_bytes(df: Any) -> dict[str, int]:
    """Bytes per column of the Arrow batches that a ``mapInArrow`` over ``df`` receives, plus ``_rows``."""
    import pyarrow as pa

    sc = df.sparkSession.sparkContext
    from sparkhtr.spark.recognizer import WorkerMetrics

    acc = sc.accumulator({}, WorkerMetrics())

    def count(batches: Any) -> Any:
        for batch in batches:
            sizes = arrow_column_bytes(batch)
            sizes["_rows"] = batch.num_rows
            acc.add({0: sizes})
        yield pa.RecordBatch.from_pydict({"n": pa.array([0], pa.int64())})

    df.mapInArrow(count, "n long").write.format("noop").mode("overwrite").save()
    return dict(acc.value.get(0, {}))


def generated_pages(out: Path, n_pages: int) -> Path:
    from sparkhtr.synth.samples import make_samples

    make_samples(ROOT / "fonts", out, n_pages)
    return out / "pages"


def section_e2e(spark: Any, data: Path, n_generated: int) -> dict[str, Any]:
    from pyspark import StorageLevel
    from pyspark.ml import PipelineModel

    from sparkhtr.runner import recognize_to_tables, write_batch
    from sparkhtr.spark.binary_to_image import BinaryToImage
    from sparkhtr.spark.files import read_binary_files
    from sparkhtr.spark.image_preprocessor import ImagePreprocessor
    from sparkhtr.spark.line_segmenter import LineSegmenter
    from sparkhtr.spark.recognizer import HandwrittenTextRecognizer, summarize_metrics

    tmp = Path(tempfile.mkdtemp(prefix="sparkhtr-speed-"))
    pages_dir, glob = data / "pages", "*.jpg"
    if not pages_dir.is_dir():
        pages_dir, glob = generated_pages(tmp / "generated", n_generated), None
    # twice: the first run also starts the Python workers of the chained stages (about 5 per task)
    first = recognize_to_tables(spark, [str(pages_dir)], str(tmp / "pipelined-1"), glob=glob, decoder=DECODER[0],
                                segmenter=SEGMENTER[0])
    summary = recognize_to_tables(spark, [str(pages_dir)], str(tmp / "pipelined-2"), glob=glob,
                                  decoder=DECODER[0], segmenter=SEGMENTER[0])
    print(f"  end to end: {summary.pages} pages, {summary.lines} lines in {summary.seconds:.1f} s: "
          f"{summary.pages_per_minute:.1f} pages/min (first run {first.pages_per_minute:.1f})", flush=True)

    # Stage times: cumulative jobs over the same files without caching (decode; decode+preprocess;
    # ... ; the full pipeline), each read from disk and executed as in production, the stage's
    # time being the difference between consecutive jobs. Every job ends in one Arrow pass that
    # counts the bytes the next stage would receive. Then the write, from the cached result.
    files = read_binary_files(spark, [str(pages_dir)], glob)
    stages = [("decode", BinaryToImage()), ("preprocess", ImagePreprocessor()),
              ("segment", LineSegmenter(method=SEGMENTER[0])),
              ("recognize", HandwrittenTextRecognizer.pretrained(decoder=DECODER[0]))]
    cumulative: dict[str, float] = {}
    sizes: dict[str, dict[str, int]] = {}
    start = time.perf_counter()
    sizes["files"] = arrow_bytes(files)
    cumulative["files"] = time.perf_counter() - start
    frame = files
    for name, stage in stages:
        frame = stage.transform(frame)
        if name == "recognize":
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)  # small: no crops, no pixels
        start = time.perf_counter()
        sizes[name] = arrow_bytes(frame)
        cumulative[name] = time.perf_counter() - start
    names = [name for name, _ in stages]
    seconds = {"decode": cumulative["decode"]}  # reading the files included
    for before, name in itertools.pairwise(names):
        seconds[name] = cumulative[name] - cumulative[before]
    start = time.perf_counter()
    stats = write_batch(frame, str(tmp / "staged"), PipelineModel(stages=[]), run_id="speed-bench",
                        processed_at=datetime.datetime.now(datetime.timezone.utc))
    seconds["write"] = time.perf_counter() - start
    frame.unpersist()
    total = sum(seconds.values())
    pages = stats.pages
    per_page = {name: {"mb_per_page": sum(v for k, v in cols.items() if k != "_rows") / 2**20 / max(pages, 1),
                       "image_mb_per_page": cols.get("image", 0) / 2**20 / max(pages, 1),
                       "lines_mb_per_page": cols.get("lines", 0) / 2**20 / max(pages, 1),
                       "content_mb_per_page": cols.get("content", 0) / 2**20 / max(pages, 1),
                       "rows": cols.get("_rows", 0)} for name, cols in sizes.items()}
    light = seconds["decode"] + seconds["segment"] + seconds["write"]
    recognizer_workers = summarize_metrics(stages[-1][1].workerMetrics())
    shutil.rmtree(tmp, ignore_errors=True)
    return {"pages_dir": str(pages_dir), "pages": summary.pages, "lines": summary.lines,
            "errors": summary.errors, "seconds": summary.seconds, "pages_per_minute": summary.pages_per_minute,
            "first_run_seconds": first.seconds, "first_run_pages_per_minute": first.pages_per_minute,
            "lines_per_second": summary.lines_per_second, "staged_seconds": seconds,
            "cumulative_seconds": cumulative,
            "staged_share": {k: v / total for k, v in seconds.items()}, "staged_pages": pages,
            "decode_segment_write_share": light / total, "arrow_per_page": per_page,
            "staged_recognizer_workers": recognizer_workers}


# ---------------------------------------------------------------- c. memory

def small_pages(out: Path, total: int, distinct: int = 40, seed: int = 0) -> Path:
    """``total`` small PNG pages (3–6 lines, 900 px wide) under ``out``: ``distinct`` renders, copied."""
    from PIL import Image

    from sparkhtr.synth.fonts import fonts_for_text, list_fonts
    from sparkhtr.synth.render import render_page
    from sparkhtr.synth.text import random_paragraph

    rng = random.Random(seed)
    fonts = list_fonts(ROOT / "fonts")
    out.mkdir(parents=True, exist_ok=True)
    renders = []
    while len(renders) < distinct:
        text = random_paragraph(rng, rng.randint(3, 6), rng.choice(("en", "fr")), min_chars=20, max_chars=45)
        usable = fonts_for_text(fonts, "".join(text))
        if not usable:
            continue
        image, _ = render_page(text, rng.choice(usable), rng, width=900, height=640, grain=0.0)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG", optimize=True)
        renders.append(buffer.getvalue())
    for k in range(total):
        (out / f"page_{k:05d}.png").write_bytes(renders[k % distinct])
    return out


def jvm_heap_after_gc(spark: Any) -> dict[str, float]:
    """The driver JVM's heap after a full collection: what it holds on to, unlike its resident size.

    The resident size of a JVM grows while the heap expands towards ``-Xmx`` between
    collections, so a growing peak alone does not tell retained objects (a leak) from
    garbage not yet collected; the heap left after ``System.gc()`` does.
    """
    jvm = spark.sparkContext._jvm
    jvm.java.lang.System.gc()
    runtime = jvm.java.lang.Runtime.getRuntime()
    committed = runtime.totalMemory()
    return {"jvm_heap_used_after_gc_mib": (committed - runtime.freeMemory()) / 2**20,
            "jvm_heap_committed_mib": committed / 2**20}


def section_memory(n_small: int, n_large: int) -> dict[str, Any]:
    from sparkhtr.runner import recognize_to_tables
    from sparkhtr.spark.session import get_or_create_session

    tmp = Path(tempfile.mkdtemp(prefix="sparkhtr-memory-"))
    small = small_pages(tmp / "small", n_small)
    large = small_pages(tmp / "large", n_large)
    spark = get_or_create_session(master="local[2]")
    done = [0.0]
    offset = [0.0]

    def progress(p: Any) -> None:
        done[0] = offset[0] + p.pages

    sampler = MemorySampler(root=os.getpid(), interval=0.25, progress=lambda: done[0]).start()
    runs = {}
    for name, folder, n in (("small", small, n_small), ("large", large, n_large)):
        start = sampler.elapsed()
        summary = recognize_to_tables(spark, [str(folder)], str(tmp / f"out-{name}"), progress=progress,
                                      decoder=DECODER[0], segmenter=SEGMENTER[0])
        end = sampler.elapsed()
        window = [s for s in sampler.samples if start <= s[0] <= end]
        runs[name] = {"pages": summary.pages, "lines": summary.lines, "seconds": summary.seconds,
                      "pages_per_minute": summary.pages_per_minute,
                      "jvm_peak_mib": max((s[1] for s in window), default=0) / 2**20,
                      "worker_peak_mib": max((s[2] for s in window), default=0) / 2**20,
                      **jvm_heap_after_gc(spark)}
        print(f"  {n} pages: {summary.pages_per_minute:.1f} pages/min, JVM peak "
              f"{runs[name]['jvm_peak_mib']:.0f} MiB (heap {runs[name]['jvm_heap_used_after_gc_mib']:.0f} MiB "
              f"used after a full GC, {runs[name]['jvm_heap_committed_mib']:.0f} committed), largest Python worker "
              f"{runs[name]['worker_peak_mib']:.0f} MiB", flush=True)
        offset[0] += summary.pages
    sampler.stop()
    jvm_first, worker_first = window_peaks(sampler.samples, n_small + 0.1 * n_large)
    shutil.rmtree(tmp, ignore_errors=True)
    report = {"pages": "small generated pages (900×640, 3–6 lines; 40 distinct renders copied)",
              "runs": runs, "overall": sampler.summary(),
              "jvm_peak_first_10pct_of_large_mib": jvm_first / 2**20,
              "worker_peak_first_10pct_of_large_mib": worker_first / 2**20,
              "timeline": [(round(t, 1), round(j / 2**20), round(w / 2**20), p) for t, j, w, p in sampler.samples[::8]]}
    growth = runs["large"]["worker_peak_mib"] / max(runs["small"]["worker_peak_mib"], 1)
    report["worker_growth_small_to_large"] = growth
    report["jvm_growth_small_to_large"] = runs["large"]["jvm_peak_mib"] / max(runs["small"]["jvm_peak_mib"], 1)
    return report


# ---------------------------------------------------------------- report

def markdown(report: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    rec = report.get("recognizer")
    if rec:
        best = rec["best_policy"]
        rows += [
            ["recogniser limit: raw onnxruntime, 2 intra-op threads", f"{rec['raw_limit']['lines_per_second']:.1f} "
             f"lines/s (batches ≤ {best['max_lines']} lines / {best['max_pixels'] / 1e6:.1f} Mpx)"],
            ["raw, 2 processes × 1 thread", f"{rec['raw_two_processes']['lines_per_second']:.1f} lines/s"],
            ["HandwrittenTextRecognizer in local[2] Spark", f"{rec['spark']['lines_per_second']:.1f} lines/s warm, "
             f"{rec['spark']['cold_lines_per_second']:.1f} cold"],
            ["**ratio Spark / raw limit** (target ≥ 0.85)", f"**{rec['ratio']:.2f}** "
             f"({rec['ratio_vs_two_processes']:.2f} vs 2 processes × 1 thread)"],
            ["same, the default batches (≤ 8 lines / 0.4 Mpx)", "—" if not rec["spark_default_policy"] else
             f"{rec['spark_default_policy']['lines_per_second']:.1f} lines/s"],
            ["same, batches of 64 lines / 3.1 Mpx (the previous default)",
             f"{rec['spark_previous_default_policy']['lines_per_second']:.1f} lines/s"],
            ["model session loads in Spark", f"{rec['spark']['workers']['session_loads']} in "
             f"{rec['spark']['workers']['processes']} worker processes, for {rec['spark']['workers']['arrow_batches']}"
             f" Arrow batches / {rec['spark']['workers']['batches']} inference batches "
             f"({len(rec['spark']['runs_seconds'])} jobs)"],
        ]
    tess = report.get("tesseract")
    if tess:
        rows.append([f"Tesseract {tess['version'].split()[-1]}, {tess['lines']} of the same lines, "
                     f"{tess['processes']} processes", f"{tess['lines_per_second']:.1f} lines/s (sparkhtr raw: "
                     f"{tess['sparkhtr_lines_per_second']:.1f})"])
    e2e = report.get("e2e")
    if e2e:
        share = e2e["staged_share"]
        rows += [
            [f"end to end, {e2e['pages']} pages → Delta (`recognize_to_tables`)",
             f"{e2e['pages_per_minute']:.1f} pages/min, {e2e['lines_per_second']:.1f} lines/s ({e2e['seconds']:.1f} s;"
             f" first run of the session {e2e['first_run_pages_per_minute']:.1f} pages/min)"],
            ["stages alone (sum of the stage times below)", f"{sum(e2e['staged_seconds'].values()):.1f} s"],
            ["time per stage (2 cores; cumulative jobs, differences)", ", ".join(
                f"{k} {100 * v:.0f} %" for k, v in share.items())],
            ["**decode + segment + write share** (target < 0.5)", f"**{e2e['decode_segment_write_share']:.2f}**"],
            ["Arrow MB per page handed on by each stage", ", ".join(
                f"{k} {v['mb_per_page']:.2f}" for k, v in e2e["arrow_per_page"].items())],
            ["session loads, staged recognise stage", f"{e2e['staged_recognizer_workers']['session_loads']} in "
             f"{e2e['staged_recognizer_workers']['processes']} worker processes for "
             f"{e2e['staged_recognizer_workers']['arrow_batches']} Arrow batches"],
        ]
    mem = report.get("memory")
    if mem:
        runs = mem["runs"]
        # reports written before the heap was measured have no such figure: say nothing rather than 0
        heap = (f" (heap after a full GC {runs['small']['jvm_heap_used_after_gc_mib']:.0f} → "
                f"{runs['large']['jvm_heap_used_after_gc_mib']:.0f} MiB)"
                if "jvm_heap_used_after_gc_mib" in runs["large"] else "")
        rows += [
            [f"memory, {runs['small']['pages']} then {runs['large']['pages']} small pages",
             f"JVM peak {runs['small']['jvm_peak_mib']:.0f} → {runs['large']['jvm_peak_mib']:.0f} MiB{heap}; "
             f"largest Python worker {runs['small']['worker_peak_mib']:.0f} → {runs['large']['worker_peak_mib']:.0f}"
             f" MiB (target ≤ 1536, flat); {mem['overall']['workers']} workers"],
        ]
    return markdown_table(["what", "figure"], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SPARKHTR_DATA", "../shared/data"))
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--lines-per-dataset", type=int, default=None, help="limit the val lines (default: all)")
    p.add_argument("--sweep-lines", type=int, default=400, help="lines used for the batch-size sweep")
    p.add_argument("--partitions", type=int, default=8, help="partitions of the page rows in the Spark run")
    p.add_argument("--tesseract-lines", type=int, default=120)
    p.add_argument("--generated-pages", type=int, default=12, help="pages to generate when --data has none")
    p.add_argument("--memory-pages", default="100,1000", help="small then large page count of the memory runs")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--decoder", default="auto", choices=DECODERS,
                   help="CTC decoder of every section (auto: beam search with the bundled LM)")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, choices=SEGMENTERS,
                   help="segmenter of the page sections (the README's speed rows until session 19: classical)")
    p.add_argument("--conf", action="append", default=[], help="extra Spark conf key=value (before/after runs)")
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    args = p.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    DEVICE[0] = args.device
    DECODER[0] = args.decoder
    SEGMENTER[0] = args.segmenter
    data = Path(args.data)
    conf = dict(item.split("=", 1) for item in args.conf)
    report: dict[str, Any] = {"cores": os.cpu_count(), "device": args.device, "decoder": args.decoder,
                              "segmenter": args.segmenter, "conf": conf,
                              "command": "python " + " ".join(sys.argv)}
    n_small, n_large = (int(x) for x in args.memory_pages.split(","))

    if sections == ["memory"]:
        report["memory"] = section_memory(n_small, n_large)
        return finish(report, args)

    session: list[Any] = []

    def spark_factory() -> Any:
        if not session:
            from sparkhtr.spark.session import get_or_create_session

            session.append(get_or_create_session(master="local[2]", conf=conf))
        return session[0]

    lines = None
    if "recognizer" in sections or "tesseract" in sections:
        lines = load_lines(data, args.lines_per_dataset, ROOT / "fonts")
        print(f"inputs: {lines.source}", flush=True)
    if "recognizer" in sections:
        print("a. recogniser limit vs Spark", flush=True)
        report["recognizer"] = section_recognizer(spark_factory, lines, args.sweep_lines, args.partitions)
    if "tesseract" in sections and lines is not None:
        print("d. Tesseract", flush=True)
        best = report.get("recognizer", {}).get("best_policy")
        policy = BatchPolicy(**best) if best else BatchPolicy.for_device(args.device)
        report["tesseract"] = section_tesseract(lines, args.tesseract_lines, policy)
    if "e2e" in sections:
        print("b. end to end", flush=True)
        report["e2e"] = section_e2e(spark_factory(), data, args.generated_pages)
    if session:
        session[0].stop()
    if "memory" in sections:
        print("c. memory (child process)", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "memory.json"
            subprocess.run([sys.executable, __file__, "--sections", "memory", "--memory-pages", args.memory_pages,
                            "--json", str(out)], check=True)
            report["memory"] = json.loads(out.read_text())["memory"]
    return finish(report, args)


def finish(report: dict[str, Any], args: argparse.Namespace) -> int:
    table = markdown(report)
    print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(f"Command: `{report['command']}`\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
