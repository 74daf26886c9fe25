"""The resumable, step-based training command shared by the generated-data tasks (adding,
frequency, frames): every step draws a fresh batch from the task's generator (seeded by the run's
seed and the step, so a resumed run sees the same batches), every ``--eval-every`` steps the
model is measured on a fixed validation set and the best one is exported with its card.

:func:`run_resumable` is that train–evaluate–export loop alone (resume from ``state.pt``, the
time limit, keeping the best); the text tasks (``skim_text``, ``transkimmer``) use it too.

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
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch

from skimviz.training import card_schema, checkpoint, distributed
from skimviz.training.loop import (
    Progress,
    Trainer,
    TrainingDiverged,
    collapse_warning,
    detect_collapse,
    seed_everything,
    summarize_history,
)

TRAIN_SEED_BASE = 10_000_000


def check_model(make: Callable[[], torch.nn.Module], name: str, task: str) -> None:
    """Refuse, before any data is loaded or weights allocated, a model whose checkpoint the
    loader would refuse (:mod:`skimviz.training.card_schema`: e.g. over its weight limit): ``make`` runs
    on PyTorch's meta device, which allocates nothing."""
    with torch.device("meta"):
        m = make()
    card_schema.validate({"name": name, "task": task,
                                     "architecture": type(m).__name__, "config": m.config})


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
    #: which evaluation is exported: (metrics dict) -> comparable, higher is better; None: the
    #: metric itself (lower MSE / higher accuracy is better)
    score: Optional[Callable] = None
    #: the MSE of predicting the mean (the target's variance), for metric "mse": a run no
    #: better than that collapsed (:func:`~skimviz.training.loop.detect_collapse`)
    baseline_mse: Optional[float] = None


def valid_n(args, dry: int, full: int) -> int:
    """Validation set size: ``args.valid_n`` when set (the bench's --quick), else dry/full."""
    return getattr(args, "valid_n", None) or (dry if args.dry_run else full)


def command_line(args) -> str:
    """The command that ran this training, as recorded in the card."""
    return "python -m skimviz " + " ".join(shlex.quote(a) for a in getattr(args, "argv", []))


def _key(score):
    """A stored best score (a list after a JSON round trip) made comparable with a new one."""
    return tuple(score) if isinstance(score, list) else score


def run_resumable(trainer: Trainer, work: Path, steps: int, eval_every: int, *,
                  resume: bool, make_data: Callable[[int], Iterator],
                  evaluate: Callable[[], Dict[str, Any]], score: Callable[[Dict[str, Any]], Any],
                  export: Callable[[Dict[str, Any], dict], Any],
                  eval_line: Callable[[Dict[str, Any]], str], step_line: Callable[[Progress], str],
                  step_every: int = 100, log_every: int = 10, max_minutes: float = 0.0,
                  higher_is_better: bool = True, quiet: bool = False,
                  reexport: Optional[Callable[[dict], int]] = None,
                  collapse: Optional[Callable[[Dict[str, Any]], Optional[dict]]] = None,
                  name: str = "the model") -> int:
    """Run (or resume) one training of ``steps`` optimisation steps; returns a process exit code.

    ``work/state.pt`` holds ``{"trainer": trainer.state_dict(), "meta": JSON}`` with meta
    ``{"best", "wall_s", "valid"}``; with ``resume`` an existing one is loaded first (and the loss
    function's step counter ``calls``, if it has one, set to the step). With ``reexport``, that
    is all: ``reexport(meta)`` is returned instead of training. Otherwise ``make_data(step)``
    gives the batches from that step on, and training runs in chunks up to each multiple of
    ``eval_every`` (and the last step); after each chunk its wall time goes into ``wall_s`` and,
    at an evaluation, ``v = evaluate()`` (with ``v["step"]`` added) is appended to ``valid``,
    logged with ``eval_line(v)``, and exported with ``export(v, meta)`` when ``score(v)`` beats
    ``meta["best"]`` (higher, or lower if not ``higher_is_better``; the best score is stored).
    The state is saved after every chunk. Past ``max_minutes`` (0: no limit) the run stops at the
    next step, saves and says to rerun with ``--resume``. A diverged loss is exit code 1 (the
    state and export keep the last finite weights: :class:`TrainingDiverged` comes before the
    bad step). ``collapse(v)`` (:func:`~skimviz.training.loop.detect_collapse` on an evaluation) is
    stored in ``v["collapsed"]`` before ``export`` sees it, and when the run ends with an
    exported model that collapsed, one warning line says so (``name`` names the model).
    ``step_line`` is printed every ``step_every`` steps; ``quiet`` silences all but errors.
    """
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.pt"
    main = distributed.is_main()   # under torchrun, only rank 0 logs and writes
    quiet = quiet or not main
    meta = {"best": None, "wall_s": 0.0, "valid": []}
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        trainer.load_state_dict(state["trainer"])
        meta = json.loads(state["meta"])
        if hasattr(trainer.loss_fn, "calls"):
            trainer.loss_fn.calls = trainer.step
        quiet or print(f"resumed at step {trainer.step}", flush=True)
    if reexport is not None:
        return reexport(meta)
    data = make_data(trainer.step)
    deadline = time.time() + max_minutes * 60 if max_minutes else None

    def on_step(p):
        if not quiet and p.step % step_every == 0:
            print(step_line(p), flush=True)
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
        if trainer.step % eval_every == 0 or trainer.step == steps:
            v = evaluate()
            v["step"] = trainer.step
            if collapse is not None:
                v["collapsed"] = collapse(v)
            meta["valid"].append(v)
            quiet or print(eval_line(v), flush=True)
            s, best = score(v), meta["best"]
            if best is not None and type(_key(s)) is not type(_key(best)):
                best = None  # the task's score changed since this state was saved: start over
            if best is None or (_key(s) > _key(best) if higher_is_better
                                else _key(s) < _key(best)):
                meta["best"] = list(s) if isinstance(s, tuple) else s
                meta["collapsed"] = v.get("collapsed")
                if main:
                    export(v, meta)
        if main:
            torch.save({"trainer": trainer.state_dict(), "meta": json.dumps(meta)}, state_path)
        if distributed.any_rank(deadline is not None and time.time() > deadline):
            quiet or print(f"stopped at the time limit, step {trainer.step}; rerun with --resume",
                           flush=True)
            return 0
    warning = collapse_warning(meta.get("collapsed"), name)
    if warning and not quiet:
        print(warning, file=sys.stderr, flush=True)
    return 0


