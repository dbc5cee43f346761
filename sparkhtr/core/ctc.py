"""CTC decoding of recogniser outputs.

Greedy (best-path) decoding with a per-line confidence: the geometric mean of the
probabilities of the frames that emitted a character (blank frames excluded, so
long pauses do not inflate it).

>>> import numpy as np
>>> logp = np.log(np.array([[[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.9, 0.05, 0.05], [0.2, 0.0, 0.8]]]) + 1e-9)
>>> greedy_decode(logp, np.array([4]))
[([1, 2], 0.865...)]
"""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np

from sparkhtr.core.alphabet import BLANK_INDEX
from sparkhtr.core.lm import CharNgramLM


def frames_needed(text: str) -> int:
    """The fewest output frames CTC can emit ``text`` in: one per character, plus a blank
    between each pair of equal neighbours (which would otherwise collapse into one).

    A line whose image gives the model fewer frames than this cannot be transcribed
    exactly by any CTC model, however good.

    >>> frames_needed("ab"), frames_needed("aab"), frames_needed("")
    (2, 4, 0)
    """
    return len(text) + sum(1 for a, b in itertools.pairwise(text) if a == b)


def greedy_decode(log_probs: np.ndarray, lengths: np.ndarray) -> list[tuple[list[int], float]]:
    """Best-path decode ``log_probs[batch, time, classes]``; frames past ``lengths`` are ignored.

    Returns one ``(class_indices, confidence)`` per line; an empty line has confidence
    equal to the mean blank probability.
    """
    if log_probs.ndim != 3:
        raise ValueError(f"expected [batch, time, classes], got {log_probs.shape}")
    best = log_probs.argmax(-1)
    best_logp = np.take_along_axis(log_probs, best[..., None], -1)[..., 0]
    results: list[tuple[list[int], float]] = []
    for b in range(best.shape[0]):
        n = int(min(lengths[b], best.shape[1]))
        path = best[b, :n]
        logp = best_logp[b, :n]
        keep = np.ones(n, bool)
        keep[1:] = path[1:] != path[:-1]
        keep &= path != BLANK_INDEX
        emitted = path[keep]
        if emitted.size:
            # geometric mean over every non-blank frame (repeats of a character included)
            nonblank = path != BLANK_INDEX
            confidence = float(np.exp(logp[nonblank].mean()))
        else:
            confidence = float(np.exp(logp.mean())) if n else 0.0
        results.append((emitted.tolist(), confidence))
    return results


def _beam_line(log_probs: np.ndarray, characters: str, lm: CharNgramLM | None, beam_width: int,
               alpha: float, beta: float, prune: float, max_candidates: int, floor: float) -> str:
    """CTC prefix beam search over one line's ``log_probs[time, classes]``.

    Works in probability space, rescaled every frame so the best beam has mass 1 (a common
    factor changes no ranking, and nothing underflows): additions instead of log-sum-exps
    keep this Python loop fast. A prefix's LM factor ``P_lm^alpha * e^beta`` per character
    is multiplied in when the character is appended, since every path to a prefix shares it.
    """
    # text -> [P(text, ends in blank), P(text, ends in its last character)]
    beams: dict[str, list[float]] = {"": [1.0, 0.0]}
    class_of = {c: i + 1 for i, c in enumerate(characters)}
    bonus = math.exp(beta)
    history = lm.order - 1 if lm is not None else 0
    lm_rows: dict[str, list[float]] = {}
    probs = np.exp(log_probs)
    rows = probs.tolist()  # Python floats: numpy scalars are several times slower in this loop
    candidate_mask = log_probs[:, 1:] > prune
    for t, row in enumerate(rows):
        blank = row[BLANK_INDEX]
        candidates = np.flatnonzero(candidate_mask[t])
        if candidates.size > max_candidates:
            candidates = candidates[np.argsort(log_probs[t, 1 + candidates])[-max_candidates:]]
        extend = [(c, characters[c], row[c + 1]) for c in candidates.tolist()]
        step: dict[str, list[float]] = {}
        for text, (p_blank, p_char) in beams.items():
            total = p_blank + p_char
            entry = step.get(text)
            if entry is None:
                entry = step[text] = [0.0, 0.0]
            entry[0] += total * blank
            if text:
                # the last character held for one more frame: same text
                entry[1] += p_char * row[class_of[text[-1]]]
            if not extend:
                continue
            if lm is not None:
                # the LM sees only the last order-1 characters: beams sharing them share the row
                context = text[-history:] if history else ""
                factors = lm_rows.get(context)
                if factors is None:
                    factors = lm_rows[context] = (np.exp(alpha * lm.log_probs(context)) * bonus).tolist()
            last = text[-1] if text else ""
            for c, char, p in extend:
                # a repeated character needs a blank between the two
                mass = (p_blank if char == last else total) * p * (factors[c] if lm is not None else bonus)
                if mass < floor:
                    continue  # far below the best beam (mass 1): it would be pruned anyway
                new = text + char
                extended = step.get(new)
                if extended is None:
                    step[new] = [0.0, mass]
                else:
                    extended[1] += mass
        if len(step) > beam_width:
            step = dict(heapq.nlargest(beam_width, step.items(), key=lambda kv: kv[1][0] + kv[1][1]))
        scale = max(v[0] + v[1] for v in step.values())
        if scale > 0:
            for v in step.values():
                v[0] /= scale
                v[1] /= scale
        beams = step

    def final(item: tuple[str, list[float]]) -> float:
        text, (p_blank, p_char) = item
        end = math.exp(alpha * float(lm.log_probs(text)[-1])) if lm is not None else 1.0
        return (p_blank + p_char) * end

    return max(beams.items(), key=final)[0]


def beam_decode(log_probs: np.ndarray, lengths: np.ndarray, characters: str, lm: CharNgramLM | None = None, *,
                beam_width: int = 16, alpha: float = 0.5, beta: float = 1.0, prune: float = -5.0,
                max_candidates: int = 8, floor: float = 1e-4) -> list[tuple[str, float]]:
    """CTC prefix beam search with an optional character language model (shallow fusion).

    Each hypothesis scores ``log P_ctc + alpha * log P_lm + beta * characters``; ``prune``
    skips characters whose frame log-probability is lower, and at most ``max_candidates``
    characters extend a beam per frame, and an extension whose mass is below ``floor`` times
    the best beam's is dropped (on the val lines, 1e-4 and 1e-3 changed no output).
    Returns ``(text, confidence)`` per line, where the confidence is the best path's (see
    :func:`greedy_decode`): the language model changes the words, not how sure the model
    was of its frames.

    >>> logp = np.log(np.array([[[0.1, 0.9, 0.0], [0.6, 0.0, 0.4], [0.1, 0.0, 0.9]]]) + 1e-9)
    >>> [(text, round(conf, 3)) for text, conf in beam_decode(logp, np.array([3]), "ab")]
    [('ab', 0.9)]
    """
    if log_probs.ndim != 3:
        raise ValueError(f"expected [batch, time, classes], got {log_probs.shape}")
    if log_probs.shape[2] != len(characters) + 1:
        raise ValueError(f"{log_probs.shape[2]} classes, but {len(characters)} characters + blank")
    if lm is not None and lm.characters != characters:
        raise ValueError("the language model's alphabet differs from the recogniser's")
    confidences = greedy_decode(log_probs, lengths)
    results = []
    for b in range(log_probs.shape[0]):
        n = int(min(lengths[b], log_probs.shape[1]))
        text = _beam_line(log_probs[b, :n], characters, lm, beam_width, alpha, beta, prune, max_candidates, floor)
        results.append((text, confidences[b][1]))
    return results
