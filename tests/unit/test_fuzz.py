"""Property-based fuzzing of decode, preprocess and segmentation: only sparkhtr's typed errors may escape.

The default runs keep ``max_examples`` moderate (a few seconds each); the ``slow``
variants run thousands of examples. Coverage-guided fuzzing with atheris is in
``tests/fuzz/fuzz_decode.py``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparkhtr.core.decode import DecodeLimits, iter_pages, sniff_format
from sparkhtr.core.lines import normalize_line
from sparkhtr.core.preprocess import preprocess_page
from sparkhtr.core.segment import segment_lines, segment_whole_image
from sparkhtr.errors import SparkHtrError
from tests.helpers.badinputs import fuzz_seeds

# Small limits keep a lucky mutation (a header now declaring 60000 × 60000) cheap to reject.
LIMITS = DecodeLimits(max_pixels=4_000_000, max_pages=20, max_render_seconds=30)
QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])


SEEDS = fuzz_seeds()


def assert_pages_or_typed_error(data: bytes, color: bool = False) -> None:
    """Decode ``data``: valid pages, or a SparkHtrError; anything else fails the property."""
    try:
        for page in iter_pages(data, "fuzz.bin", limits=LIMITS, pdf_dpi=36, color=color):
            image = page.image
            assert image.dtype == np.uint8 and image.flags.c_contiguous
            assert image.ndim == (3 if color else 2) and min(image.shape[:2]) >= 1
            assert image.shape[0] * image.shape[1] <= LIMITS.max_pixels
            assert 1 <= page.page <= LIMITS.max_pages
    except SparkHtrError as exc:
        assert str(exc)  # a message, always


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed file with a few byte flips, insertions, deletions, a repeated slice and/or a cut."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "int32"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 32))]
        elif kind == "repeat":
            data[at:at] = data[at: at + draw(st.integers(1, 64))] * draw(st.integers(1, 4))
        elif kind == "int32" and len(data) >= at + 4:  # sizes, offsets and counts live in 16/32-bit fields
            data[at: at + 4] = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])).to_bytes(4, "big")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"II+\x00", b"RIFF\x00\x00\x00\x00WEBP",
          b"GIF89a", b"BM", b"%PDF-1.7\n", b""]


# ----------------------------------------------------------------------------- decode


@QUICK
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    assert_pages_or_typed_error(data)


@QUICK
@given(st.sampled_from(MAGICS), st.binary(max_size=1024))
def test_random_bytes_behind_a_magic_number(magic: bytes, rest: bytes) -> None:
    data = magic + rest
    assert sniff_format(data) in (None, "png", "jpeg", "tiff", "webp", "gif", "bmp", "pdf")
    assert_pages_or_typed_error(data)


@QUICK
@given(mutated(), st.booleans())
def test_mutated_valid_files(data: bytes, color: bool) -> None:
    assert_pages_or_typed_error(data, color)


@QUICK
@given(st.sampled_from(sorted(SEEDS)), st.integers(0, 2**16))
def test_pdf_wrappers_and_zlib_payloads(seed: str, salt: int) -> None:
    """A raster seed deflated into a PDF stream, or a PDF glued after junk: format sniffing holds up."""
    junk = bytes([salt % 256]) * (salt % 900)
    assert_pages_or_typed_error(junk + SEEDS[seed])
    assert_pages_or_typed_error(b"%PDF-1.4\n" + zlib.compress(SEEDS[seed]) + b"\n%%EOF\n")


@pytest.mark.slow
@SLOW
@given(mutated(), st.booleans())
def test_mutated_valid_files_long(data: bytes, color: bool) -> None:
    assert_pages_or_typed_error(data, color)


@pytest.mark.slow
@SLOW
@given(st.sampled_from(MAGICS), st.binary(max_size=4096))
def test_random_bytes_behind_a_magic_number_long(magic: bytes, rest: bytes) -> None:
    assert_pages_or_typed_error(magic + rest)


# ----------------------------------------------------------------------------- preprocess, segment


@st.composite
def pages(draw: st.DrawFn, max_side: int = 400) -> np.ndarray:
    """uint8 gray or RGB arrays of odd shapes: constant, noise, or a few dark strokes on paper."""
    height = draw(st.integers(0, max_side))
    width = draw(st.integers(0, max_side))
    channels = draw(st.sampled_from([None, 1, 3]))
    shape = (height, width) if channels is None else (height, width, channels)
    kind = draw(st.sampled_from(["constant", "noise", "strokes", "array"]))
    if kind == "constant":
        return np.full(shape, draw(st.integers(0, 255)), np.uint8)
    if kind == "noise":
        return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, shape, dtype=np.uint8)
    if kind == "array":
        return draw(hnp.arrays(np.uint8, (min(height, 40), min(width, 40), *shape[2:])))
    image = np.full(shape, draw(st.integers(150, 255)), np.uint8)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(0, 12))):
        y, x = int(rng.integers(0, max(1, height))), int(rng.integers(0, max(1, width)))
        image[y: y + int(rng.integers(1, 6)), x: x + int(rng.integers(1, 200))] = int(rng.integers(0, 100))
    return image


def assert_core_path(image: np.ndarray, deskew: bool = True, max_skew: float = 15.0) -> None:
    try:
        page = preprocess_page(image, deskew=deskew, max_skew=max_skew)
        assert page.image.dtype == np.uint8 and page.image.ndim == 2
        # the skew removed: quarter turns (a page read as sideways or upside down) plus at most max_skew
        quarter = 90.0 * round(page.skew_degrees / 90.0)
        assert quarter in (-90.0, 0.0, 90.0, 180.0)
        assert abs(page.skew_degrees - quarter) <= max(max_skew, 0.0) + 1e-9
        for line in segment_lines(page.image) + segment_whole_image(page.image):
            assert line.crop.dtype == np.uint8 and line.crop.ndim == 2 and line.crop.size > 0
            assert line.bbox.x0 < line.bbox.x1 and line.bbox.y0 < line.bbox.y1
            x = normalize_line(line.crop, 48)
            assert x.shape[0] == 48 and np.isfinite(x).all()
    except SparkHtrError as exc:
        assert str(exc)


@QUICK
@given(pages(), st.booleans(), st.floats(0.0, 45.0))
def test_preprocess_and_segment_odd_arrays(image: np.ndarray, deskew: bool, max_skew: float) -> None:
    assert_core_path(image, deskew, max_skew)


@pytest.mark.parametrize("shape", [(1, 1), (1, 60_000), (60_000, 1), (3, 60_000), (60_000, 3), (2, 9), (9, 2),
                                   (8, 8), (7, 40_000), (40_000, 7), (20, 30_000), (4000, 3000)])
@pytest.mark.parametrize("value", [0, 128, 255])
def test_constant_and_extreme_shapes(shape: tuple[int, int], value: int) -> None:
    assert_core_path(np.full(shape, value, np.uint8))


def test_extreme_strip_with_strokes() -> None:
    strip = np.full((24, 50_000), 240, np.uint8)
    strip[8:14, ::7] = 10
    assert_core_path(strip)
    assert_core_path(np.ascontiguousarray(strip.T))


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(10_000, 10_000), (1_666, 60_000), (60_000, 1_666)])
def test_largest_pages_within_the_pixel_limit(shape: tuple[int, int]) -> None:
    image = np.full(shape, 235, np.uint8)
    image[::97, :] = 20  # rulings everywhere
    assert_core_path(image)


@pytest.mark.slow
@SLOW
@given(pages(max_side=1200), st.booleans(), st.floats(0.0, 45.0))
def test_preprocess_and_segment_odd_arrays_long(image: np.ndarray, deskew: bool, max_skew: float) -> None:
    assert_core_path(image, deskew, max_skew)


def test_skew_stays_within_max_skew_after_rounding() -> None:
    """Found by the long run: a skew clamped to -12.875 was rounded to -12.88, beyond max_skew=12.875."""
    from PIL import Image

    from sparkhtr.core.preprocess import estimate_skew
    from tests.helpers.badinputs import text_page

    page = np.asarray(Image.fromarray(text_page(4)).rotate(-14, expand=True, fillcolor=245))
    assert estimate_skew(page, 12.875) == -12.875
    assert estimate_skew(page, 30.0) < -13.5


def test_float_tiff_with_a_signalling_nan_decodes_quietly() -> None:
    """Found by atheris: widening a signalling NaN warned ("invalid value encountered in cast")."""
    import io
    import warnings

    from PIL import Image

    values = np.array([[0.5, 2.0, 3.0]], np.float32)
    values.view(np.uint32)[0, 0] = 0x7F800001  # a signalling NaN: becomes 0, the rest is stretched
    buf = io.BytesIO()
    Image.fromarray(values, "F").save(buf, "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (page,) = iter_pages(buf.getvalue(), "snan.tif")
    assert page.image.tolist() == [[0, 170, 255]]
