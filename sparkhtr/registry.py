"""Model manifests and the registry that resolves a model name, path or URI to a verified file.

Each model is a folder with ``model.onnx``, ``manifest.json`` and ``MODEL_CARD.md``.
Bundled models ship inside the wheel (package ``sparkhtr_models``, the repository's
``models/`` folder). A user model is a folder or a ``manifest.json`` path, plain or as a
``file://`` URI, readable on every executor (a shared file system or DBFS mount); an
object-store model must first be copied there (e.g. with ``SparkContext.addFile``).

>>> [m.name for m in list_models()][:1]  # doctest: +SKIP
['sparkhtr-latin-crnn']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sparkhtr.errors import ModelError

DEFAULT_MODEL = "sparkhtr-latin-crnn"
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("name", "version", "kind", "input_height", "input_channels", "normalization", "alphabet", "sha256")


@dataclass(frozen=True)
class ModelManifest:
    """What ``manifest.json`` says of a model, plus where its ONNX file lies."""

    name: str
    version: str
    kind: str
    input_height: int
    input_channels: int
    normalization: str
    alphabet: str
    sha256: str
    width_stride: int
    model_path: Path
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ref(self) -> str:
        """``name@version``, the value stored in the tables' ``recognizer`` column."""
        return f"{self.name}@{self.version}"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder_or_manifest: str | Path) -> ModelManifest:
    """Parse and validate a model folder's manifest (the ONNX file is not hashed here)."""
    path = Path(str(folder_or_manifest).removeprefix("file://"))
    manifest_path = path if path.name == MANIFEST else path / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"no {MANIFEST} at {manifest_path}")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"unreadable manifest {manifest_path}: {exc}") from exc
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ModelError(f"manifest {manifest_path} lacks {', '.join(missing)}")
    model_path = manifest_path.parent / data.get("file", "model.onnx")
    known = set(REQUIRED_KEYS) | {"width_stride", "file"}
    return ModelManifest(
        name=str(data["name"]),
        version=str(data["version"]),
        kind=str(data["kind"]),
        input_height=int(data["input_height"]),
        input_channels=int(data["input_channels"]),
        normalization=str(data["normalization"]),
        alphabet=str(data["alphabet"]),
        sha256=str(data["sha256"]).lower(),
        width_stride=int(data.get("width_stride", 4)),
        model_path=model_path,
        extra={k: v for k, v in data.items() if k not in known},
    )


def bundled_root() -> Path:
    """Folder holding the bundled model folders."""
    return Path(str(resources.files("sparkhtr_models")))


def list_models() -> list[ModelManifest]:
    """Manifests of every bundled model, sorted by name."""
    root = bundled_root()
    found = [read_manifest(p.parent) for p in sorted(root.glob(f"*/{MANIFEST}"))]
    return sorted(found, key=lambda m: m.name)


def resolve_model(name_or_path: str | None = None) -> ModelManifest:
    """A bundled model by name (default: :data:`DEFAULT_MODEL`) or a folder/manifest path or ``file://`` URI.

    >>> resolve_model("no-such-model")
    Traceback (most recent call last):
    ...
    sparkhtr.errors.ModelError: unknown model 'no-such-model'; ...
    """
    ref = name_or_path or DEFAULT_MODEL
    candidate = Path(ref.removeprefix("file://"))
    if "/" in ref or ref.endswith(".json") or candidate.is_dir():
        return read_manifest(candidate)
    folder = bundled_root() / ref
    if (folder / MANIFEST).is_file():
        return read_manifest(folder)
    names = ", ".join(m.name for m in list_models()) or "none"
    raise ModelError(f"unknown model {ref!r}; bundled models: {names}; or pass a model folder path")


def verify_model(manifest: ModelManifest) -> Path:
    """The ONNX path once its sha256 matches the manifest; :class:`ModelError` otherwise."""
    if not manifest.model_path.is_file():
        raise ModelError(f"model file missing: {manifest.model_path}")
    actual = file_sha256(manifest.model_path)
    if actual != manifest.sha256:
        raise ModelError(
            f"sha256 mismatch for {manifest.model_path}: manifest says {manifest.sha256}, file is {actual}"
        )
    return manifest.model_path
