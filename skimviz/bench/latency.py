"""Three latencies of one input, measured in the same run: dense, masked, skipped for real.

Every conditional-computation paper reports FLOPs; whether those FLOPs become time depends on how
the skipping is executed:

* **dense** — the baseline model with no gate (``nn.GRU``, ``nn.LSTM``, the dense Transformer
  twin): every step, every token, every layer;
* **masked** — the conditional model computes *everything* and zeroes (or blends away) the
  skipped part. This is what training does, and what the papers' released code does at
  inference too (Skip RNN's ``u_t · S(s_{t−1}, x_t) + (1 − u_t) · s_{t−1}``, Eq. 3; Skim-RNN's
  two cells mixed by the decision; Transkimmer's cumulative masks, Eq. 3/4), which is why users
  of that code see no speed-up;
* **skipped** — the skipped work is not executed at all (the jump loop of Skip RNN's Eq. 6, the
  small cell alone for a skimmed token, pruned tokens removed from the sequence).

:func:`runners` builds the three callables and their FLOP counts for a model and its dense
baseline; :func:`measure` times them interleaved (:func:`skimviz.cost.interleaved_ms`, so load on
a shared machine slows all three alike); :func:`sentence` says, from the numbers alone, which is
faster and why.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import torch
from torch import nn

from skimviz import cost

KEYS = ("dense", "masked", "skipped")
LABELS = {"dense": "Dense", "masked": "Masked", "skipped": "Skipped for real"}
# Within this ratio two times are "about the same" (timing noise on a busy machine).
SAME = 1.10


class LatencyError(ValueError):
    """The three latencies cannot be measured for this model or input."""


def _kind(model: nn.Module) -> str:
    name = type(model).__name__
    if name == "SequenceClassifier" and getattr(model, "skip", False):
        return "skip"
    if name == "TextClassifier" and getattr(model, "skim", False):
        return "skim"
    if name == "TranskimmerClassifier" and getattr(model, "skim", False):
        return "transkimmer"
    raise LatencyError(f"no masked/skipped pair for a {name} (a conditional model is needed)")


def runners(model: nn.Module, dense: nn.Module, inputs: Tuple
            ) -> Tuple[Dict[str, Callable[[], object]], Dict[str, float], Dict[str, str]]:
    """({key: fn}, {key: FLOPs}, {key: implementation}) for the three ways of running ``inputs``
    at batch 1.

    ``inputs``: a Skip RNN classifier takes ``(x,)`` with x (1, T, I); a Skim-LSTM text model
    ``(ids,)`` with ids (1, T) token ids; a Transkimmer ``(ids,)``. Both models are put in
    eval mode. The implementation names say where the three do not run on the same engine (the
    masked RNNs are PyTorch loops), so a reader can tell arithmetic from overhead."""
    from skimviz.models import skim_rnn, skip_rnn, transkimmer
    model.eval(), dense.eval()
    kind = _kind(model)
    (x,) = inputs
    if x.dim() < 2 or x.shape[0] != 1 or x.shape[1] < 1:
        raise LatencyError("one input (batch 1) with at least one step is needed")
    with torch.no_grad():
        if kind == "skip":
            rnn, T = model.rnn, x.shape[1]
            _, trace = model(x, return_trace=True)
            head = cost.linear_flops(model.head.in_features, model.head.out_features)

            def masked():  # Eq. 3 at every step: S runs, u_t blends it away where u_t = 0
                out, _, _ = rnn._forward_blend(x, rnn._initial_state(None, 1, x))
                return model.head(out[:, -1])

            flops = {"dense": float(model.dense_flops(T)),
                     "masked": float(T * rnn.flops_per_update() + head),
                     "skipped": float(trace.flops.sum())}
            fns = {"dense": lambda: dense(x), "masked": masked, "skipped": lambda: model(x)}
            impl = {"dense": f"nn.{model.config['cell'].upper()} (one library call)",
                    "masked": "PyTorch loop",
                    "skipped": "C++ loop" if skip_rnn.backend() == "cpp" else "PyTorch loop"}
        elif kind == "skim":
            rnn, T = model.rnn, x.shape[1]
            lengths = torch.tensor([T])
            _, trace = model(x, lengths, return_trace=True)
            decisions = trace.skim.detach()

            def masked():  # both cells on every token, the decision picks one
                emb = model.embed(x)
                _, (h, _) = rnn(emb, lengths=lengths, decisions=decisions)
                return model.head(h[-1])

            both = rnn.read_flops() + rnn.skim_flops() - rnn.decision_flops()
            flops = {"dense": float(T * rnn.dense_flops_per_token()),
                     "masked": float(T * both), "skipped": float(trace.flops.sum())}
            fns = {"dense": lambda: dense(x, lengths), "masked": masked,
                   "skipped": lambda: model(x, lengths)}
            impl = {"dense": "nn.LSTM (one library call)", "masked": "PyTorch loop",
                    "skipped": "C++ loop" if skim_rnn.backend() == "cpp" else "PyTorch loop"}
        else:  # transkimmer
            n = torch.tensor([x.shape[1]])
            _, trace = model(x, return_trace=True)
            every = n.repeat(1, len(model.layers))
            flops = {"dense": float(model.dense_flops(n).sum()),
                     "masked": float(model._flops(n, every).sum()),
                     "skipped": float(trace.flops.sum())}
            engine = ("C++ engine" if transkimmer.backend() == "cpp" else "PyTorch")

            def masked():  # every token through every layer, predictors included: the masked
                model.force_keep = True  # path's arithmetic, on the same engine as the others
                try:
                    return model(x)
                finally:
                    model.force_keep = False

            fns = {"dense": lambda: dense(x), "masked": masked, "skipped": lambda: model(x)}
            impl = dict.fromkeys(KEYS, engine)
    return fns, flops, impl


def measure(fns: Dict[str, Callable[[], object]], flops: Dict[str, float], *, rounds: int = 15,
            max_seconds: float = 3.0) -> Dict[str, Dict[str, float]]:
    """{key: {"ms": median, "flops": FLOPs}} for the three runners, timed interleaved in one
    run (one call of each per round) on the CPU."""
    keys = [k for k in KEYS if k in fns]
    times = cost.interleaved_ms([fns[k] for k in keys], rounds=rounds, max_seconds=max_seconds)
    return {k: {"ms": t, "flops": flops[k]} for k, t in zip(keys, times)}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×"


def sentence(result: Dict[str, Dict[str, float]], unit: str = "steps",
             impl: Dict[str, str] | None = None) -> str:
    """One or two sentences, built only from ``result``'s numbers: how skipping for real compares
    with dense in time and FLOPs, and how masking compares with dense. ``unit`` names what is
    skipped ("pixels", "tokens", "steps"); ``impl`` (from :func:`runners`) adds where masking
    runs on another implementation than the dense model."""
    d, m, s = (result[k] for k in KEYS)
    other = bool(impl) and impl.get("masked") != impl.get("dense")
    how = f" (a {impl['masked']}, against {impl['dense']})" if other else ""
    flop_gain = d["flops"] / s["flops"] if s["flops"] else float("inf")
    if s["ms"] * SAME < d["ms"]:
        first = (f"Skipping for real is {_ratio(d['ms'], s['ms'])} faster than the dense model "
                 f"({s['ms']:.2f} ms vs {d['ms']:.2f} ms) with {flop_gain:.1f}× fewer FLOPs")
        gain = d["ms"] / s["ms"]
        if gain < 0.8 * flop_gain:
            first += (", but time falls less than FLOPs: each skipped "
                      f"{unit.rstrip('s')} still costs a decision and some bookkeeping.")
        elif gain > 1.25 * flop_gain:
            first += (", so time falls even more than FLOPs: at batch 1 every step is tiny and "
                      "per-step overhead dominates"
                      + (f", and the {impl['skipped']} has less of it than {impl['dense']}."
                         if impl and impl.get("skipped") != impl.get("dense") else "."))
        else:
            first += ": the time saved follows the FLOPs saved."
    elif s["ms"] > d["ms"] * SAME:
        first = (f"Skipping for real is {_ratio(s['ms'], d['ms'])} slower than the dense model "
                 f"({s['ms']:.2f} ms vs {d['ms']:.2f} ms) although it does {flop_gain:.1f}× fewer "
                 "FLOPs: the dense model runs as one optimised library call, while the skipping "
                 f"model decides {unit} one by one, and that overhead outweighs the arithmetic "
                 "it saves.")
    else:
        first = (f"Skipping for real takes about as long as the dense model ({s['ms']:.2f} ms vs "
                 f"{d['ms']:.2f} ms) although it does {flop_gain:.1f}× fewer FLOPs.")
    if m["ms"] > d["ms"] * SAME:
        second = (f" Masking takes {m['ms']:.2f} ms, {_ratio(m['ms'], d['ms'])} the dense "
                  f"time{how}: it computes every step and then throws the skipped part away, so "
                  "the FLOPs saved on paper save no time.")
    elif m["ms"] * SAME < d["ms"]:
        second = (f" Masking takes {m['ms']:.2f} ms, less than the dense model here although it "
                  f"computes at least as much{how}.")
    else:
        second = (f" Masking takes about the dense time ({m['ms']:.2f} ms): it computes every "
                  "step and throws the skipped part away.")
    return first + second
