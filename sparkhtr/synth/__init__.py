"""Synthetic handwriting: fonts, text, rendered lines and pages.

Used to make sample pages for tests and demos and extra training lines. Fonts are
handwriting families from the Fontsource packages on the npm registry, fetched on
demand into a git-ignored folder (``fonts/``); they are never committed.

>>> from sparkhtr.synth import random_line
>>> import random
>>> 15 <= len(random_line(random.Random(0))) <= 70
True
"""

from __future__ import annotations

from sparkhtr.synth.fonts import DEFAULT_FAMILIES, fetch_fonts, list_fonts, supported_characters
from sparkhtr.synth.render import render_line, render_page
from sparkhtr.synth.text import random_line, random_paragraph

__all__ = [
    "DEFAULT_FAMILIES",
    "fetch_fonts",
    "list_fonts",
    "random_line",
    "random_paragraph",
    "render_line",
    "render_page",
    "supported_characters",
]
