"""The trade-off dashboard's data: every checkpoint card as a point (task metric vs cost), the
papers' reported points beside ours, and each card's θ sweep as a curve. Pure library code (no
Streamlit): the page ``pages/dashboard.py`` only draws what this module returns, so a new
checkpoint in ``pretrained/`` appears on the dashboard without any code change.

Points are plain dicts::

    {"task", "task_title", "name", "label", "kind": "skip" | "dense", "cell", "metric",
     "metric_label", "value", "flops", "dense_flops", "updates", "seq_len", "source": "ours" |
     "paper", "ref", "note", "target", "dry_run", "latency_ms"}

``value`` and ``flops`` may be None when a card lacks them (such points are listed but cannot be
drawn: see :func:`drawable`).
"""
from __future__ import annotations

import contextlib
import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from . import cost

#: Per task: how it is titled and which card metric is the task metric.
TASKS: Dict[str, Dict[str, object]] = {
    "mnist-pixels": {"title": "MNIST pixel by pixel", "metric": "valid_accuracy",
                     "metric_label": "validation accuracy"},
    "adding": {"title": "Adding task (Skip RNN Sec. 4.1)", "metric": "valid_mse",
               "metric_label": "validation MSE (lower is better)"},
    "frequency": {"title": "Frequency discrimination (Skip RNN Sec. 4.2)",
                  "metric": "valid_accuracy", "metric_label": "validation accuracy"},
    "frames": {"title": "Digit clips (Skip RNN, our take on Sec. 4.5)",
               "metric": "valid_accuracy", "metric_label": "validation accuracy"},
    "text-classification/sst2": {"title": "SST-2 sentiment (Skim-RNN)", "metric": "valid_accuracy",
                                 "metric_label": "dev accuracy"},
    "text-classification/imdb": {"title": "IMDB sentiment (Skim-RNN)", "metric": "valid_accuracy",
                                 "metric_label": "validation accuracy"},
    "sst2-transkimmer": {"title": "SST-2 sentiment (Transkimmer)", "metric": "dev_accuracy",
                         "metric_label": "dev accuracy"},
}
DEFAULT_METRIC = ("valid_accuracy", "validation accuracy")

#: The papers' reported points, keyed by task. Updates are converted to FLOPs with
#: ``skimviz.cost`` for the paper's setting (``hidden`` units, input ``input_size``, ``seq_len``
#: steps, a ``num_classes`` head), the same convention our cards use.
PAPER_POINTS: Dict[str, Dict[str, object]] = {
    "mnist-pixels": {
        "reference": "Campos et al., ICLR 2018 (Skip RNN)",
        "ref": "paper Table 3",
        "hidden": 110, "input_size": 1, "seq_len": 784, "num_classes": 10,
        "points": [
            {"label": "Skip GRU, λ=1e-4", "cell": "gru", "skip": True, "value": 0.976,
             "updates": 392.62},
            {"label": "GRU", "cell": "gru", "skip": False, "value": 0.968, "updates": 784.0},
            {"label": "Skip LSTM, λ=1e-4", "cell": "lstm", "skip": True, "value": 0.973,
             "updates": 379.38},
            {"label": "LSTM", "cell": "lstm", "skip": False, "value": 0.910, "updates": 784.0},
        ],
    },
}


def task_title(task: str) -> str:
    return str(TASKS.get(task, {}).get("title", task))


def _metric_of(task: str):
    t = TASKS.get(task)
    return (t["metric"], t["metric_label"]) if t else DEFAULT_METRIC


def _num(v) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def sequence_flops(cell: str, skip: bool, updates: float, seq_len: int, hidden: int,
                   input_size: int = 1, num_classes: int = 10) -> float:
    """FLOPs of one sequence with ``updates`` state updates out of ``seq_len`` steps, one layer,
    head included: an update costs the cell (+ the Skip RNN gate when ``skip``), a skipped step
    ``cost.SKIP_STEP_FLOPS``; the same convention as the models' traces."""
    step = cost.cell_flops(cell, input_size, hidden)
    head = cost.linear_flops(hidden, num_classes)
    if not skip:
        return float(seq_len * step + head)
    n_state = 2 if cell == "lstm" else 1
    upd = float(updates)
    return upd * (step + cost.skip_gate_flops(n_state * hidden)) \
        + (seq_len - upd) * cost.SKIP_STEP_FLOPS + head


