"""Attributions vs decisions on text: does a Skim-LSTM skim, and does a Transkimmer prune, the
words that do not matter?

An attribution method (``captum.attr``) scores every token for the predicted class; the model's
own trace says which tokens it *read* (Skim-LSTM: the big cell ran) or *kept* (Transkimmer: the
token was kept past the first layer, i.e. went through at least ``min_layers`` = 2 layers).
The agreement numbers are those of :mod:`skimviz.attribution.pixels` — :func:`~skimviz.attribution.pixels.
mass_on_used` (share of |attribution| on read/kept tokens; chance = the share of such tokens)
and :func:`~skimviz.attribution.pixels.used_auc` (AUC of the read/kept mask for the top-k tokens by
|attribution|, k = 10 % of the tokens, at least 1).

Methods, both towards the predicted class of the inference path:

* ``"ig"``: ``captum.attr.LayerIntegratedGradients`` on the word-embedding layer. Baseline: the
  padding token's embedding at every position — for the Skim-LSTM's ``TextClassifier`` that is
  the zero vector (``padding_idx=0``); for the Transkimmer the [PAD] row of ``word`` (position
  and token-type embeddings unchanged), and [CLS] keeps its own embedding (so it scores 0). The
  per-token score is the **sum** over the embedding dimensions (signed; the scores add up to
  logit(text) − logit(baseline), IG's completeness). Gauss–Legendre points: their weights sum
  to 1 (captum's ``riemann_trapezoid`` weights sum to (n − 1)/n, which scales every score).
* ``"saliency"``: the gradient of the logit with respect to the embedding output
  (``captum.attr.LayerGradientXActivation`` with ``multiply_by_inputs=False``, i.e. the layer
  gradient); the per-token score is its **L2 norm** over the embedding dimensions (unsigned).

Gradients through the decisions. Skim-LSTM: the inference path runs under ``no_grad``, so the
decisions of the inference path are replayed in the differentiable path
(``SkimRNN.forward(decisions=...)``, one-hot weights: the forward equals the inference forward);
a skimmed token still reaches the output through the small cell. Along the IG path the decisions
stay those of the real text. Transkimmer: the masking path (``prune=False``) in eval mode, whose
hard argmax decisions give the same logits as the pruning path; its decisions are re-taken on
every IG point (they depend on the hidden states). A token dropped before the first layer is
never attended to, so its saliency is (numerically) 0.

Pure functions returning plain lists and floats (cacheable); CPU, batch 1 (IG: ``steps``
interpolation points in one batch). Library code: no Streamlit here.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from skimviz.attribution.pixels import default_k, mass_on_used, used_auc

METHODS = {"ig": "Integrated Gradients", "saliency": "Saliency"}
#: IG interpolation points for one text.
IG_STEPS = 32
#: how each method turns the (T, E) embedding attribution into one score per token
REDUCTIONS = {"ig": "sum over the embedding dimensions (signed)",
              "saliency": "L2 norm of the gradient over the embedding dimensions"}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")


def _layer_attribution(forward, layer, ids: torch.Tensor, baseline: torch.Tensor, target: int,
                       method: str, steps: int) -> np.ndarray:
    """Per-token scores (T,) of ``forward(ids) -> logits`` at ``layer``'s output."""
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    _check_method(method)
    with torch.enable_grad():
        if method == "ig":
            a = LayerIntegratedGradients(forward, layer).attribute(
                ids, baselines=baseline, target=int(target), n_steps=int(steps),
                method="gausslegendre")
            score = a.detach()[0].sum(-1)
        else:
            a = LayerGradientXActivation(forward, layer, multiply_by_inputs=False).attribute(
                ids, target=int(target))
            score = a.detach()[0].norm(dim=-1)
    return score.double().numpy()


def agreement_text(attr: Sequence[float], used: Sequence[float], k: Optional[int] = None
                   ) -> Dict[str, float]:
    """:func:`skimviz.attribution.pixels.agreement` for short token sequences: ``mass_on_used``
    (NaN when the attribution is all zero), ``used_auc`` (NaN with fewer than 2 tokens or when
    every token is read/kept, or none), ``used_fraction`` (the chance level of the mass) and k."""
    a = np.abs(np.asarray(attr, dtype=np.float64).reshape(-1))
    u = np.asarray(used, dtype=np.float64).reshape(-1)
    if a.size != u.size:
        raise ValueError(f"attribution ({a.size}) and mask ({u.size}) differ in length")
    if a.size == 0:
        raise ValueError("no tokens")
    k = default_k(a.size) if k is None else int(k)
    constant = bool((u == u[0]).all())  # every token read/kept, or none: AUC undefined
    auc = used_auc(a, u, k) if 0 < k < a.size and not constant else float("nan")
    return {"mass_on_used": mass_on_used(a, u), "used_auc": auc,
            "used_fraction": float(u.mean()), "k": k}


