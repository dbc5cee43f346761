"""Build the character language model of a model folder from the training transcriptions.

    python -m models.training.charlm --model models/sparkhtr-latin-crnn --order 7 \
        --alpha 0.7 --beta 2.0 --beam-width 16 --lexicon-lines 5000

Reads ``<data>/lines/train/*.parquet`` (never val), normalises the text with the model's
alphabet, optionally adds lines of words drawn from the English and French frequency
lists of ``wordfreq`` (spellings the 12k training lines never show; a writer's words
are often not in them), counts character n-grams (:class:`sparkhtr.core.lm.CharNgramLM`), writes
``charlm.npz`` beside the ONNX file and records it, with the beam-search weights
(tuned by ``bench/lm_decoding.py``), under ``language_model`` in ``manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.lm import SMOOTHINGS, CharNgramLM
from sparkhtr.registry import MANIFEST, file_sha256, read_manifest

LM_FILE = "charlm.npz"


def training_texts(data: Path, alphabet: Alphabet, exclude: Sequence[str] = ()) -> list[str]:
    """Normalised transcriptions of every training line under ``data/lines/train``, leaving out
    the collections (parquet file stems) named in ``exclude``."""
    texts: list[str] = []
    for path in sorted((data / "lines" / "train").glob("*.parquet")):
        if path.stem in exclude:
            continue
        texts.extend(alphabet.normalize(t) for t in pq.read_table(path, columns=["text"]).column("text").to_pylist())
    if not texts:
        raise SystemExit(f"no training lines under {data / 'lines' / 'train'}")
    return texts


def lexicon_lines(lexicons: Mapping[str, Sequence[tuple[str, float]]], shares: Mapping[str, float],
                  n_lines: int, alphabet: Alphabet, gamma: float = 0.5, words_per_line: int = 8,
                  capitalize: float = 0.1, seed: int = 0) -> list[str]:
    """``n_lines`` lines of words sampled from frequency lists (NFC), every character in ``alphabet``.

    ``lexicons`` maps a language to ``(word, frequency)`` pairs and ``shares`` says which part
    of the lines each language gets. A word is drawn with probability ∝ frequency**gamma
    (gamma < 1 gives rarer words more weight); ``capitalize`` is the chance a word starts
    upper-case, as names and sentence starts do in letters. Words with characters outside
    the alphabet are dropped. Deterministic for a given ``seed``.

    >>> lines = lexicon_lines({"en": [("cat", 2.0), ("dog", 1.0)]}, {"en": 1.0}, 3, Alphabet("acdgot "),
    ...                       words_per_line=2, capitalize=0.0)
    >>> len(lines), set(" ".join(lines).split()) <= {"cat", "dog"}
    (3, True)
    """
    known = set(alphabet.characters)
    rng = np.random.default_rng(seed)
    upper = random.Random(seed)
    out: list[str] = []
    for lang, share in shares.items():
        # a word the alphabet would have to change (a dropped accent, say) is left out, not mangled
        pairs = [(w, f) for w, f in lexicons[lang] if f > 0 and w and set(unicodedata.normalize("NFC", w)) <= known]
        if not pairs:
            raise ValueError(f"no word of the {lang!r} lexicon fits the alphabet")
        weights = np.array([f for _, f in pairs]) ** gamma
        picks = rng.choice(len(pairs), size=(round(n_lines * share), words_per_line), p=weights / weights.sum())
        for row in picks:
            words = [unicodedata.normalize("NFC", pairs[i][0]) for i in row]
            out.append(" ".join(w[0].upper() + w[1:] if upper.random() < capitalize and (w[0].upper() in known)
                                else w for w in words))
    return out


def wordfreq_lexicons(languages: Sequence[str], top: int) -> dict[str, list[tuple[str, float]]]:
    """The ``top`` most frequent alphabetic words of each language with their frequencies (``wordfreq``)."""
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError as exc:  # the `train` extra brings it
        raise SystemExit("--lexicon-lines needs wordfreq: pip install -e '.[train]'") from exc
    return {lang: [(w, word_frequency(w, lang)) for w in top_n_list(lang, top) if w.isalpha()]
            for lang in languages}


def parse_shares(spec: str) -> dict[str, float]:
    """``"en:1,fr:2"`` → ``{"en": 1/3, "fr": 2/3}``.

    >>> parse_shares("en:1,fr:3")
    {'en': 0.25, 'fr': 0.75}
    """
    raw = {lang.strip(): float(w) for lang, w in (part.split(":") for part in spec.split(","))}
    total = sum(raw.values())
    if total <= 0 or any(w < 0 for w in raw.values()):
        raise ValueError(f"bad language shares {spec!r}")
    return {lang: w / total for lang, w in raw.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="model folder with manifest.json")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SPARKHTR_DATA", "../shared/data")))
    p.add_argument("--order", type=int, default=7)
    p.add_argument("--smoothing", default="kneser-ney", choices=SMOOTHINGS)
    p.add_argument("--discount", type=float, default=0.9, help="Kneser-Ney discount")
    p.add_argument("--alpha", type=float, required=True, help="LM weight (bench/lm_decoding.py tunes it)")
    p.add_argument("--beta", type=float, required=True, help="bonus per character")
    p.add_argument("--beam-width", type=int, default=16)
    p.add_argument("--lexicon-lines", type=int, default=0,
                   help="add this many lines of words sampled from wordfreq's lists (0: training text only)")
    p.add_argument("--lexicon-languages", default="en:1,fr:2", help="languages and their shares of those lines")
    p.add_argument("--lexicon-words", type=int, default=200_000, help="most frequent words per language")
    p.add_argument("--lexicon-gamma", type=float, default=0.5, help="sample words ∝ frequency**gamma")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    manifest = read_manifest(args.model)
    alphabet = Alphabet(manifest.alphabet)
    texts = training_texts(args.data, alphabet)
    trained_on = f"{len(texts)} transcriptions of lines/train (hooker, mss19, peraire, poilus)"
    if args.lexicon_lines:
        shares = parse_shares(args.lexicon_languages)
        extra = lexicon_lines(wordfreq_lexicons(list(shares), args.lexicon_words), shares, args.lexicon_lines,
                              alphabet, gamma=args.lexicon_gamma, seed=args.seed)
        trained_on += (f" + {len(extra)} lines of words drawn ∝ frequency^{args.lexicon_gamma} from the top "
                       f"{args.lexicon_words} words of wordfreq's {args.lexicon_languages} lists (wordfreq data: "
                       "CC BY-SA 4.0)")
        texts += extra
    lm = CharNgramLM.train(texts, manifest.alphabet, args.order, smoothing=args.smoothing, discount=args.discount)
    out = args.model / LM_FILE
    lm.save(out)
    doc = json.loads((args.model / MANIFEST).read_text(encoding="utf-8"))
    doc["language_model"] = {
        "file": LM_FILE, "sha256": file_sha256(out),
        "kind": f"character n-gram, interpolated {args.smoothing}" + (f" (discount {args.discount})"
                                                                     if args.smoothing == "kneser-ney" else ""),
        "order": args.order, "trained_on": trained_on, "beam_width": args.beam_width,
        "alpha": args.alpha, "beta": args.beta,
    }
    if args.lexicon_lines:
        # what bench/lm_transfer.py needs to build the same word lines beside a held-out LM
        doc["language_model"]["lexicon"] = {
            "lines": args.lexicon_lines, "languages": args.lexicon_languages, "words": args.lexicon_words,
            "gamma": args.lexicon_gamma, "seed": args.seed,
        }
    (args.model / MANIFEST).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: order {args.order}, {len(texts)} lines, {out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
