"""Turn the bytes of an image or PDF file into page images.

The format is sniffed from magic bytes, never from the file extension: files in a
data lake are often misnamed (``scan.tif`` that is really a JPEG). Raster formats
are decoded with Pillow, PDF pages are rendered with PDFium (``pypdfium2``).

Every failure caused by the input is a :class:`~sparkhtr.errors.DecodeError`
(corrupt, truncated, unsupported, encrypted) or its subclass
:class:`~sparkhtr.errors.LimitExceededError` (too many bytes, pixels or pages);
no other exception type escapes for bad input. Sizes are checked from the
headers *before* any pixel is decoded, so a decompression bomb costs a header
parse, not gigabytes of memory.

>>> import io
>>> from PIL import Image
>>> buf = io.BytesIO()
>>> Image.new("RGB", (40, 30), (255, 0, 0)).save(buf, "PNG")
>>> [(p.page, p.image.shape, int(p.image[0, 0])) for p in iter_pages(buf.getvalue(), "red.png")]
[(1, (30, 40), 76)]
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from sparkhtr.core.types import DecodedPage
from sparkhtr.errors import ConfigError, DecodeError, LimitExceededError, SparkHtrError

__all__ = ["DecodeLimits", "content_sha256", "iter_pages", "sniff_format"]


@dataclass(frozen=True)
class DecodeLimits:
    """Safety limits applied to one input file; exceeding one raises ``LimitExceededError``.

    The defaults are sized for document scans while keeping one Spark task's memory bounded:

    - ``max_bytes`` (256 MiB): larger than any sane multi-page scan, yet a single Spark
      binaryFile row must fit in a worker's memory (and in one Arrow batch) anyway.
    - ``max_pixels`` (100 M, per page): an A0 sheet at 300 dpi is ~ 140 M, an A3 at 600 dpi
      ~ 70 M; 100 M gray pixels is 100 MB (300 MB in RGB), the most one page may hold in a
      worker while several tasks share its memory. This limit, not Pillow's global
      ``Image.MAX_IMAGE_PIXELS`` (~ 89 M), is the one that applies.
    - ``max_pages`` (1000): a bound on the rows one file can explode into; real bound
      volumes rarely exceed a few hundred pages.

    >>> DecodeLimits(max_pages=10).max_pages
    10
    >>> DecodeLimits(max_pixels=0)
    Traceback (most recent call last):
    ...
    sparkhtr.errors.ConfigError: DecodeLimits.max_pixels must be a positive int, got 0
    """

    max_bytes: int = 256 * 2**20
    max_pixels: int = 100_000_000
    max_pages: int = 1000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_pages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"DecodeLimits.{name} must be a positive int, got {value!r}")


_DEFAULT_LIMITS = DecodeLimits()

# Pillow format names for the formats it decodes for us.
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "webp": "WEBP", "bmp": "BMP", "gif": "GIF"}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_ORIENTATION_TAG = ExifTags.Base.Orientation

# Pillow's bomb limit is a module global and PDFium is not thread-safe: both are only
# touched under these locks, and only for the duration of one call (never across a yield).
_PILLOW_LOCK = threading.RLock()
_PDFIUM_LOCK = threading.RLock()


def sniff_format(data: bytes) -> str | None:
    """Name the container format from its magic bytes, or ``None`` when unknown.

    Returns one of ``"png"``, ``"jpeg"``, ``"tiff"`` (classic and BigTIFF), ``"pdf"``,
    ``"webp"``, ``"bmp"``, ``"gif"``. A PDF header is looked for in the first 1024 bytes,
    as PDF readers do (some producers write junk before ``%PDF-``).

    >>> sniff_format(b"%PDF-1.7\\n...")
    'pdf'
    >>> sniff_format(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    >>> sniff_format(b"hello") is None
    True
    """
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if b"%PDF-" in bytes(data[:1024]):
        return "pdf"
    return None


def content_sha256(data: bytes) -> str:
    """Hex SHA-256 of the file content (the key that lets reruns skip unchanged files).

    >>> content_sha256(b"")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return hashlib.sha256(data).hexdigest()


def iter_pages(
    data: bytes,
    path: str = "",
    *,
    limits: DecodeLimits = _DEFAULT_LIMITS,
    pdf_dpi: int = 200,
    color: bool = False,
) -> Iterator[DecodedPage]:
    """Decode every page of an image or PDF file.

    Yields ``DecodedPage(page, image)`` with 1-based ``page`` numbers in file order and
    ``image`` a C-contiguous uint8 array: ``H×W`` gray by default, ``H×W×3`` RGB with
    ``color=True``. ``path`` is only used in error messages.

    - TIFF: every page (IFD) of a multi-page file. PDF: every page, rendered at
      ``pdf_dpi`` (the page box after /Rotate). PNG, JPEG, WebP, BMP, GIF: one page;
      for animated GIF/WebP that is the first frame.
    - EXIF orientation is applied (``ImageOps.exif_transpose``); 16-bit samples are
      scaled to 8 bit over their full range (``v * 255 / 65535``, where Pillow would
      clip); 1-bit, palette, CMYK, YCbCr and LAB are converted; transparency is
      composited on white (transparent regions are paper, not black).

    Errors are raised while iterating (this is a generator). Whole-file problems (empty,
    unknown format, encrypted PDF, too many bytes or pages) raise before the first page.
    A problem on one page raises when that page is reached, *after* the earlier pages
    were yielded: callers that want partial results keep the pages they already got and
    record the error for the rest. A raster file cut after its last pixel data decodes
    (no pixel is missing); a cut inside pixel data raises, it never yields a
    half-grey image. A PDF without its final ``%%EOF`` marker is treated as truncated.

    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("L", (50, 20), 200).save(buf, "TIFF", save_all=True, append_images=[Image.new("L", (30, 10))])
    >>> [(p.page, p.image.shape) for p in iter_pages(buf.getvalue(), "two.tif")]
    [(1, (20, 50)), (2, (10, 30))]
    >>> next(iter_pages(b"not an image", "notes.txt"))
    Traceback (most recent call last):
    ...
    sparkhtr.errors.DecodeError: 'notes.txt': unsupported or unrecognised format (starts with b'not an i')
    """
    if pdf_dpi <= 0:
        raise ConfigError(f"pdf_dpi must be positive, got {pdf_dpi!r}")
    label = repr(path) if path else "<bytes>"
    if not data:
        raise DecodeError(f"{label}: empty input (0 bytes)")
    if len(data) > limits.max_bytes:
        raise LimitExceededError(f"{label}: {len(data):,} bytes exceeds max_bytes={limits.max_bytes:,}")
    fmt = sniff_format(data)
    if fmt is None:
        raise DecodeError(f"{label}: unsupported or unrecognised format (starts with {bytes(data[:8])!r})")
    if fmt == "pdf":
        yield from _iter_pdf(bytes(data), label, limits, pdf_dpi, color)
    else:
        yield from _iter_pillow(bytes(data), fmt, label, limits, color)


# --------------------------------------------------------------------------- raster


@contextlib.contextmanager
def _pillow_call(where: str, fmt: str, limits: DecodeLimits) -> Iterator[None]:
    """Run a Pillow call with our pixel limit in force and its errors mapped to ours.

    Pillow checks sizes against ``Image.MAX_IMAGE_PIXELS`` (warning above it, error above
    twice it) at open and in some loaders. We check declared sizes ourselves first, so for
    the call we raise Pillow's global to at least our limit (then it only fires for images
    we would reject too) and restore it afterwards, under a lock: nothing leaks out.
    """
    with _PILLOW_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Pillow warns about e.g. corrupt EXIF in damaged files; what matters is reported as DecodeError.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        saved = Image.MAX_IMAGE_PIXELS
        if saved is not None:
            Image.MAX_IMAGE_PIXELS = max(saved, limits.max_pixels)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise LimitExceededError(f"{where}: {exc} (max_pixels={limits.max_pixels:,})") from exc
        except (SparkHtrError, MemoryError):
            raise
        except UnidentifiedImageError as exc:
            raise DecodeError(f"{where}: corrupt or unsupported {fmt.upper()} header") from exc
        except Exception as exc:  # any other failure inside Pillow means the data is bad
            detail = str(exc) or type(exc).__name__
            raise DecodeError(f"{where}: corrupt or truncated {fmt.upper()} data ({detail})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_pixels(where: str, width: int, height: int, limits: DecodeLimits) -> None:
    """Reject empty and over-large pages from their declared size, before decoding."""
    if width <= 0 or height <= 0:
        raise DecodeError(f"{where}: empty page ({width}×{height} pixels)")
    if width * height > limits.max_pixels:
        raise LimitExceededError(
            f"{where}: {width}×{height} = {width * height:,} pixels exceeds max_pixels={limits.max_pixels:,}"
        )


def _tiff_page_count(im: Image.Image, label: str, limits: DecodeLimits) -> int | None:
    """Count TIFF pages walking at most ``max_pages + 1`` directories.

    Returns ``None`` when the directory chain is corrupt: the failing page then raises
    when the caller reaches it, after the readable pages were yielded.
    """
    # Step one directory at a time: n_frames would walk the whole chain (a crafted file
    # may hold millions of tiny directories), and a far seek leaves Pillow's count wrong.
    for index in range(1, limits.max_pages + 1):
        try:
            im.seek(index)
        except EOFError:
            im.seek(0)
            return index
        except Exception:  # broken chain: located page by page instead
            return None
    raise LimitExceededError(f"{label}: more than max_pages={limits.max_pages:,} pages")


def _iter_pillow(data: bytes, fmt: str, label: str, limits: DecodeLimits, color: bool) -> Iterator[DecodedPage]:
    """Pages of a raster file; only TIFF has more than one."""
    pillow_format = _PILLOW_FORMATS[fmt]
    with _pillow_call(label, fmt, limits):
        im = Image.open(io.BytesIO(data), formats=[pillow_format])
        total = _tiff_page_count(im, label, limits) if fmt == "tiff" else 1
        if total is None:
            # The failed walk left Pillow's frame bookkeeping half-updated: start afresh.
            im = Image.open(io.BytesIO(data), formats=[pillow_format])
    try:
        index = 0
        while total is None or index < total:
            where = f"{label} page {index + 1}"
            with _pillow_call(where, fmt, limits):
                if index:
                    try:
                        im.seek(index)
                    except EOFError:
                        if total is None:
                            break
                        raise
                if index >= limits.max_pages:
                    raise LimitExceededError(f"{label}: more than max_pages={limits.max_pages:,} pages")
                _check_pixels(where, im.width, im.height, limits)
                im.load()
                array = _pil_to_array(_apply_exif_orientation(im), color)
            yield DecodedPage(page=index + 1, image=array)
            index += 1
    finally:
        im.close()


def _apply_exif_orientation(im: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF Orientation tag says; copy nothing when it is absent or 1."""
    try:
        orientation = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block must not cost the page: keep stored orientation
        return im
    if orientation not in range(2, 9):
        return im
    return ImageOps.exif_transpose(im)


def _pil_to_array(im: Image.Image, color: bool) -> np.ndarray:
    """Pillow image of any mode → uint8 gray ``H×W`` or RGB ``H×W×3``."""
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _gray_output(_scale_to_uint8(np.asarray(im)), color)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[..., 3:]
        # Composite on white: transparent areas of a scan or export are paper.
        rgb = ((rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        return rgb if color else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    target = "RGB" if color else "L"
    if mode != target:
        # Pillow converts 1, L, P straight to either target; other modes (CMYK, YCbCr,
        # LAB, HSV, RGBX) go through RGB.
        if mode not in ("1", "L", "P", "RGB"):
            im = im.convert("RGB")
        im = im.convert(target)
    return np.ascontiguousarray(np.array(im, dtype=np.uint8))


def _gray_output(gray: np.ndarray, color: bool) -> np.ndarray:
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) if color else gray


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map 16-bit, 32-bit int and float samples to uint8 without clipping.

    16-bit samples (and ``I`` images whose values fit 0..65535, e.g. 16-bit PNG) use the
    full 16-bit range, so tones keep their meaning. Floats in [0, 1] are scaled by 255.
    Anything else is stretched from its minimum to its maximum.
    """
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(values * 255.0).astype(np.uint8)
        return _stretch(values, lo, hi)
    wide = values.astype(np.int64)
    lo, hi = int(wide.min()), int(wide.max())
    if lo >= 0 and hi <= 65535:
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return _stretch(wide.astype(np.float64), float(lo), float(hi))


def _stretch(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.full(values.shape, 255 if lo > 0 else 0, np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


# --------------------------------------------------------------------------- PDF


def _iter_pdf(data: bytes, label: str, limits: DecodeLimits, dpi: int, color: bool) -> Iterator[DecodedPage]:
    """Render each PDF page with PDFium at ``dpi``."""
    # PDFium silently repairs truncated files (rebuilding the xref), dropping what was
    # cut off; a missing final %%EOF (readers accept it within the last 1 KiB) is how a
    # truncated upload shows.
    if b"%%EOF" not in data[-1024:]:
        raise DecodeError(f"{label}: truncated PDF (no %%EOF marker at the end)")
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code == pdfium_c.FPDF_ERR_PASSWORD:
                raise DecodeError(f"{label}: encrypted PDF (a password is required)") from exc
            if code == pdfium_c.FPDF_ERR_SECURITY:
                raise DecodeError(f"{label}: PDF uses an unsupported security handler") from exc
            raise DecodeError(f"{label}: corrupt PDF ({exc})") from exc
    try:
        with _PDFIUM_LOCK:
            count = len(pdf)
        if count == 0:
            raise DecodeError(f"{label}: PDF has no pages")
        if count > limits.max_pages:
            raise LimitExceededError(f"{label}: {count:,} pages exceeds max_pages={limits.max_pages:,}")
        scale = dpi / 72.0  # PDF user space is 1/72 inch
        for index in range(count):
            where = f"{label} page {index + 1}"
            with _PDFIUM_LOCK:
                array = _render_pdf_page(pdf, index, where, scale, limits, color)
            yield DecodedPage(page=index + 1, image=array)
    finally:
        with _PDFIUM_LOCK:
            pdf.close()


def _render_pdf_page(
    pdf: pdfium.PdfDocument, index: int, where: str, scale: float, limits: DecodeLimits, color: bool
) -> np.ndarray:
    try:
        page = pdf[index]
        try:
            width_pt, height_pt = page.get_size()  # already swapped for /Rotate 90 and 270
            if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
                raise DecodeError(f"{where}: invalid page box ({width_pt}×{height_pt} pt)")
            # pypdfium2 sizes the bitmap with ceil(): check exactly what would be allocated.
            _check_pixels(where, math.ceil(width_pt * scale), math.ceil(height_pt * scale), limits)
            bitmap = page.render(scale=scale, grayscale=not color, rev_byteorder=True)
            try:
                # Copy: the bitmap's buffer is freed when it is closed.
                array = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
            finally:
                bitmap.close()
        finally:
            page.close()
    except pdfium.PdfiumError as exc:
        raise DecodeError(f"{where}: corrupt PDF page ({exc})") from exc
    if color:
        if array.ndim == 2:
            array = cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
        return np.ascontiguousarray(array[..., :3])
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(array)
