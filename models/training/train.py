"""Train the CRNN line recogniser with CTC; resumable, logs CER over time.

    python -m models.training.train --out checkpoints/crnn48 --threads 2

Writes ``last.pt`` (resume point), ``best.pt`` (lowest mean val CER) and
``log.jsonl`` (one record per evaluation) under ``--out``. Re-running the same
command resumes from ``last.pt``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from models.training.data import DATASETS, augment, collate, data_root, load_split, width_batches
from models.training.model import CRNN, WIDTH_STRIDE, crnn_from_config, grow_cnn, grow_refine, grow_refine_stages
from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet
from sparkhtr.core.ctc import greedy_decode
from sparkhtr.core.metrics import cer, wer


def evaluate(model: CRNN, samples, alphabet: Alphabet, batch_lines: int = 32) -> dict[str, dict[str, float]]:
    """Greedy-decode ``samples`` and return CER/WER per dataset and overall."""
    model.eval()
    order = sorted(range(len(samples)), key=lambda i: samples[i].image.shape[1])
    hyps: dict[int, str] = {}
    with torch.no_grad():
        for start in range(0, len(order), batch_lines):
            idx = order[start:start + batch_lines]
            batch, widths = collate([samples[i].image for i in idx], WIDTH_STRIDE)
            logp = model(torch.from_numpy(batch)).numpy()
            for i, (classes, _) in zip(idx, greedy_decode(logp, -(-widths // WIDTH_STRIDE)), strict=True):
                hyps[i] = alphabet.decode(classes)
    model.train()
    report: dict[str, dict[str, float]] = {}
    for name in [*sorted({s.dataset for s in samples}), "all"]:
        ids = [i for i, s in enumerate(samples) if name in ("all", s.dataset)]
        refs = [samples[i].text for i in ids]
        out = [hyps[i] for i in ids]
        report[name] = {"cer": cer(refs, out), "wer": wer(refs, out), "lines": len(ids)}
    return report


def learning_rate(step: int, base: float, plateau_scale: float = 1.0, decay_start: int | None = None,
                  decay_steps: int = 0, min_scale: float = 0.05, warmup_steps: int = 500,
                  warmup_start: int = 0) -> float:
    """Learning rate at ``step``: linear warm-up, plateau halvings, then an optional cosine decay.

    The warm-up runs from ``warmup_start`` (0, or the step where training resumed with a fresh
    optimizer). The decay runs from ``decay_start`` over ``decay_steps`` steps down to
    ``min_scale`` of the rate and stays there.

    >>> round(learning_rate(6000, 1e-3, decay_start=5000, decay_steps=2000), 7)  # half-way: (1 + 0.05) / 2
    0.000525
    """
    scale = min(1.0, (step - warmup_start + 1) / warmup_steps) * plateau_scale
    if decay_steps and decay_start is not None:
        progress = min(1.0, max(0.0, (step - decay_start) / decay_steps))
        scale *= min_scale + (1 - min_scale) * 0.5 * (1 + math.cos(math.pi * progress))
    return base * scale


def record_evaluation(state: dict, mean_cer: float, decaying: bool = False, patience: int = 3) -> bool:
    """Update ``state`` after an evaluation; True when ``mean_cer`` is the best so far.

    Without a scheduled decay, ``patience`` evaluations in a row without a new best halve the
    rate (``state["lr_scale"]``). A cosine decay (``decaying``) owns the rate: its first evaluations, at a
    rate raised again, are expected to lose to the end of the decay before it, and halving
    there would cut the new decay short.

    >>> state = {"best_cer": 0.3, "bad_evals": 2, "lr_scale": 1.0}
    >>> record_evaluation(state, 0.31), state["lr_scale"]
    (False, 0.5)
    >>> state = {"best_cer": 0.3, "bad_evals": 2, "lr_scale": 1.0}
    >>> record_evaluation(state, 0.31, decaying=True), state["lr_scale"]
    (False, 1.0)
    """
    if mean_cer < state["best_cer"]:
        state["best_cer"], state["bad_evals"] = mean_cer, 0
        return True
    if decaying:
        return False
    state["bad_evals"] += 1
    if state["bad_evals"] >= patience:
        state["lr_scale"] *= 0.5
        state["bad_evals"] = 0
    return False


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="shared data folder (default $SPARKHTR_DATA or ../shared/data)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help="comma-separated line sets: lines/{train,val}/<name>.parquet under the data folder "
                        "(a collection's own set fine-tunes the model)")
    p.add_argument("--height", type=int, default=48)
    p.add_argument("--max-width", type=int, default=2400)
    p.add_argument("--batch-lines", type=int, default=16)
    p.add_argument("--batch-width", type=int, default=16 * 700, help="bound on lines x padded width")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--decay-steps", type=int, default=0,
                   help="cosine-decay the learning rate over this many steps, counted from the step where "
                        "decay was first asked for (kept across resumes); 0 keeps it flat")
    p.add_argument("--restart-decay", action="store_true",
                   help="start a new decay at the resumed step (a checkpoint keeps the step its decay began at)")
    p.add_argument("--min-lr-scale", type=float, default=0.05, help="learning rate at the end of the decay, as a share")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--save-every", type=int, default=100,
                   help="steps between resume checkpoints (a stopped session loses at most this many)")
    p.add_argument("--snapshot-every", type=int, default=0, metavar="STEPS",
                   help="also keep the weights every this many steps as snapshots/step-N.pt (no optimizer state), "
                        "for models.training.average to mean a stretch of the run (0: none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hours", type=float, default=100.0, help="stop after this much wall time")
    p.add_argument("--max-steps", type=int, default=200_000)
    p.add_argument("--limit", type=int, default=None, help="lines per dataset (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fonts", default=None, help="handwriting font folder for synthetic lines")
    p.add_argument("--synthetic-fraction", type=float, default=0.0,
                   help="share of synthetic lines in each epoch (fresh ones every epoch)")
    p.add_argument("--dropout", type=float, default=None,
                   help="dropout of the projection, between the LSTM layers and before the head (default: the "
                        "checkpoint's, else 0.2); lower it to fit the training lines more closely")
    p.add_argument("--grow-refine", type=int, default=0, metavar="UNITS",
                   help="add a residual BiLSTM of this many units to a checkpoint that has none (its output "
                        "starts at zero, so training goes on from the same function with more capacity)")
    p.add_argument("--elastic", action="store_true",
                   help="warp half the training lines (real and synthetic) by a smooth random field "
                        "(models.training.data.augment's elastic distortion)")
    p.add_argument("--bf16", action="store_true",
                   help="run the forward and backward passes in bfloat16 (torch.autocast; weights, optimizer "
                        "and CTC loss stay float32): 1.7 times the steps per second on this project's AVX512-BF16 CPU")
    p.add_argument("--grow-cnn", type=int, default=0, metavar="BLOCKS",
                   help="grow the CNN of a checkpoint to this many residual convolution blocks at its top, adding "
                        "the missing ones (each starts as the identity, as --grow-refine's stage does; a resumed "
                        "run that has them grows nothing)")
    p.add_argument("--grow-refine-stages", type=int, default=0, metavar="STAGES",
                   help="stack residual BiLSTM stages as wide as the first refine stage until the model has this "
                        "many (each starts as the identity; needs a refine stage, e.g. --grow-refine)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    alphabet = Alphabet(DEFAULT_CHARACTERS)
    root = data_root(args.data)
    t0 = time.time()
    datasets = tuple(args.datasets.split(","))
    train = load_split(root, "train", alphabet, args.height, args.max_width, datasets, args.limit)
    val = load_split(root, "val", alphabet, args.height, args.max_width, datasets, args.limit)
    print(f"loaded {len(train)} train / {len(val)} val lines in {time.time() - t0:.0f}s", flush=True)

    last = args.out / "last.pt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False) if last.exists() else None
    saved = (ckpt or {}).get("config", {})
    dropout = args.dropout if args.dropout is not None else saved.get("dropout", 0.2)
    config = {"height": args.height, "characters": "".join(alphabet.characters), "num_classes": alphabet.num_classes,
              "dropout": dropout, "refine_hidden": int(saved.get("refine_hidden", 0)),
              "cnn_residual": int(saved.get("cnn_residual", 0)), "refine_stages": int(saved.get("refine_stages", 1))}
    model = crnn_from_config(config, dropout)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    state = {"step": 0, "epoch": 0, "best_cer": math.inf, "lr_scale": 1.0, "bad_evals": 0, "train_seconds": 0.0}
    fresh_optimizer = True
    if ckpt is not None:
        if ckpt["config"]["characters"] != config["characters"]:
            raise SystemExit(f"{last}: its alphabet is not the one this run trains")
        model.load_state_dict(ckpt["model"])
        state.update(ckpt["state"])
        fresh_optimizer = "optimizer" not in ckpt
    grown = False
    if args.grow_refine and not config["refine_hidden"]:
        model, config["refine_hidden"] = grow_refine(model, args.grow_refine), args.grow_refine
        grown = True
        print(f"grew a residual BiLSTM of {args.grow_refine} units", flush=True)
    if args.grow_cnn > config["cnn_residual"]:
        added = args.grow_cnn - config["cnn_residual"]
        model, config["cnn_residual"] = grow_cnn(model, added), args.grow_cnn
        grown = True
        print(f"grew {added} residual convolution block(s) at the CNN's top ({args.grow_cnn} in all)", flush=True)
    if args.grow_refine_stages > model.refine_stages:
        added = args.grow_refine_stages - model.refine_stages
        model = grow_refine_stages(model, args.grow_refine_stages)
        config["refine_stages"] = model.refine_stages
        grown = True
        print(f"grew {added} residual BiLSTM stage(s) ({model.refine_stages} in all)", flush=True)
    fresh_optimizer |= grown  # the parameter list changed: the saved moments no longer fit
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    if ckpt is not None:
        if fresh_optimizer:
            # rebuilt from an exported model (models.training.from_onnx) or grown: fresh Adam
            # moments want a warm-up before the full rate
            state["warmup_start"] = state["step"]
        else:
            optimizer.load_state_dict(ckpt["optimizer"])
        print(f"resumed at step {state['step']} (best CER {state['best_cer']:.4f}, dropout {dropout})", flush=True)

    def save(path: Path, with_optimizer: bool = True) -> None:
        tmp = path.with_suffix(".tmp")
        saved = {"model": model.state_dict(), "state": state, "config": config}
        if with_optimizer:
            saved["optimizer"] = optimizer.state_dict()
        torch.save(saved, tmp)
        tmp.replace(path)

    if grown:
        # the grown model before any step: the same function as the checkpoint it grew from, in
        # the new parameter space, so models.training.average can mean it with this run's end
        save(args.out / f"grown-{state['step']}.pt")

    if args.decay_steps and (state.get("decay_start") is None or args.restart_decay):
        # a new decay starts from the full rate, whatever plateaus halved it before
        state["decay_start"], state["lr_scale"], state["bad_evals"] = state["step"], 1.0, 0

    rng = random.Random(args.seed + state["step"])
    synthetic = None
    if args.fonts and args.synthetic_fraction > 0:
        from models.training.synthetic import SyntheticLines

        synthetic = SyntheticLines(args.fonts, args.height, args.max_width, seed=args.seed + state["step"])
    n_synthetic = int(len(train) * args.synthetic_fraction / max(1e-9, 1 - args.synthetic_fraction))
    started = time.time()
    seconds_at_start = state["train_seconds"]
    model.train()
    done = False
    while not done:
        epoch_lines = train
        if synthetic is not None:
            t_syn = time.time()
            epoch_lines = train + synthetic.sample(n_synthetic)
            print(f"rendered {n_synthetic} synthetic lines in {time.time() - t_syn:.0f}s", flush=True)
        widths = [s.image.shape[1] for s in epoch_lines]
        for batch_ids in width_batches(widths, args.batch_lines, args.batch_width, rng):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(state["step"], args.lr, state["lr_scale"], state.get("decay_start"),
                                            args.decay_steps, args.min_lr_scale,
                                            warmup_start=state.get("warmup_start", 0))
            images = [augment(epoch_lines[i].image, rng, elastic=args.elastic) for i in batch_ids]
            batch, widths_b = collate(images, WIDTH_STRIDE)
            targets = [alphabet.encode(epoch_lines[i].text) for i in batch_ids]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                logp = model(torch.from_numpy(batch))  # B, T, C
            logp = logp.float()  # the CTC loss in float32 (a no-op without --bf16)
            in_lens = torch.from_numpy(np.minimum(-(-widths_b // WIDTH_STRIDE), logp.shape[1]))
            tgt_lens = torch.tensor([len(t) for t in targets])
            flat = torch.tensor([c for t in targets for c in t])
            loss = ctc(logp.transpose(0, 1), flat, in_lens, tgt_lens)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            state["step"] += 1
            if args.snapshot_every and state["step"] % args.snapshot_every == 0:
                (args.out / "snapshots").mkdir(exist_ok=True)
                save(args.out / "snapshots" / f"step-{state['step']}.pt", with_optimizer=False)
            if state["step"] % 50 == 0:
                state["train_seconds"] = seconds_at_start + time.time() - started
                print(f"step {state['step']} epoch {state['epoch']} loss {loss.item():.3f} "
                      f"lr {optimizer.param_groups[0]['lr']:.2e} t {state['train_seconds']:.0f}s", flush=True)
            if state["step"] % args.eval_every == 0:
                report = evaluate(model, val, alphabet)
                state["train_seconds"] = seconds_at_start + time.time() - started
                mean_cer = float(np.mean([report[d]["cer"] for d in report if d != "all"]))
                record = {"step": state["step"], "epoch": state["epoch"], "train_seconds": state["train_seconds"],
                          "mean_cer": mean_cer, "lr": optimizer.param_groups[0]["lr"], "val": report}
                with open(args.out / "log.jsonl", "a") as fh:
                    fh.write(json.dumps(record) + "\n")
                print("EVAL", json.dumps(record), flush=True)
                if record_evaluation(state, mean_cer, decaying=args.decay_steps > 0):
                    save(args.out / "best.pt")
                save(last)
            elif state["step"] % args.save_every == 0:
                state["train_seconds"] = seconds_at_start + time.time() - started
                save(last)
            decayed = args.decay_steps and state["step"] >= state["decay_start"] + args.decay_steps
            if (time.time() - started) / 3600 > args.hours or state["step"] >= args.max_steps or decayed:
                done = True
                break
        else:
            state["epoch"] += 1
    save(last)
    print("stopped at step", state["step"], flush=True)


if __name__ == "__main__":
    main()
