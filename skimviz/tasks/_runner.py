"""The resumable, step-based training command shared by the generated-data tasks (adding,
frequency, frames): every step draws a fresh batch from the task's generator (seeded by the run's
seed and the step, so a resumed run sees the same batches), every ``--eval-every`` steps the
model is measured on a fixed validation set and the best one is exported with its card.

Seeds: training batch ``k`` of run seed ``s`` uses ``TRAIN_SEED_BASE * (s + 1) + k``; validation
and test sets use small fixed seeds (below ``TRAIN_SEED_BASE``), so they never meet a training
batch.
"""
from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Tuple

import torch

from .. import checkpoint
from ..train import Trainer, TrainingDiverged, seed_everything, summarize_history

TRAIN_SEED_BASE = 10_000_000


def batch_seed(seed: int, step: int) -> int:
    return TRAIN_SEED_BASE * (int(seed) + 1) + int(step)


def generated_batches(make: Callable[[int, int], Tuple[torch.Tensor, torch.Tensor]],
                      batch_size: int, seed: int, start_step: int = 0
                      ) -> Iterator[Tuple[int, Tuple[torch.Tensor, torch.Tensor]]]:
    """Endless (0, (x, y)) batches; batch k comes from ``make(batch_size, batch_seed(seed, k))``."""
    k = start_step
    while True:
        yield 0, make(batch_size, batch_seed(seed, k))
        k += 1


@dataclass
class Spec:
    task: str
    metric: str                     # "mse" (lower is better) or "accuracy" (higher is better)
    make_model: Callable            # (args) -> nn.Module
    make_batch: Callable            # (args) -> (n, seed) -> (x, y)
    valid_set: Callable             # (args) -> (x, y)
    measure: Callable               # (model, x, y) -> dict with metric, updates, update_rate, flops, n
    loss: Callable                  # (args) -> LossFn
    card: Callable                  # (args, model) -> dict: input, data, paper
    target: Callable                # (metrics dict, args) -> dict: goal, reached, note


def valid_n(args, dry: int, full: int) -> int:
    """Validation set size: ``args.valid_n`` when set (the bench's --quick), else dry/full."""
    return getattr(args, "valid_n", None) or (dry if args.dry_run else full)


def _better(metric: str, new: float, old) -> bool:
    if old is None:
        return True
    return new < old if metric == "mse" else new > old


def train(args, spec: Spec, quiet: bool = False) -> int:
    """Run (or resume) one training; returns a process exit code."""
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    model = spec.make_model(args)
    steps = 2 if args.dry_run else args.steps
    eval_every = steps if args.dry_run else max(1, min(args.eval_every, steps))
    loss_fn = spec.loss(args)
    trainer = Trainer(model, loss_fn, lr=args.lr, clip=1.0, gate_lr=args.lr * args.gate_lr_scale)
    work = Path(args.work) / args.name
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.pt"
    meta = {"best": None, "wall_s": 0.0, "valid": []}
    if args.resume and state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        trainer.load_state_dict(state["trainer"])
        meta = json.loads(state["meta"])
        loss_fn.calls = trainer.step
        if not quiet:
            print(f"resumed at step {trainer.step}", flush=True)
    x_va, y_va = spec.valid_set(args)
    make = spec.make_batch(args)
    data = generated_batches(make, args.batch_size, args.seed, start_step=trainer.step)
    deadline = time.time() + args.max_minutes * 60 if args.max_minutes else None
    command = "python -m skimviz " + " ".join(shlex.quote(a) for a in args.argv)
    log_every = 1 if steps <= 200 else 10

    def on_step(p):
        if not quiet and p.step % 100 == 0:
            s = p.stats
            print(f"step {p.step} loss {p.loss:.4f} {spec.metric} {s.get(spec.metric, 0):.4f} "
                  f"update_rate {s['update_rate']:.3f} {p.elapsed_s:.0f}s", flush=True)
        return deadline is not None and time.time() > deadline

    while trainer.step < steps:
        t0 = time.time()
        chunk = min(eval_every - trainer.step % eval_every, steps - trainer.step)
        try:
            trainer.fit(data, chunk, callback=on_step, log_every=log_every)
        except TrainingDiverged as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        meta["wall_s"] += time.time() - t0
        at_eval = trainer.step % eval_every == 0 or trainer.step == steps
        if at_eval:
            v = spec.measure(model, x_va, y_va)
            v["step"] = trainer.step
            meta["valid"].append(v)
            if not quiet:
                print(f"step {trainer.step}: valid {spec.metric} {v[spec.metric]:.5f} updates "
                      f"{v['updates']:.1f}/{x_va.shape[1]}", flush=True)
            if _better(spec.metric, v[spec.metric], meta["best"]):
                meta["best"] = v[spec.metric]
                export(model, args, spec, meta, v, trainer.history, command, quiet)
        torch.save({"trainer": trainer.state_dict(), "meta": json.dumps(meta)}, state_path)
        if deadline is not None and time.time() > deadline:
            if not quiet:
                print(f"stopped at the time limit, step {trainer.step}; rerun with --resume",
                      flush=True)
            return 0
    return 0


def export(model, args, spec: Spec, meta: dict, v: dict, history, command: str,
           quiet: bool = False) -> Path:
    card = {"name": args.name, "task": spec.task, "architecture": type(model).__name__,
            "config": model.config, **spec.card(args, model)}
    T = v.get("seq_len")
    card["metrics"] = {f"valid_{spec.metric}": v[spec.metric], "valid_updates_mean": v["updates"],
                       "valid_update_rate": v["update_rate"],
                       "flops_per_sequence_mean": v["flops"], "n_valid": v["n"]}
    if T:
        card["metrics"]["dense_flops_per_sequence"] = model.dense_flops(T)
    card["target"] = spec.target(v, args)
    card["training"] = {
        "command": command,
        "lambda": 0.0 if getattr(args, "dense", False) else args.lam, "lr": args.lr,
        "gate_lr": args.lr * args.gate_lr_scale, "batch_size": args.batch_size,
        "lambda_warmup_steps": args.lam_warmup_steps,
        "optimizer": "Adam(0.9, 0.999, 1e-8), grad-norm clip 1",
        "steps": v["step"], "steps_planned": 2 if args.dry_run else args.steps,
        "seed": args.seed, "wall_time_s": round(meta["wall_s"], 1), "threads": args.threads,
        "torch_version": torch.__version__, "machine": platform.machine(),
        "valid_per_eval": [{k: r[k] for k in ("step", spec.metric, "updates")}
                           for r in meta["valid"]],
        "history": summarize_history(history, 50) if len(history) > 100 else history,
        "dry_run": bool(args.dry_run),
    }
    out = Path(args.out) / args.name
    checkpoint.save(model, card, out)
    if not quiet:
        print(f"exported {out} (valid {spec.metric} {v[spec.metric]:.5f})", flush=True)
    return out


def summary(model, card: dict, r: Dict[str, float], metric: str) -> dict:
    return {"model": card["name"], "task": card["task"], metric: r[metric],
            "updates_mean": r["updates"], "update_rate": r["update_rate"],
            "flops_per_sequence": r["flops"], "n": r["n"]}
