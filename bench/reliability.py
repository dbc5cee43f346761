"""Reliability of the tables: reruns, killed drivers, failed tasks and restarted streams.

    python bench/reliability.py --pages 200 --out bench/results/reliability.json

On generated pages (``sparkhtr.synth.samples``, cached in ``.cache/bench-pages``):

* **rerun**: the same input twice; rows before and after, and the time of the second
  run against the first.
* **faults**: ``sparkhtr recognize`` in a subprocess, SIGKILLed (driver, JVM and
  workers) right after a ``lines`` commit, before its ``pages`` commit (the window
  where a file's rows are half written), then at a random moment; a task that
  raises and a Python worker that dies (``os._exit``) in-process; each followed by
  a rerun. Then every input file must have its pages, exactly one row per key, and
  every ok page exactly ``n_lines`` lines.
* **stream**: files keep arriving while ``watch`` runs, is stopped, and is restarted;
  files in against pages in the table.

Every check compares the tables with the input files themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_pages(n_pages: int, cache: Path) -> Path:
    """``n_pages`` generated pages (PNG, JPEG, TIFF, PDF) in ``cache/pages``, rendered once."""
    from sparkhtr.synth.samples import make_samples

    pages = cache / "pages"
    if not (pages.is_dir() and len(list(pages.iterdir())) >= n_pages - 1):
        shutil.rmtree(cache, ignore_errors=True)
        make_samples(ROOT / "fonts", cache, n_pages=n_pages, seed=7)
    return pages


def check_tables(spark, out: Path, inputs: Path) -> dict:
    """Compare the tables with the input folder: missing files, duplicate keys, pages whose lines disagree."""
    from pyspark.sql import functions as F

    from sparkhtr.io.delta import read_delta, table_exists

    names = {p.name for p in inputs.iterdir()}
    if not table_exists(str(out / "pages"), spark):
        return {"input_files": len(names), "files_in_pages": 0, "missing_files": len(names)}
    pages, lines = read_delta(spark, str(out / "pages")), read_delta(spark, str(out / "lines"))
    in_table = {r[0].rsplit("/", 1)[-1] for r in pages.select("path").distinct().collect()}
    per_page = lines.groupBy("path", "page").agg(F.count("*").alias("found"))
    mismatched = (
        pages.where("status = 'ok'").join(per_page, ["path", "page"], "left")
        .where(F.coalesce(F.col("found"), F.lit(0)) != F.col("n_lines")).count()
    )
    return {
        "input_files": len(names),
        "files_in_pages": len(in_table & names),
        "missing_files": len(names - in_table),
        "pages_rows": pages.count(),
        "lines_rows": lines.count(),
        "duplicate_page_keys": pages.groupBy("path", "page").count().where("count > 1").count(),
        "duplicate_line_keys": lines.groupBy("path", "page", "line").count().where("count > 1").count(),
        "pages_with_wrong_line_count": mismatched,
        "error_pages": pages.where("status = 'error'").count(),
    }


def bench_rerun(spark, inputs: Path, work: Path) -> dict:
    from sparkhtr.runner import recognize_to_tables

    out = work / "rerun"
    shutil.rmtree(out, ignore_errors=True)
    first = recognize_to_tables(spark, [str(inputs)], str(out))
    before = check_tables(spark, out, inputs)
    second = recognize_to_tables(spark, [str(inputs)], str(out))
    after = check_tables(spark, out, inputs)
    return {
        "first": {"files": first.files, "pages": first.pages, "lines": first.lines, "seconds": first.seconds},
        "second": {"files": second.files, "skipped": second.files_skipped, "pages": second.pages,
                   "seconds": second.seconds},
        "second_over_first": second.seconds / first.seconds,
        "tables_before": before, "tables_after": after,
    }


def _versions(table: Path) -> int:
    log = table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


def _run_cli(inputs: Path, out: Path, files_per_commit: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sparkhtr.cli", "recognize", str(inputs), "--out", str(out), "--no-progress",
           "--files-per-commit", str(files_per_commit)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kill_after_commits(inputs: Path, out: Path, files_per_commit: int, commits: int, delay: float = 0.0,
                       timeout: float = 900) -> dict:
    """SIGKILL the whole driver process group ``delay`` s after ``commits`` new ``lines`` commits.

    With ``delay=0`` the kill lands between a batch's ``lines`` commit and its ``pages``
    commit (the window where a file's rows are half written); a random delay lands
    anywhere in the next batch (recognising, merging, committing).
    """
    proc = _run_cli(inputs, out, files_per_commit)
    lines_before = _versions(out / "lines")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if _versions(out / "lines") >= lines_before + commits:
            time.sleep(delay)
            finished = proc.poll() is not None
            if not finished:
                _kill(proc)
            return {"killed": not finished, "after_lines_commits": commits, "delay_seconds": round(delay, 2),
                    "lines_versions": _versions(out / "lines"), "pages_versions": _versions(out / "pages")}
        time.sleep(0.01)
    if proc.poll() is None:
        _kill(proc)
    return {"killed": False, "exit": proc.returncode}


def bench_faults(spark, inputs: Path, work: Path, files_per_commit: int) -> dict:
    import sparkhtr.runner as runner
    from sparkhtr.io.delta import read_delta
    from sparkhtr.runner import recognize_to_tables
    from tests.helpers.faults import ExitOnPath, FailOnPath, with_first_stage

    out = work / "faults"
    shutil.rmtree(out, ignore_errors=True)
    report: dict = {"files_per_commit": files_per_commit, "events": []}
    report["events"].append({"fault": "driver SIGKILL between a lines and a pages commit",
                             **kill_after_commits(inputs, out, files_per_commit, commits=1)})
    report["events"].append({"fault": "driver SIGKILL between a lines and a pages commit (second run)",
                             **kill_after_commits(inputs, out, files_per_commit, commits=2)})
    report["events"].append({"fault": "driver SIGKILL at a random moment of a batch",
                             **kill_after_commits(inputs, out, files_per_commit, commits=1,
                                                  delay=random.Random(3).uniform(0.5, 8.0))})
    report["after_kills"] = check_tables(spark, out, inputs)

    original = runner.default_pipeline
    names = sorted(p.name for p in inputs.iterdir())
    for fault, stage in (("task raises", FailOnPath(names[len(names) // 2])),
                         ("Python worker killed (os._exit)", ExitOnPath(names[-1]))):
        runner.default_pipeline = with_first_stage(original, stage)
        try:
            recognize_to_tables(spark, [str(inputs)], str(out), files_per_commit=files_per_commit)
            outcome = "run succeeded (fault not reached: its file was already done)"
        except Exception as exc:
            outcome = f"run failed as injected: {type(exc).__name__}"
        finally:
            runner.default_pipeline = original
        report["events"].append({"fault": fault, "outcome": outcome})
    final = recognize_to_tables(spark, [str(inputs)], str(out), files_per_commit=files_per_commit)
    report["final_rerun"] = {"files": final.files, "skipped": final.files_skipped, "processed": final.files_processed}
    report["tables"] = check_tables(spark, out, inputs)
    report["runs"] = [r.asDict() for r in read_delta(spark, str(out / "runs")).select(
        "run_id", "status", "files", "files_skipped", "pages", "errors").orderBy("started_at").collect()]
    return report


def bench_stream(spark, inputs: Path, work: Path, seconds: float) -> dict:
    from sparkhtr.watch import finish_watch, watch_to_tables

    incoming, out = work / "incoming", work / "stream"
    for folder in (incoming, out):
        shutil.rmtree(folder, ignore_errors=True)
    incoming.mkdir(parents=True)
    sources = sorted(inputs.iterdir())
    stop = threading.Event()
    copied: list[str] = []

    def feed() -> None:
        for src in sources:
            if stop.wait(seconds / len(sources) * 2.5):
                return
            tmp = incoming / f".{src.name}.tmp"  # hidden while written, then renamed: never read half-copied
            shutil.copyfile(src, tmp)
            tmp.rename(incoming / src.name)
            copied.append(src.name)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    watches = []
    checkpoint = work / "stream-checkpoint"
    shutil.rmtree(checkpoint, ignore_errors=True)
    for _ in range(2):  # run, stop while files keep arriving, restart
        query = watch_to_tables(spark, str(incoming), str(out), checkpoint=str(checkpoint), interval_seconds=3,
                                max_files_per_trigger=10)
        query.awaitTermination(seconds / 2)
        summary = finish_watch(query)
        watches.append({"new_files": summary.files, "pages": summary.pages, "status": summary.status})
        time.sleep(5)
    stop.set()
    feeder.join()
    query = watch_to_tables(spark, str(incoming), str(out), checkpoint=str(checkpoint), available_now=True,
                            max_files_per_trigger=10)
    query.awaitTermination()
    summary = finish_watch(query)
    watches.append({"new_files": summary.files, "pages": summary.pages, "status": summary.status, "drain": True})
    tables = check_tables(spark, out, incoming)
    return {"files_arrived": len(copied), "watches": watches, "tables": tables}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--fault-files", type=int, default=40, help="files used in the fault runs")
    parser.add_argument("--stream-seconds", type=float, default=60)
    parser.add_argument("--parts", default="rerun,faults,stream")
    parser.add_argument("--work", default=str(ROOT / ".cache" / "bench-reliability"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reliability.json"))
    args = parser.parse_args()

    from sparkhtr.spark.session import get_or_create_session

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pages = make_pages(args.pages, ROOT / ".cache" / f"bench-pages-{args.pages}")
    subset = work / "fault-inputs"
    shutil.rmtree(subset, ignore_errors=True)
    subset.mkdir()
    for src in sorted(pages.iterdir())[: args.fault_files]:
        shutil.copyfile(src, subset / src.name)
    spark = get_or_create_session(master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    out_file = Path(args.out)
    # Parts run separately update one report.
    report: dict = json.loads(out_file.read_text()) if out_file.exists() else {}
    report.update({"pages": args.pages, "cores": os.cpu_count()})
    parts = args.parts.split(",")
    if "rerun" in parts:
        report["rerun"] = bench_rerun(spark, pages, work)
        print(json.dumps(report["rerun"], indent=1))
    if "faults" in parts:
        report["faults"] = bench_faults(spark, subset, work, files_per_commit=4)
        print(json.dumps(report["faults"], indent=1, default=str))
    if "stream" in parts:
        report["stream"] = bench_stream(spark, subset, work, args.stream_seconds)
        print(json.dumps(report["stream"], indent=1))
    out_file.write_text(json.dumps(report, indent=2, default=str))
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
