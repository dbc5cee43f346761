"""Make the sample pages: synthetic handwritten pages in every input format, with ground truth.

    python -m sparkhtr.synth.samples --fonts fonts --out samples --pages 6 --seed 0

Fetches the handwriting fonts first when ``--fonts`` holds none (needs ``npm``), then
writes English and French pages as PNG, JPEG, a multi-page TIFF and a PDF (one
two-column page, one skewed page), ``ground_truth.jsonl`` (one row per page:
``{file, page, width, height, language, font, lines}``, ``page`` 1-based within the
file), the same as PAGE XML in ``ground_truth/`` (``--xml-only`` rewrites just that
from the JSONL) and a ``README.md`` naming the fonts and their licences. Pages are rendered
without pixel noise so the committed files stay small.

>>> [(p.suffix, p.pages, p.two_columns, p.skew) for p in _plan(6)]  # doctest: +NORMALIZE_WHITESPACE
[('.png', 1, False, False), ('.png', 1, True, False), ('.jpg', 1, False, True), ('.tif', 2, False, False),
 ('.pdf', 1, False, False)]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sparkhtr.synth.fonts import fetch_fonts, fonts_for_text, list_fonts, read_manifest
from sparkhtr.synth.render import render_page
from sparkhtr.synth.text import random_paragraph

PAGE_WIDTH = 1400
PDF_RESOLUTION = 200  # sparkhtr decodes PDFs at 200 dpi by default: ground truth then matches


@dataclass(frozen=True)
class _File:
    suffix: str
    pages: int
    two_columns: bool = False
    skew: bool = False


def _plan(n_pages: int) -> list[_File]:
    """Files for ``n_pages`` pages: one of each special kind first, then PNGs."""
    special = [_File(".png", 1), _File(".png", 1, two_columns=True), _File(".jpg", 1, skew=True),
               _File(".tif", 2), _File(".pdf", 1)]
    plan: list[_File] = []
    left = n_pages
    for f in special:
        if left <= 0:
            break
        pages = min(f.pages, left)
        plan.append(_File(f.suffix, pages, f.two_columns, f.skew))
        left -= pages
    plan += [_File(".png", 1)] * max(left, 0)
    return plan


def _page(rng: random.Random, fonts: list[Path], language: str, two_columns: bool,
          skew: bool) -> tuple[np.ndarray, list[dict], Path, float]:
    """Render one page in a font that can draw all of its text."""
    while True:
        if two_columns:
            lines = random_paragraph(rng, rng.randint(30, 40), language, max_chars=34)
        else:
            lines = random_paragraph(rng, rng.randint(14, 22), language, min_chars=20, max_chars=rng.randint(45, 62))
        usable = fonts_for_text(fonts, "".join(lines))
        if usable:
            break
    font = rng.choice(usable)
    skew_degrees = rng.choice((-1, 1)) * rng.uniform(1.2, 2.5) if skew else 0.0
    # dark ink mostly, one page in four a paler pen, so demos stay legible
    ink = rng.uniform(15, 70) if rng.random() < 0.75 else rng.uniform(90, 120)
    image, truth = render_page(lines, font, rng, width=PAGE_WIDTH, two_columns=two_columns,
                               skew_degrees=skew_degrees, grain=0.0, ink_level=ink)
    return image, truth, font, skew_degrees


def _save(path: Path, images: list[np.ndarray]) -> None:
    pil = [Image.fromarray(im, "L") for im in images]
    if path.suffix == ".png":
        pil[0].save(path, "PNG", optimize=True)
    elif path.suffix == ".jpg":
        pil[0].save(path, "JPEG", quality=80, optimize=True)
    elif path.suffix == ".tif":
        pil[0].save(path, "TIFF", save_all=True, append_images=pil[1:], compression="tiff_adobe_deflate")
    elif path.suffix == ".pdf":
        # fixed dates: the same seed then gives byte-identical files
        stamp = time.gmtime(946684800)  # 2000-01-01; Pillow writes struct_time values
        pil[0].save(path, "PDF", resolution=PDF_RESOLUTION, save_all=True, append_images=pil[1:], quality=80,
                    title="sparkhtr synthetic sample", creationDate=stamp, modDate=stamp)
    else:
        raise ValueError(f"unsupported sample format {path.suffix}")


def make_samples(fonts_dir: Path, out: Path, n_pages: int = 6, seed: int = 0) -> list[dict]:
    """Render ``n_pages`` pages into ``out/pages`` and their ground truth beside that folder.

    ``ground_truth.jsonl`` and ``README.md`` stay out of ``pages/`` so that running the
    pipeline over ``pages/`` sees only the page files. Returns the ground-truth rows.
    """
    fonts = list_fonts(fonts_dir)
    if not fonts:
        fetch_fonts(fonts_dir)
        fonts = list_fonts(fonts_dir)
    rng = random.Random(seed)
    pages_dir = out / "pages"
    pages_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    notes: dict[str, str] = {}
    used: set[str] = set()
    page_no = 0
    for k, spec in enumerate(_plan(n_pages), start=1):
        images = []
        path = pages_dir / f"sample_{k:02d}{spec.suffix}"
        for page in range(1, spec.pages + 1):
            language = ("en", "fr")[page_no % 2]
            page_no += 1
            image, truth, font, skew = _page(rng, fonts, language, spec.two_columns, spec.skew)
            images.append(image)
            used.add(font.name)
            rows.append({"file": f"pages/{path.name}", "page": page,
                         "width": image.shape[1], "height": image.shape[0],
                         "language": language, "font": font.name,
                         "lines": [{"line_id": ln["line_id"], "text": ln["text"], "bbox": ln["bbox"],
                                    "polygon": ln["polygon"], "baseline": ln["baseline"]} for ln in truth]})
            notes[path.name] = "; ".join(filter(None, (
                "two columns, left then right" if spec.two_columns else "",
                f"skewed {skew:+.1f}°" if skew else "",
                f"{spec.pages}-page TIFF" if spec.suffix == ".tif" else "",
                f"Pillow PDF, {PDF_RESOLUTION} dpi" if spec.suffix == ".pdf" else "")))
        _save(path, images)
    with open(out / "ground_truth.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_ground_truth_xml(rows, out / "ground_truth")
    _write_readme(out, fonts_dir, rows, notes, used, n_pages, seed)
    return rows


def write_ground_truth_xml(rows: list[dict], folder: Path) -> list[Path]:
    """Write each ground-truth row as PAGE XML into ``folder``, named as ``sparkhtr export`` names pages.

    ``sample_04.tif`` page 2 becomes ``sample_04.tif.p2.xml`` (image ``sample_04.tif``), which is
    how :mod:`sparkhtr.io.ground_truth` matches it to the recognised page. Deterministic: a fixed
    creation date, so rewriting unchanged ground truth leaves the files unchanged.
    """
    from datetime import datetime, timezone

    from sparkhtr.core.types import BBox
    from sparkhtr.io.export import export_name
    from sparkhtr.io.layout import LayoutLine, LayoutPage, as_points
    from sparkhtr.io.layout_xml import to_page_xml

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for row in rows:
        lines = tuple(LayoutLine(ln["text"], as_points(ln.get("polygon")), as_points(ln.get("baseline")),
                                 BBox(*ln["bbox"]) if ln.get("bbox") else None) for ln in row["lines"])
        page = LayoutPage(row["file"], int(row["page"]), int(row["width"]), int(row["height"]), lines)
        path = folder / export_name(row["file"], page.page, "xml")
        path.write_bytes(to_page_xml(page, creator="sparkhtr synthetic ground truth",
                                     created=datetime(2000, 1, 1, tzinfo=timezone.utc)))
        written.append(path)
    return written


def _write_readme(out: Path, fonts_dir: Path, rows: list[dict], notes: dict[str, str], used: set[str],
                  n_pages: int, seed: int) -> None:
    manifest = read_manifest(fonts_dir)
    by_file = {f: m for m in manifest.values() for f in m.get("files", [])}
    font_lines = []
    for name in sorted(used):
        m = by_file.get(name, {})
        credit = f" — {m['attribution']}" if m.get("attribution") else ""
        font_lines.append(f"| {m.get('family', name)} | `{m.get('package', '?')}@{m.get('version', '?')}` | "
                          f"{m.get('license', 'unknown')} | {credit.removeprefix(' — ')} |")
    files = []
    for name in dict.fromkeys(r["file"] for r in rows):
        pages = [r for r in rows if r["file"] == name]
        size = (out / name).stat().st_size
        files.append(f"| `{name}` | {len(pages)} | {', '.join(r['language'] for r in pages)} | "
                     f"{sum(len(r['lines']) for r in pages)} | {size / 1024:.0f} KiB | {notes.get(name, '')} |")
    text = f"""# Synthetic sample pages

