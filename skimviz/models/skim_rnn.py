"""Skim-RNN (Seo, Min, Farhadi & Hajishirzi, "Neural Speed Reading via Skim-RNN", ICLR 2018).
The project's copy of the paper holds only its abstract and introduction, so the equations are
cited by the labels [D], [R], [S], [G], [τ], [L] given below to the formulas of
``../shared/papers/skim-rnn-method-notes.md`` (which summarises the paper's Sec. 3), not by the
paper's own equation numbers.

A big LSTM cell f (hidden size d) and a small one f' (d' ≪ d) share one state h ∈ R^d. At each
token a two-way decision (read / skim) is taken from the token and the *previous* state:

    p_t   = softmax(W [x_t ; h_{t-1}] + b) ∈ R^2       index 0 = read, 1 = skim       [D]
    read:  h_t = f(x_t, h_{t-1})                                                        [R]
    skim:  h_t = [ f'(x_t, h_{t-1}) ; h_{t-1}[d':d] ]                                   [S]

The small cell reads the whole previous state (its recurrent matrix is 4d' × d) but writes only
the first d' dimensions; the rest is copied. For the LSTM the same slicing applies to c.

Training (``model.train()``): Q_t is not differentiable, so both candidates are computed and mixed
with Gumbel-softmax weights [G]

    r_t^i = softmax_i((log p_t^i + g_t^i) / τ),  g ~ Gumbel(0, 1);   h_t = Σ_i r_t^i h̃_t^i        [G]

with τ = max(0.5, exp(−r·n)) annealed by the training step n (r = 1e-4; :meth:`anneal`) [τ], and the
skim loss γ·(1/T)Σ_t −log p_t^skim ([L], :func:`skim_loss`).

Inference (``model.eval()``): hard decision, skim when p_t^skim > θ (``skim_threshold``; θ = 0.5
is the paper's argmax, a lower θ skims more — equivalent to adding a bias log(θ⁻¹ − 1) to the
skim logit, the paper's Fig. 5 knob). The big cell is **not evaluated** on skimmed tokens: at
batch 1 the loop branches, in a batch the reading rows and the skimming rows are gathered,
computed by their own cell and scattered back, so FLOPs saved are time saved (see Speed lab).

At batch 1 (eval, float32 CPU, no padding) the same loop runs in C++ when the extension is built
(``skimviz/csrc/skim_rnn_cpu.cpp``, :meth:`SkimRNN._forward_cpp`; ``SKIMVIZ_SKIM_BACKEND=python``
forces the Python loop, see :func:`backend`): a skimmed token then costs about d'/d of a read one
in time too, while in the Python loop both cells cost the same ~30 µs of framework overhead.

Padding: ``lengths`` (B,) marks where each sequence ends; padded steps copy the state and cost
nothing, so ``h_n`` is each sequence's state after its last real token.

Pitfalls of public ports avoided here (notes, "Pitfalls"): Gumbel noise is added to log p (not
used alone); the decision reads h_{t-1}, never the new big-cell state; the skim branch copies the
*previous* state's tail and the small cell writes a slice of the shared h; the skim loss is part
of the objective; logits go to cross-entropy un-softmaxed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skimviz import _ext, cost

READ, SKIM = 0, 1
FORCE_CODES = {None: 0, "read": 1, "skim": 2}  # SkimRNN.force → the C++ op's ``force``


def backend() -> str:
    """The batch-1 inference loop that eligible calls use (see :meth:`SkimRNN._cpp_ok`): "cpp"
    (the built extension) or "python" (also when ``SKIMVIZ_SKIM_BACKEND=python``)."""
    return _ext.backend("SKIMVIZ_SKIM_BACKEND")


@dataclass
class SkimTrace:
    """Per-token record of one forward pass; every tensor is (B, T).

    p_skim:  p_t^skim, the decision layer's skim probability [D].
    skim:    1 where the small cell ran (skimmed), 0 where the big cell ran (read) or padding.
             In training this is the soft Gumbel weight r_t^skim.
    valid:   1 for real tokens, 0 for padding.
    flops:   FLOPs spent at step t (decision + the cell that ran; 0 on padding).
    log_p_skim: log p_t^skim with its gradient (training; feeds :func:`skim_loss`).
    """

    p_skim: Tensor
    skim: Tensor
    valid: Tensor
    flops: Tensor
    log_p_skim: Optional[Tensor] = None

    @property
    def skim_rate(self) -> Tensor:
        """(B,) share of real tokens that were skimmed."""
        return (self.skim * self.valid).sum(1) / self.valid.sum(1).clamp_min(1)

    def to_dict(self, index: int = 0) -> dict:
        n = int(self.valid[index].sum())
        return {"p_skim": self.p_skim[index, :n].tolist(),
                "skim": self.skim[index, :n].round().int().tolist(),
                "flops": self.flops[index, :n].tolist()}


def skim_loss(trace: SkimTrace, gamma: float) -> Tensor:
    """L' − L = γ · (1/T) Σ_t −log p_t^skim over each sequence's real tokens averaged
    over the batch ([L]). Pushes the decision layer towards skimming."""
    if trace.log_p_skim is None:
        raise ValueError("skim_loss needs a training-mode trace (log_p_skim)")
    per_seq = -(trace.log_p_skim * trace.valid).sum(1) / trace.valid.sum(1).clamp_min(1)
    return gamma * per_seq.mean()


class SmallLSTMCell(nn.Module):
    """f' of [S]: an LSTM cell with d' units that reads x_t and the whole h_{t-1} ∈ R^d and
    updates only the first d' dimensions of (h, c). Same gate layout as ``nn.LSTMCell``
    (i, f, g, o)."""

    def __init__(self, input_size: int, hidden_size: int, small_size: int):
        super().__init__()
        self.small_size = small_size
        self.weight_ih = nn.Parameter(torch.empty(4 * small_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * small_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * small_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * small_size))
        k = 1.0 / math.sqrt(small_size)  # nn.LSTMCell's init
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
        """x: (B, I), h, c: (B, d) → new (h[:, :d'], c[:, :d']), each (B, d')."""
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        c_small = torch.sigmoid(f) * c[:, :self.small_size] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_small), c_small


