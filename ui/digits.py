"""The numbers behind the "Skip RNN — MNIST pixels" page, kept out of the page (no Streamlit).

* the sentences the page shows, generated from the numbers beside them (what was read and
  skipped, what it saved in FLOPs and in measured time, how the two trainings went);
* the digits of the page's Fig. 4 grid;
* live training: a small Skip GRU trained in a worker thread (:class:`skimviz.training.live.LiveRun`)
  on the bundled digits at 14×14, with its validation numbers and θ sweep.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from skimviz.bench import latency
from skimviz.data import mnist
from skimviz.tasks import mnist as task
from skimviz.viz import common
from skimviz.viz import pixels as pixels_figs

# Live training: the bundled digits at 14×14 (196 steps), a stratified 4,000 / 1,000 split.
LIVE_SIDE, LIVE_BATCH, LIVE_VALID_PER_CLASS = 14, 64, 100
LIVE_LAMBDAS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
LIVE_HIDDEN = (16, 32, 64)
LIVE_LRS = (1e-3, 3e-3, 1e-2, 3e-2)
LIVE_MAX_STEPS = 3000
# The gate (W_p, b_p) learns 10× slower than the rest, as in the shipped models' recipe: with a
# fast gate the budget closes it before the classifier has learnt anything.
GATE_LR_SCALE = 0.1
# A pixel is "blank" when its intensity is below this (in [0, 1]).
BLANK = 0.1


# --- what the page says -------------------------------------------------------------------------
def blank_share(image: np.ndarray, update: Sequence[float], side: int) -> Optional[float]:
    """The share of the skipped pixels that are blank background (None when none was skipped)."""
    level = common.ink(image, side).reshape(-1)
    skipped = np.asarray(update, dtype=np.float64).reshape(-1) < 0.5
    if not skipped.any():
        return None
    return float((level[skipped] < BLANK).mean())


def time_clause(result: Optional[Dict[str, Dict[str, float]]]) -> str:
    """How skipping for real compared with the dense model in measured time (same thresholds as
    :func:`skimviz.bench.latency.sentence`); empty when nothing was measured."""
    if not result:
        return ""
    s, d = result["skipped"]["ms"], result["dense"]["ms"]
    if s * latency.SAME < d:
        how = f"{d / s:.1f}× faster"
    elif s > d * latency.SAME:
        how = f"{s / d:.1f}× slower"
    else:
        how = "about the same time"
    return (f" Skipping for real took {s:.2f} ms against {d:.2f} ms for the dense GRU ({how}; "
            "the Time tab says why).")


def summary(pred: dict, image: np.ndarray, side: int,
            timing: Optional[Dict[str, Dict[str, float]]] = None) -> str:
    """The sentence under the map: pixels used and skipped, where the skipped ones were, the
    FLOP reduction and the measured time, all from ``pred`` (:func:`task.predict_digit`)."""
    n, used = int(pred["steps"]), int(pred["updates"])
    ratio = common.flops_ratio(float(pred["flops"]), float(pred["dense_flops"]))
    blank = blank_share(image, pred["update"], side)
    where = (f" ({blank:.0%} of them blank background)" if blank is not None else "")
    saving = (f"{ratio:.2f}× fewer FLOPs than using every pixel" if ratio >= 1 else
              f"{1 / ratio:.2f}× more FLOPs than using every pixel (the gate costs a little)")
    return (f"The Skip GRU used {used} of the {n} pixels and skipped {n - used}{where}: "
            f"{saving}." + time_clause(timing))


def top_used_share(attr: Sequence[float], update: Sequence[float], k: int) -> float:
    """The share of the ``k`` pixels with the largest |attribution| that the model used."""
    a = np.abs(np.asarray(attr, dtype=np.float64).reshape(-1))
    u = np.asarray(update, dtype=np.float64).reshape(-1)
    if a.size != u.size or not 1 <= int(k) <= a.size:
        raise ValueError("one attribution per step and 1 ≤ k ≤ steps are needed")
    top = np.argsort(-a, kind="mergesort")[: int(k)]
    return float((u[top] > 0.5).mean())


def attribution_line(mass: float, chance: float) -> str:
    """One line on whether the gate skips what does not matter, from the share of |attribution|
    on used pixels and its chance level (the share of pixels used)."""
    verdict = ("more than chance" if mass > chance + 0.02 else
               "no better than chance" if mass >= chance - 0.02 else "less than chance")
    return (f"{mass:.0%} of the attribution lies on the {chance:.0%} of pixels the model used: "
            f"{verdict}.")


def history(card: dict) -> Dict[str, list]:
    """A card's validation accuracy per epoch: ``{"epoch": [...], "accuracy": [...]}``, from
    ``training.valid_per_epoch_all`` (all sessions of a resumed run), else
    ``training.valid_per_epoch``; one value per epoch (the last), in epoch order."""
    training = (card or {}).get("training") or {}
    rows = training.get("valid_per_epoch_all") or training.get("valid_per_epoch") or []
    by_epoch = {}
    for r in rows:
        try:
            e, a = int(r["epoch"]), float(r["accuracy"])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(a):
            by_epoch[e] = a
    epochs = sorted(by_epoch)
    return {"epoch": epochs, "accuracy": [by_epoch[e] for e in epochs]}


def history_sentence(curves: Dict[str, Dict[str, list]], expected: Optional[str] = None,
                     level: float = 0.9) -> str:
    """Where each training (name → :func:`history`) ended and from which epoch it was above
    ``level``; which got there first, and whether that is the one the paper found faster
    (``expected``). Generated from the curves only."""
    parts, reached = [], {}
    for name, h in curves.items():
        if not h["epoch"]:
            continue
        first = next((e for e, a in zip(h["epoch"], h["accuracy"]) if a >= level), None)
        reached[name] = first
        n = h["epoch"][-1]
        parts.append(f"the {name} reached {h['accuracy'][-1]:.1%} after {n} "
                     f"epoch{'s' if n != 1 else ''}"
                     + (f" (above {level:.0%} from epoch {first})" if first else ""))
    if not parts:
        return ""
    text = "Ours, one run each on a CPU: " + "; ".join(parts) + "."
    hits = {k: v for k, v in reached.items() if v is not None}
    if len(hits) >= 2 and len(set(hits.values())) > 1:
        fastest = min(hits, key=hits.get)
        text += f" The {fastest} passed {level:.0%} first"
        if expected:
            text += (", as in the paper." if fastest == expected else
                     f"; in the paper the {expected} was faster.")
        else:
            text += "."
    return text


def grid_indices(labels: Sequence[int], per_class: int = 2) -> np.ndarray:
    """The first ``per_class`` digits of every class, class by class (0, 0, 1, 1, …)."""
    y = np.asarray(labels).reshape(-1)
    out = []
    for c in range(10):
        idx = np.nonzero(y == c)[0][:per_class]
        out.extend(int(i) for i in idx)
    return np.asarray(out, dtype=np.int64)


# --- live training -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def live_data() -> Dict[str, torch.Tensor]:
    """The bundled digits at 14×14 as sequences, split 4,000 / 1,000 by class
    (:func:`skimviz.viz.pixels_figs.live_split`)."""
    x, y = mnist.load_bundled()
    tr, va = pixels_figs.live_split(y, LIVE_VALID_PER_CLASS)
    seq = mnist.to_sequence(x, LIVE_SIDE)
    yt = torch.tensor(y)
    return {"x_train": seq[tr], "y_train": yt[tr], "x_valid": seq[va], "y_valid": yt[va]}


def live_problems(lam, hidden, steps, lr, seed, seed_max: int) -> list:
    """Why these settings cannot start a run (empty when they can), in plain words."""
    checks = ((lam in LIVE_LAMBDAS, "λ must be one of the slider's values"),
              (hidden in LIVE_HIDDEN, f"the hidden units must be one of {list(LIVE_HIDDEN)}"),
              (steps is not None and 1 <= int(steps) <= LIVE_MAX_STEPS,
               f"the training steps must be 1 to {LIVE_MAX_STEPS:,}"),
              (lr in LIVE_LRS, "the learning rate must be one of the slider's values"),
              (seed is not None and 0 <= int(seed) <= seed_max,
               f"the seed must be a whole number from 0 to {seed_max}"))
    return [why for ok, why in checks if not ok]


def _evaluate(model) -> dict:
    """Validation accuracy and pixels used at θ = 0.5, and the θ sweep, on the 1,000 held-out
    digits."""
    from skimviz.training.loop import evaluate_classifier, threshold_sweep

    d = live_data()
    v = evaluate_classifier(model, d["x_valid"], d["y_valid"], threshold=0.5)
    sweep = threshold_sweep(model, d["x_valid"], d["y_valid"], task.SWEEP)
    model.set_threshold(0.5)
    return {"valid_accuracy": v["accuracy"], "valid_updates_mean": v["updates"],
            "n_valid": v["n"],
            "sweep": [{k: s[k] for k in ("threshold", "accuracy", "updates", "flops")}
                      for s in sweep]}


def live_run(hidden: int, lam: float, lr: float, steps: int, seed: int,
             alive: Optional[Callable[[], bool]] = None):
    """A Skip GRU of ``hidden`` units trained from scratch (not started): ``steps`` batches of
    :data:`LIVE_BATCH`, Adam at ``lr`` (the gate 10× slower), λ ramped up over the first third
    of the steps. ``seed`` fixes the starting weights and the batch order."""
    from skimviz.training.live import LiveRun, Recipe
    from skimviz.training.loop import Trainer, batches, classification_loss

    steps, seed = int(steps), int(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = task.make_model("gru", int(hidden), skip=True)
    trainer = Trainer(model, classification_loss(float(lam), warmup_steps=max(1, steps // 3)),
                      lr=float(lr), gate_lr=float(lr) * GATE_LR_SCALE)
    d = live_data()
    config = {"hidden": int(hidden), "lam": float(lam), "lr": float(lr), "steps": steps,
              "seed": seed, "side": LIVE_SIDE}
    return LiveRun(trainer, batches(d["x_train"], d["y_train"], LIVE_BATCH, seed=seed), steps,
                   evaluate=_evaluate, config=config, alive=alive,
                   recipe=Recipe.of(live_run, hidden, lam, lr, steps, seed))
