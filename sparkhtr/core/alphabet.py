"""Character sets of CTC line recognisers: text normalisation, encoding, decoding.

The alphabet is decided deliberately (see the model card): printable ASCII plus the
letters and signs of French and English archives. Characters outside it are mapped to
a close equivalent where one exists (``ſ`` → ``s``, ``ć`` → ``c``) and dropped
otherwise, so training targets and evaluation references agree.

>>> alphabet = Alphabet(DEFAULT_CHARACTERS)
>>> alphabet.normalize("Œuvre ſans ⋎")
'Œuvre sans'
>>> alphabet.decode(alphabet.encode("abc"))
'abc'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

# Index 0 of the model output is the CTC blank; characters start at index 1.
BLANK_INDEX = 0

_ASCII = "".join(chr(c) for c in range(32, 127))
_FRENCH = "àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ"
_SIGNS = "£€§°«»’‘“”–—…"
DEFAULT_CHARACTERS: str = _ASCII + _FRENCH + _SIGNS

# Explicit replacements applied before the generic accent stripping.
_REPLACEMENTS = {
    "ſ": "s",
    "\u00a0": " ",
    "\t": " ",
    "ß": "ss",
    "⁄": "/",
    "−": "-",
}


class Alphabet:
    """An ordered character set; index ``i`` of ``characters`` is class ``i + 1``.

    >>> Alphabet("ab").encode("ba")
    [2, 1]
    """

    def __init__(self, characters: Sequence[str] | str) -> None:
        chars = list(characters)
        if len(set(chars)) != len(chars):
            raise ValueError("alphabet characters must be unique")
        if any(len(c) != 1 for c in chars):
            raise ValueError("alphabet entries must be single characters")
        self.characters: list[str] = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def num_classes(self) -> int:
        """Model output size: the characters plus the CTC blank."""
        return len(self.characters) + 1

    def __contains__(self, char: object) -> bool:
        return char in self._index

    def normalize(self, text: str) -> str:
        """NFC text with unknown characters mapped or dropped and spaces folded.

        >>> Alphabet(DEFAULT_CHARACTERS).normalize("  a\u00a0 b ")
        'a b'
        """
        out: list[str] = []
        for char in unicodedata.normalize("NFC", text):
            char = _REPLACEMENTS.get(char, char)
            for c in char:
                if c in self._index:
                    out.append(c)
                    continue
                base = unicodedata.normalize("NFKD", c)
                base = "".join(b for b in base if not unicodedata.combining(b))
                out.extend(b for b in base if b in self._index)
        return " ".join("".join(out).split())

    def dropped(self, texts: Iterable[str]) -> dict[str, int]:
        """Count the characters of ``texts`` that :meth:`normalize` cannot keep as they are."""
        counts: dict[str, int] = {}
        for text in texts:
            for char in unicodedata.normalize("NFC", text):
                if char not in self._index and not char.isspace():
                    counts[char] = counts.get(char, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def encode(self, text: str) -> list[int]:
        """Class indices of already-normalised ``text``; unknown characters are skipped."""
        return [self._index[c] for c in text if c in self._index]

    def decode(self, indices: Iterable[int]) -> str:
        """Text of class indices (no CTC collapsing; blanks are skipped)."""
        return "".join(self.characters[i - 1] for i in indices if i != BLANK_INDEX)
