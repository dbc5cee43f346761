"""Unit tests for sparkhtr.core.decode: every input is built in memory by the test."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from sparkhtr.core.decode import DecodeLimits, content_sha256, iter_pages, sniff_format
from sparkhtr.core.types import DecodedPage
from sparkhtr.errors import ConfigError, DecodeError, LimitExceededError
from tests.helpers.badinputs import handmade_pdf

# ----------------------------------------------------------------------------- builders


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def noise_image(mode: str = "L", size: tuple[int, int] = (60, 40), seed: int = 0) -> Image.Image:
    """Random pixels: compress badly, so truncation always cuts pixel data."""
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,)}[mode]
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], *channels), dtype=np.uint8), mode)


def decode_all(data: bytes, **kwargs: object) -> list[DecodedPage]:
    return list(iter_pages(data, "test", **kwargs))  # type: ignore[arg-type]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_declared_size(width: int, height: int) -> bytes:
    """A syntactically valid PNG whose IHDR declares a huge size but carries a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def pdf_bytes(*sizes: tuple[float, float]) -> bytes:
    doc = pdfium.PdfDocument.new()
    for width, height in sizes:
        doc.new_page(width, height)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def pdf_with_red_square() -> bytes:
    """One 144×72 pt page with a filled red 36 pt square at (36, 18) from the bottom-left."""
    doc = pdfium.PdfDocument.new()
    page = doc.new_page(144, 72)
    rect = pdfium_c.FPDFPageObj_CreateNewRect(36, 18, 36, 36)
    pdfium_c.FPDFPageObj_SetFillColor(rect, 255, 0, 0, 255)
    pdfium_c.FPDFPath_SetDrawMode(rect, pdfium_c.FPDF_FILLMODE_ALTERNATE, 0)
    pdfium_c.FPDFPage_InsertObject(page.raw, rect)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


PDF_OBJECTS = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
]


def encrypted_pdf() -> bytes:
    """Standard security handler whose /U entry matches no password we know: needs a password."""
    encrypt = b"<< /Filter /Standard /V 1 /R 2 /O <" + b"ab" * 32 + b"> /U <" + b"cd" * 32 + b"> /P -4 >>"
    file_id = b"<" + b"01" * 16 + b">"
    return handmade_pdf([*PDF_OBJECTS, encrypt], b"/Encrypt 4 0 R /ID [" + file_id + b" " + file_id + b"] ")


def multipage_tiff(values: list[int], size: tuple[int, int] = (30, 20), **options: object) -> bytes:
    frames = [Image.new("L", size, value) for value in values]
    return encode(frames[0], "TIFF", save_all=True, append_images=frames[1:], **options)


# ----------------------------------------------------------------------------- sniffing, hashing


@pytest.mark.parametrize(
    ("fmt", "pillow_format"),
    [("png", "PNG"), ("jpeg", "JPEG"), ("tiff", "TIFF"), ("webp", "WEBP"), ("bmp", "BMP"), ("gif", "GIF")],
)
def test_sniff_format_raster(fmt: str, pillow_format: str) -> None:
    assert sniff_format(encode(noise_image(), pillow_format)) == fmt


def test_sniff_format_pdf_bigtiff_and_unknown() -> None:
    assert sniff_format(pdf_bytes((100, 100))) == "pdf"
    assert sniff_format(b"junk before header\n%PDF-1.4\n") == "pdf"
    assert sniff_format(b"II+\x00\x08\x00\x00\x00") == "tiff"
    assert sniff_format(b"MM\x00*\x00\x00\x00\x08") == "tiff"
    assert sniff_format(b"") is None
    assert sniff_format(b"hello world") is None


def test_format_comes_from_magic_bytes_not_extension() -> None:
    data = encode(Image.new("L", (20, 10), 50), "PNG")
    (page,) = list(iter_pages(data, "misnamed.pdf"))
    assert page.image.shape == (10, 20)


def test_content_sha256() -> None:
    assert content_sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ----------------------------------------------------------------------------- good inputs


def test_png_gray_exact_and_color_output() -> None:
    image = noise_image()
    data = encode(image, "PNG")
    (page,) = decode_all(data)
    assert page.page == 1
    assert page.image.dtype == np.uint8 and page.image.flags.c_contiguous
    np.testing.assert_array_equal(page.image, np.asarray(image))
    (rgb,) = decode_all(data, color=True)
    assert rgb.image.shape == (40, 60, 3)
    np.testing.assert_array_equal(rgb.image[..., 1], np.asarray(image))


def test_rgb_to_gray_uses_luma_and_color_keeps_rgb() -> None:
    data = encode(Image.new("RGB", (8, 4), (255, 0, 0)), "PNG")
    assert decode_all(data)[0].image[0, 0] == 76  # 0.299 * 255
    np.testing.assert_array_equal(decode_all(data, color=True)[0].image[0, 0], [255, 0, 0])


