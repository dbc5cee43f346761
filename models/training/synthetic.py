"""Synthetic training lines rendered on the fly from handwriting fonts and generated text.

Each line is rendered at height 64 (the height of the real line crops in
``../shared/data/lines``) and then normalised exactly as
:func:`models.training.data.load_split` normalises real lines, so synthetic and real
samples are interchangeable in a batch::

    lines = SyntheticLines("fonts", height=48, max_width=2400, seed=0).sample(1000)

Measure the rendering speed here with
``python -m models.training.synthetic --fonts fonts --n 300``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from models.training.data import LineSample
from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet
from sparkhtr.core.lines import normalize_line
from sparkhtr.synth.fonts import list_fonts, supported_characters
from sparkhtr.synth.render import render_line
from sparkhtr.synth.text import LANGUAGES, random_line

# The real line crops are stored at this height before normalisation.
SOURCE_HEIGHT = 64


class SyntheticLines:
    """An endless, seeded source of synthetic :class:`LineSample` objects.

    Successive :meth:`sample` calls continue the same random stream, so a training
    run that draws a fresh batch of synthetic lines per epoch never repeats one;
    line ids (``syn-<k>``) count up across calls.
    """

    def __init__(self, font_dir: str | Path, height: int = 48, max_width: int = 2400, seed: int = 0, *,
                 alphabet: Alphabet | None = None, languages: tuple[str, ...] = LANGUAGES,
                 neighbours: float = 0.3) -> None:
        self.fonts = list_fonts(Path(font_dir))
        if not self.fonts:
            raise FileNotFoundError(f"no fonts in {font_dir}: run sparkhtr.synth.fonts.fetch_fonts first "
                                    "(python -m sparkhtr.synth.samples fetches them too)")
        self.height = height
        self.max_width = max_width
        self.languages = languages
        self.neighbours = neighbours
        self.alphabet = alphabet or Alphabet(DEFAULT_CHARACTERS)
        self._rng = random.Random(seed)
        self._count = 0
        # computed once: which characters each font can draw
        self._supported = [supported_characters(f) for f in self.fonts]

    def _font_for(self, text: str) -> Path | None:
        needed = set(text)
        usable = [f for f, chars in zip(self.fonts, self._supported, strict=True) if needed <= chars]
        return self._rng.choice(usable) if usable else None

    def sample(self, n: int) -> list[LineSample]:
        """Render ``n`` new lines: uint8 ``[height, width]`` images (ink 255), dataset ``synthetic``."""
        out: list[LineSample] = []
        while len(out) < n:
            text = self.alphabet.normalize(random_line(self._rng, self._rng.choice(self.languages)))
            font = self._font_for(text)
            if not text or font is None:
                continue
            gray = render_line(text, font, self._rng, height=SOURCE_HEIGHT, neighbours=self.neighbours)
            x = normalize_line(gray, self.height, self.max_width)
            out.append(LineSample((x * 255).astype(np.uint8), text, "synthetic", f"syn-{self._count}"))
            self._count += 1
        return out


def main(argv: list[str] | None = None) -> None:
    """Render ``--n`` lines, print lines per second, optionally save a preview strip."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fonts", type=Path, default=Path("fonts"))
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--height", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preview", type=Path, default=None, help="PNG with the first 20 lines stacked")
    args = p.parse_args(argv)
    source = SyntheticLines(args.fonts, height=args.height, seed=args.seed)
    source.sample(5)  # warm the font caches, as a training run would before timing matters
    start = time.perf_counter()
    lines = source.sample(args.n)
    elapsed = time.perf_counter() - start
    widths = [s.image.shape[1] for s in lines]
    print(f"{args.n / elapsed:.1f} lines/s on one core ({len(source.fonts)} fonts, "
          f"mean width {np.mean(widths):.0f} px at height {args.height})")
    if args.preview:
        import cv2

        rows = lines[:20]
        w = max(s.image.shape[1] for s in rows)
        strip = np.vstack([np.pad(255 - s.image, ((2, 2), (0, w - s.image.shape[1])), constant_values=128)
                           for s in rows])
        cv2.imwrite(str(args.preview), strip)
        for s in rows:
            print(s.line_id, s.text)


if __name__ == "__main__":
    main()
