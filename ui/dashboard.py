"""The trade-off dashboard's data: every checkpoint card as a point (task metric vs cost), the
papers' reported points beside ours, and each card's θ sweep as a curve. Pure library code (no
Streamlit): the page ``views/dashboard.py`` only draws what this module returns, so a new
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
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from skimviz import cost
from skimviz.data.synthetic import ADDING_TARGET_VARIANCE

#: Per task: how it is titled and which card metric is the task metric.
TASKS: Dict[str, Dict[str, object]] = {
    "mnist-pixels": {"title": "MNIST pixel by pixel", "metric": "valid_accuracy",
                     "metric_label": "validation accuracy"},
    "adding": {"title": "Adding task", "metric": "valid_mse",
               "metric_label": "validation MSE (lower is better)", "lower_is_better": True},
    "frequency": {"title": "Sine-wave frequency",
                  "metric": "valid_accuracy", "metric_label": "validation accuracy"},
    "frames": {"title": "Digit clips",
               "metric": "valid_accuracy", "metric_label": "validation accuracy"},
    "text-classification/sst2": {"title": "SST-2 sentences (Skim-RNN)",
                                 "metric": "valid_accuracy", "metric_label": "dev accuracy"},
    "text-classification/imdb": {"title": "IMDB reviews (Skim-RNN)", "metric": "valid_accuracy",
                                 "metric_label": "validation accuracy"},
    "sst2-transkimmer": {"title": "SST-2 sentences (Transkimmer)", "metric": "dev_accuracy",
                         "metric_label": "dev accuracy"},
}
#: The adding task counts as solved below this MSE (the target's variance / 100, paper Sec. 4.1).
ADDING_SOLVED_MSE = ADDING_TARGET_VARIANCE / 100
#: "Good enough" for the best-trade-off sentence: within this much accuracy of our best model.
ACCURACY_TOLERANCE = 0.01

#: The dashboard's task picker: one entry per page of the app, each with the tasks it draws
#: (one panel per task, at most four). Tasks of no group go to "other".
GROUPS: Dict[str, Dict[str, object]] = {
    "mnist": {"label": "MNIST", "tasks": ("mnist-pixels",)},
    "signals": {"label": "Signals, clips", "tasks": ("adding", "frequency", "frames")},
    "skim-rnn": {"label": "Text: Skim-RNN",
                 "tasks": ("text-classification/sst2", "text-classification/imdb")},
    "transkimmer": {"label": "Text: Transkimmer", "tasks": ("sst2-transkimmer",)},
}
OTHER_GROUP = "other"
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


#: The text papers report accuracy and a FLOP reduction, not FLOPs per input. The Skim-RNN
#: paper's models have our size (LSTM d = 100, small cell d' = 10), so each of its points is drawn
#: at our dense LSTM's FLOPs on the same texts divided by its reported FLOP reduction.
#: (label, skipping?, accuracy, FLOP reduction)
SKIM_PAPER: Dict[str, object] = {
    "reference": "Seo et al., ICLR 2018 (Skim-RNN)", "ref": "paper Table 2",
    "points": {
        "text-classification/sst2": [("LSTM", False, 0.864, 1.0),
                                     ("Skim-LSTM, 2.5× fewer FLOPs", True, 0.858, 2.5),
                                     ("Skim-LSTM, 3.0× fewer FLOPs", True, 0.864, 3.0)],
        "text-classification/imdb": [("LSTM", False, 0.911, 1.0),
                                     ("Skim-LSTM, 5.8× fewer FLOPs", True, 0.912, 5.8),
                                     ("Skim-LSTM, 9.5× fewer FLOPs", True, 0.909, 9.5)]},
}
#: The Transkimmer paper's SST-2 row is BERT-base (12 layers × 768): its dense FLOPs are counted
#: with our encoder's FLOP formulas at the mean length of our dev sentences in BERT's WordPiece
#: tokens (from a card with that tokenizer), and Transkimmer's at those ÷ its reported reduction.
TRANSKIMMER_PAPER: Dict[str, object] = {
    "reference": "Guan et al., ACL 2022 (Transkimmer)", "ref": "paper Table 3",
    "task": "sst2-transkimmer", "layers": 12, "hidden": 768, "heads": 12, "ffn": 3072,
    "num_classes": 2,
    "points": [("BERT-base", False, 0.930, 1.0), ("Transkimmer on BERT-base", True, 0.923, 1.58)],
}


def _paper_row(task: str, ref: str, label: str, skip: bool, value: float, flops: float,
               cell: str, note: str, updates=None, seq_len=None) -> dict:
    metric, metric_label = _metric_of(task)
    return {"task": task, "task_title": task_title(task), "name": f"paper: {label}",
            "label": f"{ref}: {label}", "kind": "skip" if skip else "dense", "cell": cell,
            "metric": metric, "metric_label": metric_label, "value": float(value),
            "flops": float(flops), "dense_flops": None, "updates": updates, "seq_len": seq_len,
            "source": "paper", "ref": ref, "note": note, "target": None, "dry_run": False,
            "latency_ms": None}


def _skip_rnn_paper(task: str, table: Mapping) -> List[dict]:
    H, I, T, C = (int(table[k]) for k in ("hidden", "input_size", "seq_len", "num_classes"))
    out, dense = [], {}
    for p in table["points"]:
        f = sequence_flops(p["cell"], p["skip"], p["updates"], T, H, I, C)
        out.append(_paper_row(
            task, table["ref"], p["label"], p["skip"], p["value"], f, p["cell"],
            f"{table['reference']}, {table['ref']}; FLOPs computed with skimviz.cost for a "
            f"{H}-unit {p['cell'].upper()} cell at input {I} over {T} steps from the reported "
            "updates", updates=float(p["updates"]), seq_len=T))
        if not p["skip"]:
            dense[p["cell"]] = f
    for row in out:
        row["dense_flops"] = dense.get(row["cell"])
    return out


def _skim_paper(task: str, ours: Sequence[dict]) -> List[dict]:
    anchors = [p["dense_flops"] for p in ours if p["task"] == task and p["dense_flops"]]
    anchors += [p["flops"] for p in ours if p["task"] == task and p["kind"] == "dense"
                and p["flops"]]
    if not anchors:
        return []
    dense = float(anchors[0])
    return [_paper_row(task, SKIM_PAPER["ref"], label, skip, acc, dense / red, "lstm",
                       f"{SKIM_PAPER['reference']}, {SKIM_PAPER['ref']}: {red:g}× fewer FLOPs "
                       "than its LSTM; drawn at our dense LSTM's FLOPs on the same texts "
                       f"÷ {red:g}")
            for label, skip, acc, red in SKIM_PAPER["points"][task]]


def bert_base_flops(tokens: float) -> float:
    """Dense FLOPs of BERT-base (the Transkimmer paper's model) on ``tokens`` tokens, counted
    with our encoder's formulas (no padding, [CLS] pooling)."""
    from skimviz.models.transkimmer import embedding_flops, head_flops, layer_flops

    t = TRANSKIMMER_PAPER
    d = int(t["hidden"])
    return float(embedding_flops(tokens, d) + head_flops(d, int(t["num_classes"]))
                 + int(t["layers"]) * layer_flops(tokens, d, int(t["heads"]), int(t["ffn"])))


def _transkimmer_paper(ours: Sequence[dict]) -> List[dict]:
    task = str(TRANSKIMMER_PAPER["task"])
    tokens = [p["tokens"] for p in ours if p["task"] == task and p.get("tokens")
              and p.get("tokenizer") == "wordpiece"]
    if not tokens:
        return []
    n = float(tokens[0])
    dense = bert_base_flops(n)
    ref = str(TRANSKIMMER_PAPER["ref"])
    return [_paper_row(task, ref, label, skip, acc, dense / red, "transformer",
                       f"{TRANSKIMMER_PAPER['reference']}, {ref}: {red:g}× fewer FLOPs than "
                       f"BERT-base; FLOPs counted for BERT-base at {n:.1f} tokens, the mean "
                       "length of our dev sentences")
            for label, skip, acc, red in TRANSKIMMER_PAPER["points"]]


def paper_points(tasks: Optional[Iterable[str]] = None,
                 ours: Sequence[dict] = ()) -> List[dict]:
    """The papers' points for ``tasks`` (all known tasks when None). The text papers' points are
    placed relative to ``ours`` (our points of the same task), so without them there are none."""
    keep = None if tasks is None else set(tasks)
    out = []
    for task, table in PAPER_POINTS.items():
        if keep is None or task in keep:
            out += _skip_rnn_paper(task, table)
    for task in SKIM_PAPER["points"]:
        if keep is None or task in keep:
            out += _skim_paper(task, ours)
    if keep is None or TRANSKIMMER_PAPER["task"] in keep:
        out += _transkimmer_paper(ours)
    return out


def card_point(card: Mapping) -> dict:
    """One card as a point; missing fields become None (never an exception)."""
    config = card.get("config") if isinstance(card.get("config"), Mapping) else {}
    metrics = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
    training = card.get("training") if isinstance(card.get("training"), Mapping) else {}
    inp = card.get("input") if isinstance(card.get("input"), Mapping) else {}
    task = _task_key(card)
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
            if skip else None,
            "tokens": _num(metrics.get("tokens_mean", metrics.get("tokens_per_text_mean"))),
            "tokenizer": inp.get("tokenizer") if isinstance(inp.get("tokenizer"), str) else None}