def paper_points(tasks: Optional[Iterable[str]] = None) -> List[dict]:
    """The papers' points for ``tasks`` (all known tasks when None)."""
    out = []
    for task, table in PAPER_POINTS.items():
        if tasks is not None and task not in set(tasks):
            continue
        metric, metric_label = _metric_of(task)
        H, I, T, C = (int(table[k]) for k in ("hidden", "input_size", "seq_len", "num_classes"))
        dense = {}
        for p in table["points"]:
            f = sequence_flops(p["cell"], p["skip"], p["updates"], T, H, I, C)
            row = {"task": task, "task_title": task_title(task), "name": f"paper: {p['label']}",
                   "label": f"{table['ref']}: {p['label']}",
                   "kind": "skip" if p["skip"] else "dense", "cell": p["cell"],
                   "metric": metric, "metric_label": metric_label, "value": float(p["value"]),
                   "flops": f, "dense_flops": None, "updates": float(p["updates"]),
                   "seq_len": T, "source": "paper", "ref": table["ref"],
                   "note": (f"{table['reference']}, {table['ref']}; FLOPs computed with "
                            f"skimviz.cost for a {H}-unit {p['cell'].upper()} cell at input "
                            f"{I} over {T} steps from the reported updates"),
                   "target": None, "dry_run": False, "latency_ms": None}
            out.append(row)
            if not p["skip"]:
                dense[p["cell"]] = f
        for row in out:
            if row["task"] == task and row["dense_flops"] is None:
                row["dense_flops"] = dense.get(row["cell"])
    return out


def card_point(card: Mapping) -> dict:
    """One card as a point; missing fields become None (never an exception)."""
    config = card.get("config") if isinstance(card.get("config"), Mapping) else {}
    metrics = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
    training = card.get("training") if isinstance(card.get("training"), Mapping) else {}
    inp = card.get("input") if isinstance(card.get("input"), Mapping) else {}
    task = str(card.get("task") or "unknown task")
    if card.get("dataset"):  # one panel per dataset of a task (SST-2 and IMDB)
        task = f"{task}/{card['dataset']}"
    metric, metric_label = _metric_of(task)
    skim = "skim" in config
    skip = bool(config.get("skim" if skim else "skip", False))
    cell = str(config.get("cell") or ("transformer" if "layers" in config
                                      else "lstm" if skim else "?"))
    seq_len = _num(inp.get("seq_len"))
    updates = _num(metrics.get("valid_updates_mean"))
    name = str(card.get("name") or "?")
    hidden = config.get("hidden_size")
    kind_word = "Skim " if skim else "Skip "
    label = f"{kind_word if skip else ''}{cell.upper()}" + (f" {hidden}" if hidden else "")
    if cell == "transformer":
        label = f"{'Transkimmer' if skip else 'encoder'}, {config.get('layers')} layers × " \
                f"{config.get('hidden')}"
    target = card.get("target") if isinstance(card.get("target"), Mapping) else None
    return {"task": task, "task_title": task_title(task), "name": name,
            "label": f"{name} ({label})", "kind": "skip" if skip else "dense", "cell": cell,
            "metric": metric, "metric_label": metric_label, "value": _num(metrics.get(metric)),
            "flops": _num(metrics.get("flops_per_sequence_mean", metrics.get("flops_mean"))),
            "dense_flops": _num(metrics.get("dense_flops_per_sequence",
                                            metrics.get("dense_flops_mean"))),
            "updates": updates, "seq_len": int(seq_len) if seq_len else None,
            "source": "ours", "ref": "", "note": "", "target": dict(target) if target else None,
            "dry_run": bool(training.get("dry_run", False)), "latency_ms": None,
            "threshold": _num(card.get("skim_threshold" if skim else "update_threshold"))
            if skip else None}