# --- Skim-LSTM --------------------------------------------------------------------------------
def skim_logits(model, tokens: torch.Tensor, lengths: torch.Tensor,
                decisions: torch.Tensor) -> torch.Tensor:
    """The ``TextClassifier`` forward with the Skim-LSTM's decisions replayed (differentiable):
    tokens (B, T), lengths (B,), decisions (1 or B, T), 1 = skim."""
    x = model.drop(model.embed(tokens))
    d = decisions.expand(tokens.shape[0], -1)
    _, (h, _) = model.rnn(x, lengths=lengths.expand(tokens.shape[0]), decisions=d)
    return model.head(model.drop(h[-1]))


def attribute_skim(model, ids: Sequence[int], method: str = "ig", steps: int = IG_STEPS,
                   target: Optional[int] = None) -> Dict[str, object]:
    """Attribution of one encoded text (token ids) for a Skim-LSTM ``TextClassifier`` at its
    current θ: {"attr" (T,), "skim" (T,) 0/1 of the inference path, "read" (T,), "label",
    "logits" (inference path), "method", "reduction", "seconds", and the agreement numbers}.
    The model's mode is restored."""
    _check_method(method)
    if not getattr(model, "skim", False):
        raise ValueError("attribute_skim needs a Skim-LSTM TextClassifier (skim=True)")
    t0 = time.perf_counter()
    x = torch.tensor([list(ids)], dtype=torch.long)
    if x.shape[1] == 0:
        raise ValueError("no tokens")
    lengths = torch.tensor([x.shape[1]])
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, trace = model(x, lengths, return_trace=True)
        skim = trace.skim.round().long()                                  # (1, T)
        label = int(logits[0].argmax()) if target is None else int(target)
        a = _layer_attribution(lambda t: skim_logits(model, t, lengths, skim), model.embed, x,
                               torch.zeros_like(x), label, method, steps)
    finally:
        model.train(was)
    read = (1 - skim[0]).tolist()
    return {"attr": a.tolist(), "skim": skim[0].tolist(), "read": read, "label": label,
            "logits": logits[0].tolist(), "method": method, "reduction": REDUCTIONS[method],
            "baseline": "the padding embedding (zeros)" if method == "ig" else None,
            **agreement_text(a, read), "seconds": time.perf_counter() - t0}


# --- Transkimmer ------------------------------------------------------------------------------
def attribute_transkimmer(model, ids: Sequence[int], words: Sequence[Optional[int]],
                          method: str = "ig", steps: int = IG_STEPS, min_layers: int = 2,
                          target: Optional[int] = None) -> Dict[str, object]:
    """Attribution of one encoded input (ids, and the word index of every piece, None for
    [CLS]/[SEP] — :meth:`skimviz.tasks.transkimmer.TextEncoder.encode`'s "ids" and "words") for
    a ``TranskimmerClassifier``, through the masking path in eval mode.

    Returns per piece "attr", "prune_layer" (of the pruning path); per word "word_attr" (the
    sum of its pieces' scores; for Saliency the L2 norm of them) and "word_prune_layer" (its
    latest-pruned piece, as ``explain``); "kept" per word = prune layer ≥ ``min_layers`` (went
    through at least that many layers); the agreement numbers over the words (special tokens
    left out: [CLS] is always kept); "label", "logits", "masked_logits", "seconds"."""
    _check_method(method)
    t0 = time.perf_counter()
    x = torch.tensor([list(ids)], dtype=torch.long)
    real = x != 0
    if len(words) != x.shape[1]:
        raise ValueError("words must have one entry per id")
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, tr = model(x, return_trace=True)                      # pruning path
            masked = model(x, prune=False)
        label = int(logits[0].argmax()) if target is None else int(target)
        special = torch.tensor([[w is None for w in words]])
        baseline = torch.where(special, x, torch.zeros_like(x))           # [PAD], specials kept

        def forward(t):
            return model(t, attention_mask=real.expand(t.shape[0], -1), prune=False)

        a = _layer_attribution(forward, model.word, x, baseline, label, method, steps)
    finally:
        model.train(was)
    prune = tr.prune_layer[0].tolist()
    n_words = 1 + max((w for w in words if w is not None), default=-1)
    w_attr = np.zeros(n_words)
    w_layer = [-1] * n_words
    for k, w in enumerate(words):
        if w is None:
            continue
        w_attr[w] += a[k] if method == "ig" else a[k] ** 2
        w_layer[w] = max(w_layer[w], int(prune[k]))
    if method != "ig":
        w_attr = np.sqrt(w_attr)
    kept = [int(p >= int(min_layers)) for p in w_layer]
    g = agreement_text(w_attr, kept) if n_words else {
        "mass_on_used": float("nan"), "used_auc": float("nan"), "used_fraction": float("nan"),
        "k": 0}
    return {"attr": a.tolist(), "prune_layer": prune, "word_attr": w_attr.tolist(),
            "word_prune_layer": w_layer, "kept": kept, "min_layers": int(min_layers),
            "label": label, "logits": logits[0].tolist(), "masked_logits": masked[0].tolist(),
            "method": method, "reduction": REDUCTIONS[method],
            "baseline": "the [PAD] embedding ([CLS] kept)" if method == "ig" else None,
            **g, "seconds": time.perf_counter() - t0}


