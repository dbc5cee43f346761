"""Accuracy of a line recogniser on labelled line images: CER/WER per dataset and overall.

Reads the Parquet layout of ``../shared/data/lines/<split>/<dataset>.parquet``
(columns ``text`` and ``image`` with encoded image bytes), or any Parquet file with
those columns.

>>> report = evaluate_lines(["ab"], ["ab"], ["demo"])
>>> report["all"]["cer"], report["demo"]["lines"]
(0.0, 1)
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.metrics import cer, wer
from sparkhtr.core.recognize import LineRecognizer


def evaluate_lines(references: Sequence[str], hypotheses: Sequence[str], groups: Sequence[str]
                   ) -> dict[str, dict[str, float]]:
    """CER, WER and line counts per group and for ``all``."""
    report: dict[str, dict[str, float]] = {}
    for name in [*sorted(set(groups)), "all"]:
        ids = [i for i, g in enumerate(groups) if name in ("all", g)]
        refs = [references[i] for i in ids]
        hyps = [hypotheses[i] for i in ids]
        report[name] = {"cer": cer(refs, hyps), "wer": wer(refs, hyps), "lines": len(ids)}
    return report


def load_line_parquet(path: Path, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Grayscale images and texts of a lines Parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["text", "image"])
    rows = table.slice(0, limit).to_pydict() if limit else table.to_pydict()
    images = [np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in rows["image"]]
    return images, list(rows["text"])


def evaluate_parquets(recognizer: LineRecognizer, files: Sequence[Path], limit: int | None = None
                      ) -> dict[str, Any]:
    """Recognise every line of ``files`` (dataset = file stem) and score against normalised references.

    References go through the model alphabet's normalisation, so characters the model
    cannot emit by design are not counted twice; the report says how many were dropped.
    """
    alphabet = Alphabet(recognizer.manifest.alphabet)
    refs: list[str] = []
    hyps: list[str] = []
    groups: list[str] = []
    dropped: dict[str, int] = {}
    seconds = 0.0
    for path in files:
        images, texts = load_line_parquet(Path(path), limit)
        start = time.perf_counter()
        results = recognizer.recognize(images)
        seconds += time.perf_counter() - start
        for char, count in alphabet.dropped(texts).items():
            dropped[char] = dropped.get(char, 0) + count
        refs.extend(alphabet.normalize(t) for t in texts)
        hyps.extend(r.text for r in results)
        groups.extend([Path(path).stem] * len(texts))
    return {
        "model": recognizer.manifest.ref,
        "datasets": evaluate_lines(refs, hyps, groups),
        "lines_per_second": len(refs) / seconds if seconds else 0.0,
        "seconds": seconds,
        "dropped_reference_characters": dropped,
    }
