"""Synthetic handwriting: text generators, fonts, line and page rendering, committed samples.

Font-dependent tests use ``$SPARKHTR_FONTS`` or the repository's git-ignored
``fonts/`` folder and skip when neither holds fonts (fetch them with
``python -m sparkhtr.synth.samples``).
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet
from sparkhtr.synth import fonts as fontmod
from sparkhtr.synth.fonts import FontError, fetch_fonts, fonts_for_text, list_fonts, supported_characters
from sparkhtr.synth.render import elastic_distort, render_line, render_page
from sparkhtr.synth.text import random_line, random_paragraph

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ALPHABET = set(DEFAULT_CHARACTERS)


def _font_dir() -> Path:
    return Path(os.environ.get("SPARKHTR_FONTS", ROOT / "fonts"))


@pytest.fixture(scope="module")
def fonts() -> list[Path]:
    found = list_fonts(_font_dir())
    if not found:
        pytest.skip(f"no fonts in {_font_dir()} (python -m sparkhtr.synth.samples fetches them)")
    return found


@pytest.fixture(scope="module")
def font(fonts: list[Path]) -> Path:
    """A font that draws the whole alphabet if there is one (else the first)."""
    full = [f for f in fonts if supported_characters(f) >= ALPHABET]
    return (full or fonts)[0]


# --- text ------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "fr", None])
def test_random_line_alphabet_and_length(language: str | None) -> None:
    rng = random.Random(11)
    alphabet = Alphabet(DEFAULT_CHARACTERS)
    for _ in range(400):
        line = random_line(rng, language)
        assert 15 <= len(line) <= 70, line
        assert set(line) <= ALPHABET, set(line) - ALPHABET
        assert alphabet.normalize(line) == line  # already normalised: no double or edge spaces


def test_random_line_is_seeded_and_varied() -> None:
    a = [random_line(random.Random(3), "fr") for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(4)
    assert len({random_line(rng) for _ in range(50)}) == 50


def test_random_line_custom_bounds_and_errors() -> None:
    rng = random.Random(0)
    for _ in range(100):
        assert 30 <= len(random_line(rng, "en", min_chars=30, max_chars=40)) <= 40
    with pytest.raises(ValueError):
        random_line(rng, "de")
    with pytest.raises(ValueError):
        random_line(rng, "en", min_chars=50, max_chars=20)


def test_random_paragraph_lines() -> None:
    rng = random.Random(5)
    for language in ("en", "fr"):
        lines = random_paragraph(rng, 25, language)
        assert len(lines) == 25
        assert all(15 <= len(x) <= 70 and set(x) <= ALPHABET for x in lines)
    short = random_paragraph(rng, 10, "fr", max_chars=30)
    assert all(15 <= len(x) <= 30 for x in short)


def test_text_covers_the_register() -> None:
    rng = random.Random(7)
    text = " ".join(random_line(rng, lang) for lang in ("en", "fr") for _ in range(600))
    for mark in (",", ".", ";", ":", "'", "-", "(", ")", "?", "!", "&", "£", "«", "»", "é", "è", "à", "ç"):
        assert mark in text, mark


# --- fonts (no network) ------------------------------------------------------


def test_list_fonts_keeps_one_file_per_family(tmp_path: Path) -> None:
    for name in ("caveat-latin-400-normal.woff2", "caveat-latin-400-normal.woff", "caveat-latin-ext-400-normal.woff2",
                 "my-hand.ttf", "notes.txt", "orphan-latin-ext-400-normal.woff2"):
        (tmp_path / name).write_bytes(b"")
    names = [p.name for p in list_fonts(tmp_path)]
    assert names == ["caveat-latin-400-normal.woff2", "my-hand.ttf", "orphan-latin-ext-400-normal.woff2"]
    assert [p.name for p in fontmod.font_files(tmp_path / names[0])] == [names[0], "caveat-latin-ext-400-normal.woff2"]


def test_fetch_fonts_needs_npm(tmp_path: Path) -> None:
    with pytest.raises(FontError, match="not found on PATH"):
        fetch_fonts(tmp_path, ["caveat"], npm="no-such-npm-binary")


def test_fetch_fonts_skips_present_families(tmp_path: Path) -> None:
    (tmp_path / "caveat-latin-400-normal.woff2").write_bytes(b"")
    # npm is never called for a family that is already there
    assert fetch_fonts(tmp_path, ["caveat"], npm="no-such-npm-binary") == [tmp_path / "caveat-latin-400-normal.woff2"]


def test_extract_from_a_fontsource_tarball(tmp_path: Path, font: Path) -> None:
    data = font.read_bytes()
    members = {
        "package/package.json": json.dumps({"name": "@fontsource/fake", "version": "1.0.0", "license": "OFL-1.1"}),
        "package/metadata.json": json.dumps({"family": "Fake", "weights": [300, 400],
                                             "license": {"type": "OFL-1.1", "attribution": "Someone"}}),
        "package/LICENSE": "licence text",
        "package/files/fake-latin-300-normal.woff2": data,
        "package/files/fake-latin-400-normal.woff2": data,
        "package/files/fake-cyrillic-400-normal.woff2": data,
        "../evil.woff2": data,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            raw = content if isinstance(content, bytes) else content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    buf.seek(0)
    dest = tmp_path / "fonts"
    dest.mkdir()
    with tarfile.open(fileobj=buf, mode="r:gz") as tar:
        entry = fontmod._extract(tar, "fake", dest)
    assert entry["files"] == ["fake-latin-400-normal.woff2"]
    assert entry["license"] == "OFL-1.1" and entry["weight"] == 400
    assert sorted(p.name for p in dest.iterdir()) == ["fake-latin-400-normal.woff2", "fake.LICENSE"]
    assert not (tmp_path / "evil.woff2").exists()


def test_supported_characters_detects_missing_glyphs(font: Path) -> None:
    chars = supported_characters(font, "aBc\u0531\u4e00 ")
    assert {"a", "B", "c", " "} <= chars
    assert "\u0531" not in chars and "\u4e00" not in chars  # Armenian, CJK: no handwriting font here has them
    assert font in fonts_for_text([font], "abc")


# --- rendering ------------------------------------------------------------------


def test_render_line_shape_and_contrast(font: Path) -> None:
    rng = random.Random(1)
    for height in (64, 40):
        img = render_line("My dear Sir, le 3 août 1916", font, rng, height=height)
        assert img.dtype == np.uint8 and img.ndim == 2 and img.shape[0] == height
        assert img.shape[1] > 3 * height
        paper, ink = np.median(img), np.percentile(img, 1)
        assert paper - ink > 25  # paper light, ink dark


def test_render_line_is_seeded_and_refuses_undrawable_text(font: Path) -> None:
    a = render_line("same seed", font, random.Random(9))
    b = render_line("same seed", font, random.Random(9))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="cannot draw"):
        render_line("Ա", font, random.Random(0))


@pytest.mark.parametrize("two_columns, skew", [(False, 0.0), (True, 0.0), (False, 2.0)])
def test_render_page_ground_truth(font: Path, two_columns: bool, skew: float) -> None:
    rng = random.Random(2)
    lines = random_paragraph(rng, 16, "fr", max_chars=34 if two_columns else 60)
    page, truth = render_page(lines, font, rng, width=1000, two_columns=two_columns, skew_degrees=skew)
    h, w = page.shape
    assert page.dtype == np.uint8 and w == 1000 and h == round(1000 * 2**0.5)
    assert [t["text"] for t in truth] == lines
    assert len({t["line_id"] for t in truth}) == len(lines)
    paper = float(np.median(page))
    for t in truth:
        x0, y0, x1, y1 = t["bbox"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert float(page[y0:y1, x0:x1].min()) < paper - 30, t  # the box holds ink
        for x, y in t["polygon"] + t["baseline"]:
            assert x0 - 1 <= x <= x1 and y0 - 1 <= y <= y1
    # ink outside every box is rare: the boxes cover the writing
    covered = np.zeros_like(page, bool)
    for t in truth:
        x0, y0, x1, y1 = t["bbox"]
        covered[y0:y1, x0:x1] = True
    dark = page < paper - 60
    assert dark[~covered].sum() <= 0.01 * dark.sum()
    if two_columns:
        right = [t for t in truth if t["bbox"][0] > w / 2]
        assert len(right) == len(lines) // 2  # the second half of the lines, in the right column
        assert truth[len(lines) - len(right)] is right[0]


# --- committed samples and synthetic training lines ------------------------------


def test_committed_samples_match_ground_truth() -> None:
    gt = SAMPLES / "ground_truth.jsonl"
    if not gt.is_file():
        pytest.skip("no samples/ground_truth.jsonl")
    rows = [json.loads(line) for line in gt.read_text(encoding="utf-8").splitlines() if line.strip()]
    files = {r["file"] for r in rows}
    present = {f"pages/{p.name}" for p in (SAMPLES / "pages").iterdir()}
    assert files == present
    for name in sorted(files):
        pages = sorted(r["page"] for r in rows if r["file"] == name)
        assert pages == list(range(1, len(pages) + 1))
        path = SAMPLES / name
        if path.suffix == ".pdf":
            import pypdfium2 as pdfium

            doc = pdfium.PdfDocument(str(path))
            sizes = []
            for i in range(len(doc)):
                width, height = doc[i].get_size()  # points; the samples are saved at 200 dpi
                sizes.append((round(width * 200 / 72), round(height * 200 / 72)))
            doc.close()
        else:
            with Image.open(path) as im:
                sizes = []
                for i in range(getattr(im, "n_frames", 1)):
                    im.seek(i)
                    sizes.append(im.size)
        assert len(sizes) == len(pages), name
        for r in (r for r in rows if r["file"] == name):
            width, height = sizes[r["page"] - 1]
            assert abs(width - r["width"]) <= 1 and abs(height - r["height"]) <= 1
            keys = {"line_id", "text", "bbox", "polygon", "baseline"}
            assert r["lines"] and all(set(ln) >= keys for ln in r["lines"])
    assert sum((SAMPLES / f).stat().st_size for f in files) < 3_000_000


def test_synthetic_lines_match_the_training_format(fonts: list[Path]) -> None:
    from models.training.synthetic import SyntheticLines

    source = SyntheticLines(_font_dir(), height=48, max_width=600, seed=0)
    first = source.sample(4)
    second = source.sample(2)
    assert [s.line_id for s in first + second] == [f"syn-{k}" for k in range(6)]
    for s in first + second:
        assert s.dataset == "synthetic" and s.text and set(s.text) <= ALPHABET
        assert s.image.dtype == np.uint8 and s.image.shape[0] == 48 and 8 <= s.image.shape[1] <= 600
        assert s.image.max() > 200 and np.median(s.image) < 30  # ink high, background 0, like load_split
    again = SyntheticLines(_font_dir(), height=48, max_width=600, seed=0).sample(4)
    assert [s.text for s in again] == [s.text for s in first]


# --- elastic distortion ----------------------------------------------------

def _stroke_line() -> np.ndarray:
    line = np.zeros((64, 400), np.uint8)
    for x in range(20, 380, 30):  # vertical strokes a letter's width apart
        line[16:48, x:x + 4] = 255
    return line


def test_elastic_distort_is_local_seeded_and_scales_with_amplitude() -> None:
    line = _stroke_line()
    assert (elastic_distort(line, random.Random(1), amplitude=0.0) == line).all()
    a = elastic_distort(line, random.Random(1), amplitude=0.04)
    assert (a == elastic_distort(line, random.Random(1), amplitude=0.04)).all()
    assert not (a == elastic_distort(line, random.Random(2), amplitude=0.04)).all()
    assert a.shape == line.shape and a.dtype == np.uint8
    # the strokes bend but stay where they were: ink mass kept, every stroke's ink near its place
    assert abs(int(a.sum()) - int(line.sum())) < 0.1 * int(line.sum())
    columns = np.nonzero(a.max(axis=0) > 127)[0]
    assert all(np.abs(columns - x - 1.5).min() < 12 for x in range(20, 380, 30))
    changed = [float(np.abs(elastic_distort(line, random.Random(1), amplitude=amp).astype(float) - line).mean())
               for amp in (0.01, 0.03, 0.08)]
    assert changed[0] < changed[1] < changed[2]


def test_elastic_distort_pulls_in_paper_at_the_edges() -> None:
    ink = np.full((64, 200), 255, np.uint8)
    warped = elastic_distort(ink, random.Random(4), amplitude=0.1)
    assert int(warped[20:44, 20:180].min()) == 255  # the middle stays ink
    assert int(warped.min()) < 255  # something moved in from outside: paper (0), not ink
