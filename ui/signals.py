"""The signal tasks as the app shows them (the "Skip RNN — signals and clips" page): one example
through a model with the numbers and sentences about it, its step-by-step figure, and each task's
live training (:mod:`skimviz.training.live`) with the recipe of ``skimviz.tasks.<task>.LIVE``.

Tasks: the frequency discrimination and adding tasks of the Skip RNN paper (Sec. 4.2, 4.1) and
our digit clips (after Sec. 4.5). No streamlit here.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import plotly.graph_objects as go
import torch
from torch import nn

from skimviz.data import clips
from skimviz.data.synthetic import adding_task, frequency_task
from skimviz.models import SequenceClassifier
from skimviz.tasks import _runner, adding, frames, frequency
from skimviz.training.live import LiveRun, Recipe
from skimviz.training.loop import (
    Trainer,
    classification_loss,
    evaluate_classifier,
    evaluate_regressor,
    infer_one,
    regression_loss,
)
from skimviz.viz import common, playback
from skimviz.viz import signals as signals_figs

TASKS = ("frequency", "adding", "frames")           # the page opens on the first
TITLES = {"frequency": "Frequency discrimination", "adding": "Adding task",
          "frames": "Digit clips"}
MODULES = {"frequency": frequency, "adding": adding, "frames": frames}
SHIPPED = {"frequency": "skip-gru-frequency", "adding": "skip-gru-adding",
           "frames": "skip-gru-frames"}
UNITS = {"frequency": "samples", "adding": "samples", "frames": "frames"}
NOUNS = {"frequency": "waves", "adding": "sequences", "frames": "clips"}   # one example of each
METRIC = {"frequency": "accuracy", "adding": "mse", "frames": "accuracy"}
CLASSES = ["period outside (5, 6) ms", "period in (5, 6) ms"]


def live_seconds(task: str, steps: Optional[int] = None) -> float:
    """The measured time of the task's default live run (``LIVE_SECONDS``), scaled to
    ``steps``."""
    m = MODULES[task]
    return m.LIVE_SECONDS * (steps or m.LIVE["steps"]) / m.LIVE["steps"]


def fast_training() -> bool:
    """Whether training runs on the fused C++ op (skimviz.ops), as when ``LIVE_SECONDS`` was
    measured; the PyTorch fallback is several times slower."""
    from skimviz.ops import skip_rnn as ops
    return ops.train_backend() == "cpp"


# --- one example --------------------------------------------------------------------------------
def example(task: str, seed: int, sampling_ms: float = 1.0) -> dict:
    """One generated input: x (T, features…) and its answer, from ``seed``."""
    if task == "adding":
        x, y = adding_task(1, adding.LENGTH, seed=seed)
        return {"x": x[0], "y": float(y[0]), "T": adding.LENGTH}
    if task == "frequency":
        x, y, period = frequency_task(1, sampling_ms=sampling_ms, seed=seed)
        return {"x": x[0], "y": int(y[0]), "period": float(period[0]), "T": x.shape[1],
                "sampling_ms": sampling_ms}
    x, y, info = clips.make_clips(1, seed=seed, split="test")
    return {"x": x[0], "y": int(y[0]), "T": x.shape[1], "changed": int(info["changed"][0].sum())}


def run(model: nn.Module, ex: dict) -> dict:
    """The model on one example at batch 1 (skipped steps are not computed): its answer, the
    used steps, ũ, and the FLOPs against the same model without skipping."""
    out, trace = infer_one(model, ex["x"])
    u = trace.update[0]
    r = {"update": u.tolist(), "update_prob": trace.update_prob[0].tolist(),
         "updates": int(u.sum()), "steps": int(u.numel()),
         "flops": float(trace.flops.sum()), "dense_flops": float(model.dense_flops(ex["T"])),
         "theta": float(getattr(getattr(model, "rnn", None), "update_threshold", 0.5))}
    if out.shape[-1] == 1:
        r["output"] = float(out[0, 0])
        r["correct"] = abs(r["output"] - ex["y"]) < 0.1
    else:
        p = torch.softmax(out, -1)[0]
        r["label"], r["confidence"] = int(p.argmax()), float(p.max())
        r["correct"] = r["label"] == ex["y"]
    return r


#: the question each task answers, short enough for a metric's label (its answer: :func:`answer`)
QUESTIONS = {"frequency": "Period 5–6 ms?", "adding": "Its sum", "frames": "Which digit?"}


def answer(task: str, value) -> str:
    """A task's answer, short enough for a metric's value."""
    if task == "adding":
        return f"{value:+.3f}"
    if task == "frequency":
        return "yes" if value == 1 else "no"
    return str(value)


def prediction(task: str, r: dict) -> str:
    return answer(task, r["output"] if task == "adding" else r["label"])


def flop_reduction(r: dict) -> float:
    return common.flops_ratio(r["flops"], r["dense_flops"])


def sentence(task: str, ex: dict, r: dict, who: str) -> str:
    """What happened on this example, from its numbers only."""
    unit, n, T, gain = UNITS[task], r["updates"], r["steps"], flop_reduction(r)
    saved = (f"so it did {gain:.1f}× fewer FLOPs than the same network reading every one"
             if gain >= 1.05 else "so it saved no work: deciding costs a little, skipping "
             "nothing saved it back")
    first = (f"{who[0].upper()}{who[1:]} read {n} of the {T} {unit} ({n / T:.0%}) and skipped "
             f"the other {T - n}, {saved}.")
    if task == "adding":
        second = (f" It answered {r['output']:+.3f} for a true sum of {ex['y']:+.3f} "
                  f"(off by {abs(r['output'] - ex['y']):.3f}).")
    elif task == "frequency":
        second = (f" The wave's period is {ex['period']:.2f} ms, so the answer is "
                  f"“{CLASSES[ex['y']]}”; it said “{CLASSES[r['label']]}” "
                  f"({'right' if r['correct'] else 'wrong'}, {r['confidence']:.0%} sure).")
    else:
        second = (f" Only {ex['changed']} frames differ from the one before. It said "
                  f"{r['label']} for a {ex['y']} ({'right' if r['correct'] else 'wrong'}); at "
                  "batch 1 the CNN never saw the skipped frames.")
    return first + second


def figure(task: str, ex: dict, r: dict, height: int = 560) -> go.Figure:
    """The example step by step (Play/Pause and a slider; the adding task's two marked values
    ringed), or for a clip the filmstrip of used and skipped frames. ``height`` is the whole
    figure's: the legend above and the slider and buttons below take about 260 px of it, the
    two plots the rest."""
    x = ex["x"].numpy()
    if task == "frames":
        return signals_figs.filmstrip_figure(x, r["update"], title=f"{r['updates']} of {r['steps']} "
                                        "frames used (red border); skipped ones dimmed (blue)")
    values = x[:, 0]
    # no x-axis title: the slider's "samples read: n" names the axis (a title would overlap it)
    fig = playback.signal_playback(values, r["update"], r["update_prob"], r["theta"],
                                   height=height, x_label="")
    if task == "adding":  # static, after the animated traces: the frames leave it alone
        t = np.flatnonzero(x[:, 1] > 0.5)
        fig.add_trace(go.Scatter(x=t + 1, y=values[t], mode="markers", name="marked values",
                                 marker=dict(symbol="circle-open", size=16,
                                             color=common.MARKER_COLOR, line=dict(width=2.5)),
                                 hovertemplate="step %{x}: %{y:.3f} (marked)<extra></extra>"),
                      row=1, col=1)
    return fig


# --- models ---------------------------------------------------------------------------------------
def new_model(task: str, seed: int = 0) -> nn.Module:
    """A fresh model of the live recipe's size, its weights drawn from ``seed``."""
    cfg = MODULES[task].LIVE
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "frames":
            return frames.make_model("gru", cfg["hidden"], feature_size=cfg["feature_size"])
        return MODULES[task].make_model("gru", cfg["hidden"])


