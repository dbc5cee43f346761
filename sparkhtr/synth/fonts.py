"""Handwriting fonts: fetch them from the npm registry and check what they can draw.

Fonts come from `Fontsource <https://fontsource.org>`_ packages (``@fontsource/<family>``),
which are open-licensed Google Fonts (SIL OFL 1.1 or Apache 2.0) split by Unicode
subset. :func:`fetch_fonts` keeps two files per family: the ``latin`` subset (ASCII,
Latin-1 accents, ``œ``, ``€``, typographic quotes and dashes) and, where the package
has it, the ``latin-ext`` subset (``Ÿ`` and friends), which the renderer uses as a
per-character fallback. The font folder is git-ignored: fonts are fetched, never
committed.

A font's *path* in this package is the path of its ``latin`` file; its fallback file
is found next to it by name (:func:`font_files`).

>>> _family_of(Path("fonts/caveat-latin-400-normal.woff2"))
'caveat'
>>> list_fonts(Path("no-such-folder"))
[]
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import ImageFont

from sparkhtr.core.alphabet import DEFAULT_CHARACTERS
from sparkhtr.errors import SparkHtrError

log = logging.getLogger(__name__)

# Handwriting families published on npm as @fontsource/<name> (each checked with
# `npm view`); a mix of neat print, casual hands and connected copperplate-like
# scripts, because the real data ranges from 19th-century cursive to 20th-century print.
DEFAULT_FAMILIES: tuple[str, ...] = (
    "caveat",
    "homemade-apple",
    "cedarville-cursive",
    "dancing-script",
    "indie-flower",
    "kalam",
    "reenie-beanie",
    "rock-salt",
    "herr-von-muellerhoff",
    "sacramento",
    "shadows-into-light",
    "patrick-hand",
    "nothing-you-could-do",
    "la-belle-aurore",
    "zeyada",
    "dawning-of-a-new-day",
    "over-the-rainbow",
    "gloria-hallelujah",
    "just-another-hand",
    "marck-script",
    "satisfy",
    "kristi",
    "mrs-saint-delafield",
    "allura",
    "great-vibes",
    "parisienne",
    "yellowtail",
    "covered-by-your-grace",
    "architects-daughter",
    "nanum-pen-script",
)

FONT_SUFFIXES: tuple[str, ...] = (".woff2", ".woff", ".ttf", ".otf")
MANIFEST = "fonts.json"
_SUBSETS = ("latin", "latin-ext")
# Codepoints no font here assigns: what they render as is the font's .notdef glyph.
_UNASSIGNED = ("\ue000", "\uffff")


class FontError(SparkHtrError):
    """Fonts could not be fetched or read."""


def fetch_fonts(dest: Path, families: Iterable[str] = DEFAULT_FAMILIES, *, npm: str = "npm",
                timeout: float = 180.0) -> list[Path]:
    """Download handwriting fonts with ``npm pack @fontsource/<family>`` into ``dest``.

    For each family, the 400-weight (else the nearest weight) normal-style ``latin``
    and ``latin-ext`` files are extracted, as WOFF2 when this Pillow/FreeType can read
    it, else WOFF. Families already present are skipped, so re-running is cheap. The
    package's licence text is kept as ``<family>.LICENSE`` and its name, version and
    licence are recorded in ``dest/fonts.json``. Returns the primary (latin) file of
    every requested family that is present afterwards; families that fail are logged
    and skipped, and :class:`FontError` is raised only if none is available.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(dest)
    found: list[Path] = []
    failed: dict[str, str] = {}
    npm_path: str | None = None
    for family in families:
        present = _primary_file(dest, family)
        if present is not None:
            found.append(present)
            continue
        if npm_path is None:
            npm_path = shutil.which(npm)
            if npm_path is None:
                raise FontError(f"'{npm}' was not found on PATH: install Node.js/npm to fetch fonts, "
                                f"or put .woff2/.woff/.ttf handwriting fonts into {dest} yourself")
        try:
            entry = _fetch_family(npm_path, family, dest, timeout)
        except (FontError, OSError, subprocess.SubprocessError, tarfile.TarError, ValueError) as exc:
            failed[family] = str(exc)
            log.warning("font family %s skipped: %s", family, exc)
            continue
        manifest[family] = entry
        found.append(dest / entry["files"][0])
    if manifest:
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if not found:
        raise FontError(f"no font could be fetched into {dest}: {failed}")
    return found