Handwritten-looking pages rendered from handwriting fonts and generated English and
French text (letters and wills: dates, sums, names, addresses). They are **synthetic**:
no real document, writer or person is shown. Use them for demos, end-to-end tests of
decoding (PNG, JPEG, multi-page TIFF, PDF), line segmentation and recognition; the
exact text of every line is in `ground_truth.jsonl`.

Made with:

    python -m sparkhtr.synth.samples --fonts fonts --out samples --pages {n_pages} --seed {seed}

(deterministic for a given seed and font set; fonts are fetched from the npm registry
into the git-ignored `fonts/` folder when it is empty, and are never committed).

## Files

| file | pages | language | lines | size | notes |
|---|---|---|---|---|---|
{chr(10).join(files)}

A PDF page rendered at {PDF_RESOLUTION} dpi is {PAGE_WIDTH} pixels wide, in the pixel space of
the ground truth.

## ground_truth.jsonl

One row per page: `file`, `page` (1-based within the file), `width`, `height`,
`language`, `font`, and `lines` in reading order, each
`{{line_id, text, bbox: [x0, y0, x1, y1], polygon: [[x, y], ...], baseline: [[x, y], ...]}}`
in the pixel space of the page image (the same shape as the real data's
`pages.jsonl` lines, plus `bbox`). Polygons enclose the slanted ink boxes of the
words; baselines run through each word's start and end.

