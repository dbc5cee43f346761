"""Character and word error rates (rapidfuzz's Levenshtein distance).

>>> cer(["abcd"], ["abed"])
0.25
>>> wer(["the cat sat"], ["the bat sat"])
0.333...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist


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


def order_free_edit_counts(reference_lines: Sequence[str], hypothesis_lines: Sequence[str]) -> tuple[int, int]:
    """(edits, reference characters) of a page's lines matched one to one by text, in any order.

    A page's text compared in reading order counts every line the ground truth lists in
    another order (or a note read before the line beside it) as deleted and inserted
    again; here each reference line is paired with the hypothesis line that saves the most
    edits (greedily, the largest saving first; a pairing is kept only when it costs less
    than deleting one line and inserting the other), and unpaired lines count whole.
    Greedy pairing can only overestimate the best pairing's edits. Line breaks are not
    counted, so ``reference characters`` is the sum of the line lengths.

    >>> order_free_edit_counts(["the cat", "sat down"], ["sat dawn", "the cat"])
    (1, 15)
    >>> order_free_edit_counts(["the cat"], ["the cat", "stamp"])
    (5, 7)
    """
    refs, hyps = list(reference_lines), list(hypothesis_lines)
    total = sum(len(r) for r in refs)
    if not refs or not hyps:
        return total + sum(len(h) for h in hyps), total
    distance = cdist(refs, hyps, scorer=Levenshtein.distance, dtype=np.int64, workers=1)
    saving = np.add.outer([len(r) for r in refs], [len(h) for h in hyps]) - distance
    ref_used, hyp_used = np.zeros(len(refs), bool), np.zeros(len(hyps), bool)
    errors = 0
    for flat in np.argsort(-saving, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(hyps))
        if saving[i, j] <= 0:
            break
        if not ref_used[i] and not hyp_used[j]:
            ref_used[i] = hyp_used[j] = True
            errors += int(distance[i, j])
    errors += sum(len(r) for r, used in zip(refs, ref_used, strict=True) if not used)
    errors += sum(len(h) for h, used in zip(hyps, hyp_used, strict=True) if not used)
    return errors, total