class SkimRNN(nn.Module):
    """Skim-LSTM layer with the interface of ``torch.nn.LSTM`` (one layer).

    Args:
        input_size: features per token, I.
        hidden_size: d, the big cell's (and the shared state's) size; paper: 100.
        small_size: d', the small cell's size; paper: 5 or 10 (20 in ablations).
        cell: ``"lstm"`` (the paper's cell; the only one).
        batch_first: input (B, T, I) when True (default), else (T, B, I).

    ``forward(input, hx=None, *, lengths=None, return_trace=False) -> (output, (h_n, c_n)[, trace])``:
        input (B, T, I); hx = (h_0, c_0), each (1, B, d), zeros when None; lengths (B,) real
        tokens per row (None: all T). output (B, T, d): h_t (0 on padding); h_n, c_n (1, B, d).
    """

    def __init__(self, input_size: int, hidden_size: int = 100, small_size: int = 10,
                 cell: str = "lstm", batch_first: bool = True):
        super().__init__()
        if cell != "lstm":
            raise ValueError("Skim-RNN is built on LSTM cells, as in the paper (cell='lstm')")
        if not 0 < small_size < hidden_size:
            raise ValueError(f"small_size must be in 1..{hidden_size - 1}, got {small_size}")
        self.input_size, self.hidden_size, self.small_size = input_size, hidden_size, small_size
        self.batch_first = batch_first
        self.big = nn.LSTMCell(input_size, hidden_size)                       # f   [R]
        self.small = SmallLSTMCell(input_size, hidden_size, small_size)       # f'  [S]
        self.decide = nn.Linear(input_size + hidden_size, 2)                  # W, b [D]
        self.tau = 1.0                 # Gumbel-softmax temperature (training)
        self.skim_threshold = 0.5      # θ: skim when p_skim > θ (inference)
        self.force: Optional[str] = None  # None, "read" or "skim": oracle / ablation switch

    @property
    def skim_threshold(self) -> float:
        return self._threshold

    @skim_threshold.setter
    def skim_threshold(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ValueError(f"skim_threshold must be in [0, 1], got {value}")
        self._threshold = value

    def anneal(self, step: int, rate: float = 1e-4, floor: float = 0.5) -> float:
        """τ = max(floor, exp(−rate · step)) [τ]; returns the new τ."""
        self.tau = max(floor, math.exp(-rate * step))
        return self.tau

    # --- costs ------------------------------------------------------------------------------
    def decision_flops(self) -> int:
        """[D] for one token: a (I + d) → 2 linear layer and a 2-way softmax (≈ 5 FLOPs)."""
        return cost.linear_flops(self.input_size + self.hidden_size, 2) + 5

    def read_flops(self) -> int:
        """A read token: decision + the big LSTM cell [R]."""
        return self.decision_flops() + cost.lstm_cell_flops(self.input_size, self.hidden_size)

    def skim_flops(self) -> int:
        """A skimmed token: decision + the small cell (4d' × (I + d) matmul, 21d' elementwise,
        as :func:`skimviz.cost.lstm_cell_flops` counts them); the copied tail is free."""
        d2 = self.small_size
        return (self.decision_flops() + 2 * 4 * d2 * (self.input_size + self.hidden_size)
                + 21 * d2)

    def dense_flops_per_token(self) -> int:
        """The plain LSTM of the same size (no decision layer): the Flop-R numerator."""
        return cost.lstm_cell_flops(self.input_size, self.hidden_size)

    # --- forward ----------------------------------------------------------------------------
    def forward(self, input: Tensor, hx: Optional[Tuple[Tensor, Tensor]] = None, *,
                lengths: Optional[Tensor] = None, return_trace: bool = False,
                decisions: Optional[Tensor] = None):
        """``decisions`` (B, T), 1 = skim and 0 = read (e.g. an inference trace's ``skim``):
        replay these decisions in the differentiable two-candidate path with one-hot weights, in
        either mode. The states equal the inference path's with the same decisions (h = 1·h̃ +
        0·h̃'), and gradients flow to the input through the cell that ran (attributions)."""
        if input.dim() != 3:
            raise ValueError(f"input must be 3-D, got shape {tuple(input.shape)}")
        x = input if self.batch_first else input.transpose(0, 1)             # (B, T, I)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected {self.input_size} input features, got {x.shape[-1]}")
        B, T, _ = x.shape
        d = self.hidden_size
        if hx is None:
            h, c = x.new_zeros(B, d), x.new_zeros(B, d)
        else:
            h, c = hx
            if h.shape != (1, B, d) or c.shape != (1, B, d):
                raise ValueError(f"hx must be (h0, c0), each of shape {(1, B, d)}")
            h, c = h[0], c[0]
        if lengths is None:
            valid = x.new_ones(B, T)
        else:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (B,) or bool((lengths < 1).any()) or bool((lengths > T).any()):
                raise ValueError(f"lengths must be (B,) with values in 1..{T}")
            valid = (torch.arange(T, device=x.device)[None] < lengths[:, None]).to(x.dtype)
        if decisions is not None:
            decisions = torch.as_tensor(decisions, device=x.device)
            if decisions.shape != (B, T):
                raise ValueError(f"decisions must be (B, T) = {(B, T)}, got "
                                 f"{tuple(decisions.shape)}")
            decisions = (decisions > 0.5).long()
        elif self._cpp_ok(x, h, c, lengths):
            out, (h, c), trace = self._forward_cpp(x, h, c)
            out = out if self.batch_first else out.transpose(0, 1)
            return (out, (h[None], c[None]), trace) if return_trace else (out, (h[None], c[None]))
        step = self._step_soft if self.training or decisions is not None else self._step_hard
        outs, p_skims, skims, logps, flops = [], [], [], [], []
        for t in range(T):
            if decisions is None:
                h, c, p_skim, s, logp, f = step(x[:, t], h, c, valid[:, t])
            else:
                h, c, p_skim, s, logp, f = step(x[:, t], h, c, valid[:, t], decisions[:, t])
            outs.append(h * valid[:, t, None])
            p_skims.append(p_skim), skims.append(s), logps.append(logp), flops.append(f)
        out = torch.stack(outs, 1)
        trace = SkimTrace(torch.stack(p_skims, 1).detach(), torch.stack(skims, 1), valid,
                          torch.stack(flops, 1),
                          torch.stack(logps, 1) if self.training else None)
        if not self.batch_first:
            out = out.transpose(0, 1)
        hn = (h[None], c[None])
        return (out, hn, trace) if return_trace else (out, hn)

    def _decide(self, x: Tensor, h: Tensor) -> Tensor:
        """log p_t (B, 2) from x_t and h_{t-1} [D]."""
        return F.log_softmax(self.decide(torch.cat([x, h], dim=-1)), dim=-1)

    def _skim_state(self, x: Tensor, h: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
        """[S]: [f'(x_t, h_{t-1}); h_{t-1}[d':]] for h and c."""
        hs, cs = self.small(x, h, c)
        d2 = self.small_size
        return torch.cat([hs, h[:, d2:]], -1), torch.cat([cs, c[:, d2:]], -1)

    def _step_soft(self, x, h, c, m, decision=None):
        """Training step: both candidates, mixed with Gumbel-softmax weights [G] (one-hot
        weights when ``decision`` (B,), 1 = skim, replays given decisions)."""
        logp = self._decide(x, h)
        hr, cr = self.big(x, (h, c))
        hs, cs = self._skim_state(x, h, c)
        if decision is not None:
            r = F.one_hot(decision, 2).to(x.dtype)
        elif self.force is not None:
            r = F.one_hot(torch.full_like(m, READ if self.force == "read" else SKIM,
                                          dtype=torch.long), 2).to(x.dtype)
        else:
            u = torch.rand_like(logp).clamp(1e-10, 1.0)
            g = -torch.log((-torch.log(u)).clamp_min(1e-10))                  # Gumbel(0, 1)
            r = F.softmax((logp + g) / self.tau, dim=-1)
        mm = m[:, None]
        h_new = r[:, :1] * hr + r[:, 1:] * hs
        c_new = r[:, :1] * cr + r[:, 1:] * cs
        h, c = mm * h_new + (1 - mm) * h, mm * c_new + (1 - mm) * c
        hard = r.detach().argmax(-1).to(x.dtype)
        f = m * (hard * self.skim_flops() + (1 - hard) * self.read_flops())
        return h, c, logp[:, SKIM].exp(), r[:, SKIM] * m, logp[:, SKIM], f

    @torch.no_grad()
    def _step_hard(self, x, h, c, m):
        """Inference step: only the chosen cell runs for each row (gather / scatter)."""
        p_skim = self._decide(x, h)[:, SKIM].exp()
        if self.force is not None:
            skim = torch.full_like(m, float(self.force == "skim"))
        else:
            skim = (p_skim > self.skim_threshold).to(x.dtype)
        skim = skim * m
        read = (1 - skim) * m
        B = x.shape[0]
        if B == 1:  # no index bookkeeping at batch 1
            if m.item() == 0:
                pass
            elif skim.item() == 1:
                h, c = self._skim_state(x, h, c)
            else:
                h, c = self.big(x, (h, c))
        else:
            h, c = h.clone(), c.clone()
            rows_r = read.nonzero().squeeze(-1)
            rows_s = skim.nonzero().squeeze(-1)
            if rows_r.numel():
                hr, cr = self.big(x[rows_r], (h[rows_r], c[rows_r]))
                h.index_copy_(0, rows_r, hr), c.index_copy_(0, rows_r, cr)
            if rows_s.numel():
                hs, cs = self.small(x[rows_s], h[rows_s], c[rows_s])
                d2 = self.small_size
                h[:, :d2] = h[:, :d2].index_copy(0, rows_s, hs)
                c[:, :d2] = c[:, :d2].index_copy(0, rows_s, cs)
        f = skim * self.skim_flops() + read * self.read_flops()
        return h, c, p_skim, skim, p_skim.log(), f

    # --- batch-1 inference in C++ -------------------------------------------------------------
    def _cpp_ok(self, x: Tensor, h: Tensor, c: Tensor, lengths: Optional[Tensor]) -> bool:
        """Can the C++ loop run this call: eval mode, batch 1 without padding, float32 CPU
        tensors, and the extension built and not disabled (:func:`backend`)? Autograd needs no
        check: the eval path is not differentiable either (``_step_hard`` runs under no_grad)."""
        if self.training or x.shape[0] != 1 or self.force not in FORCE_CODES:
            return False
        if lengths is not None and int(lengths[0]) != x.shape[1]:
            return False
        if not all(t.is_cpu and t.dtype == torch.float32
                   for t in (x, h, c, self.decide.weight, self.big.weight_ih)):
            return False
        return backend() == "cpp"

    @torch.no_grad()
    def _forward_cpp(self, x: Tensor, h: Tensor, c: Tensor):
        """The eval loop (``_step_hard``) at batch 1 in C++ (torch.ops.skimviz.
        skim_rnn_forward): the same decisions, states and FLOPs. x (1, T, I), h, c (1, d)."""
        b, s = self.big, self.small
        out, h_n, c_n, skim, p_skim = _ext.load().skim_rnn_forward(
            x[0], b.weight_ih, b.weight_hh, b.bias_ih, b.bias_hh, s.weight_ih, s.weight_hh,
            s.bias_ih, s.bias_hh, self.decide.weight, self.decide.bias, h[0], c[0],
            self.skim_threshold, FORCE_CODES[self.force])
        skim = skim[None]
        read = 1 - skim
        flops = skim * self.skim_flops() + read * self.read_flops()
        trace = SkimTrace(p_skim[None], skim, torch.ones_like(skim), flops)
        return out[None], (h_n[None], c_n[None]), trace