def _task_key(card: Mapping) -> str:
    """A card's panel: its task, and for text tasks its dataset (SST-2 and IMDB apart)."""
    task = str(card.get("task") or "unknown task")
    return f"{task}/{card['dataset']}" if card.get("dataset") else task


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
    return ours + paper_points(tasks, ours)


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
            t, a, u = (_num(s.get(k)) for k in ("threshold", "accuracy", "updates"))
            f = _num(s.get("flops", s.get("flops_per_text")))
            if t is None or a is None or f is None:
                continue
            rows.append((t, a, f, u))
        if not rows:
            continue
        rows.sort(key=lambda r: r[0])
        task = _task_key(card)
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


# --- the task picker and the generated sentence -----------------------------------------------
def group_of(task: str) -> str:
    """The picker entry (a key of :data:`GROUPS`) a task's panel belongs to."""
    for key, g in GROUPS.items():
        if task in g["tasks"]:
            return key
    return OTHER_GROUP


def group_label(group: str) -> str:
    return str(GROUPS[group]["label"]) if group in GROUPS else "Other tasks"


def groups(points: Sequence[dict]) -> List[str]:
    """The picker's entries that have at least one point, in :data:`GROUPS` order."""
    present = {group_of(p["task"]) for p in points}
    return [g for g in [*GROUPS, OTHER_GROUP] if g in present]


