"""A corpus of bad, odd and hostile input files, generated in memory (nothing downloaded or committed).

Every entry is a :class:`BadInput`: a file name, its bytes, a category and what
decoding it must give: ``ok`` (pages), ``error`` (a typed sparkhtr error) or
``either`` (a cut that may land after the last pixel). :func:`build_corpus` makes
the entries (about 2 MB in all, well under a second); :func:`write_corpus` writes
them into a folder, which is what the Spark test and ``tests/fuzz`` read.

Categories: ``empty``, ``truncated``, ``misnamed`` (format ≠ extension),
``not-image``, ``bomb`` (declared sizes or page counts far beyond the limits),
``encrypted``, ``mode`` (CMYK, 16-bit, palette, alpha, 1-bit, float, 1 pixel),
``extreme`` (very wide, very tall), ``animated``, ``exif`` (orientations 1-8 and
damaged EXIF) and ``name`` (odd file names with valid content).

Decoding is checked with :data:`CORPUS_LIMITS`: the default limits except a byte
limit of 2 MiB, so that one 2 MiB + 1 byte file exercises ``max_bytes`` without a
256 MiB file.

>>> corpus = build_corpus()
>>> len({entry.name for entry in corpus}) == len(corpus)
True
>>> sorted({entry.category for entry in corpus})  # doctest: +NORMALIZE_WHITESPACE
['animated', 'bomb', 'empty', 'encrypted', 'exif', 'extreme', 'misnamed', 'mode', 'name', 'not-image',
 'oversize', 'truncated']
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from sparkhtr.core.decode import DecodeLimits
from sparkhtr.errors import DecodeError, LimitExceededError, SparkHtrError

__all__ = [
    "CORPUS_LIMITS", "BadInput", "build_corpus", "encrypted_pdf", "fuzz_seeds", "handmade_pdf", "text_page",
    "write_corpus",
]

CORPUS_LIMITS = DecodeLimits(max_bytes=2 * 2**20)


@dataclass(frozen=True)
class BadInput:
    """One corpus file and the outcome decoding it must have."""

    name: str  # file name (no folder); may hold any character a Linux file name can
    category: str
    data: bytes = field(repr=False)
    expect: str  # "ok" | "error" | "either"
    error: type[SparkHtrError] = DecodeError  # the error type (or a subclass) when it fails
    pages: int | None = None  # number of pages when ok (None: not checked)
    match: str | None = None  # a word the error message must contain
    reference: np.ndarray | None = field(default=None, repr=False)  # expected gray page 1, when ok
    tolerance: float = 0.0  # mean absolute difference allowed against ``reference``
    note: str = ""


# ----------------------------------------------------------------------------- encoders


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random pixels: they compress badly, so a cut always lands inside pixel data."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def text_page(lines: int = 2, width: int = 700) -> np.ndarray:
    """A small gray page with ``lines`` lines of script text: content the segmenter finds lines in."""
    page = np.full((80 + 80 * lines, width), 245, np.uint8)
    for k in range(lines):
        cv2.putText(page, "handwritten words", (40, 100 + 80 * k), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.4, 25, 3)
    return page


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def zeros_deflated(count: int) -> bytes:
    """``count`` zero bytes as one valid zlib stream, in milliseconds whatever ``count``.

    After a full flush a deflate compressor starts afresh, so every 4 MiB block of
    zeros compresses to the same bytes: one block is compressed and repeated; the
    Adler-32 of ``n`` zeros is ``(n mod 65521) << 16 | 1``.

    >>> zlib.decompress(zeros_deflated(10_000_123)) == bytes(10_000_123)
    True
    """
    block = 2**22
    whole, rest = divmod(count, block)
    compressor = zlib.compressobj(9)
    head = compressor.compress(b"") + compressor.flush(zlib.Z_SYNC_FLUSH)  # the 2-byte zlib header
    repeated = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH) if whole else b""
    tail = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FULL_FLUSH) if rest else b""
    # An empty final block with fixed codes (bits 1, 01, then the 7-bit end code) and the checksum.
    return head + repeated * whole + tail + b"\x03\x00" + struct.pack(">I", (count % 65521) << 16 | 1)


def png_declared(width: int, height: int, *, real: bool = False) -> bytes:
    """An 8-bit gray PNG declaring ``width × height``.

    By default the IDAT holds 64 zero bytes (a header-only bomb); with ``real`` it holds
    every row (all black), deflated: a valid image that is a zlib bomb (1000:1).
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zeros_deflated(height * (width + 1)) if real else zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def tiff_pages(count: int, width: int = 1, height: int = 1, *, cycle: bool = False) -> bytes:
    """A little-endian gray TIFF of ``count`` pages sharing one strip, written by hand.

    ``cycle``: the last directory points back at the first (a loop, not an end).
    """
    strip = bytes(range(7, 7 + min(width * height, 200)))  # real data only for small pages
    header = b"II*\x00" + struct.pack("<I", 8 + len(strip))
    entries = 9
    ifd_size = 2 + entries * 12 + 4
    first = 8 + len(strip)
    body = bytearray(header + strip)
    for index in range(count):
        offset = first + index * ifd_size
        last = index == count - 1
        following = (first if cycle else 0) if last else offset + ifd_size
        tags = [
            (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, min(width * height, 2**32 - 1)),
        ]
        body += struct.pack("<H", entries)
        for tag, kind, value in tags:
            body += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3
                                                         else struct.pack("<I", value))
        body += struct.pack("<I", following)
    return bytes(body)


