"""Build the character language model of a model folder from the training transcriptions.

    python -m models.training.charlm --model models/sparkhtr-latin-crnn --order 7 \
        --alpha 0.6 --beta 2.0 --beam-width 16

Reads ``<data>/lines/train/*.parquet`` (never val), normalises the text with the model's
alphabet, counts character n-grams (:class:`sparkhtr.core.lm.CharNgramLM`), writes
``charlm.npz`` beside the ONNX file and records it, with the beam-search weights
(tuned by ``bench/lm_decoding.py``), under ``language_model`` in ``manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pyarrow.parquet as pq

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.lm import SMOOTHINGS, CharNgramLM
from sparkhtr.registry import MANIFEST, file_sha256, read_manifest

LM_FILE = "charlm.npz"


def training_texts(data: Path, alphabet: Alphabet) -> list[str]:
    """Normalised transcriptions of every training line under ``data/lines/train``."""
    texts: list[str] = []
    for path in sorted((data / "lines" / "train").glob("*.parquet")):
        texts.extend(alphabet.normalize(t) for t in pq.read_table(path, columns=["text"]).column("text").to_pylist())
    if not texts:
        raise SystemExit(f"no training lines under {data / 'lines' / 'train'}")
    return texts


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
    args = p.parse_args(argv)

    manifest = read_manifest(args.model)
    alphabet = Alphabet(manifest.alphabet)
    texts = training_texts(args.data, alphabet)
    lm = CharNgramLM.train(texts, manifest.alphabet, args.order, smoothing=args.smoothing, discount=args.discount)
    out = args.model / LM_FILE
    lm.save(out)
    doc = json.loads((args.model / MANIFEST).read_text(encoding="utf-8"))
    doc["language_model"] = {
        "file": LM_FILE, "sha256": file_sha256(out),
        "kind": f"character n-gram, interpolated {args.smoothing}" + (f" (discount {args.discount})"
                                                                     if args.smoothing == "kneser-ney" else ""),
        "order": args.order, "trained_on": f"{len(texts)} transcriptions of lines/train (hooker, mss19, peraire, "
        "poilus)", "beam_width": args.beam_width, "alpha": args.alpha, "beta": args.beta,
    }
    (args.model / MANIFEST).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: order {args.order}, {len(texts)} lines, {out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
