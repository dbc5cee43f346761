"""The benchmark helpers of sparkhtr.perf: /proc parsing, process trees, memory windows, tables."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from sparkhtr.perf import (
    MemorySampler,
    arrow_column_bytes,
    children_map,
    classify,
    descendants,
    markdown_table,
    parse_status,
    read_status,
    window_peaks,
)


def _fake_proc(root: Path, procs: dict[int, tuple[int, str, int, int]]) -> Path:
    """A /proc-like folder: pid → (ppid, cmdline, rss kB, hwm kB)."""
    for pid, (ppid, cmdline, rss, hwm) in procs.items():
        d = root / str(pid)
        d.mkdir(parents=True)
        d.joinpath("stat").write_text(f"{pid} (odd) name) S {ppid} 1 1 0 -1")
        d.joinpath("cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
        d.joinpath("status").write_text(f"Name:\tx\nPPid:\t{ppid}\nVmHWM:\t{hwm} kB\nVmRSS:\t{rss} kB\n")
    (root / "self").mkdir(exist_ok=True)
    return root


def test_parse_status_and_read_status(tmp_path):
    assert parse_status("VmRSS:\t 10 kB\nPPid:\t3\n") == {"VmRSS": 10240, "PPid": 3}
    assert read_status(999999, tmp_path) == {}
    mine = read_status(os.getpid())
    assert mine["VmRSS"] > 0 and mine["VmHWM"] >= mine["VmRSS"] and mine["PPid"] == os.getppid()


def test_classify():
    assert classify("/usr/lib/jvm/java-17/bin/java -cp x SparkSubmit") == "jvm"
    assert classify("python -m pyspark.daemon pyspark.worker") == "python-worker"
    assert classify("bash -c java") is None


def test_tree_and_sampler_on_a_fake_proc(tmp_path):
    proc = _fake_proc(tmp_path, {
        10: (1, "python bench.py", 100, 100),
        11: (10, "/usr/bin/java -cp spark", 2000, 2500),
        12: (11, "python -m pyspark.daemon", 50, 60),
        13: (12, "python -m pyspark.daemon", 300, 900),
        14: (12, "python -m pyspark.daemon", 200, 250),
        15: (11, "sleep 100", 5, 5),
        20: (1, "python -m pyspark.daemon", 7000, 7000),  # not ours
    })
    tree = children_map(proc)
    assert sorted(descendants(10, tree)) == [11, 12, 13, 14, 15]
    done = [0.0]
    sampler = MemorySampler(root=10, proc=proc, progress=lambda: done[0])
    sampler.sample()
    done[0] = 5
    sampler.sample()
    summary = sampler.summary()
    assert summary["workers"] == 2 and summary["worker_peaks_mib"] == [round(900 / 1024, 1), round(250 / 1024, 1)]
    assert summary["jvm_peak_mib"] == 2500 / 1024 and summary["daemon_peak_mib"] == 60 / 1024
    assert sampler.samples[-1][1:] == (2000 * 1024, 300 * 1024, 5)
    assert [p.pid for p in sampler.daemons()] == [12]


def test_window_peaks_and_table():
    samples = [(0.0, 1, 2, 0.0), (1.0, 5, 1, 10.0), (2.0, 3, 9, 20.0)]
    assert window_peaks(samples, 10) == (5, 2)
    assert window_peaks([], 10) == (0, 0)
    table = markdown_table(["a", "b"], [["x", 1.26], ["y", 3]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x | 1.3 |", "| y | 3 |"]


def test_arrow_column_bytes_counts_nested_crops():
    crops = pa.array([[{"data": b"x" * 1000}], [{"data": b"y" * 500}, {"data": b"z" * 500}]])
    sizes = arrow_column_bytes(pa.record_batch({"lines": crops, "n": pa.array([1, 2], pa.int32())}))
    assert sizes["lines"] >= 2000 and sizes["n"] == 8
