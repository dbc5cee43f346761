"""Character n-gram language model for CTC beam search.

An interpolated (Kneser-Ney or Witten-Bell) character n-gram over a recogniser's alphabet plus an
end-of-line symbol, trained from plain text lines. Character models need no word list,
so they cope with names, abbreviations and the mixed English/French of archives. The
model is small (counts of the n-grams seen in training) and is stored as gzipped JSON
beside the ONNX model.

>>> lm = CharNgramLM.train(["le chat", "le chien"], "abcdefghijklmnopqrstuvwxyz ", order=3)
>>> bool(lm.log_probs("le c")[lm.index["h"]] > lm.log_probs("le c")[lm.index["z"]])
True
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Control characters never occur in normalised text, so they are safe as line markers.
BOS = "\x02"
EOS = "\x03"


SMOOTHINGS = ("kneser-ney", "witten-bell")


def _continuation_counts(longer: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Kneser-Ney's lower-order counts: for context ``h`` and symbol ``c``, how many distinct
    characters precede ``h c`` in the next order's table."""
    table: dict[str, dict[str, int]] = {}
    for context, followers in longer.items():
        shorter = table.setdefault(context[1:], {})
        for symbol in followers:
            shorter[symbol] = shorter.get(symbol, 0) + 1
    return table


@dataclass(frozen=True)
class _Order:
    """One order's interpolation terms, packed: ``P(c | h) = weight[h] * P(c | shorter h) + added[h, c]``.

    The followers of context row ``r`` are ``ids[starts[r]:starts[r + 1]]`` with their ``added``
    mass. Flat arrays instead of a small array per context: a tenth of the memory.
    """

    rows: dict[str, int]
    starts: np.ndarray
    ids: np.ndarray
    added: np.ndarray
    weight: np.ndarray


def _pack(table: dict[str, dict[str, int]], index: dict[str, int], smoothing: str, discount: float) -> _Order:
    rows: dict[str, int] = {}
    starts = np.zeros(len(table) + 1, np.int64)
    ids = np.empty(sum(len(f) for f in table.values()), np.int32)
    added = np.empty(len(ids), np.float64)
    weight = np.empty(len(table), np.float64)
    at = 0
    for row, (context, followers) in enumerate(table.items()):
        rows[context] = row
        values = np.fromiter(followers.values(), np.float64, len(followers))
        total, distinct = float(values.sum()), len(followers)
        end = at + distinct
        ids[at:end] = [index[s] for s in followers]
        if smoothing == "kneser-ney":
            # discounted counts; the discounted mass goes to the lower order
            added[at:end] = (values - discount) / total
            weight[row] = discount * distinct / total
        else:
            added[at:end] = values / (total + distinct)
            weight[row] = distinct / (total + distinct)
        starts[row + 1] = at = end
    return _Order(rows, starts, ids, added, weight)


