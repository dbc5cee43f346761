"""Measurement helpers for the benchmarks: process memory from ``/proc``, Arrow bytes, Markdown tables.

Pure Python and Linux ``/proc``; no Spark import at module level.

>>> print(markdown_table(["what", "figure"], [["lines/s", 78.31]]))
| what | figure |
|---|---|
| lines/s | 78.3 |
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def read_status(pid: int, proc: Path = Path("/proc")) -> dict[str, int]:
    """``VmRSS``, ``VmHWM`` (peak RSS) and ``PPid`` of a process from ``/proc/<pid>/status``, in bytes / as ints.

    Returns ``{}`` for a process that has gone.
    """
    try:
        text = (proc / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return parse_status(text)


def parse_status(text: str) -> dict[str, int]:
    """The memory and parent fields of a ``/proc/<pid>/status`` text.

    >>> parse_status("Name:\\tjava\\nPPid:\\t12\\nVmHWM:\\t  2048 kB\\nVmRSS:\\t  1024 kB\\n")
    {'PPid': 12, 'VmHWM': 2097152, 'VmRSS': 1048576}
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
        elif key == "PPid":
            out[key] = int(value.strip())
    return out


def read_cmdline(pid: int, proc: Path = Path("/proc")) -> str:
    """The command line of ``pid`` with spaces between arguments (``""`` when gone)."""
    try:
        return (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def children_map(proc: Path = Path("/proc")) -> dict[int, list[int]]:
    """Parent pid → child pids of every process visible in ``proc``."""
    tree: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # the command name may hold spaces and parentheses: fields follow the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    """Every descendant of ``pid`` in ``tree`` (from :func:`children_map`), breadth first.

    >>> descendants(1, {1: [2, 3], 3: [4], 9: [10]})
    [2, 3, 4]
    """
    out: list[int] = []
    queue = list(tree.get(pid, []))
    while queue:
        child = queue.pop(0)
        out.append(child)
        queue.extend(tree.get(child, []))
    return out


def classify(cmdline: str) -> str | None:
    """``jvm``, ``python-worker`` (a ``pyspark.daemon`` process) or ``None`` for a command line.

    >>> classify("/usr/bin/java -cp x org.apache.spark.deploy.SparkSubmit pyspark-shell")
    'jvm'
    >>> classify("/venv/bin/python -m pyspark.daemon pyspark.worker")
    'python-worker'
    """
    if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline:
        return "python-worker"
    first = cmdline.split(" ", 1)[0]
    if first.endswith("/java") or first == "java":
        return "jvm"
    return None


@dataclass
class ProcessPeak:
    """Largest memory seen for one process: sampled ``VmRSS`` and the kernel's ``VmHWM``."""

    pid: int
    kind: str
    parent: int
    rss: int = 0
    hwm: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0

    @property
    def peak(self) -> int:
        return max(self.rss, self.hwm)


@dataclass
class MemorySampler:
    """Samples, every ``interval`` seconds, the JVM under ``root`` and its ``pyspark.daemon`` processes.

    The daemon process itself (child of the JVM) and the workers it forks (its children)
    are both ``python-worker``; :meth:`workers` returns only the forked workers.
    ``progress`` (optional) returns a number recorded with each sample (e.g. pages done).

    >>> import os
    >>> sampler = MemorySampler(root=os.getpid(), interval=0.05)
    >>> _ = sampler.start(); time.sleep(0.12); sampler.stop()
    >>> len(sampler.samples) >= 2, sorted(sampler.summary())[:2]
    (True, ['daemon_peak_mib', 'jvm_peak_mib'])
    """

    root: int
    interval: float = 0.25
    progress: Callable[[], float] | None = None
    proc: Path = Path("/proc")
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    # (seconds, JVM RSS, largest worker RSS, progress)
    samples: list[tuple[float, int, int, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def sample(self) -> None:
        """Take one sample now."""
        tree = children_map(self.proc)
        now = time.perf_counter() - self._t0
        jvm_rss = worker_rss = 0
        for pid in descendants(self.root, tree):
            peak = self.peaks.get(pid)
            if peak is None:
                kind = classify(read_cmdline(pid, self.proc))
                if kind is None:
                    continue
                status = read_status(pid, self.proc)
                peak = self.peaks[pid] = ProcessPeak(pid, kind, status.get("PPid", 0), first_seen=now)
            status = read_status(pid, self.proc)
            if not status:
                continue
            peak.rss = max(peak.rss, status.get("VmRSS", 0))
            peak.hwm = max(peak.hwm, status.get("VmHWM", 0))
            peak.last_seen = now
            if peak.kind == "jvm":
                jvm_rss = max(jvm_rss, status.get("VmRSS", 0))
            elif self._is_worker(peak):
                worker_rss = max(worker_rss, status.get("VmRSS", 0))
        self.samples.append((now, jvm_rss, worker_rss, self.progress() if self.progress else 0.0))

    def _is_worker(self, peak: ProcessPeak) -> bool:
        parent = self.peaks.get(peak.parent)
        return peak.kind == "python-worker" and parent is not None and parent.kind == "python-worker"

    def elapsed(self) -> float:
        """Seconds since :meth:`start` (the time axis of :attr:`samples`)."""
        return time.perf_counter() - self._t0

    def start(self) -> MemorySampler:
        """Start sampling in a daemon thread."""
        self._t0 = time.perf_counter()
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                self.sample()
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=loop, daemon=True, name="memory-sampler")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def jvm(self) -> list[ProcessPeak]:
        return [p for p in self.peaks.values() if p.kind == "jvm"]

    def workers(self) -> list[ProcessPeak]:
        """The Python worker processes forked by a ``pyspark.daemon`` (not the daemon itself)."""
        return [p for p in self.peaks.values() if self._is_worker(p)]

    def daemons(self) -> list[ProcessPeak]:
        return [p for p in self.peaks.values() if p.kind == "python-worker" and not self._is_worker(p)]

    def summary(self) -> dict[str, Any]:
        """Peaks in MiB: JVM, each Python worker, the daemon, and the sample count."""
        mib = 2**20
        return {
            "jvm_peak_mib": max((p.peak for p in self.jvm()), default=0) / mib,
            "worker_peaks_mib": sorted((round(p.peak / mib, 1) for p in self.workers()), reverse=True),
            "worker_peak_mib": max((p.peak for p in self.workers()), default=0) / mib,
            "workers": len(self.workers()),
            "daemon_peak_mib": max((p.peak for p in self.daemons()), default=0) / mib,
            "samples": len(self.samples),
        }


def window_peaks(samples: Sequence[tuple[float, int, int, float]], upto: float) -> tuple[int, int]:
    """Largest JVM and worker RSS among samples whose progress is at most ``upto``.

    >>> window_peaks([(0.0, 5, 1, 0), (1.0, 7, 3, 50), (2.0, 6, 9, 100)], 50)
    (7, 3)
    """
    chosen = [s for s in samples if s[3] <= upto]
    return max((s[1] for s in chosen), default=0), max((s[2] for s in chosen), default=0)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; floats get one decimal.

    >>> print(markdown_table(["a"], [[1], [2.25]]))
    | a |
    |---|
    | 1 |
    | 2.2 |
    """
    def cell(value: Any) -> str:
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def arrow_column_bytes(batch: Any) -> dict[str, int]:
    """Bytes of each column of a ``pyarrow.RecordBatch`` (buffer sizes, as they cross the Arrow stream).

    >>> import pyarrow as pa
    >>> arrow_column_bytes(pa.record_batch({"x": pa.array([1, 2], pa.int64())}))
    {'x': 16}
    """
    return {name: int(batch.column(i).nbytes) for i, name in enumerate(batch.schema.names)}
