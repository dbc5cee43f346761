"""Turn the bytes of an image or PDF file into page images.

The format is sniffed from magic bytes, never from the file extension: files in a
data lake are often misnamed (``scan.tif`` that is really a JPEG). Raster formats
are decoded with Pillow, PDF pages are rendered with PDFium (``pypdfium2``).

Every failure caused by the input is a :class:`~sparkhtr.errors.DecodeError`
(corrupt, truncated, unsupported, encrypted) or its subclass
:class:`~sparkhtr.errors.LimitExceededError` (too many bytes, pixels or pages, a
PDF page too slow or too big to render); no other exception type escapes for bad
input. Sizes are checked from the headers *before* any pixel is decoded, so a
decompression bomb costs a header parse, not gigabytes of memory.

Limits (:class:`DecodeLimits`, the ``maxBytes`` / ``maxPixels`` / ``maxPages`` /
``maxRenderSeconds`` Params of ``BinaryToImage``) and why these defaults:

- ``max_bytes`` = 256 MiB per file, checked first. Spark reads a whole file into
  one ``binaryFile`` row (2 GiB at most) and ships it to Python in an Arrow batch:
  the row must fit a worker with room to spare. A 600 dpi colour A4 page is about
  25 MB as PNG and 3 MB as JPEG, so this admits ten-page uncompressed scans and
  hundred-page JPEG-in-PDF volumes while keeping one row far from the 2 GiB cap.
- ``max_pixels`` = 100 M per page, and per image embedded in a PDF page. A0 at
  300 dpi is 140 M, A3 at 600 dpi 70 M, A4 at 600 dpi 35 M; 100 M gray pixels is
  100 MB per page (300 MB as RGB), the most one page may hold while several tasks
  share a worker. It replaces Pillow's global 89 M bomb limit, checked from the
  header before decoding; a PDF page's size is checked from its box at the
  rendering dpi, its embedded images from their dictionaries, before rendering.
- ``max_pages`` = 1000 per file: a bound on the rows one file explodes into; bound
  volumes rarely pass a few hundred pages. TIFF directories are walked only that
  far (a crafted file may chain millions); a PDF's page count comes from PDFium.
- ``max_render_seconds`` = 120 per PDF page. On Linux PDF pages are rendered in a
  forked child process whose address space may grow by 12 bytes per ``max_pixels``
  plus 256 MiB (1.4 GiB): a few hundred bytes of nested form XObjects make PDFium
  parse millions of objects before any check can run, and PDFium aborts its process
  when memory runs out. A child that runs out of memory or time becomes an error for
  that file, not a lost Spark worker. Raster decoding needs no time limit: its cost
  is bounded by ``max_pixels``.

>>> import io
>>> from PIL import Image
>>> buf = io.BytesIO()
>>> Image.new("RGB", (40, 30), (255, 0, 0)).save(buf, "PNG")
>>> [(p.page, p.image.shape, int(p.image[0, 0])) for p in iter_pages(buf.getvalue(), "red.png")]
[(1, (30, 40), 76)]
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import hashlib
import io
import math
import os
import select
import signal
import struct
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from sparkhtr.core.types import DecodedPage
from sparkhtr.errors import ConfigError, DecodeError, LimitExceededError, SparkHtrError

try:
    import resource
except ImportError:  # not on Windows: PDFs are rendered in process there
    resource = None  # type: ignore[assignment]

__all__ = ["DecodeLimits", "content_sha256", "iter_pages", "sniff_format"]


@dataclass(frozen=True)
class DecodeLimits:
    """Safety limits applied to one input file; exceeding one raises ``LimitExceededError``.

    The defaults and the reasons for them are in this module's docstring: a 256 MiB
    file, a 100 M pixel page (or image embedded in a PDF page), 1000 pages, 120 s to
    load and render one PDF page.

    >>> DecodeLimits(max_pages=10).max_pages
    10
    >>> DecodeLimits(max_pixels=0)
    Traceback (most recent call last):
    ...
    sparkhtr.errors.ConfigError: DecodeLimits.max_pixels must be a positive int, got 0
    >>> DecodeLimits(max_render_seconds=float("nan"))
    Traceback (most recent call last):
    ...
    sparkhtr.errors.ConfigError: DecodeLimits.max_render_seconds must be a positive number, got nan
    """

    max_bytes: int = 256 * 2**20
    max_pixels: int = 100_000_000
    max_pages: int = 1000
    max_render_seconds: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_pages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"DecodeLimits.{name} must be a positive int, got {value!r}")
        seconds = self.max_render_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
            raise ConfigError(f"DecodeLimits.max_render_seconds must be a positive number, got {seconds!r}")


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

# Render PDFs in a forked child with a memory budget and a time limit (Linux only; see
# _iter_pdf_isolated). Tests switch it off to cover the in-process path.
PDF_ISOLATION = sys.platform.startswith("linux") and resource is not None


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
        with np.errstate(invalid="ignore"):  # signalling NaNs (fuzzed TIFFs) warn when widened
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
    """Render each PDF page with PDFium at ``dpi``: in a child process where possible."""
    # PDFium silently repairs truncated files (rebuilding the xref), dropping what was
    # cut off; a missing final %%EOF (readers accept it within the last 1 KiB) is how a
    # truncated upload shows.
    if b"%%EOF" not in data[-1024:]:
        raise DecodeError(f"{label}: truncated PDF (no %%EOF marker at the end)")
    if PDF_ISOLATION and hasattr(os, "fork"):
        yield from _iter_pdf_isolated(data, label, limits, dpi, color)
    else:
        yield from _iter_pdf_here(data, label, limits, dpi, color)


def _iter_pdf_here(data: bytes, label: str, limits: DecodeLimits, dpi: int, color: bool) -> Iterator[DecodedPage]:
    """Render in this process (no memory budget, no time limit: see :func:`_iter_pdf_isolated`)."""
    for page in _iter_pdf_bitmaps(data, label, limits, dpi, color):
        yield DecodedPage(page=page.page, image=_finish_bitmap(page.image, color))


def _iter_pdf_bitmaps(data: bytes, label: str, limits: DecodeLimits, dpi: int, color: bool
                      ) -> Iterator[DecodedPage]:
    """Each page as PDFium renders it (gray, or RGB with a fourth channel): no OpenCV, safe after a fork."""
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
            _check_embedded_images(page, where, limits)
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
    return array


def _finish_bitmap(array: np.ndarray, color: bool) -> np.ndarray:
    """A rendered bitmap as the gray ``H×W`` or RGB ``H×W×3`` page :func:`iter_pages` promises."""
    if color:
        if array.ndim == 2:
            array = cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
        return np.ascontiguousarray(array[..., :3])
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(array)


def _check_embedded_images(page: pdfium.PdfPage, where: str, limits: DecodeLimits) -> None:
    """Reject a page painting an image that declares more than ``max_pixels`` samples.

    PDFium decodes an image at its own resolution whatever the page's, so a 72 pt page
    can hold a 30000 × 30000 image (a few bytes of deflated zeros) that costs 900 MB.
    Image objects inside form XObjects are visited too, depth first.
    """
    width, height = ctypes.c_uint(), ctypes.c_uint()
    stack = [(pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject, page.raw)]
    while stack:
        count, get, parent = stack.pop()
        for i in range(count(parent)):
            obj = get(parent, i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                stack.append((pdfium_c.FPDFFormObj_CountObjects, pdfium_c.FPDFFormObj_GetObject, obj))
            elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE and pdfium_c.FPDFImageObj_GetImagePixelSize(
                    obj, ctypes.byref(width), ctypes.byref(height)):
                pixels = width.value * height.value
                if pixels > limits.max_pixels:
                    raise LimitExceededError(f"{where}: embedded image of {width.value}×{height.value} = "
                                             f"{pixels:,} pixels exceeds max_pixels={limits.max_pixels:,}")


# Messages from the rendering child: a page, an error, or the end.
_PAGE, _ERROR, _DONE = b"P", b"E", b"D"
_PAGE_HEADER = struct.Struct(">IIII")  # page number, height, width, channels
_ERROR_TYPES: dict[str, type[SparkHtrError]] = {
    "DecodeError": DecodeError, "LimitExceededError": LimitExceededError, "ConfigError": ConfigError}


def render_budget(limits: DecodeLimits) -> int:
    """Address space a PDF rendering child may add to its parent's: 12 bytes per ``max_pixels`` + 256 MiB.

    That covers a page bitmap at the limit in BGRA and our copy of it (8 bytes per
    pixel) plus one embedded image at the limit decoded to 32 bits, with room for
    PDFium's parsed page (1.4 GiB with the default limits).

    >>> render_budget(DecodeLimits()) // 2**20
    1400
    """
    return 12 * limits.max_pixels + 256 * 2**20


def _iter_pdf_isolated(data: bytes, label: str, limits: DecodeLimits, dpi: int, color: bool
                       ) -> Iterator[DecodedPage]:
    """Render in a forked child under a memory budget and a time limit per page.

    A few hundred bytes of PDF can make PDFium parse millions of objects (form
    XObjects drawing each other ten times, seven levels deep, take 1.7 GB and 10 s
    in ``FPDF_LoadPage``, before any check of ours can run), and PDFium aborts the
    process when an allocation fails. The child gets ``RLIMIT_AS`` of its parent's
    address space plus :func:`render_budget`; pages come back through a pipe one
    at a time, so the parent holds at most one page. A child that dies becomes a
    :class:`LimitExceededError` (aborted: out of budget) or a :class:`DecodeError`
    (crashed), a page that takes longer than ``max_render_seconds`` a
    :class:`LimitExceededError`; the job goes on either way.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _render_child(write_fd, data, label, limits, dpi, color)
    os.close(write_fd)
    reader = _PipeReader(read_fd, limits.max_render_seconds)
    where = f"{label} page 1"
    finished = False
    try:
        while True:
            kind = bytes(reader.read(1, where, eof_ok=True))
            if kind == _PAGE:
                page, height, width, channels = _PAGE_HEADER.unpack(reader.read(_PAGE_HEADER.size, where))
                pixels = reader.read(height * width * channels, where)
                shape = (height, width) if channels == 1 else (height, width, channels)
                bitmap = np.frombuffer(pixels, np.uint8).reshape(shape)
                yield DecodedPage(page=page, image=_finish_bitmap(bitmap, color))
                where = f"{label} page {page + 1}"
            elif kind == _ERROR:
                (size,) = struct.unpack(">I", reader.read(4, where))
                name, _, message = reader.read(size, where).decode("utf-8", "replace").partition("\n")
                finished = True
                raise _ERROR_TYPES.get(name, DecodeError)(message)
            elif kind == _DONE:
                finished = True
                return
            else:  # end of the pipe without a last word: the child died
                finished = True
                raise _child_death(pid, where, limits)
    finally:
        os.close(read_fd)
        if not finished:  # the caller stopped early, or a page timed out
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


