"""Attributions vs decisions: does a Skip RNN skip the pixels that do not matter?

An attribution method (``captum.attr``: Integrated Gradients or Saliency) says how much each input
pixel matters for the predicted class; the Skip RNN's trace says which pixels it *used* (u_t = 1).
Two agreement numbers compare them for one digit:

* :func:`mass_on_used`: the share of the total |attribution| that falls on used pixels (chance
  level: the fraction of pixels used);
* :func:`used_auc`: the ROC AUC of the binary "used" mask as a score for predicting which pixels
  are among the top-k by |attribution| (0.5: no relation; 1: every top-k pixel is used and the
  used pixels are few).

Gradients through a Skip RNN: in ``eval()`` mode with an input that requires grad,
``SkipRNN.forward`` takes its differentiable blend path (Eq. 3 at every step). With u_t ∈ {0, 1}
the blend gives the same states, so the same decisions, as the skipping inference path; u_t
passes the gradient straight through (Eq. 7), so a skipped pixel still gets the gradient that
flows through the gate's accumulation. For Integrated Gradients the baseline is the black image
(all zeros), so a black pixel gets exactly 0 attribution (IG is (x − x')·mean gradient);
Saliency (|∂logit/∂x|) attributes black pixels too.

Library code: no Streamlit here.
"""
from __future__ import annotations

import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from skimviz.data import mnist

METHODS = {"ig": "Integrated Gradients", "saliency": "Saliency"}
#: IG steps (Gauss–Legendre points along the straight path from the black image; their weights sum
#: to 1, so for a smooth model the scores add up to logit(x) − logit(black), IG's completeness);
#: see :func:`attribute_digit`.
IG_STEPS = 32


def _forward(model):
    def f(x):
        return model(x)
    return f


def _attribute_batch(model, x: torch.Tensor, targets: torch.Tensor, method: str,
                     steps: int, internal_batch_size: Optional[int] = None) -> torch.Tensor:
    """Attributions (B, T) for sequences ``x`` (B, T, 1) towards ``targets`` (B,)."""
    from captum.attr import IntegratedGradients, Saliency

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    was_training = model.training
    model.eval()  # the decisions of inference; the input's requires_grad picks the blend path
    try:
        with torch.enable_grad():
            if method == "ig":
                a = IntegratedGradients(_forward(model)).attribute(
                    x, baselines=torch.zeros_like(x), target=targets, n_steps=int(steps),
                    method="gausslegendre", internal_batch_size=internal_batch_size)
            else:
                x = x.detach().clone().requires_grad_(True)
                a = Saliency(_forward(model)).attribute(x, target=targets, abs=True)
    finally:
        model.train(was_training)
    return a.detach().sum(-1)


@torch.no_grad()
def _predict(model, x: torch.Tensor):
    """(labels (B,), used masks (B, T)) from the skipping inference path."""
    was_training = model.training
    model.eval()
    try:
        logits, trace = model(x, return_trace=True)
    finally:
        model.train(was_training)
    return logits.argmax(-1), trace.update


def attribute_digit(model, image: np.ndarray, side: int = 28, method: str = "ig",
                    steps: int = IG_STEPS, target: Optional[int] = None) -> np.ndarray:
    """Attribution of one digit (28×28 uint8) to the predicted class (or ``target``), one value
    per step in scan-line order: a float64 array of shape (side*side,).

    ``method``: ``"ig"`` (Integrated Gradients, black-image baseline, ``steps`` points, all in
    one batch of ``steps`` sequences) or ``"saliency"`` (|gradient|, one backward pass).
    """
    x = mnist.to_sequence(np.asarray(image)[None], side)
    if target is None:
        target = int(_predict(model, x)[0][0])
    a = _attribute_batch(model, x, torch.tensor([int(target)]), method, steps)
    return a[0].double().numpy()


# --- agreement --------------------------------------------------------------------------------
def _check(attr, used):
    a = np.abs(np.asarray(attr, dtype=np.float64).reshape(-1))
    u = np.asarray(used, dtype=np.float64).reshape(-1)
    if a.shape != u.shape:
        raise ValueError(f"attribution ({a.size}) and used mask ({u.size}) differ in length")
    if not np.isin(u, (0.0, 1.0)).all():
        raise ValueError("the used mask must hold only 0 and 1")
    if not np.isfinite(a).all():
        raise ValueError("the attribution has non-finite values")
    return a, u > 0.5