def handmade_pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF with a correct xref table from object bodies (object 1 is the catalog)."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + trailer_extra + b">>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d " % len(content) + extra + b">>\nstream\n" + content + b"\nendstream"


# A black 0.4 × 0.4 box near the top left of a 200 × 100 pt page: enough to check rendering.
_BOX = b"0 g 10 50 80 40 re f"


def simple_pdf(width: float = 200, height: float = 100, content: bytes = _BOX) -> bytes:
    box = b"[0 0 %s %s]" % (repr(width).encode(), repr(height).encode())
    return handmade_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox " + box + b" /Contents 4 0 R >>",
        stream(content),
    ])


def many_page_pdf(count: int, size: int = 72, declared: int | None = None) -> bytes:
    """``count`` pages of ``size`` pt, all in one /Pages node whose /Count says ``declared``."""
    kids = b" ".join(b"%d 0 R" % (3 + k) for k in range(count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % (declared or count)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] >>" % (size, size)] * count
    return handmade_pdf(objects)


def nested_forms_pdf(depth: int, fan: int) -> bytes:
    """A 72 pt page drawing a form that draws the next form ``fan`` times, ``depth`` levels deep.

    PDFium parses every use of a form separately when it loads the page: ``fan ** depth``
    objects from a few hundred bytes (10^8, about 17 GB, for depth 8 and fan 10).
    """
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Contents 4 0 R "
               b"/Resources << /XObject << /F 5 0 R >> >> >>",
               stream(b"/F Do")]
    for level in range(depth):
        last = level == depth - 1
        body = b"0 g 0 0 1 1 re f" if last else b" ".join([b"/F Do"] * fan)
        resources = b"" if last else b"/Resources << /XObject << /F %d 0 R >> >> " % (6 + level)
        objects.append(stream(body, b"/Type /XObject /Subtype /Form /BBox [0 0 72 72] " + resources))
    return handmade_pdf(objects)


def image_xobject_pdf(width: int, height: int, samples: int) -> bytes:
    """A 72 × 72 pt page painting one gray image XObject that declares ``width × height`` samples
    and holds ``samples`` zero bytes of data."""
    image = stream(zeros_deflated(samples), b"/Type /XObject /Subtype /Image /Width %d /Height %d "
                   b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode " % (width, height))
    return handmade_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Contents 4 0 R "
        b"/Resources << /XObject << /Im0 5 0 R >> >> >>",
        stream(b"q 72 0 0 72 0 0 cm /Im0 Do Q"),
        image,
    ])


# --------------------------------------------------------------------------- PDF encryption (RC4, R2)