class _PipeReader:
    """Exact-size reads from the child's pipe, each within ``timeout`` seconds."""

    def __init__(self, fd: int, timeout: float) -> None:
        self.fd, self.timeout = fd, timeout

    def read(self, size: int, where: str, eof_ok: bool = False) -> bytearray:
        """``size`` bytes; at the end of the pipe, ``b""`` if ``eof_ok`` and nothing was read, else an error."""
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        deadline = time.monotonic() + self.timeout
        while got < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise LimitExceededError(
                    f"{where}: loading and rendering took more than max_render_seconds={self.timeout:g}")
            count = os.readv(self.fd, [view[got:]])
            if count == 0:
                if got == 0 and eof_ok:
                    return bytearray()
                raise DecodeError(f"{where}: the PDF renderer stopped in the middle of a message")
            got += count
        return buffer


def _child_death(pid: int, where: str, limits: DecodeLimits) -> SparkHtrError:
    """The error for a rendering child that closed its pipe without a last message."""
    budget = f"{render_budget(limits) // 2**20:,} MiB"
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): no status to tell
        return DecodeError(f"{where}: the PDF renderer died")
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        if os.WTERMSIG(status) in (signal.SIGABRT, signal.SIGKILL):
            return LimitExceededError(f"{where}: PDFium stopped ({name}), most likely out of its memory budget "
                                      f"of {budget} (12 bytes per max_pixels + 256 MiB)")
        return DecodeError(f"{where}: PDFium crashed ({name})")
    if os.WEXITSTATUS(status) == _OUT_OF_MEMORY:
        return LimitExceededError(f"{where}: rendering ran out of its memory budget of {budget}")
    return DecodeError(f"{where}: the PDF renderer exited with status {os.WEXITSTATUS(status)}")


