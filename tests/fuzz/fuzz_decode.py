"""Coverage-guided fuzzing of ``iter_pages`` (and the pages it yields through preprocess) with atheris.

Any exception other than a ``SparkHtrError`` is a crash: libFuzzer stops and writes
the input to ``crash-<sha1>``. Python code of sparkhtr and Pillow is instrumented
for coverage; the C libraries (libpng, libjpeg, libtiff, libwebp, PDFium) run
uninstrumented, so their paths are reached through the Python code that drives them.

    pip install atheris
    python tests/fuzz/fuzz_decode.py -max_total_time=120 -timeout=30
    python tests/fuzz/fuzz_decode.py crash-1234abcd        # replay one input

A PDF child that PDFium aborts (out of its memory budget) may print "Fatal Python
error: ... GIL is released" under atheris: libFuzzer's hooks, inherited by the fork,
report the abort; the parent still gets its LimitExceededError and fuzzing goes on.

Without a corpus folder in the arguments, the seeds (every small file of the
bad-input corpus and the valid files of ``tests/unit/test_fuzz.py``) are written to
a temporary folder and used as the starting corpus.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# Set by main(), after atheris has instrumented the imports (importing this module does nothing).
LIMITS = iter_pages = preprocess_page = SparkHtrError = None
SEED_MAX_BYTES = 64 * 1024


def test_one_input(data: bytes) -> None:
    color = bool(data) and data[-1] & 1 == 1
    try:
        for page in iter_pages(data, "fuzz.bin", limits=LIMITS, pdf_dpi=36, color=color):
            image = page.image
            if image.dtype.name != "uint8" or image.ndim != (3 if color else 2) or min(image.shape[:2]) < 1:
                raise AssertionError(f"bad page array {image.dtype} {image.shape}")
            if image.size <= 250_000:  # keep executions fast: preprocess small pages only
                preprocess_page(image)
    except SparkHtrError:
        pass


def write_seeds(folder: Path) -> int:
    from tests.helpers.badinputs import build_corpus, fuzz_seeds

    # Not the 10^8 nested-forms bomb: its mutants keep PDFium busy up to the time limit, ten executions a second.
    seeds = [e.data for e in build_corpus() if 0 < len(e.data) <= SEED_MAX_BYTES and "nested_forms" not in e.name]
    seeds += list(fuzz_seeds().values())
    unique = list(dict.fromkeys(seeds))
    for number, data in enumerate(unique):
        (folder / f"seed-{number:04d}").write_bytes(data)
    return len(unique)


def main() -> None:
    global LIMITS, iter_pages, preprocess_page, SparkHtrError
    import atheris

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.helpers, from any working folder

    with atheris.instrument_imports(include=["sparkhtr", "PIL"]):
        from sparkhtr.core.decode import DecodeLimits, iter_pages
        from sparkhtr.core.preprocess import preprocess_page
        from sparkhtr.errors import SparkHtrError
    # Small limits: a mutated header declaring a huge size is rejected at once, not decoded.
    LIMITS = DecodeLimits(max_pixels=4_000_000, max_pages=20, max_render_seconds=5)
    argv = list(sys.argv)
    if not any(Path(arg).exists() for arg in argv[1:] if not arg.startswith("-")):
        folder = Path(tempfile.mkdtemp(prefix="sparkhtr-fuzz-"))
        print(f"{write_seeds(folder)} seeds in {folder}", file=sys.stderr)
        argv.append(str(folder))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
