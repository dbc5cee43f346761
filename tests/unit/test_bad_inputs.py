"""Every file of the generated bad-input corpus through the pure core path (no Spark).

decode → preprocess → segment (and recognition with the bundled model on a few):
each input yields pages or a typed sparkhtr error with a clear one-line message,
and the bombs stay within a memory bound (measured in a subprocess).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sparkhtr.core.decode as decode_module
from sparkhtr.core.decode import DecodeLimits, iter_pages
from sparkhtr.core.preprocess import preprocess_page
from sparkhtr.core.segment import segment_lines, segment_whole_image
from sparkhtr.core.types import SegmentedLine
from sparkhtr.errors import DecodeError, LimitExceededError, SparkHtrError
from tests.helpers.badinputs import (
    CORPUS_LIMITS,
    BadInput,
    build_corpus,
    encrypted_pdf,
    many_page_pdf,
    nested_forms_pdf,
)

ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = ["empty", "truncated", "misnamed", "not-image", "bomb", "oversize", "encrypted", "mode", "extreme",
              "animated", "exif", "name"]
# ~6 s to exhaust the default render budget: covered here by test_pdf_render_budget_follows_max_pixels
# (a smaller budget), in full by the slow per-bomb test and the Spark test.
SLOW_NAMES = {"bomb_pdf_nested_forms_10^8.pdf"}


@functools.cache
def corpus() -> tuple[BadInput, ...]:
    return tuple(build_corpus())


def entries(category: str) -> list[BadInput]:
    return [entry for entry in corpus() if entry.category == category]


def decode(entry: BadInput, color: bool = False) -> list[np.ndarray] | SparkHtrError:
    """The pages of ``entry``, or the typed error it raised; any other exception propagates."""
    try:
        return [page.image for page in iter_pages(entry.data, entry.name, limits=CORPUS_LIMITS, color=color)]
    except SparkHtrError as exc:
        return exc


def check_outcome(entry: BadInput, outcome: list[np.ndarray] | SparkHtrError, color: bool) -> str | None:
    """What is wrong with ``outcome`` for ``entry`` (``None``: nothing)."""
    if isinstance(outcome, SparkHtrError):
        message = str(outcome)
        if entry.expect == "ok":
            return f"expected pages, got {type(outcome).__name__}: {message}"
        if not isinstance(outcome, entry.error):
            return f"expected {entry.error.__name__}, got {type(outcome).__name__}: {message}"
        if repr(entry.name) not in message or "\n" in message or "\r" in message:
            return f"message does not name the file on one line: {message!r}"
        if entry.match and entry.match not in message:
            return f"message lacks {entry.match!r}: {message}"
        return None
    if entry.expect == "error":
        return f"expected {entry.error.__name__}, got {len(outcome)} page(s)"
    if not outcome:
        return "no pages and no error"
    if entry.pages is not None and len(outcome) != entry.pages:
        return f"expected {entry.pages} pages, got {len(outcome)}"
    for image in outcome:
        want_ndim, channels = (3, 3) if color else (2, None)
        if image.dtype != np.uint8 or image.ndim != want_ndim or min(image.shape[:2]) < 1 or (
                channels and image.shape[2] != channels) or not image.flags.c_contiguous:
            return f"bad page array {image.dtype} {image.shape}"
    if entry.reference is not None and not color:
        page = outcome[0]
        if page.shape != entry.reference.shape:
            return f"page shape {page.shape}, reference {entry.reference.shape}"
        diff = float(np.abs(page.astype(np.int16) - entry.reference.astype(np.int16)).mean())
        if diff > entry.tolerance:
            return f"differs from the reference by {diff:.2f} on average (> {entry.tolerance})"
    return None


def test_corpus_is_generated_small_and_complete() -> None:
    items = corpus()
    assert len({entry.name for entry in items}) == len(items)
    assert sorted({entry.category for entry in items}) == sorted(CATEGORIES)
    assert sum(len(entry.data) for entry in items) < 6 * 2**20
    assert all(entry.expect in ("ok", "error", "either") for entry in items)


@pytest.mark.parametrize("category", CATEGORIES)
def test_decode_gives_pages_or_a_typed_error(category: str) -> None:
    problems = []
    for entry in entries(category):
        for color in (False, True):
            if entry.name in SLOW_NAMES:
                continue
            problem = check_outcome(entry, decode(entry, color), color)
            if problem:
                problems.append(f"{entry.name!r} (color={color}): {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("category", ["bomb", "encrypted", "mode", "extreme"])
def test_pdf_in_process_path_gives_the_same_outcomes(category: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the forked renderer (non-Linux), every PDF that needs no memory budget behaves the same."""
    monkeypatch.setattr(decode_module, "PDF_ISOLATION", False)
    problems = []
    for entry in entries(category):
        if entry.data[:5] == b"%PDF-" and entry.name not in SLOW_NAMES:
            problem = check_outcome(entry, decode(entry), False)
            if problem:
                problems.append(f"{entry.name!r}: {problem}")
    assert not problems, "\n".join(problems)


