"""Does beam search with a character language model lower CER? Tune on one half of val, report the other.

Runs the recogniser once over the val lines and keeps the log-probabilities, then decodes
them greedily and with :func:`sparkhtr.core.ctc.beam_decode` for a grid of LM weights
(``alpha``) and character bonuses (``beta``). The grid is searched on the even-numbered
lines of each val set and the chosen setting is reported on the odd-numbered ones (never
seen while tuning) and on all lines, with decoding time per line.

    python bench/lm_decoding.py --lm models/sparkhtr-latin-crnn/charlm.npz --json bench/results/lm_decoding.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparkhtr.core.alphabet import Alphabet
from sparkhtr.core.ctc import beam_decode, greedy_decode
from sparkhtr.core.lm import CharNgramLM
from sparkhtr.core.recognize import LineRecognizer, manifest_beam_width
from sparkhtr.core.types import RecognizedLine
from sparkhtr.evaluation import evaluate_lines, load_line_parquet
from sparkhtr.registry import resolve_model


class _Capture(LineRecognizer):
    """A recogniser that keeps each line's log-probabilities; its 'text' is the capture index."""

    captured: list[np.ndarray]

    def decode(self, log_probs: np.ndarray, lengths: np.ndarray) -> list[RecognizedLine]:
        out = []
        for row, n in zip(log_probs, lengths, strict=True):
            out.append(RecognizedLine(str(len(self.captured)), 0.0))
            self.captured.append(row[: int(n)].copy())
        return out


def line_log_probs(model: str | None, data: Path, threads: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Log-probabilities, normalised references and dataset of every val line."""
    recognizer = _Capture(resolve_model(model), device="cpu", threads=threads)
    recognizer.captured = []
    alphabet = Alphabet(recognizer.manifest.alphabet)
    logps, refs, groups = [], [], []
    for path in sorted((data / "lines" / "val").glob("*.parquet")):
        images, texts = load_line_parquet(path)
        for line, text in zip(recognizer.recognize(images), texts, strict=True):
            logps.append(recognizer.captured[int(line.text)])
            refs.append(alphabet.normalize(text))
            groups.append(path.stem)
    return logps, refs, groups


def decode_all(logps: list[np.ndarray], characters: str, lm: CharNgramLM | None, **beam: float
               ) -> tuple[list[str], float]:
    """Texts of ``logps`` (greedy when ``beam`` is empty) and seconds per line."""
    alphabet = Alphabet(characters)
    start = time.process_time()
    texts = []
    for lp in logps:
        batch, lengths = lp[None], np.array([len(lp)])
        if beam:
            texts.append(beam_decode(batch, lengths, characters, lm, **beam)[0][0])
        else:
            texts.append(alphabet.decode(greedy_decode(batch, lengths)[0][0]))
    return texts, (time.process_time() - start) / max(len(logps), 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SPARKHTR_DATA", "../shared/data")))
    p.add_argument("--model", default=None)
    p.add_argument("--lm", required=True, help="character LM (CharNgramLM.save) to decode with")
    p.add_argument("--alphas", default="0.3,0.5,0.7,1.0")
    p.add_argument("--betas", default="0,0.5,1,2")
    p.add_argument("--beam-width", type=int, default=0,
                   help="beams (default: the model's language_model.beam_width, else 16)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    logps, refs, groups = line_log_probs(args.model, args.data, args.threads)
    manifest = resolve_model(args.model)
    characters = manifest.alphabet
    args.beam_width = args.beam_width or manifest_beam_width(manifest)
    lm = CharNgramLM.load(args.lm)
    tune = [i for i in range(len(refs)) if i % 2 == 0]
    held = [i for i in range(len(refs)) if i % 2 == 1]

    def score(ids: list[int], texts: list[str]) -> dict[str, dict[str, float]]:
        return evaluate_lines([refs[i] for i in ids], [texts[i] for i in ids], [groups[i] for i in ids])

    greedy, greedy_s = decode_all(logps, characters, None)
    grid = []
    tune_logps = [logps[i] for i in tune]
    for alpha, beta in itertools.product(map(float, args.alphas.split(",")), map(float, args.betas.split(","))):
        texts, _ = decode_all(tune_logps, characters, lm, alpha=alpha, beta=beta, beam_width=args.beam_width)
        c = evaluate_lines([refs[i] for i in tune], texts, [groups[i] for i in tune])["all"]["cer"]
        grid.append({"alpha": alpha, "beta": beta, "tune_cer": c})
        print(f"alpha {alpha:.2f} beta {beta:.2f}: tune CER {100 * c:.2f} %", flush=True)
    best = min(grid, key=lambda g: g["tune_cer"])
    chosen = {"alpha": best["alpha"], "beta": best["beta"], "beam_width": args.beam_width}
    beam, beam_s = decode_all(logps, characters, lm, **chosen)
    no_lm, _ = decode_all(logps, characters, None, beam_width=args.beam_width)
    report = {
        "model": manifest.ref, "lm": str(args.lm), "lm_order": lm.order, "chosen": chosen,
        "greedy_seconds_per_line": greedy_s, "beam_seconds_per_line": beam_s, "grid": grid,
        "held_out": {"greedy": score(held, greedy), "beam_lm": score(held, beam)},
        "all": {"greedy": score(list(range(len(refs))), greedy), "beam_lm": score(list(range(len(refs))), beam),
                "beam_no_lm": score(list(range(len(refs))), no_lm)},
    }
    print(f"\nchosen on even lines: alpha {chosen['alpha']}, beta {chosen['beta']}, beam {args.beam_width}")
    print(f"{'set':<10}{'greedy CER':>12}{'beam+LM CER':>13}{'greedy WER':>12}{'beam+LM WER':>13}   (odd lines)")
    for name, row in report["held_out"]["greedy"].items():
        lmrow = report["held_out"]["beam_lm"][name]
        print(f"{name:<10}{100 * row['cer']:>12.2f}{100 * lmrow['cer']:>13.2f}"
              f"{100 * row['wer']:>12.2f}{100 * lmrow['wer']:>13.2f}")
    a = report["all"]
    print(f"all val lines: greedy {100 * a['greedy']['all']['cer']:.2f} %, beam without LM "
          f"{100 * a['beam_no_lm']['all']['cer']:.2f} %, beam+LM {100 * a['beam_lm']['all']['cer']:.2f} %")
    print(f"decode time per line: greedy {1000 * greedy_s:.2f} ms, beam+LM {1000 * beam_s:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
