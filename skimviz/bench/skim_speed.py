"""Measured speed of the Skim-LSTM at batch 1: the data behind the Skim-RNN paper's Fig. 7
(speed-up against skim rate, with Flop-R as the bound), measured on this machine.

Pure library code (no Streamlit): the Skim-RNN page calls :func:`speedup_vs_skim` on a button
press with a progress callback and a time cap, and caches the rows.

For a text classifier with a Skim-LSTM, a dense twin (the plain ``nn.LSTM`` classifier of the
same sizes) and a few texts, at each inference threshold θ:

* ``skim_rate``: share of the texts' tokens that were skimmed (token-weighted);
* ``flop_r``: FLOPs of the plain LSTM on those tokens / FLOPs of the Skim-LSTM (recurrent part,
  decision layer included: :func:`skimviz.tasks.skim_text.evaluate`'s definition);
* ``skim_ms``: the sum over the texts of the median batch-1 latency of the Skim-LSTM classifier;
* ``speedup_vs_dense``: the dense twin's time over the Skim-LSTM's (what a user gains against
  the model they would otherwise deploy: cuDNN/oneDNN's fused LSTM);
* ``speedup_vs_all_read``: the same Skim-LSTM with every token forced to the big cell
  (``rnn.force = "read"``) over the Skim-LSTM at θ: the same code path, so this isolates what
  skimming saves from the overhead of stepping token by token.

The dense and all-read times do not depend on θ, so they are measured once. Every model is
deep-copied onto the device first: the caller's model (perhaps shared between sessions) is never
moved and its θ never touched.
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from skimviz import cost
from skimviz.data import text as textdata

#: Default thresholds: from "skim almost nothing" to "skim almost everything".
THRESHOLDS = (0.95, 0.8, 0.6, 0.5, 0.4, 0.2, 0.05)
ROW_KEYS = ("threshold", "skim_rate", "flop_r", "speedup_vs_dense", "speedup_vs_all_read",
            "skim_ms", "dense_ms", "all_read_ms", "tokens")

Progress = Callable[[float, str], Optional[bool]]


class SpeedError(ValueError):
    """Inputs that cannot be measured; the message is meant for the user."""


def dense_like(model: torch.nn.Module) -> torch.nn.Module:
    """An untrained dense twin (plain ``nn.LSTM``) with the sizes of ``model``: for timing only,
    where the trained twin is missing (weights do not change the time)."""
    from skimviz.models.text_classifier import TextClassifier

    cfg = dict(model.config)
    cfg["skim"] = False
    return TextClassifier(**cfg).eval()


def encode_texts(vocab: textdata.Vocab, texts: Sequence[str],
                 max_tokens: int = textdata.MAX_TOKENS) -> List[List[int]]:
    """Token ids of each text (tokenised as the page does); texts without tokens are dropped."""
    out = []
    for t in texts:
        toks = textdata.tokenize(str(t)[:textdata.MAX_CHARS], max_tokens)
        if toks:
            out.append(vocab.encode(toks))
    return out


def _on(model: torch.nn.Module, device: str) -> torch.nn.Module:
    return copy.deepcopy(model).to(device).eval()


def _inputs(ids: Sequence[Sequence[int]], device: str):
    return [(torch.tensor([list(r)], device=device), torch.tensor([len(r)])) for r in ids]


def _time_set(model, inputs, device: str, repeats: int, max_seconds: float) -> float:
    """Sum over the inputs of the median batch-1 latency (ms)."""
    total = 0.0
    per_input = max(0.05, max_seconds / max(1, len(inputs)))
    for tokens, lengths in inputs:
        lat = cost.measure_latency(lambda: model(tokens, lengths), device=device, warmup=1,
                                   repeats=repeats, max_seconds=per_input)
        total += lat.median_ms
    return total


@torch.no_grad()
def _skim_stats(model, inputs) -> Dict[str, float]:
    skimmed = flops = 0.0
    tokens = 0
    for tok, lengths in inputs:
        _, trace = model(tok, lengths, return_trace=True)
        skimmed += float(trace.skim.sum())
        flops += float(trace.flops.sum())
        tokens += int(lengths.sum())
    dense = tokens * model.dense_flops_per_token()
    return {"skim_rate": skimmed / max(1, tokens), "flop_r": dense / flops if flops else 1.0,
            "tokens": tokens}


def latency_pair(model, dense, ids: Sequence[int], device: str = "cpu", repeats: int = 5,
                 max_seconds: float = 2.0) -> Dict[str, dict]:
    """Batch-1 latency of one encoded text: the Skim-LSTM classifier at its current θ against
    the dense twin, each as :meth:`skimviz.cost.Latency.to_dict` (copies on ``device``)."""
    if not len(ids):
        raise SpeedError("the text has no tokens to time")
    (inp,) = _inputs([ids], device)
    out = {}
    for key, m in (("skim", model), ("dense", dense)):
        m = _on(m, device)
        out[key] = cost.measure_latency(lambda: m(*inp), device=device, warmup=2,
                                        repeats=repeats, max_seconds=max_seconds).to_dict()
    return out


def speedup_vs_skim(model, dense, ids: Sequence[Sequence[int]],
                    thresholds: Sequence[float] = THRESHOLDS, device: str = "cpu",
                    repeats: int = 5, max_seconds: float = 60.0,
                    progress: Optional[Progress] = None) -> Dict[str, object]:
    """Measured batch-1 speed-up of the Skim-LSTM against its dense twin and against itself with
    every token read, at each θ in ``thresholds`` (the paper's Fig. 7).

    ``ids``: the encoded texts (see :func:`encode_texts`). ``max_seconds`` caps the whole
    measurement: once it is spent, the remaining thresholds are left out (``complete`` False).
    ``progress(fraction, message)`` is called before each step; returning True stops early.

    Returns ``{"rows": [...], "complete": bool, "seconds": float, "device": str, "texts": n,
    "tokens": n}``; each row has the keys of :data:`ROW_KEYS`, rows sorted by skim rate.
    """
    if not getattr(model, "skim", False):
        raise SpeedError("speed-up against skim rate needs a Skim-LSTM model")
    ids = [list(r) for r in ids if len(r)]
    if not ids:
        raise SpeedError("no text with tokens to time")
    thresholds = [float(t) for t in thresholds]
    if not thresholds or any(not 0.0 <= t <= 1.0 for t in thresholds):
        raise SpeedError("thresholds must be in [0, 1]")
    t0 = time.perf_counter()
    steps = len(thresholds) + 2
    # the budget per timing: the whole cap shared by the two baselines and every threshold
    per_step = max(0.2, max_seconds / steps)

    def tick(i: int, message: str) -> bool:
        return bool(progress(i / steps, message)) if progress is not None else False

    skim = _on(model, device)
    inputs = _inputs(ids, device)
    stopped = tick(0, "timing the dense LSTM twin")
    rows: List[Dict[str, float]] = []
    if not stopped:
        dense_ms = _time_set(_on(dense, device), inputs, device, repeats, per_step)
        stopped = tick(1, "timing the Skim-LSTM with every token read")
    if not stopped:
        skim.rnn.force = "read"
        try:
            all_read_ms = _time_set(skim, inputs, device, repeats, per_step)
        finally:
            skim.rnn.force = None
        for i, theta in enumerate(thresholds):
            if time.perf_counter() - t0 > max_seconds:
                break
            if tick(2 + i, f"timing the Skim-LSTM at θ = {theta:g}"):
                break
            skim.set_threshold(theta)
            stats = _skim_stats(skim, inputs)
            ms = _time_set(skim, inputs, device, repeats, per_step)
            rows.append({"threshold": theta, "skim_rate": stats["skim_rate"],
                         "flop_r": stats["flop_r"], "speedup_vs_dense": dense_ms / ms,
                         "speedup_vs_all_read": all_read_ms / ms, "skim_ms": ms,
                         "dense_ms": dense_ms, "all_read_ms": all_read_ms,
                         "tokens": stats["tokens"]})
    if progress is not None:
        progress(1.0, "done")
    rows.sort(key=lambda r: (r["skim_rate"], -r["threshold"]))
    return {"rows": rows, "complete": len(rows) == len(thresholds),
            "seconds": time.perf_counter() - t0, "device": str(device), "texts": len(ids),
            "tokens": sum(len(r) for r in ids)}