def _core_path(image: np.ndarray) -> tuple[list[SegmentedLine], list[SegmentedLine]]:
    page = preprocess_page(image)
    assert page.image.dtype == np.uint8 and page.image.ndim == 2
    return segment_lines(page.image), segment_whole_image(page.image)


@pytest.mark.parametrize("category", [c for c in CATEGORIES if c not in ("empty", "not-image", "oversize")])
def test_preprocess_and_segment_every_decoded_page(category: str) -> None:
    problems, seen = [], set()
    for entry in entries(category):
        if entry.name in SLOW_NAMES or entry.data in seen:  # odd names share their content: segment it once
            continue
        seen.add(entry.data)
        outcome = decode(entry)
        if isinstance(outcome, SparkHtrError):
            continue
        for number, image in enumerate(outcome[:3], 1):  # tiff_1000_pages: 1000 identical 1×1 pages
            try:
                lines, whole = _core_path(image)
            except SparkHtrError:
                continue
            except Exception as exc:  # the point is to report any other exception
                problems.append(f"{entry.name!r} page {number}: {type(exc).__name__}: {exc}")
                continue
            for line in [*lines, *whole]:
                if line.crop.dtype != np.uint8 or line.crop.ndim != 2 or line.crop.size == 0:
                    problems.append(f"{entry.name!r} page {number}: bad crop {line.crop.dtype} {line.crop.shape}")
            if len(whole) != 1:
                problems.append(f"{entry.name!r} page {number}: whole-image mode gave {len(whole)} lines")
            if category == "name" and len(lines) != 2:
                problems.append(f"{entry.name!r}: {len(lines)} lines on the two-line page")
    assert not problems, "\n".join(problems)


def test_recognition_with_the_bundled_model_on_a_few_inputs() -> None:
    from sparkhtr.core.recognize import LineRecognizer
    from sparkhtr.registry import resolve_model

    recognizer = LineRecognizer(resolve_model(), device="cpu", threads=1)
    chosen = ["with space.png", "palette_transparent.png", "exif_orientation_6.jpg", "wide_text_30000x40.png",
              "one_pixel.png", "tall_3x60000.png", "encrypted_owner_only.pdf"]
    crops = []
    for entry in (e for e in corpus() if e.name in chosen):
        (image, *_) = decode(entry)  # type: ignore[misc]
        lines, whole = _core_path(image)
        crops += [line.crop for line in lines] + [line.crop for line in whole]
    results = recognizer.recognize(crops)
    assert len(results) == len(crops) >= len(chosen)
    assert all(isinstance(r.text, str) and 0.0 <= r.confidence <= 1.0 for r in results)
    assert sum(bool(r.text) for r in results) >= 2  # the text pages give text


def test_encrypted_pdf_is_real_encryption() -> None:
    """The corpus PDF needs its password: with it PDFium renders the box, without it decoding fails."""
    import pypdfium2 as pdfium

    data = encrypted_pdf(b"secret")
    with pytest.raises(DecodeError, match="password"):
        list(iter_pages(data, "locked.pdf"))
    pdf = pdfium.PdfDocument(data, password="secret")
    try:
        bitmap = pdf[0].render(scale=1.0, grayscale=True)
        image = bitmap.to_numpy()
    finally:
        pdf.close()
    assert image.shape == (100, 200) and int(image[25:45, 15:85].max()) < 40 and int(image[80:, 150:].min()) > 200


def test_pdf_render_budget_follows_max_pixels() -> None:
    """A smaller max_pixels gives a smaller budget: the nested-forms bomb stops sooner."""
    limits = DecodeLimits(max_pixels=1_000_000)
    assert decode_module.render_budget(limits) == 12 * 1_000_000 + 256 * 2**20
    with pytest.raises(LimitExceededError, match="memory budget of 267 MiB"):
        list(iter_pages(nested_forms_pdf(8, 10), "forms.pdf", limits=limits))


def test_pdf_render_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    def slow(*args: object, **kwargs: object) -> None:
        time.sleep(30)

    monkeypatch.setattr(decode_module, "_check_embedded_images", slow)
    started = time.monotonic()
    with pytest.raises(LimitExceededError, match=r"max_render_seconds=0\.5"):
        list(iter_pages(build_pdf(), "slow.pdf", limits=DecodeLimits(max_render_seconds=0.5)))
    assert time.monotonic() - started < 10


