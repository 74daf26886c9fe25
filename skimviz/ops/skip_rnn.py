"""Skip RNN training in C++ (``skimviz/csrc/skip_rnn_train_cpu.cpp``): one fused forward over all
steps and a hand-written backward through time, for :class:`~skimviz.models.skip_rnn.SkipRNN`'s
training path (every step computed and blended, Eq. 3, so that the straight-through gradient,
Eq. 7, reaches the gate).

:func:`train_ok` says whether a call can use it: one GRU/LSTM layer, CPU float32/float64 tensors,
autograd recording, the extension built and neither ``SKIMVIZ_SKIP_BACKEND=python`` (every Skip
RNN path in PyTorch) nor ``SKIMVIZ_SKIP_TRAIN_BACKEND=python`` (only training in PyTorch) set.
:func:`forward_blend` then returns what ``SkipRNN._forward_blend`` returns: the same outputs,
states and trace (u_t, ũ_t, FLOPs), with gradients for the input, the cell, the gate (W_p, b_p)
and the initial state, through the outputs, ũ_t and u_t (the budget loss λ·Σ u_t, Eq. 8).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from skimviz import _ext

ENV = "SKIMVIZ_SKIP_TRAIN_BACKEND"
# The forward's saved buffers (states, activations: ~180 MB at batch 128 × 784 steps, H = 110),
# handed back after each backward and reused by the next forward of the same dtype: a fresh
# buffer of that size costs ~100 ms of page faults per training step. One per dtype, taken out
# while a forward's backward is pending (so two live graphs never share one).
_WORKSPACE: Dict[torch.dtype, Tensor] = {}


def release_workspace() -> None:
    """Free the kept buffers (they are kept for the next training step otherwise)."""
    _WORKSPACE.clear()


def train_backend() -> str:
    """"cpp" when the fused training op is built and allowed, else "python" (also when
    ``SKIMVIZ_SKIP_BACKEND`` or ``SKIMVIZ_SKIP_TRAIN_BACKEND`` is "python")."""
    if os.environ.get(ENV) == "python":
        return "python"
    return _ext.backend("SKIMVIZ_SKIP_BACKEND")


class SkipRNNTrainFunction(torch.autograd.Function):
    """(x (B, T, I), W_ih, W_hh, b_ih, b_hh, W_p, b_p, h0 (B, H), c0 (B, H) or None, θ,
    force_update, straight_through) -> (out (B, T, H), c_T (B, H; empty for the GRU),
    ũ (B, T), u (B, T)).

    ``straight_through=False`` gives u no gradient (the exact derivative of the
    piecewise-constant forward; used by gradcheck). With ``force_update`` u is constant anyway.
    The backward writes its gradients over the forward's activations (no second buffer of
    ~130 MB to fill), so a second backward through the same forward (``retain_graph``) raises,
    unless ``keep_saved=True`` (gradcheck): then each backward works on a copy."""

    @staticmethod
    def forward(ctx, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,  # type: ignore[override]
                b_hh: Tensor, w_p: Tensor, b_p: Tensor, h0: Tensor, c0: Optional[Tensor],
                theta: float, force_update: bool, straight_through: bool = True,
                keep_saved: bool = False):
        out, c_n, probs, update, sc, S, C, A, ws, chunk = _ext.load().skip_rnn_train_forward(
            x, w_ih, w_hh, b_ih, b_hh, w_p, b_p, h0, c0, theta, force_update,
            _WORKSPACE.pop(x.dtype, None))
        ctx.save_for_backward(x, w_ih, w_hh, w_p)
        ctx.buffers = (sc, S, C if c0 is not None else None, A, ws)  # views of ws
        ctx.lstm, ctx.keep, ctx.chunk = c0 is not None, keep_saved, int(chunk)
        ctx.straight = straight_through and not force_update
        ctx.set_materialize_grads(False)
        if not ctx.straight:
            ctx.mark_non_differentiable(update)
        if c0 is None:
            ctx.mark_non_differentiable(c_n)
        return out, c_n, probs, update

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, g_cn, g_probs, g_update):  # type: ignore[override]
        if ctx.buffers is None:
            raise RuntimeError(
                "SkipRNNTrainFunction: backward through the same forward twice is not supported "
                "(the first one overwrote the saved activations); run the forward again, or set "
                f"{ENV}=python for the PyTorch training path")
        x, w_ih, w_hh, w_p = ctx.saved_tensors
        sc, S, C, A, ws = ctx.buffers
        if ctx.keep:
            A = A.clone()
        else:
            ctx.buffers = None
        need_gx = ctx.needs_input_grad[0]
        gx, gw_ih, gw_hh, gb_ih, gb_hh, gw_p, gb_p, gh0, gc0 = \
            _ext.load().skip_rnn_train_backward(
                g_out, g_cn if ctx.lstm else None, g_probs, g_update if ctx.straight else None,
                x, w_ih, w_hh, w_p, sc, S, C, A, ctx.chunk, ctx.straight, need_gx)
        if not ctx.keep:
            _WORKSPACE[ws.dtype] = ws  # free for the next forward
        # the gate reaches the loss only through u (straight-through) or ũ after step 1: where
        # neither can carry a gradient, no gradient (None, as autograd gives the PyTorch path;
        # for Adam a zero gradient is not the same as none)
        gate = x.shape[1] > 1 and (ctx.straight or g_probs is not None)
        return (gx if need_gx else None, gw_ih, gw_hh, gb_ih, gb_hh, gw_p if gate else None,
                gb_p if gate else None, gh0, gc0 if ctx.lstm else None, None, None, None, None)


def train_ok(rnn, x: Tensor, state: list) -> bool:
    """Can :func:`forward_blend` run this call of ``rnn`` (a SkipRNN): one GRU/LSTM layer, CPU
    float32/float64 tensors of one dtype, autograd recording something, the op built and not
    switched off?"""
    if rnn.cell == "sru" or rnn.num_layers != 1 or train_backend() != "cpp":
        return False
    if not torch.is_grad_enabled():
        return False
    tensors = (x, *state[0], *rnn.parameters())
    if not all(t.device.type == "cpu" and t.dtype == x.dtype for t in tensors):
        return False
    return x.dtype in (torch.float32, torch.float64) and any(t.requires_grad for t in tensors)


def forward_blend(rnn, x: Tensor, state: list) -> Tuple[Tensor, list, "object"]:
    """``SkipRNN._forward_blend`` in one C++ call: (out (B, T, H), [(h_T,)] or [(h_T, c_T)],
    SkipTrace). h_T is a view of out's last step, as in the PyTorch path."""
    from skimviz import cost
    from skimviz.models.skip_rnn import SkipTrace
    c = rnn.cells[0]
    lstm = rnn.cell == "lstm"
    out, c_n, probs, update = SkipRNNTrainFunction.apply(
        x, c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh, rnn.gate.weight, rnn.gate.bias,
        state[0][0], state[0][1] if lstm else None, rnn.update_threshold, rnn.force_update)
    h_n = out[:, -1]
    new_state = [(h_n, c_n) if lstm else (h_n,)]
    f_up, f_skip = rnn.flops_per_update(), cost.SKIP_STEP_FLOPS
    u = update.detach()
    return out, new_state, SkipTrace(probs, update, u * f_up + (1 - u) * f_skip)
