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

import numpy as np

from sparkhtr.core.alphabet import BLANK_INDEX


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