def in_group(points: Sequence[dict], group: str) -> List[dict]:
    """The points of one picker entry, its tasks in :data:`GROUPS` order (others as they come)."""
    sel = [p for p in points if group_of(p["task"]) == group]
    order = list(GROUPS[group]["tasks"]) if group in GROUPS else []
    return sorted(sel, key=lambda p: order.index(p["task"]) if p["task"] in order else len(order))


def lower_is_better(task: str) -> bool:
    return bool(TASKS.get(task, {}).get("lower_is_better", False))


def _good_enough(task: str, best: float):
    """(test on a metric value, the rule in words, "no cheaper one passes" in words) for the
    best-trade-off sentence."""
    if task == "adding":
        bar = f"MSE under {ADDING_SOLVED_MSE:.4f}"
        return (lambda v: v <= ADDING_SOLVED_MSE, f"solves the task ({bar})",
                f"no cheaper model of ours solves the task ({bar})")
    if lower_is_better(task):
        return (lambda v: v <= best * 1.5, "comes within 1.5× of our lowest error",
                "no cheaper model of ours comes within 1.5× of its error")
    pts = f"{ACCURACY_TOLERANCE * 100:g} point"
    return (lambda v: v >= best - ACCURACY_TOLERANCE,
            f"comes within {pts} of our most accurate model",
            f"no cheaper model of ours comes within {pts} of it")


