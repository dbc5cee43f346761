"""How much of the language model's gain holds on a collection whose text it never saw?

The bundled character LM is counted on the training transcriptions of all four collections,
and the val lines come from the same collections (poilus and mss19 val even from other pages
of the same documents), so its gain on val may overstate what a user's own documents get.
For each val set this script counts an LM the bundled way (order 7, Kneser-Ney, the same
``wordfreq`` word lines) but without that collection's training text, and decodes the set
with it beside greedy decoding and the bundled LM, for a few LM weights: does a lighter
weight hold up better away from home?

    python bench/lm_transfer.py --data ../shared/data --json bench/results/lm_transfer.json

The shipped weights (``language_model`` in the manifest) are the headline; the best cell of
the grid is chosen on the very lines it is scored on, so it is an optimistic bound.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lm_decoding import decode_all, line_log_probs

from models.training.charlm import lexicon_lines, parse_shares, training_texts, wordfreq_lexicons
from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.lm import CharNgramLM
from sparkhtr.core.metrics import cer
from sparkhtr.core.recognize import BeamSettings
from sparkhtr.registry import resolve_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SPARKHTR_DATA", "../shared/data")))
    p.add_argument("--model", default=None, help="model name or folder (default: the bundled model)")
    p.add_argument("--alphas", default="0.3,0.5,0.7")
    p.add_argument("--betas", default="1.0,2.0")
    p.add_argument("--lexicon-lines", type=int, default=None,
                   help="wordfreq word lines (default: as the bundled LM's manifest entry says, else 5000)")
    p.add_argument("--lexicon-languages", default=None, help="default: as the manifest says, else en:1,fr:2")
    p.add_argument("--lexicon-words", type=int, default=None, help="default: as the manifest says, else 200000")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    model = resolve_model(args.model)
    beam = BeamSettings.for_model(model)
    bundled = beam.language_model
    if bundled is None:  # for_model raises first; this narrows the type
        raise SystemExit(f"{model.ref} ships no language model")
    shipped = {"alpha": beam.alpha, "beta": beam.beta, "beam_width": beam.beam_width}
    alphabet = Alphabet(model.alphabet)
    logps, refs, groups = line_log_probs(args.model, args.data, args.threads)
    # the word lines of the bundled LM, as models.training.charlm recorded them (5000 before it did)
    lexicon = {"lines": 5000, "languages": "en:1,fr:2", "words": 200_000, "gamma": 0.5, "seed": 0,
               **model.extra.get("language_model", {}).get("lexicon", {})}
    for key in ("lines", "languages", "words"):
        if getattr(args, f"lexicon_{key}") is not None:
            lexicon[key] = getattr(args, f"lexicon_{key}")
    shares = parse_shares(lexicon["languages"])
    words = lexicon_lines(wordfreq_lexicons(list(shares), lexicon["words"]), shares, lexicon["lines"], alphabet,
                          gamma=lexicon["gamma"], seed=lexicon["seed"])
    grid = [{"alpha": a, "beta": b, "beam_width": shipped["beam_width"]}
            for a, b in itertools.product(map(float, args.alphas.split(",")), map(float, args.betas.split(",")))]
    if not any(g["alpha"] == shipped["alpha"] and g["beta"] == shipped["beta"] for g in grid):
        grid.append(shipped)

    report: dict[str, object] = {"model": model.ref, "shipped": shipped, "lm_order": bundled.order,
                                 "lexicon": lexicon, "sets": {}}
    print(f"{'set':<9}{'lines':>6}{'greedy':>8}{'LM with':>9}{'LM without':>12}   CER % at the shipped weights "
          f"(alpha {shipped['alpha']}, beta {shipped['beta']})")
    for name in sorted(set(groups)):
        ids = [i for i, g in enumerate(groups) if g == name]
        set_logps, set_refs = [logps[i] for i in ids], [refs[i] for i in ids]

        start = time.perf_counter()
        held_out = CharNgramLM.train(training_texts(args.data, alphabet, exclude=(name,)) + words, model.alphabet,
                                     bundled.order)
        build_s = time.perf_counter() - start
        greedy, _ = decode_all(set_logps, model.alphabet, None)
        greedy_cer = cer(set_refs, greedy)
        cells = []
        for weights in grid:
            with_text, _ = decode_all(set_logps, model.alphabet, bundled, **weights)
            without_text, _ = decode_all(set_logps, model.alphabet, held_out, **weights)
            cells.append({**weights, "cer_lm_with_set": cer(set_refs, with_text),
                          "cer_lm_without_set": cer(set_refs, without_text)})
        at_shipped = next(c for c in cells if c["alpha"] == shipped["alpha"] and c["beta"] == shipped["beta"])
        best_without = min(cells, key=lambda c: c["cer_lm_without_set"])
        report["sets"][name] = {"lines": len(ids), "greedy_cer": greedy_cer, "lm_build_seconds": build_s,
                                "shipped": at_shipped, "best_without_set": best_without, "grid": cells}
        print(f"{name:<9}{len(ids):>6}{100 * greedy_cer:>8.2f}{100 * at_shipped['cer_lm_with_set']:>9.2f}"
              f"{100 * at_shipped['cer_lm_without_set']:>12.2f}   best of the grid without the set: "
              f"{100 * best_without['cer_lm_without_set']:.2f} (alpha {best_without['alpha']}, "
              f"beta {best_without['beta']})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