_OUT_OF_MEMORY = 70  # the child's exit status after a MemoryError


def _render_child(fd: int, data: bytes, label: str, limits: DecodeLimits, dpi: int, color: bool) -> NoReturn:
    """Body of the forked child: render every page into ``fd``, then ``_exit`` (never unwinds into the caller)."""
    global _PDFIUM_LOCK
    code = 0
    try:
        faulthandler.disable()  # a budget abort is reported by the parent, not as a crash dump
        for number in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE):
            signal.signal(number, signal.SIG_DFL)  # inherited crash handlers (a fuzzer's, a profiler's) off
        _PDFIUM_LOCK = threading.RLock()  # another parent thread may have held it at fork time
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            budget = _address_space() + render_budget(limits)
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if soft == resource.RLIM_INFINITY or budget < soft:
                resource.setrlimit(resource.RLIMIT_AS, (budget, hard))
        try:
            for page in _iter_pdf_bitmaps(data, label, limits, dpi, color):
                image = page.image
                channels = 1 if image.ndim == 2 else image.shape[2]
                _write_all(fd, _PAGE + _PAGE_HEADER.pack(page.page, image.shape[0], image.shape[1], channels))
                _write_all(fd, memoryview(image).cast("B"))
            _write_all(fd, _DONE)
        except (MemoryError, OSError):
            raise
        except Exception as exc:  # what in-process rendering would raise, as a message for the parent
            name = type(exc).__name__ if type(exc).__name__ in _ERROR_TYPES else "DecodeError"
            message = str(exc) if isinstance(exc, SparkHtrError) else f"{label}: corrupt PDF ({exc!r})"
            payload = f"{name}\n{message}".encode("utf-8", "replace")
            _write_all(fd, _ERROR + struct.pack(">I", len(payload)) + payload)
    except MemoryError:
        code = _OUT_OF_MEMORY
    except BaseException:  # a closed pipe (the parent stopped reading) or anything else: just leave
        code = 1
    finally:
        os._exit(code)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _address_space() -> int:
    """This process's virtual size in bytes (``VmSize``)."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