def best_tradeoff(points: Sequence[dict], task: str, x: str = "flops") -> Optional[dict]:
    """Our best trade-off on ``task`` by the numbers drawn against ``x``: the cheapest of our
    points that is good enough (:func:`_good_enough`; e.g. within one accuracy point of our
    most accurate model). ``{"pick", "best", "rule", "none", "cheaper"}``: the pick, our best
    point, the rule in words (and its negation), and the best of the cheaper points that missed
    the rule (or None). None when
    none of ours is drawable."""
    ours = [p for p in drawable(points, x) if p["task"] == task and p["source"] == "ours"]
    if not ours:
        return None
    low = lower_is_better(task)
    best = min(ours, key=lambda p: p["value"]) if low else max(ours, key=lambda p: p["value"])
    ok, rule, none = _good_enough(task, best["value"])
    good = [p for p in ours if ok(p["value"])] or [best]
    pick = min(good, key=lambda p: (p[x], -p["value"] if not low else p["value"]))
    cheaper = [p for p in ours if p[x] < pick[x] and p not in good]
    return {"pick": pick, "best": best, "rule": rule, "none": none,
            "cheaper": max(cheaper, key=lambda p: -p["value"] if low else p["value"])
            if cheaper else None}


def format_value(task: str, value: float) -> str:
    """A task metric as the sentence writes it: accuracy in %, an MSE with 2 significant digits."""
    return f"MSE {value:.2g}" if lower_is_better(task) else f"{value * 100:.1f} %"


def _compare(a: float, b: float, x: str, other: str) -> str:
    """How cost ``a`` compares with cost ``b`` (of ``other``), in words with a ratio."""
    what = ("FLOPs", "fewer FLOPs", "more FLOPs") if x == "flops" else \
        ("time", "less time", "more time")
    r = b / a if a > 0 else float("inf")
    if 0.95 <= r <= 1.05:
        return f"about the same {what[0]} as {other}"
    return f"{r:.1f}× {what[1]} than {other}" if r > 1 else f"{1 / r:.1f}× {what[2]} than {other}"


def tradeoff_sentence(points: Sequence[dict], task: str, x: str = "flops") -> str:
    """One or two sentences, generated from the drawn numbers only: which of our checkpoints
    gives the best trade-off on ``task`` and against what."""
    b = best_tradeoff(points, task, x)
    title = task_title(task)
    if b is None:
        return f"{title}: none of our models has a number to show here."
    pick, best = b["pick"], b["best"]
    cost_ = (lambda p: f"{p[x]:.1f} ms" if x == "latency_ms" else
             f"{p[x] / 1e6:.3g} MFLOPs")
    ours = [p for p in drawable(points, x) if p["task"] == task and p["source"] == "ours"]
    if len(ours) == 1:
        text = (f"{title}: one model only, **{pick['name']}**: "
                f"{format_value(task, pick['value'])} at {cost_(pick)}.")
    elif pick is best:
        text = (f"{title}: **{pick['name']}** gives the best trade-off: it is our best model "
                f"({format_value(task, pick['value'])} at {cost_(pick)})")
        c = b["cheaper"]
        text += (f", and {b['none']}: {c['name']} reaches {format_value(task, c['value'])} "
                 f"with {_compare(c[x], pick[x], x, pick['name'])}." if c else
                 " and the cheapest of ours.")
    else:
        text = (f"{title}: **{pick['name']}** gives the best trade-off: "
                f"{format_value(task, pick['value'])} with "
                f"{_compare(pick[x], best[x], x, 'our best, ' + best['name'])} "
                f"({format_value(task, best['value'])}); it is the cheapest that {b['rule']}.")
    return text + _paper_clause(points, task, x)


def _paper_clause(points: Sequence[dict], task: str, x: str) -> str:
    paper = [p for p in drawable(points, x) if p["task"] == task and p["source"] == "paper"]
    if not paper:
        return ""
    top = max(paper, key=lambda p: (p["value"], -p[x]))
    return (f" The paper reports {format_value(task, top['value'])} for its "
            f"{top['label'].split(': ', 1)[-1]} ({top['ref']}).")


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


#: Texts written for this page (not from any dataset), timed on every text model: a sentence
#: for the SST-2 models, a review for the IMDB ones.
SST2_TEXT = "A small, lovely film about two sisters who run a bakery: quiet, kind and often funny."
IMDB_TEXT = (
    "The first half of this musical is pure joy: the songs are catchy, the dancing is sharp, and "
    "the young lead has a voice that fills the whole theatre. Sadly the second half loses its "
    "nerve. A pointless love triangle takes over, two of the best characters simply vanish, and "
    "the finale repeats a song we already heard three times. I still smiled on the way out, and "
    "the costumes alone are worth the ticket, but it could have been a great film instead of a "
    "pleasant one. The director clearly loves these people, and the camera stays close to their "
    "faces; if only the script had trusted them as much as the actors do.")