# --- over a set of texts ----------------------------------------------------------------------
def summarise(per_text: List[Dict[str, object]]) -> Dict[str, object]:
    """Set-level numbers from per-text results (each with mass_on_used, used_auc,
    used_fraction): means (NaN-aware), the share of texts above chance, and the lists."""
    if not per_text:
        raise ValueError("no texts")
    m = np.array([r["mass_on_used"] for r in per_text], dtype=np.float64)
    a = np.array([r["used_auc"] for r in per_text], dtype=np.float64)
    f = np.array([r["used_fraction"] for r in per_text], dtype=np.float64)

    def mean(v):
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    ok = np.isfinite(m)
    return {"n": len(per_text), "mass_on_used_mean": mean(m), "used_fraction_mean": mean(f),
            "used_auc_mean": mean(a), "used_auc_n": int(np.isfinite(a).sum()),
            "share_above_chance": float(np.mean(m[ok] > f[ok])) if ok.any() else float("nan"),
            "mass_on_used": m.tolist(), "used_auc": a.tolist(), "used_fraction": f.tolist()}


def skim_agreement_over_texts(model, ids_list: Sequence[Sequence[int]], method: str = "ig",
                              steps: int = IG_STEPS) -> Dict[str, object]:
    """:func:`attribute_skim` on every encoded text, then :func:`summarise`."""
    t0 = time.perf_counter()
    out = summarise([attribute_skim(model, ids, method, steps) for ids in ids_list])
    return {**out, "method": method, "seconds": time.perf_counter() - t0}


def transkimmer_agreement_over_texts(model, encoded: Sequence[Dict[str, list]],
                                     method: str = "ig", steps: int = IG_STEPS,
                                     min_layers: int = 2) -> Dict[str, object]:
    """:func:`attribute_transkimmer` on every ``TextEncoder.encode`` result, then
    :func:`summarise`."""
    t0 = time.perf_counter()
    out = summarise([attribute_transkimmer(model, e["ids"], e["words"], method, steps,
                                           min_layers) for e in encoded])
    return {**out, "method": method, "min_layers": int(min_layers),
            "seconds": time.perf_counter() - t0}


def token_rows(tokens: Sequence[str], attr: Sequence[float], mask: Sequence[int],
               mask_name: str = "read", extra: Optional[Dict[str, Sequence]] = None
               ) -> List[Dict[str, object]]:
    """Rows for the CSV export: index, token, attribution, |attribution| share, the mask
    column (``mask_name``: 0/1) and any ``extra`` columns."""
    a = np.asarray(attr, dtype=np.float64)
    if len(tokens) != a.size or len(mask) != a.size:
        raise ValueError("tokens, attr and mask must have the same length")
    total = float(np.abs(a).sum())
    rows = []
    for i, t in enumerate(tokens):
        r = {"index": i, "token": str(t), "attribution": round(float(a[i]), 8),
             "abs_share": round(abs(float(a[i])) / total, 6) if total > 0 else None,
             mask_name: int(mask[i])}
        for k, v in (extra or {}).items():
            r[k] = v[i]
        rows.append(r)
    return rows


def reading(g: Dict[str, object], used: str = "read", unused: str = "skimmed",
            units: str = "tokens") -> str:
    """One sentence answering “does the model skim what does not matter?” from an agreement
    result (mass_on_used, used_fraction)."""
    mass, frac = float(g["mass_on_used"]), float(g["used_fraction"])
    if not np.isfinite(mass):
        return "The attribution is zero on every token: there is nothing to compare."
    if frac <= 0.0 or frac >= 1.0:
        return (f"Every one of the {units} was {used if frac >= 1.0 else unused}: the decisions "
                f"do not single out any of them, so this text cannot say whether the model "
                f"{'skims' if used == 'read' else 'drops'} what does not matter.")
    head = f"{mass:.0%} of the attribution lies on the {frac:.0%} of the {units} it {used}"
    if mass > frac + 0.02:
        return head + (f" — more than chance: what it {unused} mattered less to its prediction.")
    if mass >= frac - 0.02:
        return head + f" — no better than chance: what it {unused} mattered as much as the rest."
    return head + f" — less than chance: it {unused} the {units} that mattered most."