def mass_on_used(attr: Sequence[float], used: Sequence[float]) -> float:
    """Share of the total |attribution| on used positions, in [0, 1]; NaN when the attribution
    is all zero. Chance level (attribution unrelated to the mask) is ``mean(used)``."""
    a, u = _check(attr, used)
    total = a.sum()
    if total <= 0:
        return float("nan")
    return float(min(1.0, max(0.0, a[u].sum() / total)))


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get their average rank (like scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # first index of each run of equal values, and the run lengths
    starts = np.r_[0, np.nonzero(np.diff(xs))[0] + 1]
    ends = np.r_[starts[1:], len(xs)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1..end
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (Mann–Whitney U with average ranks for ties);
    NaN when one class is empty."""
    y = np.asarray(labels, dtype=bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def top_k(attr: Sequence[float], k: int) -> np.ndarray:
    """Boolean mask of the k positions with the largest |attribution| (ties: earliest step)."""
    a = np.abs(np.asarray(attr, dtype=np.float64).reshape(-1))
    k = int(k)
    if not 0 < k < a.size:
        raise ValueError(f"k must be between 1 and {a.size - 1}, got {k}")
    idx = np.argsort(-a, kind="mergesort")[:k]
    m = np.zeros(a.size, dtype=bool)
    m[idx] = True
    return m


def default_k(n: int) -> int:
    """The default k: the top 10 % of the positions."""
    return max(1, int(round(0.1 * n)))


def used_auc(attr: Sequence[float], used: Sequence[float], k: Optional[int] = None) -> float:
    """ROC AUC of the binary "used" mask as a score for predicting membership in the top-k
    |attribution| positions (k defaults to 10 % of them). 1: every top-k position is used and
    every other one skipped; 0.5: "used" says nothing about importance; 0: the reverse."""
    a, u = _check(attr, used)
    k = default_k(a.size) if k is None else k
    return roc_auc(top_k(a, k), u.astype(np.float64))


def agreement(attr: Sequence[float], used: Sequence[float], k: Optional[int] = None
              ) -> Dict[str, float]:
    """Both numbers for one digit, with the chance level of the mass (the fraction used)."""
    a, u = _check(attr, used)
    k = default_k(a.size) if k is None else int(k)
    return {"mass_on_used": mass_on_used(a, u), "used_auc": used_auc(a, u, k),
            "used_fraction": float(u.mean()), "k": k}


def agreement_over_set(model, images: np.ndarray, side: int = 28, n: int = 100,
                       method: str = "saliency", steps: int = 8, k: Optional[int] = None,
                       batch_size: Optional[int] = None, internal_batch_size: Optional[int] = None
                       ) -> Dict[str, object]:
    """Agreement over the first ``n`` of ``images`` (N, 28, 28): per-digit mass on used pixels
    and used-AUC, their means and standard deviations, and the chance level of the mass.

    Digits are attributed ``batch_size`` at a time (one batched forward/backward through the
    blend path); IG with ``steps`` points runs ``batch_size × steps`` sequences per pass
    (``internal_batch_size`` bounds that). Returns plain floats and lists (cacheable).
    """
    t0 = time.perf_counter()
    imgs = np.asarray(images)[: int(n)]
    if len(imgs) == 0:
        raise ValueError("no images")
    x_all = mnist.to_sequence(imgs, side)
    mass, auc, frac, labels = [], [], [], []
    if batch_size is None:  # IG runs batch × steps sequences at once: bound the memory
        batch_size = max(1, 160 // int(steps)) if method == "ig" else 50
    for i in range(0, len(imgs), batch_size):
        x = x_all[i:i + batch_size]
        pred, used = _predict(model, x)
        attr = _attribute_batch(model, x, pred, method, steps, internal_batch_size)
        for a, u in zip(attr.double().numpy(), used.numpy()):
            g = agreement(a, u, k)
            mass.append(g["mass_on_used"])
            auc.append(g["used_auc"])
            frac.append(g["used_fraction"])
        labels.extend(int(p) for p in pred)
    m, a_, f = (np.asarray(v, dtype=np.float64) for v in (mass, auc, frac))
    return {
        "n": len(imgs), "method": method, "steps": steps if method == "ig" else None,
        "k": default_k(side * side) if k is None else int(k),
        "mass_on_used_mean": float(np.nanmean(m)), "mass_on_used_std": float(np.nanstd(m)),
        "used_auc_mean": float(np.nanmean(a_)), "used_auc_std": float(np.nanstd(a_)),
        "used_fraction_mean": float(np.mean(f)),
        "share_above_chance": float(np.nanmean(m > f)),
        "mass_on_used": m.tolist(), "used_auc": a_.tolist(), "used_fraction": f.tolist(),
        "predicted": labels, "seconds": time.perf_counter() - t0,
    }