def _mnist_input(card: Mapping, image=None):
    from skimviz.data import mnist

    if image is None:
        x, _ = mnist.load_bundled()
        image, what = x[0], "validation digit #0"
    else:
        what = "the given digit"
    side = int((card.get("input") or {}).get("side", 28))
    seq = mnist.to_sequence(image[None], side)
    return (seq,), f"{what} at {side}×{side} ({side * side} steps)"


def latency_inputs(card: Mapping, directory=None, image=None) -> Tuple[tuple, str]:
    """(the model's arguments for one input at batch 1, that input in words) for a checkpoint
    of any shipped task: the same input for every checkpoint of a task (a fixed validation
    digit, a seeded signal or clip, a text written for this page in the checkpoint's own
    vocabulary). ``directory``: the checkpoint's folder (text models read their vocabulary)."""
    import torch

    task = card.get("task")
    inp = card.get("input") if isinstance(card.get("input"), Mapping) else {}
    if task == "mnist-pixels":
        return _mnist_input(card, image)
    if task == "adding":
        from skimviz.data.synthetic import adding_task
        from skimviz.tasks import adding
        T = int(inp.get("seq_len", adding.LENGTH))
        x, _ = adding_task(1, T, seed=adding.VALID_SEED)
        return (x,), f"one validation sequence of the adding task ({T} steps)"
    if task == "frequency":
        from skimviz.data.synthetic import frequency_task
        from skimviz.tasks import frequency
        ms = float(inp.get("sampling_ms", 1.0))
        x, _, _ = frequency_task(1, sampling_ms=ms, seed=frequency.VALID_SEED)
        return (x,), f"one validation sine wave, sampled every {ms:g} ms ({x.shape[1]} steps)"
    if task == "frames":
        from skimviz.data import clips
        from skimviz.tasks import frames
        x, _, _ = clips.make_clips(1, seed=frames.VALID_SEED, split="test")
        return (x,), f"one digit clip ({x.shape[1]} frames)"
    if task == "text-classification":
        from skimviz.data import text as textdata
        from skimviz.tasks import skim_text
        vocab = skim_text.load_vocab(directory, dict(card))
        words = textdata.tokenize(IMDB_TEXT if card.get("dataset") == "imdb" else SST2_TEXT)
        ids = torch.tensor([vocab.encode(words)])
        what = "review" if card.get("dataset") == "imdb" else "sentence"
        return ((ids, torch.tensor([ids.shape[1]])),
                f"a {what} written for this page ({ids.shape[1]} tokens)")
    if task == "sst2-transkimmer":
        from skimviz.tasks import transkimmer
        enc = transkimmer.text_encoder(dict(card), str(directory))
        ids = torch.tensor([enc.encode(SST2_TEXT)["ids"]])
        return (ids,), f"a sentence written for this page ({ids.shape[1]} tokens)"
    raise ValueError(f"no latency input known for task {task!r}")


def time_models(calls: Mapping[str, Callable[[], object]], rounds: int = 9,
                max_seconds: float = 4.0) -> Dict[str, float]:
    """Median batch-1 latency (ms) of each callable, timed in turn round after round on one CPU
    thread (``cost.interleaved_ms``: load on a shared machine slows them all alike)."""
    names = list(calls)
    with _one_thread():
        ms = cost.interleaved_ms([calls[n] for n in names], rounds=rounds,
                                 max_seconds=max_seconds)
    return dict(zip(names, ms))


def checkpoint_latency(model, card: Mapping, image=None, repeats: int = 5,
                       max_seconds: float = 3.0) -> Dict[str, object]:
    """Measured batch-1 latency of an MNIST checkpoint on one validation digit (``image``,
    28×28 uint8; digit 0 by default), 1 CPU thread: ``{"median_ms", "p10_ms", "p90_ms",
    "repeats", "device", "input"}``."""
    if card.get("task") != "mnist-pixels":
        raise ValueError(f"no latency input known for task {card.get('task')!r}")
    (seq,), what = _mnist_input(card, image)
    with _one_thread():
        lat = cost.measure_latency(lambda: model(seq), device="cpu", warmup=2, repeats=repeats,
                                   max_seconds=max_seconds)
    out = lat.to_dict()
    out["input"] = f"{what}, batch 1, 1 CPU thread"
    return out