_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: bytes, owner_password: bytes = b"owner") -> bytes:
    """The box page, encrypted with the standard security handler (revision 2, 40-bit RC4).

    With an empty ``user_password`` it opens without one (an "owner-protected" PDF
    with restricted permissions, common in archives); otherwise it needs the password.
    Algorithms 3.2-3.4 of the PDF 1.7 reference; PDFium opens it with the password.
    """
    file_id = hashlib.md5(b"sparkhtr corpus").digest()
    permissions = -44  # print, no modify / copy / annotate
    owner_key = hashlib.md5((owner_password + _PAD)[:32]).digest()[:5]
    o_entry = _rc4(owner_key, (user_password + _PAD)[:32])
    key = hashlib.md5((user_password + _PAD)[:32] + o_entry + struct.pack("<i", permissions) + file_id).digest()[:5]
    u_entry = _rc4(key, _PAD)
    object_key = hashlib.md5(key + struct.pack("<I", 4)[:3] + b"\x00\x00").digest()[:10]
    encrypt = (b"<< /Filter /Standard /V 1 /R 2 /O <" + o_entry.hex().encode() + b"> /U <" + u_entry.hex().encode()
               + b"> /P %d >>" % permissions)
    hex_id = b"<" + file_id.hex().encode() + b">"
    return handmade_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>",
        stream(_rc4(object_key, _BOX)),  # object 4's stream, encrypted with its object key
        encrypt,
    ], b"/Encrypt 5 0 R /ID [" + hex_id + b" " + hex_id + b"] ")


# ----------------------------------------------------------------------------- corpus


def _truncations(stem: str, data: bytes, offsets: list[int]) -> list[BadInput]:
    entries = []
    for cut in offsets:
        # A cut in the last bytes (an end marker, a checksum) may leave every pixel intact.
        expect = "either" if cut >= len(data) - 20 else "error"
        entries.append(BadInput(f"truncated_{stem}_at_{cut}.{stem.split('_')[0]}", "truncated", data[:cut], expect,
                                note=f"{cut} of {len(data)} bytes"))
    return entries


