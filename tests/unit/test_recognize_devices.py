"""Batch policy, devices, precision, IO binding and the fp16 graph of the recogniser; CUDA tests skip without it."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator

from sparkhtr.core import recognize as rec
from sparkhtr.core.recognize import (
    BatchPolicy,
    LineRecognizer,
    cuda_device_index,
    padded_width,
    plan_batches,
    resolve_precision,
    to_fp16,
    topological_sort,
)
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import read_manifest, resolve_model
from tests.helpers.tiny_model import blob_line

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="onnxruntime has no CUDAExecutionProvider (no GPU build)")


def test_policy_per_device_and_overrides():
    cpu, cuda = BatchPolicy.for_device("cpu"), BatchPolicy.for_device("cuda")
    assert (cpu.max_lines, cpu.max_pixels, cpu.width_multiple) == (8, 8 * 48 * 1024, 0)
    assert cuda.max_lines > cpu.max_lines and cuda.width_multiple == 64
    assert BatchPolicy.for_device("cuda", max_lines=16, max_pixels=1000) == BatchPolicy(
        max_lines=16, max_pixels=1000, width_multiple=64)


def test_batches_never_exceed_the_pixel_bound_except_single_lines():
    rng = np.random.default_rng(0)
    widths = rng.integers(40, 3000, 500).tolist()
    policy = BatchPolicy(max_lines=64, max_pixels=48 * 8000)
    batches = plan_batches(widths, 48, policy)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for batch in batches:
        assert len(batch) <= 64
        assert len(batch) == 1 or len(batch) * max(widths[i] for i in batch) * 48 <= policy.max_pixels


def test_padded_width():
    assert [padded_width(w, 4) for w in (1, 4, 5)] == [4, 4, 8]
    assert padded_width(65, 64) == 128


@pytest.mark.parametrize(("address", "visible", "ordinal"), [
    ("0", None, 0), ("3", "", 3), ("3", "2,3", 1), (" 5 ", "5", 0), ("1", "0, 1", 1), ("7", "0,1", 7)])
def test_cuda_device_index(address, visible, ordinal, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cuda_device_index(address, visible) == ordinal


def test_cuda_device_index_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert cuda_device_index("6") == 1


def test_precision_rules():
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("int8", "cpu")
    with pytest.raises(ConfigError, match="cuda"):
        resolve_precision("fp16", "cpu")
    assert resolve_precision("fp32", "cpu") == "fp32"
    if not HAS_CUDA:
        assert resolve_precision("fp16", "auto") == "fp32"
        with pytest.raises(ModelError, match="CUDA"):
            resolve_precision("fp16", "cuda")


def test_fp16_on_cpu_is_refused_before_any_session(tiny_model_dir):
    before = rec.session_loads
    with pytest.raises(ConfigError):
        LineRecognizer(read_manifest(tiny_model_dir), device="cpu", precision="fp16")
    assert rec.session_loads == before


def test_io_binding_gives_the_same_answers(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    lines = [blob_line(k, blob_width=12 + 2 * k) for k in (3, 1, 4, 1, 5)]
    plain = LineRecognizer(manifest, device="cpu", threads=1, io_binding=False)
    bound = LineRecognizer(manifest, device="cpu", threads=1, io_binding=True)
    assert bound.io_binding and not plain.io_binding and bound.device == "cpu"
    a, b = plain.recognize(lines), bound.recognize(lines)
    assert [r.text for r in a] == [r.text for r in b] == ["a" * k for k in (3, 1, 4, 1, 5)]
    np.testing.assert_allclose([r.confidence for r in a], [r.confidence for r in b], rtol=1e-6)


def test_stats_count_lines_batches_and_padding(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    recognizer = LineRecognizer(manifest, device="cpu", threads=1, policy=BatchPolicy(max_lines=2))
    recognizer.recognize([blob_line(1), blob_line(4), blob_line(2), np.zeros((0, 0), np.uint8)])
    stats = recognizer.stats
    assert (stats.lines, stats.batches) == (4, 2)
    assert 0.0 <= stats.padding < 0.5 and stats.padded_pixels >= stats.pixels > 0
    assert stats.infer_seconds > 0 and stats.prepare_seconds > 0


def test_width_multiple_pads_batches(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    coarse = LineRecognizer(manifest, device="cpu", threads=1, policy=BatchPolicy(width_multiple=64))
    out = coarse.recognize([blob_line(2), blob_line(3)])
    assert [r.text for r in out] == ["aa", "aaa"]
    assert coarse.stats.padded_pixels % (16 * 64) == 0


def _tiny_fp32(path):
    return onnx.load(str(path / "model.onnx"))


def test_fp16_graph_is_valid_and_reads_the_same(tiny_model_dir):
    model = _tiny_fp32(tiny_model_dir)
    half = to_fp16(model)
    onnx.checker.check_model(half)  # topologically sorted, well typed
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # float32 in and out
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(t.data_type == TensorProto.FLOAT16 for t in half.graph.initializer)
    soft = [n for n in half.graph.node if n.op_type == "LogSoftmax"]
    assert soft  # kept in float32: its input is cast back up
    manifest = read_manifest(tiny_model_dir)
    recognizer = LineRecognizer(manifest, device="cpu", threads=1)
    lines = [blob_line(k) for k in (1, 3, 2)]
    width = max(line.shape[1] for line in lines)
    tensor = np.zeros((3, 1, 16, padded_width(width, 4)), np.float32)
    for i, line in enumerate(lines):
        x = recognizer.prepare(line)
        tensor[i, 0, :, : x.shape[1]] = x
    expected = recognizer.infer(tensor)
    got = ReferenceEvaluator(half).run(None, {"images": tensor})[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))


def test_topological_sort_orders_and_detects_missing_inputs():
    from onnx import helper

    a = helper.make_node("Relu", ["x"], ["y"])
    b = helper.make_node("Relu", ["y"], ["z"])
    graph = helper.make_graph([b, a], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    topological_sort(graph)
    assert [n.output[0] for n in graph.node] == ["y", "z"]
    bad = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["z"])], "g", [], [])
    with pytest.raises(ModelError, match="nowhere"):
        topological_sort(bad)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # sigmoid overflow in onnx's numpy LSTM, harmless
def test_fp16_bundled_model_reads_like_fp32():
    """The converted bundled model (CRNN with LSTMs) gives the same greedy path as fp32 (numpy reference run)."""
    manifest = resolve_model()
    recognizer = LineRecognizer(manifest, device="cpu", threads=1)
    lines = [blob_line(k, height=64) for k in (2, 5)]
    inputs = [recognizer.prepare(x) for x in lines]
    tensor = np.zeros((2, 1, 48, padded_width(max(x.shape[1] for x in inputs), 4)), np.float32)
    for i, x in enumerate(inputs):
        tensor[i, 0, :, : x.shape[1]] = x
    expected = recognizer.infer(tensor)
    got = ReferenceEvaluator(to_fp16(onnx.load(str(manifest.model_path)))).run(None, {"images": tensor})[0]
    assert (got.argmax(-1) == expected.argmax(-1)).mean() > 0.98


@pytest.mark.gpu
@needs_cuda
def test_cuda_reads_like_cpu_with_io_binding(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    lines = [blob_line(k) for k in (2, 1, 3)]
    cpu = LineRecognizer(manifest, device="cpu", threads=1).recognize(lines)
    gpu = LineRecognizer(manifest, device="cuda", gpu_id=0)
    assert gpu.device == "cuda" and gpu.io_binding
    assert gpu.session.get_providers()[0] == "CUDAExecutionProvider"
    out = gpu.recognize(lines)
    assert [r.text for r in out] == [r.text for r in cpu]
    np.testing.assert_allclose([r.confidence for r in out], [r.confidence for r in cpu], rtol=1e-3)


@pytest.mark.gpu
@needs_cuda
def test_cuda_fp16_bundled_model_agrees_with_fp32():
    manifest = resolve_model()
    lines = [blob_line(k, height=64) for k in (2, 4, 6)]
    fp32 = LineRecognizer(manifest, device="cuda").recognize(lines)
    half = LineRecognizer(manifest, device="cuda", precision="fp16")
    assert half.precision == "fp16"
    fp16 = half.recognize(lines)
    assert [r.text for r in fp16] == [r.text for r in fp32]
    np.testing.assert_allclose([r.confidence for r in fp16], [r.confidence for r in fp32], atol=0.02)


def test_threaded_preparation_gives_the_same_inputs(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    lines = [blob_line(k % 4 + 1, blob_width=10 + k) for k in range(20)]
    serial = LineRecognizer(manifest, device="cpu", threads=1)
    threaded = LineRecognizer(manifest, device="cpu", threads=1, prepare_threads=3)
    assert serial.prepare_threads == 1 and threaded.prepare_threads == 3
    for a, b in zip(serial.prepare_all(lines), threaded.prepare_all(lines), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r.text for r in threaded.recognize(lines)] == [r.text for r in serial.recognize(lines)]
