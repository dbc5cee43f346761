"""ONNX CTC line recognition: one cached session per worker, width-bucketed batches, CPU or CUDA.

Lines are sorted by width and cut into batches bounded by lines and by padded
pixels (:class:`BatchPolicy`), so padding stays small and a batch of long lines
does not blow up memory. On CUDA the batch tensors go through onnxruntime's IO
binding and the graph can run in half precision (``precision="fp16"``).

>>> from sparkhtr.registry import resolve_model
>>> recognizer = LineRecognizer(resolve_model(), device="cpu", threads=1)  # doctest: +SKIP
>>> recognizer.recognize([line_crop])[0].text  # doctest: +SKIP
'the quick brown fox'
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.ctc import beam_decode, greedy_decode
from sparkhtr.core.lines import normalize_line, resized_width
from sparkhtr.core.lm import CharNgramLM
from sparkhtr.core.types import RecognizedLine
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import ModelManifest, file_sha256, verify_model

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "fp16")
Provider = str | tuple[str, dict[str, Any]]

_sessions: dict[tuple[Any, ...], ort.InferenceSession] = {}
_language_models: dict[str, CharNgramLM] = {}
_lock = threading.Lock()
# Counts real session creations in this process, in all and per model file: the benchmarks
# and worker metrics read it to prove that a worker loads a model once, not once per batch.
session_loads = 0
session_loads_by_model: dict[str, int] = {}


@dataclass(frozen=True)
class BatchPolicy:
    """Bounds on one inference batch: lines, and lines × padded width × height in pixels.

    ``width_multiple`` pads each batch's width up to a multiple of this many pixels
    (``0``: the model's width stride). On CUDA a coarse multiple keeps the number of
    distinct input shapes, and so of cuDNN plans, small.

    >>> BatchPolicy.for_device("cuda").max_lines, BatchPolicy.for_device("cpu", max_lines=8).max_lines
    (256, 8)
    """

    max_lines: int = 8
    max_pixels: int = 8 * 48 * 1024
    max_width: int = 4096
    width_multiple: int = 0

    @classmethod
    def for_device(cls, device: str, max_lines: int = 0, max_pixels: int = 0) -> BatchPolicy:
        """The default policy of ``device`` (``cpu`` or ``cuda``); non-zero arguments override it.

        CPU: small batches, up to 8 lines / 0.39 M pixels. ``bench/speed.py`` sweeps this: on
        2 cores 8-line batches ran at 121 lines/s against 103 for 64 lines / 3.1 M pixels (the
        activations of a big batch outgrow the caches) and, in local[2] Spark, 114 against 87.
        CUDA: large batches that keep the GPU busy, widths padded to multiples of 64.
        """
        base = cls(max_lines=256, max_pixels=256 * 48 * 1536, width_multiple=64) if device == "cuda" else cls()
        return cls(max_lines=max_lines or base.max_lines, max_pixels=max_pixels or base.max_pixels,
                   max_width=base.max_width, width_multiple=base.width_multiple)


DECODERS = ("auto", "greedy", "beam")
DEFAULT_DECODER = "auto"
DEFAULT_BEAM_WIDTH = 16  # beams when a manifest's language_model names no beam_width


def resolve_decoder(manifest: ModelManifest, decoder: str = DEFAULT_DECODER) -> str:
    """``greedy`` or ``beam``: ``auto`` is beam search when the model ships a language model.

    >>> from sparkhtr.registry import resolve_model
    >>> resolve_decoder(resolve_model()), resolve_decoder(resolve_model(), "greedy")
    ('beam', 'greedy')
    """
    if decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")
    if decoder == "auto":
        return "beam" if isinstance(manifest.extra.get("language_model"), dict) else "greedy"
    return decoder


def manifest_beam_width(manifest: ModelManifest) -> int:
    """The beams a model's manifest declares for its language model (``DEFAULT_BEAM_WIDTH`` when it names none).

    >>> from sparkhtr.registry import resolve_model
    >>> manifest_beam_width(resolve_model())
    64
    """
    spec = manifest.extra.get("language_model")
    return int(spec.get("beam_width", DEFAULT_BEAM_WIDTH)) if isinstance(spec, dict) else DEFAULT_BEAM_WIDTH


def recognizer_ref(manifest: ModelManifest, decoder: str = DEFAULT_DECODER, beam_width: int = 0) -> str:
    """What the tables' ``recognizer`` column records: ``name@version``, plus ``+charlm`` for beam search,
    plus ``:beamN`` when ``beam_width`` overrides the manifest's number of beams.

    The decoder and its beams change the text, so a rerun tells them apart like two model versions.

    >>> from sparkhtr.registry import resolve_model
    >>> recognizer_ref(resolve_model(), "beam").endswith("+charlm")
    True
    >>> recognizer_ref(resolve_model(), "beam", beam_width=16).endswith("+charlm:beam16")
    True
    """
    if resolve_decoder(manifest, decoder) != "beam":
        return manifest.ref
    overridden = beam_width and beam_width != manifest_beam_width(manifest)
    return f"{manifest.ref}+charlm" + (f":beam{beam_width}" if overridden else "")


@dataclass(frozen=True)
class BeamSettings:
    """CTC beam search with a character language model (see :func:`sparkhtr.core.ctc.beam_decode`).

    :meth:`for_model` reads the model's bundled language model and the weights tuned for it
    (``language_model`` in ``manifest.json``).
    """

    language_model: CharNgramLM | None
    beam_width: int = DEFAULT_BEAM_WIDTH
    alpha: float = 0.5
    beta: float = 1.0

    @classmethod
    def for_model(cls, manifest: ModelManifest, beam_width: int = 0) -> BeamSettings:
        """The beam settings a manifest declares; :class:`ModelError` when it has no language model."""
        spec = manifest.extra.get("language_model")
        if not isinstance(spec, dict) or "file" not in spec:
            raise ModelError(f"{manifest.ref} ships no language model; use decoder='greedy'")
        path = manifest.model_path.parent / spec["file"]
        if not path.is_file():
            raise ModelError(f"language model missing: {path}")
        if spec.get("sha256") and file_sha256(path) != spec["sha256"]:
            raise ModelError(f"sha256 mismatch for {path}")
        lm = _language_models.get(str(path))
        if lm is None:
            lm = _language_models[str(path)] = CharNgramLM.load(path)
        if lm.characters != manifest.alphabet:
            raise ModelError(f"language model {path} was built for another alphabet than {manifest.ref}'s")
        return cls(lm, beam_width or manifest_beam_width(manifest), float(spec.get("alpha", 0.5)),
                   float(spec.get("beta", 1.0)))


@dataclass
class RecognizerStats:
    """What a :class:`LineRecognizer` did: lines, batches, padded pixels and seconds in inference."""

    lines: int = 0
    batches: int = 0
    pixels: int = 0
    padded_pixels: int = 0
    prepare_seconds: float = 0.0
    infer_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def padding(self) -> float:
        """Fraction of inference pixels that were padding."""
        return 1.0 - self.pixels / self.padded_pixels if self.padded_pixels else 0.0


def cuda_available() -> bool:
    """Whether this onnxruntime build has the CUDA execution provider (not whether a GPU works)."""
    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``: what ``device`` (``auto|cpu|cuda``) means with this onnxruntime build.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not cuda_available():
        raise ModelError("device='cuda' but this onnxruntime has no CUDAExecutionProvider (install sparkhtr[gpu])")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    return device


def resolve_precision(precision: str, device: str) -> str:
    """The precision a session runs in: ``fp16`` only on CUDA.

    onnxruntime's CPU provider has no half-precision kernels for this graph (a
    converted model crashes session creation in onnxruntime 1.31), so ``fp16`` with
    ``device='cpu'`` is refused and with ``device='auto'`` on a CPU-only build runs ``fp32``.

    >>> resolve_precision("fp16", "auto") if not cuda_available() else "fp32"
    'fp32'
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and resolve_device(device) == "cpu":
        if device == "cpu":
            raise ConfigError("precision='fp16' needs device='cuda' (onnxruntime's CPU provider has no fp16 kernels)")
        return "fp32"
    return precision