## ground_truth/

The same ground truth as PAGE XML (2019-07-15), one file per page, named as
`sparkhtr export` names pages (`sample_04.tif.p2.xml` is page 2 of `sample_04.tif`),
so that `sparkhtr eval --tables out/tables --gt samples/ground_truth` scores the
README job. Rewrite it from `ground_truth.jsonl` without re-rendering the pages with
`python -m sparkhtr.synth.samples --out samples --xml-only`.

## Fonts and licences

The page images are rendered output, not font software; the fonts used were:

| family | npm package | licence | attribution |
|---|---|---|---|
{chr(10).join(font_lines)}

OFL-1.1 is the SIL Open Font License 1.1; Apache-2.0 the Apache License 2.0. The
images and ground truth are released with the project (Apache-2.0).
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fonts", type=Path, default=Path("fonts"), help="font folder (fetched when empty)")
    p.add_argument("--out", type=Path, default=Path("samples"), help="pages go to OUT/pages, ground truth to OUT")
    p.add_argument("--pages", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--xml-only", action="store_true",
                   help="only rewrite OUT/ground_truth/*.xml (PAGE XML) from OUT/ground_truth.jsonl")
    args = p.parse_args(argv)
    if args.xml_only:
        source = args.out / "ground_truth.jsonl"
        rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        written = write_ground_truth_xml(rows, args.out / "ground_truth")
        print(f"{len(written)} PAGE XML files → {args.out / 'ground_truth'}")
        return
    if args.pages < 1:
        p.error("--pages must be at least 1")
    rows = make_samples(args.fonts, args.out, args.pages, args.seed)
    total = sum((args.out / f).stat().st_size for f in {r["file"] for r in rows})
    print(f"{len(rows)} pages in {len({r['file'] for r in rows})} files, {total / 1e6:.2f} MB → {args.out}")


if __name__ == "__main__":
    main()