def read_manifest(directory: Path) -> dict[str, dict]:
    """The ``fonts.json`` written by :func:`fetch_fonts` (family → package, version, licence, files).

    >>> read_manifest(Path("no-such-folder"))
    {}
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _fetch_family(npm_path: str, family: str, dest: Path, timeout: float) -> dict:
    """Pack one @fontsource package in a temporary folder and extract its files."""
    with tempfile.TemporaryDirectory(prefix="sparkhtr-font-") as tmp:
        proc = subprocess.run([npm_path, "pack", f"@fontsource/{family}", "--silent"], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout, check=False)
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            raise FontError(f"npm pack @fontsource/{family} failed: {proc.stderr.strip()[-300:]}")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            return _extract(tar, family, dest)


def _extract(tar: tarfile.TarFile, family: str, dest: Path) -> dict:
    """Copy the chosen font files, licence and metadata out of a Fontsource tarball.

    Only named members are read (never ``extractall``), so a hostile archive cannot
    write outside ``dest``.
    """
    names = tar.getnames()

    def read(name: str) -> bytes:
        member = tar.extractfile(name)
        if member is None:
            raise FontError(f"{name} missing from the @fontsource/{family} package")
        return member.read()

    package = json.loads(read("package/package.json"))
    metadata = json.loads(read("package/metadata.json")) if "package/metadata.json" in names else {}
    pattern = re.compile(r"package/files/(.+)-(latin|latin-ext)-(\d+)-normal\.(woff2|woff|ttf)$")
    by_key: dict[tuple[str, int, str], str] = {}
    for name in names:
        m = pattern.match(name)
        if m:
            by_key[(m.group(2), int(m.group(3)), m.group(4))] = name
    weights = sorted({w for (subset, w, _) in by_key if subset == "latin"}, key=lambda w: (abs(w - 400), w))
    if not weights:
        raise FontError(f"@fontsource/{family} has no latin normal-style font file")
    weight = weights[0]
    written: list[str] = []
    for subset in _SUBSETS:
        for ext in ("woff2", "woff", "ttf"):
            name = by_key.get((subset, weight, ext))
            if name is None:
                continue
            target = dest / f"{family}-{subset}-{weight}-normal.{ext}"
            target.write_bytes(read(name))
            if _loads(target):
                written.append(target.name)
                break
            # this FreeType lacks a decoder for the format (WOFF2 needs brotli): try the next
            target.unlink()
    if not written or "-latin-ext-" in written[0]:
        raise FontError(f"no readable latin font file in @fontsource/{family}")
    if "package/LICENSE" in names:
        (dest / f"{family}.LICENSE").write_bytes(read("package/LICENSE"))
    licence = metadata.get("license", {}) if isinstance(metadata.get("license"), dict) else {}
    return {
        "package": package.get("name", f"@fontsource/{family}"),
        "version": package.get("version", ""),
        "family": metadata.get("family", family),
        "license": package.get("license") or licence.get("type", "unknown"),
        "attribution": licence.get("attribution", ""),
        "weight": weight,
        "files": written,
    }


def _loads(path: Path) -> bool:
    """Whether Pillow can open ``path`` as a font here."""
    try:
        ImageFont.truetype(str(path), 20)
    except OSError:
        return False
    return True


def _family_of(path: Path) -> str:
    """Family name of a Fontsource-style file name, else the file stem."""
    m = re.match(r"(.+?)-latin(?:-ext)?-\d+-\w+$", path.stem)
    return m.group(1) if m else path.stem


def _primary_file(directory: Path, family: str) -> Path | None:
    """The latin file of ``family`` in ``directory``, preferring WOFF2."""
    for suffix in FONT_SUFFIXES:
        for path in sorted(directory.glob(f"{family}-latin-[0-9]*-normal{suffix}")):
            return path
    return None


def list_fonts(directory: Path) -> list[Path]:
    """One primary font file per family in ``directory`` (sorted).

    ``latin-ext`` files are fallbacks of their ``latin`` sibling and are not listed
    on their own; of several formats of one file, WOFF2 wins. Other ``.ttf``/``.otf``
    files dropped into the folder are listed as they are.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    chosen: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() not in FONT_SUFFIXES or not path.is_file():
            continue
        if "-latin-ext-" in path.name and _primary_file(directory, _family_of(path)) is not None:
            continue
        key = path.with_suffix("").name
        if key not in chosen or FONT_SUFFIXES.index(path.suffix.lower()) < FONT_SUFFIXES.index(chosen[key].suffix):
            chosen[key] = path
    return sorted(chosen.values())


