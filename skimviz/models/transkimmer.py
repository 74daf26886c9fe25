"""Transkimmer (Guan et al., "Transkimmer: Transformer Learns to Layer-wise Skim", ACL 2022).
Equation numbers below refer to Sec. 4 of that paper.

A BERT-style (post-LN) encoder with a skim predictor before every layer i:

    M^i     = SkimPredictor(H^i) = Activation(MLP(H^i))                  (Eq. 2)
    H^{i+1} = Transformer^i(Gather(H^i, M^i))                            (Eq. 1)
    H^L     = Σ_i H^i · M^i   (a token leaves with the state it had)      (Eq. 3)

MLP = LayerNorm → Linear → LayerNorm → GELU → Linear(2) (the official code's order); output 1
means "keep". Masks are cumulative (a pruned token never comes back) and [CLS] is always kept.

Two execution paths give the same logits (tested):
* masking (training): every token is computed; decisions are hard Gumbel-softmax samples with
  τ = 0.1 (Eq. 5, straight-through gradient) and pruned tokens are hidden from attention by the
  *renormalised* skim attention of Eq. 4 (:func:`skim_attention`); Eq. 6 gives the skim loss;
* pruning (inference, ``model.eval()``): decisions are the argmax (no noise) and each layer runs
  on the kept tokens only: per layer the kept tokens of every row are gathered into a left-packed
  tensor as wide as the longest row, with a key padding mask (none at batch 1); the states of
  pruned tokens are scattered into the output at their original positions (Eq. 3). At batch 1
  without padding, when the C++ extension is built (``python -m skimviz._ext build``), this
  whole path (embeddings to logits) is one call into csrc/transkimmer_cpu.cpp, for the skim
  model and its dense twin alike; batches run the code below (C++ pieces there were no faster
  than PyTorch: ``python -m skimviz bench ops``). ``SKIMVIZ_TRANSKIMMER_BACKEND=python`` forces
  the code below at batch 1 too.

FLOPs are counted on real tokens only (the paper's "No padding" rows): see :func:`layer_flops`.
``skim=False`` is the dense twin: the same encoder and head without predictors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skimviz import _ext
from skimviz.cost import linear_flops

TAU, MU0 = 0.1, 5.0  # Gumbel temperature (Eq. 5) and unbalanced-init bias mean (Eq. 9)
# Inference at batch 1 on at most this many tokens runs each layer as one C++ call
# (csrc/transkimmer_cpu.cpp) when the extension is built, for the skim model and its dense twin
# alike: there PyTorch's per-operator overhead is many times the arithmetic.
SMALL_TOKENS = 8


def backend() -> str:
    """"cpp" when the C++ layer kernel is loaded (and SKIMVIZ_TRANSKIMMER_BACKEND is not
    "python"), else "python"."""
    return _ext.backend("SKIMVIZ_TRANSKIMMER_BACKEND")


def _cpp_inference(module: nn.Module, t: Tensor, weight: Tensor) -> bool:
    """The C++ path applies: inference (eval mode, no gradients), ``t`` (hidden states or token
    ids) and ``weight`` a float32 tensor on the CPU (not, e.g., a quantised Linear's packed
    weight), and the extension built."""
    return (not module.training and not torch.is_grad_enabled() and t.device.type == "cpu"
            and isinstance(weight, Tensor) and weight.device.type == "cpu"
            and weight.dtype == torch.float32 and backend() == "cpp")


class _KernelCache(nn.Module):
    """What the C++ path needs from a module (its tensors, in the kernel's order), built once:
    collecting ~100 parameters costs more than the kernel's arithmetic on one token. ``_apply``
    (``.to``, ``.half``, …) and ``load_state_dict`` drop it; pickling and deep copies leave it
    out (each copy builds its own). In-place updates (an optimizer step) need no rebuild: the
    cache holds the parameters' tensors, not copies. ``_kw_cache`` is the engine; other
    ``_kw_*`` entries are derived from it and go with it."""

    def _cached(self, build):
        v = self.__dict__.get("_kw_cache")
        if v is None:
            v = self.__dict__["_kw_cache"] = build()
        return v

    def _drop_cache(self):
        for k in [k for k in self.__dict__ if k.startswith("_kw_")]:
            del self.__dict__[k]

    def __getstate__(self):
        return {k: v for k, v in super().__getstate__().items() if not k.startswith("_kw_")}

    def _apply(self, fn, *args, **kwargs):
        self._drop_cache()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs):
        self._drop_cache()
        return super()._load_from_state_dict(*args, **kwargs)


# ----------------------------------------------------------------------------- FLOPs
def layer_norm_flops(n: int, d: int) -> int:
    """LayerNorm over n vectors of size d: mean, subtract, variance (2), normalise (2), affine (2)."""
    return 8 * n * d


def layer_flops(n, d: int, heads: int, ffn: int):
    """One post-LN encoder layer on n tokens (n may be a tensor). Q, K, V, output projections
    4·n·(2d²+d); scores QKᵀ and probabilities·V 2·2·n²·d (quadratic in n); scale + softmax
    5·heads·n²; FFN n·(2·d·f + f + f·GELU + 2·f·d + d); two residual adds and LayerNorms.
    At n = 1 the softmax over one key is exactly 1, so attention is V: Q, K, the scores and the
    softmax are not computed (:meth:`EncoderLayer.forward` takes that shortcut) nor counted."""
    one = n == 1  # a single token attends only to itself: output = V, no Q, K or softmax
    return (4 * n * linear_flops(d, d) + 4 * n * n * d + 5 * heads * n * n
            - one * (2 * linear_flops(d, d) + 4 * d + 5 * heads)
            + n * (linear_flops(d, ffn) + ffn + linear_flops(ffn, d))
            + 2 * (n * d + layer_norm_flops(n, d)))


def predictor_flops(n, d: int, hidden: int):
    """Skim predictor (Eq. 2) on n tokens: LN, Linear d→p, LN, GELU, Linear p→2, argmax (1)."""
    return n * (layer_norm_flops(1, d) + linear_flops(d, hidden) + layer_norm_flops(1, hidden)
                + hidden + linear_flops(hidden, 2) + 1)


def embedding_flops(n, d: int):
    """Word + position + token-type sum (2 adds) and the LayerNorm, per token."""
    return n * (2 * d + layer_norm_flops(1, d))


def head_flops(d: int, num_classes: int, n=0, pool: str = "cls"):
    """Pooler tanh(W h + b) and the classifier, on h = h_[CLS], or (``pool="mean"``) on the mean
    of the n output rows (n·d adds and d divisions more)."""
    f = linear_flops(d, d) + d + linear_flops(d, num_classes)
    return f + (n * d + d if pool == "mean" else 0)


# ----------------------------------------------------------------------------- modules
def skim_attention(scores: Tensor, keep: Tensor, real: Optional[Tensor] = None) -> Tensor:
    """Eq. 4, renormalised: SkimAttn = softmax(scores) · M / Σ(softmax(scores) · M).

    scores (B, h, n, n); keep (B, n) in {0, 1} over keys (carries the straight-through gradient);
    real (B, n) bool: padding keys, which never had a score, are left out of the softmax. Every
    row sums to 1 over the kept keys — exactly attention over the gathered tokens (Eq. 1) — and
    the product with M passes the gradient to the predictor, also for skimmed keys (their
    softmax weight is not masked away before the product). The official master branch multiplies
    M in after the softmax without renormalising, a bug its authors fixed later; not copied.
    """
    if real is not None:
        scores = scores.masked_fill(~real[:, None, None, :], float("-inf"))
    p = torch.softmax(scores, -1) * keep[:, None, None, :]
    return p / p.sum(-1, keepdim=True).clamp_min(1e-12)


class SkimPredictor(nn.Module):
    """MLP of Eq. 2: LayerNorm → Linear → LayerNorm → GELU → Linear(2); logit 1 = keep."""

    def __init__(self, d: int, hidden: int, mu0: float = MU0):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden), nn.LayerNorm(hidden),
                                 nn.GELU(), nn.Linear(hidden, 2))
        for m in self.net:
            if isinstance(m, nn.Linear):                    # ω ~ N(0, σ), σ = 0.02   (Eq. 8)
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
        with torch.no_grad():                               # β_i ~ N((−1)^{i+1} μ0, σ) (Eq. 9)
            last = self.net[-1].bias
            last[1].normal_(mu0, 0.02)                      # "keep" starts at +μ0
            last[0].normal_(-mu0, 0.02)                     # "skim" starts at −μ0

    def forward(self, h: Tensor) -> Tensor:                 # (B, n, d) → (B, n, 2)
        return self.net(h)


class EncoderLayer(_KernelCache):
    """BERT layer: h = LN(h + Attn(h)); h = LN(h + W2 GELU(W1 h))."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.attn_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.ffn_in, self.ffn_out = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.ffn_norm = nn.LayerNorm(d, eps=eps)
        self.drop = nn.Dropout(dropout)

    def weights(self) -> list:
        """The 16 tensors of the C++ kernel, in its order (csrc/transkimmer_cpu.cpp; cached)."""
        return self._cached(lambda: [
            t for m in (self.query, self.key, self.value, self.attn_out, self.attn_norm,
                        self.ffn_in, self.ffn_out, self.ffn_norm) for t in (m.weight, m.bias)])

    def forward(self, h: Tensor, keep: Optional[Tensor] = None, soft: bool = False,
                real: Optional[Tensor] = None) -> Tensor:
        """h (B, n, d). ``soft``: ``keep`` (B, n) float mask through Eq. 4 with ``real`` the
        padding mask (training path); else ``keep`` is a bool key padding mask or None."""
        B, n, d = h.shape
        if (B == 1 and n <= SMALL_TOKENS and keep is None and not soft
                and h.dtype == torch.float32 and _cpp_inference(self, h, self.value.weight)):
            return _ext.load().transkimmer_layer(h[0], self.weights(), self.heads,
                                                 self.attn_norm.eps)[None]
        if n == 1 and not soft:  # one token (e.g. only [CLS] left): softmax over it is 1
            h = self.attn_norm(h + self.drop(self.attn_out(self.value(h))))
            return self.ffn_norm(h + self.drop(self.ffn_out(F.gelu(self.ffn_in(h)))))
        split = lambda x: x.view(B, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))  # (B, h, n, dh)
        if soft:
            p = skim_attention(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), keep, real)
            a = self.drop(p) @ v
        else:
            mask = None if keep is None else keep[:, None, None, :]
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.drop.p if self.training else 0.0)
        h = self.attn_norm(h + self.drop(self.attn_out(a.transpose(1, 2).reshape(B, n, d))))
        return self.ffn_norm(h + self.drop(self.ffn_out(F.gelu(self.ffn_in(h)))))