def signal_collapse(spec: Spec, args, model) -> Callable[[dict], Optional[dict]]:
    """:func:`~skimviz.training.loop.detect_collapse` for an evaluation of a signal task: chance
    accuracy or an MSE no better than the mean; for a Skip RNN, almost no updates."""
    skip = not getattr(args, "dense", False)

    def fn(v: dict) -> Optional[dict]:
        use = v["update_rate"] if skip else None
        if spec.metric == "mse":
            return detect_collapse(mse=v["mse"], baseline_mse=spec.baseline_mse, use=use)
        return detect_collapse(accuracy=v["accuracy"], num_classes=model.config["num_classes"],
                               use=use)
    return fn


def train(args, spec: Spec, quiet: bool = False) -> int:
    """Run (or resume) one training; returns a process exit code."""
    torch.set_num_threads(args.threads)
    check_model(lambda: spec.make_model(args), args.name, spec.task)
    seed_everything(args.seed)
    model = spec.make_model(args)
    steps = 2 if args.dry_run else args.steps
    eval_every = steps if args.dry_run else max(1, min(args.eval_every, steps))
    trainer = Trainer(model, spec.loss(args), lr=args.lr, clip=1.0,
                      gate_lr=args.lr * args.gate_lr_scale)
    x_va, y_va = spec.valid_set(args)
    make = spec.make_batch(args)
    command = command_line(args)
    m = spec.metric

    def step_line(p):
        return (f"step {p.step} loss {p.loss:.4f} {m} {p.stats.get(m, 0):.4f} "
                f"update_rate {p.stats['update_rate']:.3f} {p.elapsed_s:.0f}s")

    return run_resumable(
        trainer, Path(args.work) / args.name, steps, eval_every, resume=args.resume,
        make_data=lambda step: generated_batches(make, args.batch_size, args.seed, step),
        evaluate=lambda: spec.measure(model, x_va, y_va),
        score=spec.score or (lambda v: v[m]),
        export=lambda v, meta: export(model, args, spec, meta, v, trainer.history, command, quiet),
        eval_line=lambda v: (f"step {v['step']}: valid {m} {v[m]:.5f} updates "
                             f"{v['updates']:.1f}/{x_va.shape[1]}"),
        step_line=step_line, step_every=100, log_every=1 if steps <= 200 else 10,
        max_minutes=args.max_minutes, higher_is_better=spec.score is not None or m != "mse",
        quiet=quiet, collapse=signal_collapse(spec, args, model), name=args.name)


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
    if v.get("collapsed"):
        card["collapsed"] = v["collapsed"]
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


def generated_evaluate_command(evaluate: Callable[..., dict]) -> Callable[..., dict]:
    """The ``evaluate_command`` of a generated-data task (:class:`~skimviz.tasks.base.Task`):
    ``skimviz evaluate NAME [--threshold θ]`` runs ``evaluate(model, card, threshold=)`` on its
    generated test set (fixed seed); ``--split`` does not apply, ``--data-dir`` is unused."""
    def evaluate_command(model, card: dict, args) -> dict:
        if args.split is not None:
            raise ValueError(f"{card['task']} is evaluated on its generated test set (fixed "
                             "seed): --split does not apply")
        return evaluate(model, card, threshold=args.threshold)
    return evaluate_command