def cuda_device_index(address: str | int, visible: str | None = None) -> int:
    """The CUDA ordinal of a GPU that Spark assigned by ``address``.

    Spark's discovery script reports ``nvidia-smi`` indices, which ignore
    ``CUDA_VISIBLE_DEVICES``; when that variable restricts the process to some GPUs,
    the ordinal is the address's position in it. ``visible`` defaults to the variable.

    >>> cuda_device_index("3", visible="2,3"), cuda_device_index("1", visible=""), cuda_device_index(0)
    (1, 1, 0)
    """
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    key = str(address).strip()
    listed = [v.strip() for v in (visible or "").split(",") if v.strip()]
    if key in listed:
        return listed.index(key)
    return int(key)


def providers_for(device: str, gpu_id: int = 0) -> list[Provider]:
    """onnxruntime providers for ``device`` (``auto`` uses CUDA when this onnxruntime build has it).

    CUDA options: the GPU ordinal, heuristic cuDNN algorithm choice (the exhaustive
    default benchmarks every new input shape, and line widths vary), and an arena that
    grows only by what is requested, since several tasks may share one GPU.

    >>> providers_for("cpu")
    ['CPUExecutionProvider']
    """
    if resolve_device(device) == "cpu":
        return ["CPUExecutionProvider"]
    options: dict[str, Any] = {"device_id": gpu_id, "cudnn_conv_algo_search": "HEURISTIC",
                               "arena_extend_strategy": "kSameAsRequested"}
    return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]