@dataclass
class TranskimTrace:
    """What the skimming did, per example. ``prune_layer`` (B, T): the layer before which the
    token was dropped, L when it was kept to the end, −1 for padding. ``kept_per_layer`` (B, L):
    real tokens entering each layer. ``flops`` / ``dense_flops`` (B,): FLOPs on real tokens only
    (no padding), with and without skimming. ``skim_loss``: Eq. 6 (training path only), the mean
    of ``kept_ratios`` (B, L): the (soft, differentiable) share of real tokens kept after each
    layer's predictor."""

    prune_layer: Tensor
    kept_per_layer: Tensor
    flops: Tensor
    dense_flops: Tensor
    skim_loss: Optional[Tensor] = None
    kept_ratios: Optional[Tensor] = None


class TranskimmerClassifier(_KernelCache):
    """Token ids (B, T) → logits (B, C). ``forward(input_ids, attention_mask=None,
    return_trace=False, prune=None)``; ``prune`` defaults to ``not self.training``.
    ``force_keep = True`` makes every predictor keep every token (the oracle): the predictors
    still run, as their FLOPs are still counted, so this is the model's own dense run.
    ``fixed_policy = True`` (a second training stage, our addition): in training too the
    predictors decide by argmax, as at inference, so no gradient reaches them and the encoder
    is fine-tuned under the pruning it will meet at inference."""

    def __init__(self, vocab_size: int, hidden: int = 128, layers: int = 4, heads: int = 4,
                 ffn: int = 512, max_positions: int = 128, type_vocab: int = 2,
                 num_classes: int = 2, dropout: float = 0.1, skim: bool = True,
                 predictor_hidden: Optional[int] = None, tau: float = TAU, mu0: float = MU0,
                 eps: float = 1e-12, pool: str = "cls"):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', not {pool!r}")
        self.config = dict(vocab_size=vocab_size, hidden=hidden, layers=layers, heads=heads,
                           ffn=ffn, max_positions=max_positions, type_vocab=type_vocab,
                           num_classes=num_classes, dropout=dropout, skim=skim,
                           predictor_hidden=predictor_hidden, tau=tau, mu0=mu0, eps=eps,
                           pool=pool)
        self.skim, self.tau, self.force_keep, self.fixed_policy = skim, tau, False, False
        self.pool = pool
        self.word = nn.Embedding(vocab_size, hidden)
        self.position = nn.Embedding(max_positions, hidden)
        self.token_type = nn.Embedding(type_vocab, hidden)
        self.emb_norm, self.drop = nn.LayerNorm(hidden, eps=eps), nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn, dropout, eps)
                                    for _ in range(layers))
        # named `gate` so that Trainer's gate_lr applies to the skim predictors
        self.gate = nn.ModuleList(SkimPredictor(hidden, predictor_hidden or hidden, mu0)
                                  for _ in range(layers)) if skim else None
        self.pooler, self.classifier = nn.Linear(hidden, hidden), nn.Linear(hidden, num_classes)
        for m in [self.word, self.position, self.token_type, self.pooler, self.classifier,
                  *[x for layer in self.layers for x in layer.modules()]]:
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)        # BERT's initialiser range
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)

    # --- FLOPs ---------------------------------------------------------------------------
    def _flops(self, n, kept: Tensor) -> Tensor:
        """n (B,) real tokens; kept (B, L) tokens entering each layer (after its predictor)."""
        c = self.config
        d, L = c["hidden"], c["layers"]
        f = embedding_flops(n, d) + head_flops(d, c["num_classes"], n, self.pool)
        for i in range(L):
            f = f + layer_flops(kept[:, i], d, c["heads"], c["ffn"])
            if self.skim:  # the predictor sees every token but [CLS] (always kept)
                f = f + predictor_flops((n if i == 0 else kept[:, i - 1]) - 1, d,
                                        c["predictor_hidden"] or d)
        return f.double()

    def dense_flops(self, n) -> Tensor:
        """FLOPs of the dense twin on n real tokens (n: int or tensor)."""
        c = self.config
        n = torch.as_tensor(n).reshape(-1)
        return (embedding_flops(n, c["hidden"])
                + head_flops(c["hidden"], c["num_classes"], n, self.pool)
                + c["layers"] * layer_flops(n, c["hidden"], c["heads"], c["ffn"])).double()

    # --- forward -------------------------------------------------------------------------
    def embed(self, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.emb_norm(self.word(ids) + self.position(pos)[None]
                                       + self.token_type(torch.zeros_like(ids))))

    def _decide(self, i: int, h: Tensor, hard_only: bool) -> Tensor:
        """Keep decisions of predictor i: (B, n) float (Eq. 5 sample when training) or bool."""
        logits = self.gate[i](h)        # run (and counted) even when its decision is overridden
        if self.force_keep:
            ones = h.new_ones(h.shape[:2])
            return ones.bool() if hard_only else ones
        if hard_only or not self.training or self.fixed_policy:
            keep = logits[..., 1] > logits[..., 0]           # deterministic argmax
            return keep if hard_only else keep.to(h.dtype)
        return F.gumbel_softmax(logits, tau=self.tau, hard=True)[..., 1]   # Eq. 5 (ST)

    def _forward_masked(self, h: Tensor, real: Tensor):
        """Training path: all tokens computed, cumulative masks, Eq. 3/4/6."""
        B, T, _ = h.shape
        m = real.to(h.dtype)                                  # M^{-1}: real tokens
        L = len(self.layers)
        prune = torch.where(real, L, -1)
        kept, ratios = [], []
        for i, layer in enumerate(self.layers):
            if self.skim:
                d = self._decide(i, h, hard_only=False)
                d = torch.cat([torch.ones_like(d[:, :1]), d[:, 1:]], 1)   # [CLS] always kept
                m_new = m * d                                 # cumulative mask M^i
                prune = torch.where((m > 0) & (m_new == 0), i, prune)
                m = m_new
                ratios.append(m.sum(1) / real.sum(1))         # Eq. 6 term for layer i
            kept.append((m > 0).sum(1))
            out = layer(h, m, soft=True, real=real)
            mm = m[..., None]
            h = mm * out + (1 - mm) * h                       # pruned tokens keep H^i (Eq. 3)
        return h, prune, torch.stack(kept, 1), torch.stack(ratios, 1) if ratios else None

    def _kernel(self):
        """The C++ batch-1 path's ``TranskimmerWeights`` (csrc/transkimmer_cpu.cpp): references
        to this model's tensors, built once (:class:`_KernelCache`)."""
        def build():
            layers = [t for layer in self.layers for t in layer.weights()]
            preds = [t for g in (self.gate or []) for m in g.net if not isinstance(m, nn.GELU)
                     for t in (m.weight, m.bias)]
            emb = [self.word.weight, self.position.weight, self.token_type.weight,
                   self.emb_norm.weight, self.emb_norm.bias]
            head = [self.pooler.weight, self.pooler.bias, self.classifier.weight,
                    self.classifier.bias]
            eps_p = self.gate[0].net[0].eps if self.skim else 1e-5
            k = torch.classes.skimviz.TranskimmerWeights(
                [t.detach() for t in emb], [t.detach() for t in layers],
                [t.detach() for t in preds], [t.detach() for t in head], self.layers[0].heads,
                self.layers[0].attn_norm.eps, eps_p, SMALL_TOKENS, self.pool == "mean")
            self.__dict__["_kw_run"] = k.run                 # forward's short path
            return k
        return self._cached(build)

    def _forward_pruned(self, h: Tensor, real: Tensor):
        """Inference path: each layer runs on the gathered kept tokens only (Eq. 1). (At batch
        1 with the C++ extension built, :meth:`forward` runs all of this in one call; in batches
        PyTorch's operators run it: C++ predictors and one-token layers there were no faster,
        ``python -m skimviz bench ops``.)"""
        B, T, _ = h.shape
        L = len(self.layers)
        out = None                                            # H^L, filled as tokens leave
        moved = False                                         # rows gathered yet (else slot t
        idx = torch.arange(T, device=h.device).expand(B, T)   # is position t); original
                                                              # position of each slot
        valid = real
        prune = torch.where(real, L, -1)
        kept = []
        rows = torch.arange(B, device=h.device)[:, None]
        for i, layer in enumerate(self.layers):
            if self.skim and h.shape[1] > 1:                 # [CLS] is always kept: the
                rest = self._decide(i, h[:, 1:], hard_only=True)   # predictor runs on the others
                keep = torch.cat([valid[:, :1], rest & valid[:, 1:]], 1)
                drop = valid & ~keep
                if bool(drop.any()):                          # Eq. 3: leave with H^i
                    if not moved:                             # in place: a masked select
                        out = torch.where(drop[..., None], h, 0.0)   # (zeros: padding)
                        prune = torch.where(drop, i, prune)
                    else:
                        b, s = drop.nonzero(as_tuple=True)
                        out[b, idx[b, s]] = h[b, s]
                        prune[b, idx[b, s]] = i
                    n = int(keep.sum(1).max())
                    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :n]
                    h, idx, valid = h[rows, order], idx.gather(1, order), keep.gather(1, order)
                    moved = True
            kept.append(valid.sum(1))
            h = layer(h, None if bool(valid.all()) else valid)
        if not moved:                                         # nothing pruned (dense twin,
            return (torch.where(valid[..., None], h, 0.0), prune,   # force_keep): zeros
                    torch.stack(kept, 1), None)               # for padding only
        b, s = valid.nonzero(as_tuple=True)
        out[b, idx[b, s]] = h[b, s]
        return out, prune, torch.stack(kept, 1), None

    def classify(self, h: Tensor, real: Tensor) -> Tensor:
        """The head on the final output H^L (B, T, d), whose rows are each token's state from
        the layer it left (Eq. 3): tanh(W_p · + b_p) → classifier, on h_[CLS] (BERT's, the
        paper's) or, with ``pool="mean"``, on the mean of the real tokens' rows (the pooling
        all-MiniLM-L6-v2 was trained with; our addition: pruned tokens then still reach the
        head with the state they left with)."""
        if self.pool == "mean":
            r = real.to(h.dtype)[..., None]
            x = (h * r).sum(1) / r.sum(1)
        else:
            x = h[:, 0]
        return self.classifier(self.drop(torch.tanh(self.pooler(x))))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                return_trace: bool = False, prune: Optional[bool] = None):
        run = self.__dict__.get("_kw_run")                  # the C++ engine's, once built
        if (run is not None and attention_mask is None and not return_trace and prune is None
                and not self.training):
            # the common call (one text, inference): as short as it can be, since on cold caches
            # each Python step costs more than a layer on one token (the bound method is kept:
            # looking it up on the engine cost ~14 µs a call there). The engine exists only for
            # float32 CPU weights (_KernelCache drops it when they move); it checks the rest —
            # ids (1, T) on the CPU without padding, gradients off, the backend switch — and
            # declines (empty logits) where the code below must run
            logits = run(input_ids, self.force_keep)
            if logits.numel():
                return logits
        prune = (not self.training) if prune is None else prune
        cpp = None
        k = (self._kernel() if prune and input_ids.shape[0] == 1
             and _cpp_inference(self, input_ids, self.word.weight) else None)   # C++ engine
        if k is not None:
            # batch 1 without padding: embeddings, the pruned layers (Eq. 1–3) and the head in
            # one C++ call (csrc/transkimmer_cpu.cpp, transkimmer_infer; tested equal to the
            # Python below); without a mask it declines (empty logits) if an id is padding (0)
            if attention_mask is None or bool(attention_mask.bool().all()):
                cpp = k.infer(input_ids, self.skim, self.force_keep,
                              0 if attention_mask is None else -1)
                cpp = cpp if cpp[0].numel() else None
            if cpp is not None and not return_trace:
                return cpp[0]
        if attention_mask is None:
            attention_mask = input_ids != 0
        real = attention_mask.bool()
        if cpp is not None:
            (logits, prune_layer, kept), ratios = cpp, None
        else:
            h = self.embed(input_ids)                                      # (B, T, d)
            h, prune_layer, kept, ratios = (self._forward_pruned(h, real) if prune
                                            else self._forward_masked(h, real))
            logits = self.classify(h, real)
        if not return_trace:
            return logits
        n = real.sum(1)
        loss = ratios.mean() if ratios is not None else None                   # Eq. 6
        trace = TranskimTrace(prune_layer, kept, self._flops(n, kept), self.dense_flops(n), loss,
                              ratios)
        return logits, trace