def test_jpeg_exif_orientation_6_is_applied() -> None:
    # Stored 40 wide × 20 high with a dark left half; orientation 6 = rotate 90° clockwise to display.
    stored = np.full((20, 40), 230, np.uint8)
    stored[:, :20] = 20
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95)
    (page,) = decode_all(data)
    assert page.image.shape == (40, 20)
    # The stored left side is on top once rotated clockwise.
    assert page.image[:20].mean() < 60 < 200 < page.image[20:].mean()


def test_tiff_orientation_tag_and_bigtiff() -> None:
    stored = np.full((20, 40), 230, np.uint8)
    stored[:, :20] = 20
    (page,) = decode_all(encode(Image.fromarray(stored), "TIFF", tiffinfo={0x0112: 6}))
    assert page.image.shape == (40, 20) and page.image[:20].max() == 20
    (big,) = decode_all(encode(Image.fromarray(stored), "TIFF", big_tiff=True))
    np.testing.assert_array_equal(big.image, stored)


def test_multipage_tiff_yields_every_page_in_order() -> None:
    data = multipage_tiff([10, 120, 240])
    pages = decode_all(data)
    assert [p.page for p in pages] == [1, 2, 3]
    assert [int(p.image[0, 0]) for p in pages] == [10, 120, 240]
    assert all(p.image.shape == (20, 30) for p in pages)


def test_multipage_tiff_pages_of_different_modes_and_compression() -> None:
    frames = [noise_image("RGB", (50, 30)), Image.new("1", (20, 10), 1), noise_image("L", (16, 16))]
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    pages = decode_all(data)
    assert [p.image.shape for p in pages] == [(30, 50), (10, 20), (16, 16)]
    assert set(np.unique(pages[1].image)) == {255}
    np.testing.assert_array_equal(pages[2].image, np.asarray(frames[2]))


def test_pdf_pages_rendered_at_dpi() -> None:
    data = pdf_bytes((612, 792), (300, 200))
    pages = decode_all(data, pdf_dpi=100)
    assert [p.page for p in pages] == [1, 2]
    # ceil(points * dpi / 72)
    assert pages[0].image.shape == (1100, 850)
    assert pages[1].image.shape == (278, 417)
    assert all(p.image.dtype == np.uint8 and int(p.image.min()) == 255 for p in pages)


def test_pdf_content_gray_and_color() -> None:
    data = pdf_with_red_square()
    (gray,) = decode_all(data, pdf_dpi=72)
    (rgb,) = decode_all(data, pdf_dpi=72, color=True)
    assert gray.image.shape == (72, 144) and rgb.image.shape == (72, 144, 3)
    # PDF y goes up: the square spans x 36..72 and y 18..54 from the bottom.
    assert abs(int(gray.image[36, 54]) - 76) <= 2 and gray.image[5, 5] == 255
    np.testing.assert_array_equal(rgb.image[36, 54], [255, 0, 0])
    np.testing.assert_array_equal(rgb.image[5, 5], [255, 255, 255])


def test_pdf_rotated_page_is_rendered_upright() -> None:
    doc = pdfium.PdfDocument.new()
    doc.new_page(300, 100).set_rotation(90)
    buf = io.BytesIO()
    doc.save(buf)
    (page,) = decode_all(buf.getvalue(), pdf_dpi=72)
    assert page.image.shape == (300, 100)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 1000, 32768, 65535]], np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    (page,) = decode_all(data)
    assert page.image.tolist() == [[0, 1, 4, 128, 255]]
    (rgb,) = decode_all(data, color=True)
    assert rgb.image.shape == (1, 5, 3)


def test_sixteen_bit_tiff_big_endian() -> None:
    values = np.array([[0, 32768, 65535]], ">u2")
    data = encode(Image.frombytes("I;16B", (3, 1), values.tobytes()), "TIFF")
    assert decode_all(data)[0].image.tolist() == [[0, 128, 255]]


def test_float_tiff_in_unit_range() -> None:
    data = encode(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)), "TIFF")
    assert decode_all(data)[0].image.tolist() == [[0, 128, 255]]


def test_one_bit_image() -> None:
    bits = Image.new("1", (8, 8), 0)
    bits.paste(1, (0, 0, 4, 8))
    (page,) = decode_all(encode(bits, "PNG"))
    assert page.image[:, :4].tolist() == [[255] * 4] * 8
    assert page.image[:, 4:].tolist() == [[0] * 4] * 8