def dense_twin(model: nn.Module) -> Optional[nn.Module]:
    """The same-size network without a gate (for timing; weights do not change its time), or
    None for a model the latency panel cannot time (the clip model)."""
    if not isinstance(model, SequenceClassifier):
        return None
    c = model.config
    return SequenceClassifier(c["input_size"], c["hidden_size"], c["num_classes"],
                              cell=c["cell"], num_layers=c.get("num_layers", 1), skip=False).eval()


# --- live training --------------------------------------------------------------------------------
def _batches(task: str, sampling_ms: float) -> Callable[[int, int], tuple]:
    if task == "adding":
        return lambda n, s: adding_task(n, adding.LENGTH, seed=s)
    if task == "frequency":
        return lambda n, s: frequency_task(n, sampling_ms=sampling_ms, seed=s)[:2]
    return lambda n, s: clips.make_clips(n, seed=s)[:2]


def _validation(task: str, n: int, sampling_ms: float) -> Callable[[nn.Module], Dict]:
    """Validation numbers of a trained model: metric, updates, update rate (inference path)."""
    def measure(model: nn.Module) -> Dict:
        if task == "adding":
            x, y = adding_task(n, adding.LENGTH, seed=adding.VALID_SEED)
            r = evaluate_regressor(model, x, y)
        elif task == "frequency":
            x, y, _ = frequency_task(n, sampling_ms=sampling_ms, seed=frequency.VALID_SEED)
            r = evaluate_classifier(model, x, y)
        else:
            x, y, _ = clips.make_clips(n, seed=frames.VALID_SEED, split="test")
            r = evaluate_classifier(model, x, y, batch_size=100)
        metric = METRIC[task]
        return {f"valid_{metric}": r[metric], "valid_updates_mean": r["updates"],
                "valid_update_rate": r["update_rate"], "n_valid": r["n"]}
    return measure


def live_run(task: str, seed: int, *, lam: Optional[float] = None, steps: Optional[int] = None,
             alive: Optional[Callable[[], bool]] = None) -> LiveRun:
    """The task's live training (not started): the ``LIVE`` recipe, with λ and the number of
    steps overridable; ``seed`` fixes the starting weights and the batches."""
    cfg = dict(MODULES[task].LIVE)
    lam = cfg["lam"] if lam is None else float(lam)
    steps = cfg["steps"] if steps is None else int(steps)
    ms = cfg.get("sampling_ms", 1.0)
    model = new_model(task, seed)
    warm = min(cfg["warmup"], max(1, steps // 3))
    loss = (regression_loss if task == "adding" else classification_loss)(lam, warm)
    trainer = Trainer(model, loss, lr=cfg["lr"], gate_lr=cfg["lr"] * cfg["gate_lr_scale"])
    data = _runner.generated_batches(_batches(task, ms), cfg["batch"], seed)
    config = {"task": task, "lam": lam, "steps": steps, "seed": int(seed), "lr": cfg["lr"],
              "hidden": cfg["hidden"], "batch": cfg["batch"], "warmup": warm,
              "sampling_ms": ms if task == "frequency" else None}
    return LiveRun(trainer, data, steps, evaluate=_validation(task, cfg["valid_n"], ms),
                   config=config, alive=alive, estimate_s=live_seconds(task, steps),
                   recipe=Recipe.of(live_run, task, seed, lam=lam, steps=steps))
