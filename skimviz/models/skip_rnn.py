"""Skip RNN (Campos et al., "Skip RNN: Learning to Skip State Updates in Recurrent Neural
Networks", ICLR 2018). Equation numbers below refer to that paper.

A binary state update gate u_t decides, at every step, whether the RNN state is updated with the
cell S or copied from the previous step:

    u_t          = f_binarize(ũ_t)                                            (Eq. 2)
    s_t          = u_t · S(s_{t-1}, x_t) + (1 − u_t) · s_{t-1}                 (Eq. 3)
    Δũ_t         = σ(W_p s_t + b_p)                                           (Eq. 4)
    ũ_{t+1}      = u_t · Δũ_t + (1 − u_t) · (ũ_t + min(Δũ_t, 1 − ũ_t))        (Eq. 5)

f_binarize is ``round`` (update when ũ_t ≥ 0.5) with the straight-through gradient
∂f/∂x = 1 (Eq. 7). The budget loss is λ·Σ_t u_t (Eq. 8), see :func:`budget_loss`.

Details taken from the paper (Sec. 4, "Training"): b_p is initialised to 1 so that every sample is
used at the start of training; the initial state s_0 is learned; ũ_1 = 1 forces the first update.
For the LSTM the state s_t is the pair (h_t, c_t), so the gate reads both: W_p [h_t; c_t]. (The
authors' TensorFlow code reads only c_t; we follow the paper's Eq. 4.) ``cell="sru"`` uses the
Simple Recurrent Unit (Lei et al. 2017, :class:`~skimviz.models.sru.SRUCell`) as S, with the same
(h_t, c_t) state and gate as the LSTM. With several layers the
whole stack is updated or copied together and the gate reads the top layer (the paper's Sec. 2:
"applied to the whole stack of RNN layers at the same time").

Two execution paths give the same numbers:
* training (``model.train()``): every step is computed and blended with Eq. 3, as in the paper,
  so that the straight-through gradient reaches the gate;
* inference (``model.eval()``): skipped steps cost nothing. At batch size 1 the loop jumps over the
  N_skip(t) = min{n : n·Δũ_t ≥ θ} − 1 skipped steps at once (Eq. 6, with θ = 0.5 in the paper);
  in a batch only the rows that update are gathered, computed and scattered back.

The batch-1 jump loop has a C++ version (``skimviz/csrc/skip_rnn_cpu.cpp``, in the extension built
by ``python -m skimviz._ext build``) for one-layer GRU and LSTM cells on float32 CPU tensors
without autograd; it takes the same float32 decisions as the Python loop, which remains the
fallback (see :func:`backend`; ``SKIMVIZ_SKIP_BACKEND=python`` forces it).

The training path has a C++ version too (``skimviz/csrc/skip_rnn_train_cpu.cpp`` via
:mod:`skimviz.ops.skip_rnn`: one fused forward over all steps and a hand-written backward through
time with the straight-through gate gradient), used whenever autograd records a one-layer GRU/LSTM
on float32/float64 CPU tensors and the extension is built; ``SKIMVIZ_SKIP_TRAIN_BACKEND=python``
(or ``SKIMVIZ_SKIP_BACKEND=python``) keeps ``_forward_blend`` below, the reference.

``update_threshold`` (θ) is an inference-time knob: u_t = [ũ_t ≥ θ]. θ = 0.5 is the paper's
rounding; a larger θ skips more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from skimviz import _ext, cost
from skimviz.models.sru import SRUCell
from skimviz.ops import skip_rnn as skip_train

State = Union[Tensor, Tuple[Tensor, Tensor]]


def backend() -> str:
    """The batch-1 jump loop that eligible models use (one GRU/LSTM layer, float32 CPU tensors,
    no autograd): "cpp" (the built extension) or "python" (also when
    ``SKIMVIZ_SKIP_BACKEND=python``)."""
    return _ext.backend("SKIMVIZ_SKIP_BACKEND")


@dataclass
class SkipTrace:
    """Per-step record of one forward pass; every tensor is (B, T).

    update_prob: ũ_t, the accumulated update probability fed to f_binarize.
    update:      u_t ∈ {0, 1}, 1 where the state was updated (sample used).
    flops:       FLOPs spent at step t (cell + gate when updating, the Eq. 5 accumulation when not).
    """

    update_prob: Tensor
    update: Tensor
    flops: Tensor

    @property
    def updates(self) -> Tensor:
        """(B,) number of state updates per sequence."""
        return self.update.sum(dim=1)

    def to_dict(self, index: int = 0) -> dict:
        return {
            "update_prob": self.update_prob[index].tolist(),
            "update": self.update[index].int().tolist(),
            "flops": self.flops[index].tolist(),
        }


class _BinarizeST(torch.autograd.Function):
    """u = [ũ ≥ θ] forward, identity backward (straight-through estimator, Eq. 7)."""

    @staticmethod
    def forward(ctx, x: Tensor, threshold: float) -> Tensor:  # type: ignore[override]
        return (x >= threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad, None


def binarize(x: Tensor, threshold: float = 0.5) -> Tensor:
    return _BinarizeST.apply(x, threshold)


def budget_loss(trace: SkipTrace, lam: float) -> Tensor:
    """L_budget = λ · Σ_t u_t (Eq. 8), averaged over the batch. u_t keeps its straight-through
    gradient, so the loss pushes ũ_t (and through it W_p, b_p) towards skipping."""
    return lam * trace.update.sum(dim=1).mean()


class SkipRNN(nn.Module):
    """Skip RNN layer with the interface of ``torch.nn.GRU`` / ``torch.nn.LSTM``.

    Args:
        input_size: features per step, I.
        hidden_size: state size, H.
        cell: ``"gru"``, ``"lstm"`` or ``"sru"``.
        num_layers: stacked cells, updated or copied together.
        batch_first: input (B, T, I) when True (default), else (T, B, I).

    ``forward(input, hx=None, *, return_trace=False) -> (output, h_n[, trace])``:
        input: (B, T, I). hx: initial state, (L, B, H) for the GRU, a pair of them for the LSTM;
        None uses the learned s_0. output: (B, T, H), the top layer's h_t (copied when skipped).
        h_n: (L, B, H), or (h_n, c_n) for the LSTM, as in torch.nn.
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "gru", num_layers: int = 1,
                 batch_first: bool = True):
        super().__init__()
        if cell not in ("gru", "lstm", "sru"):
            raise ValueError(f"cell must be 'gru', 'lstm' or 'sru', got {cell!r}")
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.input_size, self.hidden_size, self.cell = input_size, hidden_size, cell
        self.num_layers, self.batch_first = num_layers, batch_first
        Cell = {"gru": nn.GRUCell, "lstm": nn.LSTMCell, "sru": SRUCell}[cell]
        self.cells = nn.ModuleList(
            Cell(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers))
        n_state = 1 if cell == "gru" else 2
        self.h0 = nn.Parameter(torch.zeros(num_layers, n_state, hidden_size))   # learned s_0
        self.gate = nn.Linear(n_state * hidden_size, 1)                            # W_p, b_p (Eq. 4)
        nn.init.constant_(self.gate.bias, 1.0)
        self.update_threshold = 0.5  # θ of f_binarize; 0.5 is the paper's round()
        self.force_update = False    # oracle/ablation switch: u_t = 1 at every step

    @property
    def update_threshold(self) -> float:
        return self._threshold

    @update_threshold.setter
    def update_threshold(self, value: float) -> None:
        value = float(value)
        if not 0.0 < value <= 1.0:  # ũ never exceeds 1 (Eq. 5), so θ > 1 would never update
            raise ValueError(f"update_threshold must be in (0, 1], got {value}")
        self._threshold = value

    # ----------------------------------------------------------------------------------------
    def flops_per_update(self) -> int:
        """FLOPs of one updating step: every layer's cell plus the gate (Eq. 3-4)."""
        return self.dense_flops_per_step() + cost.skip_gate_flops(self.gate.in_features)

    def dense_flops_per_step(self) -> int:
        """FLOPs of the same stack without a gate (the dense baseline's step)."""
        I, H = self.input_size, self.hidden_size
        return sum(cost.cell_flops(self.cell, I if i == 0 else H, H)
                   for i in range(self.num_layers))

    # state helpers: the state is a list over layers of (h,) or (h, c), each (B, H) -------------
    def _initial_state(self, hx: Optional[State], batch: int, ref: Tensor) -> list:
        L = self.num_layers
        if hx is None:
            h0 = self.h0
            s0 = h0 if h0.dtype == ref.dtype else h0.to(ref.dtype)
            if batch == 1:  # (1, H) views, as the expanded ones below (cheaper: batch-1 loop)
                return [tuple(s0[i, j:j + 1] for j in range(s0.shape[1])) for i in range(L)]
            s0 = s0.unsqueeze(2).expand(L, -1, batch, -1)  # (L, S, B, H)
            return [tuple(s0[i, j] for j in range(s0.shape[1])) for i in range(L)]
        if self.cell == "gru":
            if not isinstance(hx, Tensor) or hx.shape != (L, batch, self.hidden_size):
                raise ValueError(f"hx must be a tensor of shape {(L, batch, self.hidden_size)}")
            return [(hx[i],) for i in range(L)]
        h, c = hx
        if h.shape != (L, batch, self.hidden_size) or c.shape != h.shape:
            raise ValueError(f"hx must be (h0, c0), each of shape {(L, batch, self.hidden_size)}")
        return [(h[i], c[i]) for i in range(L)]

    def _step(self, x: Tensor, state: list) -> list:
        """S(s_{t-1}, x_t) for the whole stack. x: (B, I); returns the new per-layer state."""
        new, inp = [], x
        for cell, s in zip(self.cells, state):
            if self.cell == "gru":
                h = cell(inp, s[0])
                new.append((h,))
            else:
                h, c = cell(inp, s)
                new.append((h, c))
            inp = h
        return new

    def _delta(self, state: list) -> Tensor:
        """Δũ_t = σ(W_p s_t + b_p) on the top layer's state (Eq. 4). Returns (B,)."""
        return torch.sigmoid(self.gate(torch.cat(state[-1], dim=-1))).squeeze(-1)

    def _final(self, state: list) -> State:
        if len(state) == 1:  # one layer: a view, not a copy
            return state[0][0][None] if self.cell == "gru" else (state[0][0][None],
                                                                  state[0][1][None])
        h = torch.stack([s[0] for s in state])
        if self.cell == "gru":
            return h
        return h, torch.stack([s[1] for s in state])

    # ----------------------------------------------------------------------------------------
    def forward(self, input: Tensor, hx: Optional[State] = None, *, return_trace: bool = False):
        if input.dim() != 3:
            raise ValueError(f"input must be 3-D, got shape {tuple(input.shape)}")
        x = input if self.batch_first else input.transpose(0, 1)  # (B, T, I)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected {self.input_size} input features, got {x.shape[-1]}")
        B, T, _ = x.shape
        state = self._initial_state(hx, B, x)
        if self.training or torch.is_grad_enabled() and x.requires_grad:
            if skip_train.train_ok(self, x, state):  # the same, fused in C++ (skimviz.ops)
                out, state, trace = skip_train.forward_blend(self, x, state)
            else:
                out, state, trace = self._forward_blend(x, state)
        elif B == 1:
            out, state, trace = self._forward_jump(x, state, return_trace)
        else:
            out, state, trace = self._forward_rows(x, state)
        if not self.batch_first:
            out = out.transpose(0, 1)
        h_n = self._final(state)
        return (out, h_n, trace) if return_trace else (out, h_n)

    def _forward_blend(self, x: Tensor, state: list):
        """Training path: compute S at every step and blend with u_t (Eq. 3), differentiable."""
        B, T, _ = x.shape
        u_tilde = x.new_ones(B)  # ũ_1 = 1: the first step always updates
        f_up, f_skip = self.flops_per_update(), cost.SKIP_STEP_FLOPS
        outs, probs, ups = [], [], []
        for t in range(T):
            u = x.new_ones(B) if self.force_update else binarize(u_tilde, self.update_threshold)
            cand = self._step(x[:, t], state)
            uu = u.unsqueeze(-1)
            state = [tuple(uu * n + (1 - uu) * o for n, o in zip(ns, os))       # Eq. 3
                     for ns, os in zip(cand, state)]
            delta = self._delta(state)                                           # Eq. 4
            probs.append(u_tilde)
            ups.append(u)
            u_tilde = u * delta + (1 - u) * (u_tilde + torch.minimum(delta, 1 - u_tilde))  # Eq. 5
            outs.append(state[-1][0])
        update = torch.stack(ups, 1)
        flops = update.detach() * f_up + (1 - update.detach()) * f_skip
        return torch.stack(outs, 1), state, SkipTrace(torch.stack(probs, 1), update, flops)

    def _forward_jump(self, x: Tensor, state: list, need_trace: bool = True):
        """Inference at batch 1: after an update with Δũ_t the next N_skip(t) steps are skipped
        (Eq. 6), so the loop jumps straight to the next update; a skipped step costs no cell or
        gate computation, only the running sum of Eq. 5 (kept in float32 like the other paths,
        so all three paths take the same decisions). The same loop in C++ is used when
        :meth:`_cpp_jump_ok` (see :func:`backend`). ``need_trace=False``: the C++ loop may
        return None for the trace (the caller does not want it)."""
        if self._cpp_jump_ok(x, state):
            return self._forward_jump_cpp(x, state, need_trace)
        _, T, _ = x.shape
        theta = np.float32(self.update_threshold)
        one = np.float32(1.0)
        out = x.new_empty(1, T, self.hidden_size)
        probs = np.zeros(T, dtype=np.float32)
        update = x.new_zeros(1, T)
        t, u_tilde = 0, one  # ũ_1 = 1
        while t < T:
            probs[t] = u_tilde
            state = self._step(x[:, t], state)                  # u_t = 1: S(s_{t-1}, x_t)
            delta = np.float32(self._delta(state).item())       # Δũ_t (Eq. 4)
            update[0, t] = 1.0
            u_tilde, t0 = delta, t
            t += 1
            # Eq. 5 with u = 0 until ũ reaches θ: these steps copy the state (Eq. 6)
            while t < T and not (self.force_update or u_tilde >= theta):
                probs[t] = u_tilde
                u_tilde = np.float32(u_tilde + min(delta, one - u_tilde))
                t += 1
            out[0, t0:t] = state[-1][0][0]
        f = update * self.flops_per_update() + (1 - update) * cost.SKIP_STEP_FLOPS
        return out, state, SkipTrace(torch.from_numpy(probs).to(x.dtype).unsqueeze(0), update, f)

    def _cpp_jump_ok(self, x: Tensor, state: list) -> bool:
        """Can the C++ loop run this call: one GRU/LSTM layer, float32 CPU (the op checks every
        tensor), nothing to record for autograd, and the extension built and not disabled?"""
        if self.cell == "sru" or self.num_layers != 1 or backend() != "cpp":
            return False
        w = self.gate.weight
        if not (x.is_cpu and w.is_cpu and x.dtype == w.dtype == torch.float32):
            return False
        return not (torch.is_grad_enabled()
                    and any(t.requires_grad for t in (x, *state[0], *self.parameters())))

    def _forward_jump_cpp(self, x: Tensor, state: list, need_trace: bool = True):
        """:meth:`_forward_jump` in C++ (torch.ops.skimviz.skip_rnn_forward). At a low update
        rate the loop itself takes a few hundred µs, so the Python around it is kept short (no
        trace tensors unless asked for: ``need_trace``)."""
        c = self.cells[0]
        s0 = state[0]  # (1, H) each: h_0 (, c_0)
        out, h, c_n, update, probs = _ext.load().skip_rnn_forward(
            x[0], c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh, self.gate.weight,
            self.gate.bias, s0[0][0], s0[1][0] if self.cell == "lstm" else None,
            self._threshold, self.force_update)
        state = [(h[None],) if self.cell == "gru" else (h[None], c_n[None])]
        if not need_trace:
            return out[None], state, None
        update = update[None]
        f_up, f_skip = self.flops_per_update(), cost.SKIP_STEP_FLOPS  # u ∈ {0, 1}: exact
        return out[None], state, SkipTrace(probs[None], update, update * (f_up - f_skip) + f_skip)

    def _forward_rows(self, x: Tensor, state: list):
        """Batched inference: at each step gather only the rows that update, run the stack on
        them and scatter the result back (rows that skip cost nothing)."""
        B, T, _ = x.shape
        theta = self.update_threshold
        state = [tuple(s.clone() for s in layer) for layer in state]
        u_tilde = x.new_ones(B)
        delta = x.new_zeros(B)
        outs, probs, ups = [], [], []
        for t in range(T):
            probs.append(u_tilde)
            u = x.new_ones(B) if self.force_update else (u_tilde >= theta).to(x.dtype)
            rows = u.nonzero().squeeze(-1)
            if rows.numel() == B:  # everybody updates: no gather needed
                state = self._step(x[:, t], state)
                delta = self._delta(state)
            elif rows.numel() > 0:
                sub = [tuple(s.index_select(0, rows) for s in layer) for layer in state]
                sub = self._step(x[rows, t], sub)
                for layer, new in zip(state, sub):
                    for s, n in zip(layer, new):
                        s.index_copy_(0, rows, n)
                delta = delta.index_copy(0, rows, self._delta(sub))
            ups.append(u)
            u_tilde = u * delta + (1 - u) * (u_tilde + torch.minimum(delta, 1 - u_tilde))  # Eq. 5
            outs.append(state[-1][0].clone())
        update = torch.stack(ups, 1)
        f = update * self.flops_per_update() + (1 - update) * cost.SKIP_STEP_FLOPS
        return torch.stack(outs, 1), state, SkipTrace(torch.stack(probs, 1), update, f)
