import json

import numpy as np
import pytest

from sparkhtr.core import recognize as rec
from sparkhtr.core.recognize import BatchPolicy, LineRecognizer, plan_batches, providers_for
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import read_manifest, resolve_model, verify_model
from tests.helpers.tiny_model import blob_line


def test_tiny_model_reads_blobs_in_input_order(tiny_model_dir):
    recognizer = LineRecognizer(read_manifest(tiny_model_dir), device="cpu", threads=1)
    counts = [3, 1, 5, 0, 2]
    results = recognizer.recognize([blob_line(k) for k in counts])
    assert [r.text for r in results] == ["a" * k for k in counts]
    assert all(0.0 <= r.confidence <= 1.0 for r in results)
    assert results[0].confidence > 0.9


def test_small_batches_give_the_same_answers(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    lines = [blob_line(k, blob_width=10 + 3 * k) for k in (4, 2, 6, 1, 3, 5)]
    big = LineRecognizer(manifest, device="cpu", threads=1).recognize(lines)
    small = LineRecognizer(manifest, device="cpu", threads=1, policy=BatchPolicy(max_lines=2)).recognize(lines)
    assert [r.text for r in big] == [r.text for r in small]
    np.testing.assert_allclose([r.confidence for r in big], [r.confidence for r in small], rtol=1e-5)


def test_empty_and_degenerate_crops(tiny_model_dir):
    recognizer = LineRecognizer(read_manifest(tiny_model_dir), device="cpu", threads=1)
    out = recognizer.recognize([np.zeros((0, 0), np.uint8), np.full((1, 50), 255, np.uint8), blob_line(2)])
    assert [r.text for r in out] == ["", "", "aa"]
    assert out[0].confidence == 0.0
    assert recognizer.recognize([]) == []


def test_session_is_created_once_per_process(tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    LineRecognizer(manifest, device="cpu", threads=1)
    before = rec.session_loads
    for _ in range(3):
        LineRecognizer(manifest, device="cpu", threads=1).recognize([blob_line(1)])
    assert rec.session_loads == before


def test_plan_batches_bounds_pixels_and_sorts_by_width():
    widths = [500, 100, 300, 120, 900]
    batches = plan_batches(widths, 48, BatchPolicy(max_lines=10, max_pixels=48 * 700))
    assert sorted(i for b in batches for i in b) == list(range(5))
    for batch in batches:
        assert len(batch) * max(widths[i] for i in batch) * 48 <= 48 * 900  # a lone wide line may exceed
    flat = [widths[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_sha_mismatch_is_refused(tiny_model_dir, tmp_path):
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    manifest["sha256"] = "0" * 64
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "model.onnx").write_bytes((tiny_model_dir / "model.onnx").read_bytes())
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        verify_model(read_manifest(folder))


def test_device_validation():
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError):
        providers_for("tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ModelError, match="CUDA"):
            providers_for("cuda")


def test_unknown_model_name_lists_bundled_models():
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("definitely-not-a-model")


def test_manifest_missing_keys(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelError, match="lacks"):
        read_manifest(tmp_path)


def test_bundled_models_stay_within_the_size_limit_and_match_their_manifests():
    # the project ships its models in git: every ONNX file at most 20 MB, sha256 as recorded
    from sparkhtr.registry import list_models

    manifests = list_models()
    assert manifests
    for manifest in manifests:
        assert manifest.model_path.stat().st_size <= 20 * 1024 * 1024, manifest.name
        verify_model(manifest)