def font_files(font_path: Path) -> tuple[Path, ...]:
    """``font_path`` followed by its fallback file (the ``latin-ext`` sibling), if any.

    >>> font_files(Path("f/caveat-latin-400-normal.woff2"))
    (PosixPath('f/caveat-latin-400-normal.woff2'),)
    """
    font_path = Path(font_path)
    files = [font_path]
    if "-latin-" in font_path.name and "-latin-ext-" not in font_path.name:
        stem = font_path.name.split(".")[0].replace("-latin-", "-latin-ext-", 1)
        for suffix in FONT_SUFFIXES:
            candidate = font_path.with_name(stem + suffix)
            if candidate.is_file():
                files.append(candidate)
                break
    return tuple(files)


@functools.lru_cache(maxsize=1024)
def load_font(path: str, size: int, basic: bool = False) -> ImageFont.FreeTypeFont:
    """A cached Pillow font; ``basic`` uses the layout engine without text shaping.

    Shaping (Raqm/HarfBuzz) gives kerning and the joined forms of script fonts; the
    basic engine never composes missing accented letters from marks, which is what
    the coverage check needs.
    """
    engine = ImageFont.Layout.BASIC if basic else None
    return ImageFont.truetype(path, size, layout_engine=engine)


def _glyph_signature(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@functools.lru_cache(maxsize=256)
def _file_coverage(path: str, characters: str) -> frozenset[str]:
    """Characters of ``characters`` that the single font file ``path`` has glyphs for.

    A missing character renders as the font's .notdef glyph (often a box, sometimes
    nothing): compare each rendering with that of codepoints no font assigns.
    """
    font = load_font(path, 32, basic=True)
    notdef = {_glyph_signature(font, c) for c in _UNASSIGNED}
    supported: set[str] = set()
    for char in characters:
        if char.isspace():
            if font.getlength(char) > 0:
                supported.add(char)
            continue
        sig = _glyph_signature(font, char)
        empty = sig[0][0] * sig[0][1] == 0 or not any(sig[1])
        if sig not in notdef and not empty:
            supported.add(char)
    return frozenset(supported)


def coverage(font_path: Path, characters: str = DEFAULT_CHARACTERS) -> dict[str, Path]:
    """Which file of the font draws each supported character (the primary file first)."""
    out: dict[str, Path] = {}
    for path in reversed(font_files(font_path)):
        for char in _file_coverage(str(path), characters):
            out[char] = path
    return out


def supported_characters(font_path: Path, characters: str = DEFAULT_CHARACTERS) -> frozenset[str]:
    """The characters of ``characters`` the font (with its fallback file) can draw; cached."""
    result: set[str] = set()
    for path in font_files(font_path):
        result |= _file_coverage(str(path), characters)
    return frozenset(result)


def fonts_for_text(fonts: Sequence[Path], text: str) -> list[Path]:
    """The fonts of ``fonts`` that can draw every character of ``text``."""
    needed = set(text)
    return [f for f in fonts if needed <= supported_characters(f, DEFAULT_CHARACTERS)]
