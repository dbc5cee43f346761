"""Character and word error rates (rapidfuzz's Levenshtein distance).

>>> cer(["abcd"], ["abed"])
0.25
>>> wer(["the cat sat"], ["the bat sat"])
0.333...
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def edit_counts(references: Sequence[str], hypotheses: Sequence[str], words: bool = False) -> tuple[int, int]:
    """(total edit distance, total reference length) over aligned pairs."""
    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in length")
    errors = total = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = (ref.split(), hyp.split()) if words else (ref, hyp)
        errors += Levenshtein.distance(r, h)
        total += len(r)
    return errors, total


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate: edits / reference characters (micro-averaged)."""
    errors, total = edit_counts(references, hypotheses)
    return errors / max(total, 1)


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate on whitespace-separated words (micro-averaged)."""
    errors, total = edit_counts(references, hypotheses, words=True)
    return errors / max(total, 1)