def to_fp16(model: Any) -> Any:
    """A float16 copy of an ONNX ``ModelProto`` with float32 inputs and outputs.

    Uses onnxruntime's own converter (``onnxruntime.transformers.float16``, a maintained
    fork of onnxconverter-common's, shipped in both onnxruntime wheels; it needs the
    ``onnx`` package), keeping ``LogSoftmax`` in float32 so confidences stay exact, and
    sorts the nodes topologically (the converter appends its casts at the end).
    """
    try:
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    except ImportError as exc:  # onnx missing
        raise ModelError(f"precision='fp16' needs the onnx package (pip install 'sparkhtr[gpu]'): {exc}") from exc
    converted = convert_float_to_float16(model, keep_io_types=True,
                                         op_block_list=[*DEFAULT_OP_BLOCK_LIST, "LogSoftmax"])
    topological_sort(converted.graph)
    return converted


def topological_sort(graph: Any) -> None:
    """Reorder ``graph.node`` in place so every node follows the producers of its inputs."""
    known = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in known for name in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ModelError(f"ONNX graph has unresolvable inputs: {sorted({*waiting[0].input} - known)}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def _fp16_model_bytes(model_path: str) -> bytes:
    try:
        import onnx
    except ImportError as exc:
        raise ModelError(f"precision='fp16' needs the onnx package (pip install 'sparkhtr[gpu]'): {exc}") from exc
    return to_fp16(onnx.load(model_path)).SerializeToString()


def get_session(model_path: str, sha256: str, device: str = "auto", threads: int = 0, gpu_id: int = 0,
                precision: str = "fp32", spinning: bool = True, layout_transforms: bool = True
                ) -> ort.InferenceSession:
    """A process-wide cached session for (model, providers, threads, GPU, precision); created on first use.

    ``threads=0`` lets onnxruntime pick; Spark adapters pass the task's cores so that N
    concurrent workers do not each start an all-core thread pool. With CUDA the session
    must really run on CUDA (onnxruntime falls back to CPU silently): otherwise ``ModelError``.
    ``spinning=False`` stops idle onnxruntime threads from busy-waiting, leaving the cores to
    work that runs beside inference (beam-search decoding).
    ``layout_transforms=False`` stops onnxruntime's layout rewrites (NCHWc blocked convolutions):
    they speed the line recogniser up and slow a full-page network down (kraken's segmentation
    network ran about 4 times slower with them on 2 CPU cores: ``bench/onnx_layout.py``).
    """
    global session_loads
    providers = providers_for(device, gpu_id)
    precision = resolve_precision(precision, device)
    names = tuple(p if isinstance(p, str) else p[0] for p in providers)
    key = (model_path, sha256, names, threads, gpu_id, precision, spinning, layout_transforms)
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            return session
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if layout_transforms
                                            else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            if precision == "fp16":
                # make sure CUDA starts before handing onnxruntime a half-precision graph: if it
                # fell back to CPU, that graph would crash the process instead of raising
                probe = ort.InferenceSession(model_path, sess_options=options, providers=providers)
                _check_cuda(probe, device)
                source: str | bytes = _fp16_model_bytes(model_path)
            else:
                source = model_path
            session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except (ModelError, ConfigError):
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load ONNX model {model_path}: {exc}") from exc
        if device == "cuda":  # with "auto", a CUDA build whose GPU does not start may run on CPU
            _check_cuda(session, device)
        _sessions[key] = session
        session_loads += 1
        session_loads_by_model[model_path] = session_loads_by_model.get(model_path, 0) + 1
        return session


def _check_cuda(session: ort.InferenceSession, device: str) -> None:
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise ModelError(f"device={device!r} asked for CUDA but onnxruntime runs on {session.get_providers()}")


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


def padded_width(width: int, multiple: int) -> int:
    """``width`` rounded up to a multiple of ``multiple``.

    >>> padded_width(130, 4), padded_width(130, 64)
    (132, 192)
    """
    return -(-width // multiple) * multiple


class LineRecognizer:
    """Recognise grayscale line crops with a CTC model described by a manifest.

    ``device``: ``auto|cpu|cuda``; ``gpu_id``: the CUDA ordinal (see :func:`cuda_device_index`);
    ``precision``: ``fp32`` or ``fp16`` (CUDA only, see :func:`resolve_precision`);
    ``io_binding``: feed batches through onnxruntime's IO binding (default: on CUDA), which
    copies each batch to the GPU once and receives the log-probabilities in host memory.
    ``prepare_threads``: threads that normalise crops (OpenCV and numpy release the GIL);
    default ``threads`` on CUDA, where host-side preparation is the bottleneck, else 1 (on
    CPU the cores are onnxruntime's).
    ``decoder``: ``greedy`` (best path), ``beam`` (prefix beam search with the model's
    character language model; ``beam`` overrides the manifest's settings, ``beam_width``
    its number of beams alone, 0 keeping the manifest's) or ``auto`` (beam when the model
    ships a language model). Beam search runs on a thread beside onnxruntime; ``threads=0``
    then leaves it one core.
    """

    def __init__(self, manifest: ModelManifest, *, device: str = "auto", threads: int = 0, gpu_id: int = 0,
                 policy: BatchPolicy | None = None, verify: bool = True, precision: str = "fp32",
                 io_binding: bool | None = None, prepare_threads: int | None = None,
                 decoder: str = DEFAULT_DECODER, beam: BeamSettings | None = None, beam_width: int = 0) -> None:
        decoder = resolve_decoder(manifest, decoder)
        if beam_width < 0:
            raise ConfigError(f"beam_width must not be negative, got {beam_width}")
        if decoder == "beam" and threads == 0:
            threads = max((os.cpu_count() or 2) - 1, 1)  # one core is the beam decoder's
        if manifest.kind != "ctc-line-recognizer":
            raise ModelError(f"{manifest.ref} is a {manifest.kind!r}, not a ctc-line-recognizer")
        path = verify_model(manifest) if verify else manifest.model_path
        self.manifest = manifest
        self.model_path = str(path)  # the key of session_loads_by_model
        self.alphabet = Alphabet(manifest.alphabet)
        self.precision = resolve_precision(precision, device)
        self.gpu_id = gpu_id
        self.session = get_session(self.model_path, manifest.sha256, device, threads, gpu_id, precision,
                                   spinning=decoder == "greedy")
        # where the session really runs ("auto" on a CUDA build without a working GPU runs on CPU)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.policy = policy or BatchPolicy.for_device(self.device)
        self.io_binding = self.device == "cuda" if io_binding is None else io_binding
        if prepare_threads is None:
            prepare_threads = max(threads, 1) if self.device == "cuda" else 1
        self.prepare_threads = max(int(prepare_threads), 1)
        self._pool: ThreadPoolExecutor | None = None
        self._decoder: ThreadPoolExecutor | None = None
        self.stats = RecognizerStats()
        # None: greedy decoding
        self.beam = (beam or BeamSettings.for_model(manifest, beam_width)) if decoder == "beam" else None
        self.input_name = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()[0]
        self.output_name = outputs.name
        if outputs.shape and isinstance(outputs.shape[-1], int) and outputs.shape[-1] != self.alphabet.num_classes:
            raise ModelError(f"model has {outputs.shape[-1]} classes, alphabet needs {self.alphabet.num_classes}")

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """Model input of one crop (see :func:`sparkhtr.core.lines.normalize_line`)."""
        return normalize_line(crop, self.manifest.input_height, self.policy.max_width)

    def frames(self, crop_shape: tuple[int, ...]) -> int:
        """Output frames the model gives a crop of this shape: one per ``width_stride`` columns
        of its input (the crop resized to ``input_height``), the most characters it can emit.

        >>> recognizer.frames((64, 640))  # doctest: +SKIP
        120
        """
        width = resized_width(crop_shape[0], crop_shape[1], self.manifest.input_height, self.policy.max_width)
        return self._frames_of_width(width)

    def _frames_of_width(self, width: int) -> int:
        """Output frames of a model input ``width`` columns wide (the last, partial stride counts)."""
        return -(-width // self.manifest.width_stride)

    def prepare_all(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`prepare` of each crop, on ``prepare_threads`` threads when there are enough crops."""
        if self.prepare_threads == 1 or len(crops) < 2 * self.prepare_threads:
            return [self.prepare(c) for c in crops]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.prepare_threads, thread_name_prefix="sparkhtr-prepare")
        return list(self._pool.map(self.prepare, crops, chunksize=8))

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Log-probabilities ``[batch, frames, classes]`` of a float32 ``[batch, 1, height, width]`` tensor."""
        if not self.io_binding:
            return self.session.run([self.output_name], {self.input_name: tensor})[0]
        where = "cuda" if self.device == "cuda" else "cpu"
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(tensor, where, self.gpu_id))
        binding.bind_output(self.output_name, "cpu")  # CTC decoding runs on the host
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def decode(self, log_probs: np.ndarray, lengths: np.ndarray) -> list[RecognizedLine]:
        """Text and confidence of each line of a batch's ``log_probs[batch, frames, classes]``."""
        if self.beam is None:
            return [RecognizedLine(self.alphabet.decode(classes), confidence)
                    for classes, confidence in greedy_decode(log_probs, lengths)]
        b = self.beam
        return [RecognizedLine(text, confidence) for text, confidence in beam_decode(
            log_probs, lengths, self.manifest.alphabet, b.language_model, beam_width=b.beam_width,
            alpha=b.alpha, beta=b.beta)]

    def _decode_into(self, results: list[RecognizedLine | None], members: list[int], log_probs: np.ndarray,
                     lengths: np.ndarray) -> None:
        start = time.perf_counter()
        for i, line in zip(members, self.decode(log_probs, lengths), strict=True):
            results[i] = line
        self.stats.decode_seconds += time.perf_counter() - start

    def recognize(self, crops: Sequence[np.ndarray | None]) -> list[RecognizedLine]:
        """Text and confidence of each crop, in input order; empty crops give ``("", 0.0)``."""
        results: list[RecognizedLine | None] = [None] * len(crops)
        start = time.perf_counter()
        usable = []
        for i, crop in enumerate(crops):
            if crop is None or crop.size == 0 or min(crop.shape[:2]) < 2:
                results[i] = RecognizedLine("", 0.0)
            else:
                usable.append(i)
        prepared = self.prepare_all([crops[i] for i in usable])  # type: ignore[misc]
        inputs: dict[int, np.ndarray] = dict(zip(usable, prepared, strict=True))
        self.stats.prepare_seconds += time.perf_counter() - start
        ids = list(inputs)
        widths = [inputs[i].shape[1] for i in ids]
        height = self.manifest.input_height
        stride = self.manifest.width_stride
        multiple = self.policy.width_multiple or stride
        pending: Future[None] | None = None
        for batch in plan_batches(widths, height, self.policy):
            members = [ids[k] for k in batch]
            padded = padded_width(max(inputs[i].shape[1] for i in members), multiple)
            tensor = np.zeros((len(members), 1, height, padded), np.float32)
            for row, i in enumerate(members):
                tensor[row, 0, :, : inputs[i].shape[1]] = inputs[i]
            start = time.perf_counter()
            try:
                log_probs = self.infer(tensor)
            except Exception as exc:  # onnxruntime errors are untyped
                raise ModelError(f"inference failed on a batch of {len(members)} lines: {exc}") from exc
            self.stats.infer_seconds += time.perf_counter() - start
            self.stats.batches += 1
            self.stats.padded_pixels += tensor.size
            self.stats.pixels += height * sum(inputs[i].shape[1] for i in members)
            lengths = np.array([self._frames_of_width(inputs[i].shape[1]) for i in members])
            if self.beam is None:
                self._decode_into(results, members, log_probs, lengths)
                continue
            # Beam search is Python (it holds the GIL) and onnxruntime releases it: decode this
            # batch on a thread while the next one runs through the model.
            if pending is not None:
                pending.result()
            if self._decoder is None:
                self._decoder = ThreadPoolExecutor(1, thread_name_prefix="sparkhtr-decode")
            pending = self._decoder.submit(self._decode_into, results, members, log_probs, lengths)
        if pending is not None:
            pending.result()
        self.stats.lines += len(crops)
        return [r if r is not None else RecognizedLine("", 0.0) for r in results]


def task_threads(default: int = 0) -> int:
    """onnxruntime threads for this task: ``SPARKHTR_ORT_THREADS``, else ``default``."""
    value = os.environ.get("SPARKHTR_ORT_THREADS")
    return int(value) if value else default