def test_pdf_child_crash_is_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    monkeypatch.setattr(decode_module, "_check_embedded_images",
                        lambda *args: os.kill(os.getpid(), signal.SIGSEGV))
    with pytest.raises(DecodeError, match=r"PDFium crashed \(SIGSEGV\)"):
        list(iter_pages(build_pdf(), "crash.pdf"))


def test_pdf_stopping_early_leaves_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    pages = iter_pages(build_pdf(pages=3), "three.pdf")
    assert next(pages).page == 1
    pages.close()  # the child is killed and reaped: no zombie left
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)


def build_pdf(pages: int = 1) -> bytes:
    return many_page_pdf(pages, size=144)


# ----------------------------------------------------------------------------- memory of the bombs

_MEASURE = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, sys.argv[1])
    from sparkhtr.core.decode import iter_pages
    from sparkhtr.errors import SparkHtrError
    from tests.helpers.badinputs import CORPUS_LIMITS

    peak = lambda who: resource.getrusage(who).ru_maxrss // 1024  # MiB
    base = peak(resource.RUSAGE_SELF)  # after the imports, before any file is read
    out = {"base": base, "files": {}}
    for path in json.loads(sys.argv[2]):
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            result = f"ok {sum(1 for _ in iter_pages(data, path, limits=CORPUS_LIMITS))}"
        except SparkHtrError as exc:
            result = type(exc).__name__
        del data
        out["files"][path] = [result, peak(resource.RUSAGE_SELF) - base, peak(resource.RUSAGE_CHILDREN)]
    print(json.dumps(out))
""")


def measure_peak_memory(chosen: list[BadInput], folder: Path) -> dict:
    """Decode ``chosen`` (written to ``folder``) in a fresh interpreter, in order.

    Returns the interpreter's RSS after its imports (``base``, MiB) and, per file name,
    ``[outcome, growth of the peak RSS since base, peak RSS of any PDF child so far]``.
    """
    paths = []
    for number, entry in enumerate(chosen):
        paths.append(str(folder / f"{number:03d}"))
        Path(paths[-1]).write_bytes(entry.data)
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), json.dumps(paths)], capture_output=True,
                            text=True, timeout=300, check=True)
    measured = json.loads(result.stdout)
    measured["files"] = {entry.name: measured["files"][path] for entry, path in zip(chosen, paths, strict=True)}
    return measured


BOMB_BOUND_MIB = 64  # the decoding process; each PDF child stays within the render budget


def test_bombs_are_rejected_before_allocating(tmp_path: Path) -> None:
    """All bombs (and beyond-limit extremes) in one process: its peak RSS grows by less than 64 MiB.

    The peak only grows, so the last reading bounds every file. The nested-forms bomb
    is left to the slow per-file test: its child uses its whole budget on purpose.
    """
    chosen = [e for e in corpus() if e.category in ("bomb", "extreme", "oversize") and e.name not in SLOW_NAMES]
    measured = measure_peak_memory(chosen, tmp_path)
    growth = max(rss for _, rss, _ in measured["files"].values())
    assert growth < BOMB_BOUND_MIB, measured
    children = max(child for _, _, child in measured["files"].values())
    assert children < BOMB_BOUND_MIB + measured["base"], measured


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in corpus() if e.category == "bomb"])
def test_each_bomb_peak_memory(name: str, tmp_path: Path) -> None:
    """One fresh process per bomb: its own peak, and its PDF child's within the render budget."""
    measured = measure_peak_memory([e for e in corpus() if e.name == name], tmp_path)
    result, rss, child = measured["files"][name]
    print(f"{name}: {result}, decoder +{rss} MiB, PDF child peak {child} MiB (base {measured['base']} MiB)")
    assert rss < BOMB_BOUND_MIB
    assert child < measured["base"] + decode_module.render_budget(CORPUS_LIMITS) // 2**20


def test_deskew_of_a_long_strip_does_not_blow_up_the_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    """A strip skewed by 12° would grow 4× when deskewed: past the bound, it is left as it is."""
    import cv2
    from PIL import Image

    import sparkhtr.core.preprocess as preprocess_module

    strip = np.full((400, 6000), 245, np.uint8)
    for k in range(3):
        for x in range(0, 6000, 500):
            cv2.putText(strip, "words here", (x + 20, 100 + 120 * k), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.5, 20, 3)
    skewed = np.asarray(Image.fromarray(strip).rotate(12, fillcolor=245))
    turned = preprocess_page(skewed)
    assert turned.skew_degrees > 10 and turned.image.size > 4 * skewed.size  # small enough: deskewed
    monkeypatch.setattr(preprocess_module, "_DESKEW_FREE_PIXELS", 1_000_000)
    kept = preprocess_page(skewed)
    assert kept.skew_degrees == 0.0 and kept.image.shape == skewed.shape