def test_palette_image() -> None:
    pal = Image.new("P", (4, 2), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 1 = pure blue
    (page,) = decode_all(encode(pal, "PNG"))
    assert int(page.image[0, 0]) == 29  # 0.114 * 255
    (rgb,) = decode_all(encode(pal, "PNG"), color=True)
    np.testing.assert_array_equal(rgb.image[0, 0], [0, 0, 255])


def test_palette_transparency_becomes_white() -> None:
    pal = Image.new("P", (4, 2), 0)
    pal.putpalette([0, 0, 0] * 256)
    data = encode(pal, "PNG", transparency=0)
    assert decode_all(data)[0].image.tolist() == [[255] * 4] * 2


def test_rgba_composited_on_white() -> None:
    pixels = np.zeros((1, 3, 4), np.uint8)
    pixels[0, 0] = (0, 0, 0, 0)  # transparent black → paper
    pixels[0, 1] = (0, 0, 0, 128)  # half-transparent black → mid grey
    pixels[0, 2] = (0, 0, 0, 255)  # opaque black
    data = encode(Image.fromarray(pixels, "RGBA"), "PNG")
    assert decode_all(data)[0].image.tolist() == [[255, 127, 0]]
    assert decode_all(data, color=True)[0].image[0, 0].tolist() == [255, 255, 255]


def test_gray_alpha_composited_on_white() -> None:
    data = encode(Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA"), "PNG")
    assert decode_all(data)[0].image.tolist() == [[255, 0]]


def test_cmyk_jpeg() -> None:
    black = encode(Image.new("CMYK", (16, 16), (0, 0, 0, 255)), "JPEG", quality=95)
    cyan = encode(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG", quality=95)
    assert decode_all(black)[0].image.max() <= 3
    (rgb,) = decode_all(cyan, color=True)
    assert rgb.image.shape == (16, 16, 3)
    red, green, blue = (int(v) for v in rgb.image[8, 8])
    assert red <= 5 and green >= 250 and blue >= 250


@pytest.mark.parametrize("pillow_format", ["WEBP", "BMP", "GIF"])
def test_other_raster_formats(pillow_format: str) -> None:
    image = Image.new("L", (24, 12), 90)
    options: dict[str, object] = {"lossless": True} if pillow_format == "WEBP" else {}
    (page,) = decode_all(encode(image, pillow_format, **options))
    assert page.image.shape == (12, 24)
    assert abs(int(page.image[6, 12]) - 90) <= 1


def test_animated_gif_yields_first_frame_only() -> None:
    frames = [Image.new("L", (10, 10), 0), Image.new("L", (10, 10), 255)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    (page,) = decode_all(data)
    assert int(page.image.max()) == 0


# ----------------------------------------------------------------------------- limits


def test_max_bytes() -> None:
    data = encode(noise_image(), "PNG")
    with pytest.raises(LimitExceededError, match="max_bytes"):
        decode_all(data, limits=DecodeLimits(max_bytes=len(data) - 1))
    assert len(decode_all(data, limits=DecodeLimits(max_bytes=len(data)))) == 1


def test_png_header_declaring_huge_size_is_rejected_before_decoding() -> None:
    with pytest.raises(LimitExceededError, match="pixels"):
        decode_all(png_with_declared_size(100_000, 100_000))
    # Below Pillow's own threshold: our limit is the one that fires.
    with pytest.raises(LimitExceededError, match="max_pixels=1,000"):
        decode_all(png_with_declared_size(1000, 1000), limits=DecodeLimits(max_pixels=1000))


def test_our_pixel_limit_overrides_pillows_and_global_state_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    filters_before = list(warnings.filters)
    data = encode(noise_image(size=(100, 100)), "PNG")  # 10 000 px: > 2 × Pillow's limit
    (page,) = decode_all(data, limits=DecodeLimits(max_pixels=20_000))
    assert page.image.shape == (100, 100)
    with pytest.raises(LimitExceededError):
        decode_all(data, limits=DecodeLimits(max_pixels=9_999))
    assert Image.MAX_IMAGE_PIXELS == 1000
    assert warnings.filters == filters_before


def test_pdf_page_too_large_at_dpi_is_rejected_before_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered a page over the pixel limit")

    monkeypatch.setattr(pdfium.PdfPage, "render", no_render)
    data = pdf_bytes((612, 792))  # 1700 × 2200 px at 200 dpi
    with pytest.raises(LimitExceededError, match="1700×2200"):
        decode_all(data, limits=DecodeLimits(max_pixels=3_000_000))


def test_tiff_more_pages_than_max_pages() -> None:
    data = multipage_tiff([0, 50, 100, 150, 200])
    with pytest.raises(LimitExceededError, match="max_pages=4"):
        next(iter_pages(data, limits=DecodeLimits(max_pages=4)))
    assert len(decode_all(data, limits=DecodeLimits(max_pages=5))) == 5


def test_pdf_more_pages_than_max_pages() -> None:
    data = pdf_bytes((72, 72), (72, 72), (72, 72))
    with pytest.raises(LimitExceededError, match="3 pages exceeds max_pages=2"):
        next(iter_pages(data, limits=DecodeLimits(max_pages=2)))


def test_limits_and_dpi_are_validated() -> None:
    with pytest.raises(ConfigError):
        DecodeLimits(max_bytes=-1)
    with pytest.raises(ConfigError):
        next(iter_pages(b"x", pdf_dpi=0))


# ----------------------------------------------------------------------------- bad inputs


def test_empty_input() -> None:
    with pytest.raises(DecodeError, match="empty"):
        decode_all(b"")


def test_text_input() -> None:
    with pytest.raises(DecodeError, match="unrecognised"):
        decode_all(b"Dear diary, today I wrote nothing by hand.\n")


@pytest.mark.parametrize("pillow_format", ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF"])
@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3, 0.6, 0.9])
def test_truncated_raster_raises(pillow_format: str, fraction: float) -> None:
    data = encode(noise_image("RGB" if pillow_format != "GIF" else "L", (80, 60)), pillow_format)
    cut = max(12, int(len(data) * fraction))
    with pytest.raises(DecodeError):
        decode_all(data[:cut])


def test_truncated_tiff_later_page_keeps_earlier_pages() -> None:
    frames = [noise_image(seed=seed) for seed in range(3)]
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    # Cut inside page 3's pixels.
    with Image.open(io.BytesIO(data)) as tiff:
        tiff.seek(2)
        cut = tiff.tag_v2[273][0] + 100  # StripOffsets of page 3
    pages = iter_pages(data[:cut], "three.tif")
    assert [next(pages).page, next(pages).page] == [1, 2]
    with pytest.raises(DecodeError, match="page 3"):
        next(pages)


def test_corrupt_tiff_page_3_raises_after_pages_1_and_2() -> None:
    frames = [noise_image(seed=seed) for seed in range(3)]
    data = bytearray(encode(frames[0], "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate"))
    with Image.open(io.BytesIO(bytes(data))) as tiff:
        tiff.seek(2)
        start, length = tiff.tag_v2[273][0], tiff.tag_v2[279][0]
    data[start : start + length] = bytes(length)  # not a deflate stream any more
    received: list[int] = []
    with pytest.raises(DecodeError, match="page 3"):
        for page in iter_pages(bytes(data), "scan.tif"):
            received.append(page.page)
    assert received == [1, 2]


@pytest.mark.parametrize("cut", [9, 100, 300, -60, -6])
def test_truncated_pdf_raises(cut: int) -> None:
    data = pdf_with_red_square()
    with pytest.raises(DecodeError):
        decode_all(data[:cut])


def test_encrypted_pdf() -> None:
    with pytest.raises(DecodeError, match="encrypted"):
        decode_all(encrypted_pdf())


def test_handmade_pdf_without_encryption_decodes() -> None:
    (page,) = decode_all(handmade_pdf(PDF_OBJECTS), pdf_dpi=72)
    assert page.image.shape == (100, 200)


def test_pdf_with_garbage_body() -> None:
    with pytest.raises(DecodeError, match="corrupt PDF"):
        decode_all(b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\n")


@pytest.mark.parametrize("pageless", [False, True])
def test_pdf_without_pages(pageless: bool) -> None:
    # PDFium refuses to load a document without pages; either way it is a DecodeError.
    data = (
        pdf_bytes()
        if pageless
        else handmade_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    )
    with pytest.raises(DecodeError, match="PDF"):
        decode_all(data)


def test_damaged_inputs_only_ever_raise_decode_error() -> None:
    """Byte flips anywhere: each result is either valid pages or a DecodeError, nothing else."""
    rng = np.random.default_rng(1234)
    samples = [
        encode(noise_image("RGB", (40, 30)), "PNG"),
        encode(noise_image("RGB", (40, 30)), "JPEG"),
        multipage_tiff([0, 128], compression="tiff_deflate"),
        encode(noise_image("RGB", (40, 30)), "WEBP"),
        encode(noise_image("L", (40, 30)), "GIF"),
        pdf_with_red_square(),
    ]
    for data in samples:
        for _ in range(25):
            damaged = bytearray(data)
            for position in rng.integers(0, len(damaged), size=int(rng.integers(1, 6))):
                damaged[position] = int(rng.integers(0, 256))
            try:
                pages = decode_all(bytes(damaged), pdf_dpi=36)
            except DecodeError:
                continue
            for page in pages:
                assert page.image.dtype == np.uint8 and page.image.ndim == 2 and page.image.size > 0