def _cuts(size: int) -> list[int]:
    return sorted({1, 8, 16, 64, size // 4, size // 2, 3 * size // 4, size - 20, size - 1})


def _exif_jpeg(displayed: np.ndarray, orientation: int, **exif_tags: object) -> bytes:
    """A JPEG whose stored pixels, turned as EXIF ``orientation`` says, show ``displayed``."""
    undo = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
            7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    stored = Image.fromarray(displayed)
    if undo is not None:
        stored = stored.transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera Maker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    for tag, value in exif_tags.items():
        exif[int(tag[1:])] = value
    return encode(stored.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())


def _displayed() -> np.ndarray:
    """An asymmetric gray picture: a dark block at the top left, a mid-gray bar along the bottom."""
    picture = np.full((48, 80), 235, np.uint8)
    picture[4:20, 4:28] = 20
    picture[40:46, 10:70] = 120
    return picture


def build_corpus() -> list[BadInput]:
    """Every corpus entry; deterministic, so a failure names the same file every run."""
    entries: list[BadInput] = []
    add = entries.append
    page = text_page()
    png = encode(Image.fromarray(noise((60, 80, 3))), "PNG")
    jpeg = encode(Image.fromarray(noise((60, 80, 3), 1)), "JPEG", quality=90)
    tiff_frames = [Image.fromarray(noise((40, 50), seed)) for seed in range(3)]
    tiff = encode(tiff_frames[0], "TIFF", save_all=True, append_images=tiff_frames[1:])
    pdf = encode_pdf_page()
    page_png = encode(Image.fromarray(page), "PNG")

    # -- empty: zero bytes, whatever the name says
    for name in ("empty.png", "empty.jpg", "empty.tif", "empty.pdf", "empty"):
        add(BadInput(name, "empty", b"", "error", match="empty"))

    # -- truncated at several offsets
    entries += _truncations("png", png, _cuts(len(png)))
    entries += _truncations("jpg", jpeg, _cuts(len(jpeg)))
    entries += _truncations("tif_3pages", tiff, _cuts(len(tiff)))
    for cut in _cuts(len(pdf)):
        # PDF: a cut anywhere loses the trailer's %%EOF, which is how truncation shows.
        expect = "either" if b"%%EOF" in pdf[:cut] else "error"  # only the final newline cut off
        add(BadInput(f"truncated_pdf_at_{cut}.pdf", "truncated", pdf[:cut], expect, note=f"{cut} of {len(pdf)}"))

    # -- misnamed: the content's format, not the extension, decides
    add(BadInput("jpeg_named.png", "misnamed", jpeg, "ok", pages=1))
    add(BadInput("pdf_named.tif", "misnamed", pdf, "ok", pages=1))
    add(BadInput("png_named.pdf", "misnamed", page_png, "ok", pages=1))
    add(BadInput("tiff_named.jpg", "misnamed", tiff, "ok", pages=3))
    add(BadInput("webp_named.jpeg", "misnamed", encode(Image.fromarray(page), "WEBP", lossless=True), "ok", pages=1))
    add(BadInput("no_extension", "misnamed", page_png, "ok", pages=1))

    # -- not an image at all
    add(BadInput("text_named.png", "not-image", b"Dear diary, nothing was written by hand today.\n", "error",
                 match="unrecognised"))
    add(BadInput("html_named.jpg", "not-image", b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "error",
                 match="unrecognised"))
    add(BadInput("utf16_named.tif", "not-image", "scan notes".encode("utf-16"), "error", match="unrecognised"))
    add(BadInput("zip_named.pdf", "not-image", _zip_bytes(), "error", match="unrecognised"))
    add(BadInput("text_mentioning_pdf.txt", "not-image", b"see the attached %PDF-1.4 file\n", "error", match="PDF"))
    add(BadInput("png_magic_only.png", "not-image", b"\x89PNG\r\n\x1a\n", "error"))
    add(BadInput("tiff_magic_only.tif", "not-image", b"II*\x00", "error"))
    add(BadInput("random_bytes.bin", "not-image", noise((4096,), 7).tobytes(), "error"))

    # -- bombs: declared sizes or counts far beyond the limits, in a few hundred bytes
    add(BadInput("bomb_png_100000x100000.png", "bomb", png_declared(100_000, 100_000), "error", LimitExceededError,
                 match="pixels"))
    add(BadInput("bomb_png_real_1000000x101.png", "bomb", png_declared(1_000_000, 101, real=True),
                 "error", LimitExceededError, match="pixels", note="valid zlib stream, 101 MB of pixels"))
    add(BadInput("bomb_jpeg_65500x65500.jpg", "bomb", _patch_jpeg_size(jpeg, 65500, 65500), "error",
                 LimitExceededError, match="pixels"))
    add(BadInput("bomb_gif_65535x65535.gif", "bomb", _gif_declared(65535, 65535), "error", LimitExceededError,
                 match="pixels"))
    add(BadInput("bomb_webp_16383x16383.webp", "bomb", _webp_lossless_declared(16383, 16383), "error",
                 LimitExceededError, match="pixels"))
    add(BadInput("bomb_webp_canvas_16777216x16777216.webp", "bomb", _webp_animated_canvas(2**24, 2**24), "error",
                 LimitExceededError, match="pixels"))
    add(BadInput("bomb_tiff_100000x100000.tif", "bomb", tiff_pages(1, 100_000, 100_000), "error",
                 LimitExceededError, match="pixels"))
    add(BadInput("bomb_tiff_3000_pages.tif", "bomb", tiff_pages(3000), "error", LimitExceededError, match="max_pages"))
    add(BadInput("tiff_1000_pages.tif", "bomb", tiff_pages(1000), "ok", pages=1000, note="exactly max_pages"))
    add(BadInput("tiff_ifd_cycle.tif", "bomb", tiff_pages(2, 3, 3, cycle=True), "ok", pages=2,
                 note="the last directory points back at the first"))
    add(BadInput("bomb_pdf_mediabox_200000pt.pdf", "bomb", simple_pdf(200_000, 200_000), "error", LimitExceededError,
                 match="pixels"))
    add(BadInput("bomb_pdf_3000_pages.pdf", "bomb", many_page_pdf(3000), "error", LimitExceededError,
                 match="max_pages"))
    add(BadInput("bomb_pdf_count_lies.pdf", "bomb", many_page_pdf(1, declared=1_000_000_000), "either",
                 LimitExceededError, note="/Count says 10^9, one page object"))
    add(BadInput("bomb_pdf_image_30000x30000.pdf", "bomb", image_xobject_pdf(30_000, 30_000, 1000), "either",
                 note="a 72 pt page painting an image that declares 900 M samples (1000 bytes of data)"))
    add(BadInput("bomb_pdf_image_real_12000x10000.pdf", "bomb", image_xobject_pdf(12_000, 10_000, 120_000_000),
                 "either", note="a 72 pt page painting a real 120 M-sample image (zlib bomb, 120 KB)"))
    add(BadInput("bomb_pdf_nested_forms_10^8.pdf", "bomb", nested_forms_pdf(8, 10), "error", LimitExceededError,
                 match="memory budget", note="10^8 form uses from 1 KB: PDFium runs out of the render budget"))
    add(BadInput("bomb_png_ztxt.png", "bomb", _png_with_ztxt_bomb(page_png), "either",
                 note="a zTXt chunk inflating to 64 MB"))
    add(BadInput("oversize_2MiB_plus_1.png", "oversize", page_png + bytes(CORPUS_LIMITS.max_bytes + 1 - len(page_png)),
                 "error", LimitExceededError, match="max_bytes"))

    # -- encrypted PDFs
    add(BadInput("encrypted_user_password.pdf", "encrypted", encrypted_pdf(b"secret"), "error", match="encrypted"))
    add(BadInput("encrypted_owner_only.pdf", "encrypted", encrypted_pdf(b""), "ok", pages=1,
                 note="empty user password: opens without one"))

    # -- pixel modes and tiny images
    cmyk = Image.fromarray(noise((30, 40, 4), 3), "CMYK")
    add(BadInput("cmyk.jpg", "mode", encode(cmyk, "JPEG", quality=90), "ok", pages=1))
    add(BadInput("cmyk.tif", "mode", encode(cmyk, "TIFF"), "ok", pages=1))
    gray16 = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    add(BadInput("gray16.png", "mode", encode(Image.fromarray(gray16), "PNG"), "ok", pages=1,
                 reference=((gray16.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8), tolerance=0.0))
    add(BadInput("gray16.tif", "mode", encode(Image.fromarray(gray16), "TIFF"), "ok", pages=1))
    add(BadInput("rgb16.png", "mode", _png_rgb16(), "ok", pages=1))
    add(BadInput("float32.tif", "mode", encode(Image.fromarray(np.linspace(0, 1, 300, dtype=np.float32)
                                                               .reshape(15, 20)), "TIFF"), "ok", pages=1))
    add(BadInput("int32.tif", "mode", encode(Image.fromarray(np.arange(-150, 150, dtype=np.int32).reshape(15, 20)),
                                             "TIFF"), "ok", pages=1))
    palette = Image.fromarray(page).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    add(BadInput("palette.png", "mode", encode(palette, "PNG"), "ok", pages=1))
    add(BadInput("palette.gif", "mode", encode(palette, "GIF"), "ok", pages=1))
    add(BadInput("palette_transparent.png", "mode", encode(palette, "PNG", transparency=0), "ok", pages=1))
    la = np.dstack([page, np.where(page < 128, 255, 0).astype(np.uint8)])
    add(BadInput("gray_alpha.png", "mode", encode(Image.fromarray(la, "LA"), "PNG"), "ok", pages=1))
    rgba = np.dstack([np.dstack([page] * 3), np.full(page.shape, 255, np.uint8)])
    rgba[:, :100, 3] = 0
    add(BadInput("rgba.png", "mode", encode(Image.fromarray(rgba, "RGBA"), "PNG"), "ok", pages=1))
    add(BadInput("rgba.webp", "mode", encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True), "ok", pages=1))
    bits = Image.fromarray(page).point(lambda v: 255 if v > 128 else 0).convert("1")
    add(BadInput("bilevel.png", "mode", encode(bits, "PNG"), "ok", pages=1))
    add(BadInput("bilevel_g4.tif", "mode", encode(bits, "TIFF", compression="group4"), "ok", pages=1))
    add(BadInput("one_pixel.png", "mode", encode(Image.new("L", (1, 1), 0), "PNG"), "ok", pages=1))
    add(BadInput("one_pixel.jpg", "mode", encode(Image.new("RGB", (1, 1), (9, 9, 9)), "JPEG"), "ok", pages=1))
    add(BadInput("one_pixel.tif", "mode", encode(Image.new("1", (1, 1), 1), "TIFF"), "ok", pages=1))
    add(BadInput("one_pixel.gif", "mode", encode(Image.new("P", (1, 1), 0), "GIF"), "ok", pages=1))
    add(BadInput("one_pixel.bmp", "mode", encode(Image.new("RGB", (1, 1)), "BMP"), "ok", pages=1))
    add(BadInput("tiny_page_0.01pt.pdf", "mode", simple_pdf(0.01, 0.01, b""), "ok", pages=1,
                 note="rendered to 1 × 1 pixel"))
    add(BadInput("zero_size_page.pdf", "mode", simple_pdf(0, 0, b""), "either", note="an empty MediaBox"))
    add(BadInput("lab.tif", "mode", encode(Image.fromarray(noise((20, 30, 3), 4), "LAB"), "TIFF"), "ok", pages=1))
    add(BadInput("ycbcr.tif", "mode", encode(Image.fromarray(noise((16, 16, 3), 5), "YCbCr"), "TIFF"), "ok",
                 pages=1))

    # -- extreme aspect ratios, within and beyond the limits
    stripes = np.tile(np.array([[40], [240], [40]], np.uint8), (1, 60_000))
    add(BadInput("wide_60000x3.png", "extreme", encode(Image.fromarray(stripes), "PNG"), "ok", pages=1))
    add(BadInput("tall_3x60000.png", "extreme", encode(Image.fromarray(np.ascontiguousarray(stripes.T)), "PNG"), "ok",
                 pages=1))
    wide_text = np.full((40, 30_000), 245, np.uint8)
    for x in range(0, 30_000, 600):
        cv2.putText(wide_text, "word", (x + 20, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 30, 2)
    add(BadInput("wide_text_30000x40.png", "extreme", encode(Image.fromarray(wide_text), "PNG"), "ok", pages=1))
    add(BadInput("wide_2000000x60_beyond.png", "extreme", png_declared(2_000_000, 60, real=True),
                 "error", LimitExceededError, match="pixels", note="120 M pixels"))
    add(BadInput("tall_60x2000000_beyond.png", "extreme", png_declared(60, 2_000_000, real=True), "error",
                 LimitExceededError, match="pixels", note="120 M pixels"))
    add(BadInput("wide_pdf_14400x1pt.pdf", "extreme", simple_pdf(14_400, 1, b""), "ok", pages=1,
                 note="40000 × 3 pixels at 200 dpi"))

    # -- animated: the first frame is the page
    frames = [Image.fromarray(np.full((30, 40), value, np.uint8)) for value in (0, 128, 255)]
    add(BadInput("animated.gif", "animated", encode(frames[0], "GIF", save_all=True, append_images=frames[1:],
                                                    duration=100, loop=0), "ok", pages=1,
                 reference=np.zeros((30, 40), np.uint8)))
    add(BadInput("animated.webp", "animated", encode(frames[0], "WEBP", save_all=True, append_images=frames[1:],
                                                     lossless=True, duration=100), "ok", pages=1,
                 reference=np.zeros((30, 40), np.uint8), tolerance=1.0))
    add(BadInput("animated.png", "animated", encode(frames[0], "PNG", save_all=True, append_images=frames[1:],
                                                    duration=100), "ok", pages=1,
                 reference=np.zeros((30, 40), np.uint8), note="APNG"))

    # -- EXIF orientation (photos of pages): the decoded page must look like the displayed picture
    displayed = _displayed()
    for orientation in range(1, 9):
        add(BadInput(f"exif_orientation_{orientation}.jpg", "exif", _exif_jpeg(displayed, orientation), "ok", pages=1,
                     reference=displayed, tolerance=4.0))
    exif = Image.Exif()
    exif[0x0112] = 6
    add(BadInput("exif_orientation_6.png", "exif", encode(Image.fromarray(displayed).transpose(
        Image.Transpose.ROTATE_90), "PNG", exif=exif.tobytes()), "ok", pages=1, reference=displayed))
    add(BadInput("exif_orientation_6.webp", "exif", encode(Image.fromarray(displayed).transpose(
        Image.Transpose.ROTATE_90), "WEBP", lossless=True, exif=exif.tobytes()), "ok", pages=1, reference=displayed))
    add(BadInput("exif_orientation_9_invalid.jpg", "exif", _patch_orientation(_exif_jpeg(displayed, 1), 9), "ok",
                 pages=1, reference=displayed, tolerance=4.0, note="out of range: stored orientation kept"))
    add(BadInput("exif_truncated_ifd.jpg", "exif", _damage_exif(_exif_jpeg(displayed, 1)), "ok", pages=1,
                 reference=displayed, tolerance=4.0, note="an EXIF block cut short"))

    # -- odd file names (valid content: the name is the only problem)
    for name in ODD_NAMES:
        add(BadInput(name, "name", page_png, "ok", pages=1))
    return entries


# Names a Linux file system accepts; each one is a trap somewhere (shell, URI, glob, CSV, Hadoop).
ODD_NAMES = [
    "with space.png", "  leading and trailing spaces  .png", "quote'single.png", 'quote"double.png',
    "back`tick.png", "a..b.png", "...png", "..double-dot-prefix.png", ".hidden.png", "_underscore.png",
    "new\nline.png", "tab\there.png", "carriage\rreturn.png", "façade été.png", "日本語の手紙.png",
    "emoji 📜.png", "e\u0301-decomposed.png", "$(echo pwned).png", "semi;colon.png", "pipe|bar.png",
    "star*.png", "question?.png", "[brackets].png", "{braces,comma}.png", "amp&.png", "lt<gt>.png", "hash#.png",
    "percent%20encoded.png", "percent%.png", "colon:name.png", "back\\slash.png", "tilde~.png", "excl!.png",
    "equals=sign.png", "plus+sign.png", "-leading-dash.png", "x" * 251 + ".png",
    "latin1-\udce9.png",  # the byte 0xE9 alone: not UTF-8 (os.fsencode writes it back as that byte)
]


def write_corpus(folder: Path, entries: list[BadInput] | None = None) -> list[tuple[Path, BadInput]]:
    """Write the corpus into ``folder`` (created); returns each file's path with its entry."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries if entries is not None else build_corpus():
        path = folder / entry.name
        path.write_bytes(entry.data)
        written.append((path, entry))
    return written


# ----------------------------------------------------------------------------- byte-level crafting


def encode_pdf_page() -> bytes:
    """A one-page PDF with drawn content and several objects (so cuts land in different places)."""
    content = b"\n".join([_BOX, b"0.5 g 120 10 60 30 re f", b"BT /F1 12 Tf 20 20 Td (corpus page) Tj ET"])
    return handmade_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def _zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("scan.png", b"not really")
    return buf.getvalue()


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the frame size in the SOF0 marker."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


def _gif_declared(width: int, height: int) -> bytes:
    """A GIF whose screen and image descriptor declare ``width × height`` with a few bytes of LZW."""
    data = bytearray(encode(Image.new("P", (4, 4), 0), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    at = data.index(b"\x2c")  # image descriptor
    data[at + 5: at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _webp_lossless_declared(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header declares ``width × height`` (the bitstream stays tiny)."""
    data = bytearray(encode(Image.new("L", (4, 4), 0), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 8
    assert data[at] == 0x2F
    bits = struct.unpack("<I", data[at + 1: at + 5])[0]
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    data[at + 1: at + 5] = struct.pack("<I", bits)
    return bytes(data)


def _webp_animated_canvas(width: int, height: int) -> bytes:
    """An animated WebP of tiny frames on a VP8X canvas of ``width × height`` (24-bit fields, up to 2^24)."""
    frames = [Image.new("L", (4, 4), value) for value in (0, 255)]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True))
    at = data.index(b"VP8X") + 8 + 4
    data[at: at + 6] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return bytes(data)


def _png_with_ztxt_bomb(png: bytes) -> bytes:
    ztxt = png_chunk(b"zTXt", b"Comment\x00\x00" + zeros_deflated(64 * 2**20))
    return png[:33] + ztxt + png[33:]  # after the signature and IHDR


def _png_rgb16() -> bytes:
    """A 16-bit RGB PNG, written by hand (Pillow cannot save one)."""
    width, height = 20, 10
    pixels = (np.arange(height * width * 3, dtype=np.uint32).reshape(height, width, 3) * 97 % 65536).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(
        b"IEND", b"")


def _patch_orientation(data: bytes, value: int) -> bytes:
    """Set the EXIF Orientation (a SHORT, in either byte order) of a JPEG to any value."""
    at = data.index(b"Exif\x00\x00") + 6
    order = "<" if data[at: at + 2] == b"II" else ">"
    tag = struct.pack(order + "HHI", 0x0112, 3, 1)
    position = data.index(tag, at)
    return data[: position + 8] + struct.pack(order + "H", value) + data[position + 10:]


def _damage_exif(data: bytes) -> bytes:
    """Cut the EXIF block short: its IFD entry count promises more than the block holds."""
    at = data.index(b"Exif\x00\x00") + 6
    order = "<" if data[at: at + 2] == b"II" else ">"
    ifd = at + struct.unpack(order + "I", data[at + 4: at + 8])[0]
    return data[:ifd] + struct.pack(order + "H", 400) + data[ifd + 2:]


def fuzz_seeds() -> dict[str, bytes]:
    """Small valid files of every format: the starting points of mutation fuzzing."""
    page = Image.fromarray(text_page(1, width=160)).resize((80, 40))
    rgb = page.convert("RGB")
    frames = [page, page.rotate(90, expand=True)]
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "png": encode(page, "PNG"),
        "png-palette-alpha": encode(page.convert("P"), "PNG", transparency=0),
        "jpeg": encode(rgb, "JPEG", quality=80),
        "jpeg-progressive-exif": encode(rgb, "JPEG", progressive=True, exif=exif.tobytes()),
        "tiff-2-pages-deflate": encode(frames[0], "TIFF", save_all=True, append_images=frames[1:],
                                       compression="tiff_deflate"),
        "tiff-lzw-rgb": encode(rgb, "TIFF", compression="tiff_lzw"),
        "tiff-g4": encode(page.convert("1"), "TIFF", compression="group4"),
        "tiff-handmade-3-pages": tiff_pages(3, 4, 4),
        "webp": encode(rgb, "WEBP", quality=60),
        "webp-lossless-animated": encode(frames[0], "WEBP", save_all=True, append_images=[page], lossless=True),
        "gif-animated": encode(frames[0], "GIF", save_all=True, append_images=[page]),
        "bmp": encode(page, "BMP"),
        "pdf": encode_pdf_page(),
        "pdf-encrypted-owner": encrypted_pdf(b""),
        "pdf-nested-forms": nested_forms_pdf(3, 3),
    }


def summarize(outcomes: dict[str, str], corpus: list[BadInput]) -> dict[str, dict[str, int]]:
    """``{category: {outcome: count}}`` for the report."""
    table: dict[str, dict[str, int]] = {}
    for entry in corpus:
        row = table.setdefault(entry.category, {})
        outcome = outcomes.get(entry.name, "missing")
        row[outcome] = row.get(outcome, 0) + 1
    return table


if __name__ == "__main__":  # python -m tests.helpers.badinputs FOLDER: write the corpus for manual runs
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "badinputs")
    files = write_corpus(target)
    print(f"{len(files)} files, {sum(len(e.data) for _, e in files):,} bytes in {os.fspath(target)}")
