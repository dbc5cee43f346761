"""ONNX CTC line recognition: one cached session per worker, width-bucketed batches.

>>> from sparkhtr.registry import resolve_model
>>> recognizer = LineRecognizer(resolve_model(), device="cpu", threads=1)  # doctest: +SKIP
>>> recognizer.recognize([line_crop])[0].text  # doctest: +SKIP
'the quick brown fox'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.ctc import greedy_decode
from sparkhtr.core.lines import normalize_line
from sparkhtr.core.types import RecognizedLine
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import ModelManifest, verify_model

DEVICES = ("auto", "cpu", "cuda")

_sessions: dict[tuple[str, str, tuple[str, ...], int, int], ort.InferenceSession] = {}
_lock = threading.Lock()
# Counts real session creations in this process: the benchmarks read it to prove
# that a worker loads the model once, not once per batch.
session_loads = 0


@dataclass(frozen=True)
class BatchPolicy:
    """Bounds on one inference batch: lines, and lines × padded width × height in pixels."""

    max_lines: int = 64
    max_pixels: int = 64 * 48 * 1024
    max_width: int = 4096


def providers_for(device: str, gpu_id: int = 0) -> list[str | tuple[str, dict[str, object]]]:
    """onnxruntime providers for ``device`` (``auto`` uses CUDA when this onnxruntime build has it).

    >>> providers_for("cpu")
    ['CPUExecutionProvider']
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise ModelError("device='cuda' but this onnxruntime has no CUDAExecutionProvider (install sparkhtr[gpu])")
    if device == "cpu" or not has_cuda:
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": gpu_id}), "CPUExecutionProvider"]


def get_session(model_path: str, sha256: str, device: str = "auto", threads: int = 0, gpu_id: int = 0
                ) -> ort.InferenceSession:
    """A process-wide cached session for (model, providers, threads, GPU); created on first use.

    ``threads=0`` lets onnxruntime pick; Spark adapters pass the task's cores so that N
    concurrent workers do not each start an all-core thread pool.
    """
    global session_loads
    providers = providers_for(device, gpu_id)
    names = tuple(p if isinstance(p, str) else p[0] for p in providers)
    key = (model_path, sha256, names, threads, gpu_id)
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            return session
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(model_path, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load ONNX model {model_path}: {exc}") from exc
        # onnxruntime silently falls back to CPU when CUDA cannot start
        if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
            raise ModelError(f"device='cuda' requested but onnxruntime runs on {session.get_providers()}")
        _sessions[key] = session
        session_loads += 1
        return session


def plan_batches(widths: Sequence[int], height: int, policy: BatchPolicy) -> list[list[int]]:
    """Group line indices sorted by width so that padding stays small and each batch fits ``policy``.

    >>> plan_batches([100, 900, 120, 880], 48, BatchPolicy(max_lines=2))
    [[0, 2], [3, 1]]
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        widest = max(widths[i], widths[current[-1]]) if current else widths[i]
        if current and (len(current) == policy.max_lines or (len(current) + 1) * widest * height > policy.max_pixels):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class LineRecognizer:
    """Recognise grayscale line crops with a CTC model described by a manifest."""

    def __init__(self, manifest: ModelManifest, *, device: str = "auto", threads: int = 0, gpu_id: int = 0,
                 policy: BatchPolicy | None = None, verify: bool = True) -> None:
        if manifest.kind != "ctc-line-recognizer":
            raise ModelError(f"{manifest.ref} is a {manifest.kind!r}, not a ctc-line-recognizer")
        path = verify_model(manifest) if verify else manifest.model_path
        self.manifest = manifest
        self.alphabet = Alphabet(manifest.alphabet)
        self.policy = policy or BatchPolicy()
        self.session = get_session(str(path), manifest.sha256, device, threads, gpu_id)
        self.input_name = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()[0]
        if outputs.shape and isinstance(outputs.shape[-1], int) and outputs.shape[-1] != self.alphabet.num_classes:
            raise ModelError(f"model has {outputs.shape[-1]} classes, alphabet needs {self.alphabet.num_classes}")

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """Model input of one crop (see :func:`sparkhtr.core.lines.normalize_line`)."""
        return normalize_line(crop, self.manifest.input_height, self.policy.max_width)

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecognizedLine]:
        """Text and confidence of each crop, in input order; empty crops give ``("", 0.0)``."""
        results: list[RecognizedLine | None] = [None] * len(crops)
        inputs: dict[int, np.ndarray] = {}
        for i, crop in enumerate(crops):
            if crop is None or crop.size == 0 or min(crop.shape[:2]) < 2:
                results[i] = RecognizedLine("", 0.0)
            else:
                inputs[i] = self.prepare(crop)
        ids = list(inputs)
        widths = [inputs[i].shape[1] for i in ids]
        height = self.manifest.input_height
        stride = self.manifest.width_stride
        for batch in plan_batches(widths, height, self.policy):
            members = [ids[k] for k in batch]
            padded = -(-max(inputs[i].shape[1] for i in members) // stride) * stride
            tensor = np.zeros((len(members), 1, height, padded), np.float32)
            for row, i in enumerate(members):
                tensor[row, 0, :, : inputs[i].shape[1]] = inputs[i]
            try:
                log_probs = self.session.run(None, {self.input_name: tensor})[0]
            except Exception as exc:  # onnxruntime errors are untyped
                raise ModelError(f"inference failed on a batch of {len(members)} lines: {exc}") from exc
            lengths = np.array([-(-inputs[i].shape[1] // stride) for i in members])
            for i, (classes, confidence) in zip(members, greedy_decode(log_probs, lengths), strict=True):
                results[i] = RecognizedLine(self.alphabet.decode(classes), confidence)
        return [r if r is not None else RecognizedLine("", 0.0) for r in results]


def task_threads(default: int = 0) -> int:
    """onnxruntime threads for this task: ``SPARKHTR_ORT_THREADS``, else ``default``."""
    value = os.environ.get("SPARKHTR_ORT_THREADS")
    return int(value) if value else default