# ----------------------------------------------------------------------------- BERT weights
_BERT_NAMES = {"embeddings.word_embeddings": "word", "embeddings.position_embeddings": "position",
               "embeddings.token_type_embeddings": "token_type", "embeddings.LayerNorm": "emb_norm",
               "attention.self.query": "query", "attention.self.key": "key",
               "attention.self.value": "value", "attention.output.dense": "attn_out",
               "attention.output.LayerNorm": "attn_norm", "intermediate.dense": "ffn_in",
               "output.dense": "ffn_out", "output.LayerNorm": "ffn_norm",
               "pooler.dense": "pooler"}


def bert_state_dict(tensors: dict) -> dict:
    """Map Hugging Face BERT names (``encoder.layer.N.attention.self.query.weight``, …, optional
    ``bert.`` prefix, old ``gamma``/``beta``) onto this module's names; other keys are dropped."""
    out = {}
    for k, v in tensors.items():
        k = k.removeprefix("bert.").replace(".gamma", ".weight").replace(".beta", ".bias")
        mod, _, leaf = k.rpartition(".")
        if mod.startswith("encoder.layer."):
            n, _, rest = mod.removeprefix("encoder.layer.").partition(".")
            if rest in _BERT_NAMES:
                out[f"layers.{n}.{_BERT_NAMES[rest]}.{leaf}"] = v
        elif mod in _BERT_NAMES:
            out[f"{_BERT_NAMES[mod]}.{leaf}"] = v
    return out


def from_bert_safetensors(path: str, heads: int, num_classes: int = 2, skim: bool = True,
                          **kw) -> TranskimmerClassifier:
    """A :class:`TranskimmerClassifier` with the encoder (and pooler) of a BERT checkpoint;
    the predictors (Eq. 8–9) and the classifier are freshly initialised."""
    from safetensors.torch import load_file

    sd = bert_state_dict(load_file(path))
    V, d = sd["word.weight"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("layers."))
    model = TranskimmerClassifier(V, d, layers, heads, sd["layers.0.ffn_in.weight"].shape[0],
                                  sd["position.weight"].shape[0], sd["token_type.weight"].shape[0],
                                  num_classes, skim=skim, **kw)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()},
                                                strict=False)
    assert not unexpected, unexpected
    bad = [k for k in missing if not k.startswith(("gate.", "classifier."))]
    if bad:
        raise ValueError(f"{path}: missing BERT weights {bad[:5]}")
    return model