def points_from_cards(cards: Iterable[Mapping] | Mapping[str, Mapping]) -> List[dict]:
    """Our points (one per card, in the given order) followed by the papers' points for the tasks
    those cards belong to."""
    if isinstance(cards, Mapping):
        cards = list(cards.values())
    ours = [card_point(c) for c in cards if isinstance(c, Mapping)]
    tasks = []
    for p in ours:
        if p["task"] not in tasks:
            tasks.append(p["task"])
    return ours + paper_points(tasks)


def drawable(points: Sequence[dict], x: str = "flops") -> List[dict]:
    """The points that have both a task metric and an ``x`` value (``flops`` or ``latency_ms``)."""
    return [p for p in points if p.get("value") is not None and p.get(x) is not None]


def missing(points: Sequence[dict], x: str = "flops") -> List[dict]:
    """Our points that cannot be drawn against ``x`` (a card without metrics, …)."""
    return [p for p in points if p["source"] == "ours" and p not in drawable(points, x)]


def sweep_curves(cards: Iterable[Mapping] | Mapping[str, Mapping]) -> List[dict]:
    """Each card's ``threshold_sweep`` as a curve (our θ trade-off, at fixed weights):
    ``{"task", "name", "metric_label", "thresholds", "values", "flops", "updates"}``, sorted by θ;
    cards without a sweep (dense models) give none; malformed rows are dropped."""
    if isinstance(cards, Mapping):
        cards = list(cards.values())
    out = []
    for card in cards:
        if not isinstance(card, Mapping):
            continue
        rows = []
        for s in card.get("threshold_sweep") or []:
            if not isinstance(s, Mapping):
                continue
            t, a, f, u = (_num(s.get(k)) for k in ("threshold", "accuracy", "flops", "updates"))
            if t is None or a is None or f is None:
                continue
            rows.append((t, a, f, u))
        if not rows:
            continue
        rows.sort()
        task = str(card.get("task") or "unknown task")
        out.append({"task": task, "name": str(card.get("name") or "?"),
                    "metric_label": _metric_of(task)[1],
                    "thresholds": [r[0] for r in rows], "values": [r[1] for r in rows],
                    "flops": [r[2] for r in rows], "updates": [r[3] for r in rows]})
    return out


def with_latency(points: Sequence[dict], latency_ms: Mapping[str, float]) -> List[dict]:
    """Copies of ``points`` with ``latency_ms`` filled in for our checkpoints (by name)."""
    out = []
    for p in points:
        q = dict(p)
        if p["source"] == "ours" and _num(latency_ms.get(p["name"])) is not None:
            q["latency_ms"] = float(latency_ms[p["name"]])
        out.append(q)
    return out


def target_notes(points: Sequence[dict]) -> List[dict]:
    """Our points whose card states a target that is not reached: ``{"name", "goal", "note"}``."""
    out = []
    for p in points:
        t = p.get("target")
        if p["source"] == "ours" and t and not t.get("reached", False):
            out.append({"name": p["name"], "goal": str(t.get("goal", "?")),
                        "note": str(t.get("note", ""))})
    return out


# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def checkpoint_latency(model, card: Mapping, image=None, repeats: int = 5,
                       max_seconds: float = 3.0) -> Dict[str, object]:
    """Measured batch-1 latency of a checkpoint on one validation input, 1 CPU thread:
    ``{"median_ms", "p10_ms", "p90_ms", "repeats", "device", "input"}``. For the MNIST task the
    input is a bundled validation digit (``image``, 28×28 uint8; digit 0 by default)."""
    task = card.get("task")
    if task != "mnist-pixels":
        raise ValueError(f"no latency input known for task {task!r}")
    from .data import mnist

    if image is None:
        x, _ = mnist.load_bundled()
        image = x[0]
        what = "validation digit #0"
    else:
        what = "the given digit"
    side = int((card.get("input") or {}).get("side", 28))
    seq = mnist.to_sequence(image[None], side)
    with _one_thread():
        lat = cost.measure_latency(lambda: model(seq), device="cpu", warmup=2, repeats=repeats,
                                   max_seconds=max_seconds)
    out = lat.to_dict()
    out["input"] = f"{what} at {side}×{side} ({side * side} steps), batch 1, 1 CPU thread"
    return out