class CharNgramLM:
    """Interpolated character n-gram; ``log_probs(history)`` is a vector over ``symbols``.

    ``smoothing``: ``kneser-ney`` (interpolated, one ``discount`` for every order; lower
    orders use continuation counts) or ``witten-bell``. On the val transcriptions of
    ../shared/data, order 6: perplexity 5.61 with Kneser-Ney (discount 0.9) against 6.50
    with Witten-Bell. ``symbols`` are the alphabet's characters followed by :data:`EOS`;
    ``index`` maps a symbol to its position. Distributions are memoised for up to
    ``cache_size`` contexts and their suffixes, since beam search asks for the same few
    histories many times.
    """

    def __init__(self, characters: str, order: int, counts: list[dict[str, dict[str, int]]],
                 smoothing: str = "kneser-ney", discount: float = 0.9, cache_size: int = 20_000,
                 keep_counts: bool = True) -> None:
        if order < 1 or len(counts) != order:
            raise ValueError(f"order {order} needs {order} count tables, got {len(counts)}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, not {smoothing!r}")
        if not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), not {discount}")
        self.characters = characters
        self.order = order
        self.smoothing = smoothing
        self.discount = discount
        self.symbols = characters + EOS
        self.index = {s: i for i, s in enumerate(self.symbols)}
        # the raw counts are kept only to be saved again; a loaded model drops them (memory)
        self.counts: list[dict[str, dict[str, int]]] | None = counts if keep_counts else None
        tables = counts
        if smoothing == "kneser-ney":
            tables = [_continuation_counts(counts[k + 1]) for k in range(order - 1)] + [counts[-1]]
        self._orders = [_pack(table, self.index, smoothing, discount) for table in tables]
        self._uniform = np.full(len(self.symbols), 1.0 / len(self.symbols))
        self._memo: dict[str, np.ndarray] = {}
        self._cache_size = cache_size

    @classmethod
    def train(cls, lines: Iterable[str], characters: str, order: int = 6, min_count: int = 1,
              smoothing: str = "kneser-ney", discount: float = 0.9) -> CharNgramLM:
        """Count the n-grams of ``lines`` (characters outside ``characters`` are skipped).

        ``min_count`` drops n-grams of order ≥ 3 seen fewer times (a smaller file).

        >>> CharNgramLM.train(["ab"], "ab", order=2).counts[1][BOS]
        {'a': 1}
        """
        known = set(characters)
        grams: list[Counter[str]] = [Counter() for _ in range(order)]
        for line in lines:
            text = BOS * (order - 1) + "".join(c for c in line if c in known) + EOS
            for i in range(order - 1, len(text)):
                for k in range(order):
                    grams[k][text[i - k:i + 1]] += 1
        counts: list[dict[str, dict[str, int]]] = []
        for k, gram_counts in enumerate(grams):
            table: dict[str, dict[str, int]] = {}
            for gram, n in gram_counts.items():
                if k >= 2 and n < min_count:
                    continue
                table.setdefault(gram[:-1], {})[gram[-1]] = n
            counts.append(table)
        return cls(characters, order, counts, smoothing, discount)

    def log_probs(self, history: str) -> np.ndarray:
        """Natural-log probabilities of every symbol after ``history`` (the text so far).

        The start of a line is implicit: a history shorter than ``order - 1`` is padded with
        the begin-of-line marker.
        """
        n = self.order - 1
        padded = BOS * n + history[-n:] if n else ""
        context = padded[len(padded) - n:]
        return np.log(self._probs(context))

    def _probs(self, context: str) -> np.ndarray:
        """Interpolated probabilities after ``context``, memoised for every suffix: contexts that
        end alike (most of a beam's) share their lower orders."""
        hit = self._memo.get(context)
        if hit is not None:
            return hit
        lower = self._probs(context[1:]) if context else self._uniform
        level = self._orders[len(context)]
        row = level.rows.get(context)
        if row is None:
            p = lower  # unseen: the lower order alone (a longer context is unseen too)
        else:
            start, end = level.starts[row], level.starts[row + 1]
            p = lower * level.weight[row]
            p[level.ids[start:end]] += level.added[start:end]
        if len(self._memo) >= self._cache_size:
            self._memo.clear()
        self._memo[context] = p
        return p

    def score(self, text: str) -> float:
        """Log-probability of a whole line, end-of-line included."""
        total = 0.0
        for i, c in enumerate(text + EOS):
            if c in self.index:
                total += float(self.log_probs(text[:i])[self.index[c]])
        return total

    def perplexity(self, lines: Iterable[str]) -> float:
        """Per-symbol perplexity over ``lines`` (characters outside the alphabet are skipped)."""
        logp, n = 0.0, 0
        for line in lines:
            text = "".join(c for c in line if c in self.index and c != EOS)
            logp += self.score(text)
            n += len(text) + 1
        return math.exp(-logp / max(n, 1))

    def save(self, path: str | Path) -> None:
        """Write the counts as gzipped JSON (deterministic bytes for a given model)."""
        if self.counts is None:
            raise ValueError("this model was loaded without its counts; save the file it came from")
        doc = {"format": "sparkhtr-char-ngram/1", "order": self.order, "characters": self.characters,
               "smoothing": self.smoothing, "discount": self.discount, "counts": self.counts}
        data = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        with open(path, "wb") as fh, gzip.GzipFile(filename="", fileobj=fh, mode="wb", mtime=0) as gz:
            gz.write(data)

    @classmethod
    def load(cls, path: str | Path) -> CharNgramLM:
        """Read a model written by :meth:`save`."""
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("format") != "sparkhtr-char-ngram/1":
            raise ValueError(f"{path} is not a sparkhtr character n-gram model")
        return cls(doc["characters"], int(doc["order"]), doc["counts"], doc.get("smoothing", "witten-bell"),
                   float(doc.get("discount", 0.9)), keep_counts=False)
