"""Simple Recurrent Unit (Lei et al., "Training RNNs as Fast as CNNs", 2017; published as
"Simple Recurrent Units for Highly Parallelizable Recurrence", EMNLP 2018). Equation numbers
refer to the 2017 paper (arXiv:1709.02755v1).

SRU drops h_{t-1} from the gates, so every matrix product is independent of the recurrence:

    x̃_t = W x_t                                                    (Eq. 3)
    f_t = σ(W_f x_t + b_f)                                         (Eq. 4)
    r_t = σ(W_r x_t + b_r)                                         (Eq. 5)
    c_t = f_t ⊙ c_{t−1} + (1 − f_t) ⊙ x̃_t                          (Eq. 6)
    h_t = r_t ⊙ g(c_t) + (1 − r_t) ⊙ x_t                           (Eq. 7)

Eq. 3–5 for all T steps are one matmul, U = x [W; W_f; W_r]ᵀ (Eq. 8); only the elementwise
Eq. 6–7 loop over time. Choices where the paper leaves room:

* g = tanh. The paper names no g; tanh is the default (``use_tanh=1``) of the authors' 2017
  code. (Their later v2 library defaults to the identity.)
* input_size ≠ hidden_size: the highway term uses a projection, (1 − r_t) ⊙ W_h x_t (Appendix
  A.1), computed as a 4th block of the same matmul, U = x [W; W_f; W_r; W_h]ᵀ.
* ``highway_bias`` initialises b_r (the official ``highway_bias``); b_f starts at 0. W is
  uniform with Var = 1/fan-in, as in the official code.
* ``use_peephole=True``: the official v2 variant, f_t = σ(W_f x_t + v_f ⊙ c_{t−1} + b_f) and
  r_t = σ(W_r x_t + v_r ⊙ c_{t−1} + b_r), initialised as there (v uniform with Var = 1/2, the
  W_f, W_r blocks scaled by √½). Off by default, i.e. the paper's Eq. 4–5.
* Not implemented: dropout (variational and on h), bidirectional layers, v2's rescaling and
  layer norm.

The recurrence (Eq. 6–7, with the gate nonlinearities of Eq. 4–5) runs either in the C++
extension (``skimviz/csrc/sru_cpu.cpp``: fused forward, hand-written backward, parallel over
batch × hidden) when it has been built with ``python -m skimviz._ext build``, or in the PyTorch
loop :func:`_recurrence_python`; both give the same numbers. The Python side of the C++ ops
(dispatch, autograd Functions, FLOP formulas) is :mod:`skimviz.ops.sru`. CUDA tensors always use the PyTorch
loop (TODO(cuda): a fused kernel). ``SKIMVIZ_SRU_BACKEND=python`` forces the fallback.

With the extension, a layer with a small input (I ≤ ``FUSED_MAX_INPUT`` = 8 and I ≠ H, e.g. pixel
MNIST's I = 1) skips the matmul too: one op (``sru_layer_forward``) computes U = x Wᵀ inside the loop,
reading x in place (a batch-first input is not copied), so no (T, B, 4H) U is written and read,
and a layer is one call into C++ (:class:`skimviz.ops.sru.SRULayerFunction` when autograd records;
its backward ``sru_layer_backward`` accumulates dL/dW, dL/db and dL/dx in the same loop, without a
dL/dU buffer). Without autograd, any other CPU layer is one call too (``sru_layer_forward`` does
the matmul itself, then the loop). The C++ loops use a SIMD exp (Cephes' polynomial) for
float32 σ and tanh (absolute error ~3e-7; float64 keeps SLEEF's).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skimviz.ops import sru as sru_ops
from skimviz.ops.sru import backend  # noqa: F401  (the model's backend: "cpp" or "python")


def _recurrence_python(U: Tensor, x: Optional[Tensor], c0: Tensor, bias: Tensor,
                       v: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Eq. 4–7 given U, in PyTorch (any device; autograd does the backward).

    Args:
        U: (T, B, kH), k = 3 or 4: the blocks [x̃ | W_f x | W_r x | (W_h x)] of Eq. 3–5 and A.1.
        x: (T, B, H), the highway input x_t of Eq. 7 when k = 3; unused (may be None) when k = 4.
        c0: (B, H) initial cell state.
        bias: (2H,) [b_f; b_r].
        v: (2H,) peephole weights [v_f; v_r], or None (the paper's Eq. 4–5).
    Returns:
        h: (T, B, H) outputs h_t; c_n: (B, H) the last cell state c_T.
    """
    H = c0.shape[-1]
    b_f, b_r = bias[:H], bias[H:]
    x_tilde, u_f, u_r = U[..., :H], U[..., H:2 * H] + b_f, U[..., 2 * H:3 * H] + b_r
    x_hw = U[..., 3 * H:] if U.shape[-1] == 4 * H else x
    c, cs = c0, []  # unbind, not [t]: the backward of T index ops would cost O(T²)
    if v is None:
        f, r = torch.sigmoid(u_f), torch.sigmoid(u_r)                # Eq. 4, 5: all steps at once
        for f_t, fx_t in zip(f.unbind(0), ((1 - f) * x_tilde).unbind(0)):
            c = torch.addcmul(fx_t, f_t, c)                           # Eq. 6
            cs.append(c)
    else:
        v_f, v_r, rs = v[:H], v[H:], []
        for uf_t, ur_t, xt_t in zip(u_f.unbind(0), u_r.unbind(0), x_tilde.unbind(0)):
            f_t = torch.sigmoid(uf_t + v_f * c)                       # Eq. 4 + peephole
            rs.append(torch.sigmoid(ur_t + v_r * c))                  # Eq. 5 + peephole
            c = f_t * c + (1 - f_t) * xt_t                            # Eq. 6
            cs.append(c)
        r = torch.stack(rs)
    h = r * torch.tanh(torch.stack(cs)) + (1 - r) * x_hw              # Eq. 7, all steps at once
    return h, c


def _layer(x: Tensor, w: Tensor, c0: Tensor, bias: Tensor, v: Optional[Tensor],
           hidden: int) -> Tuple[Tensor, Tensor]:
    """One layer, Eq. 3–7: x (T, B, I) -> (h (T, B, H), c_T (B, H)): one C++ call where it
    applies (:func:`skimviz.ops.sru.layer`), else the matmul and the recurrence."""
    out = sru_ops.layer(x, w, c0, bias, v, hidden)
    if out is not None:
        return out
    U = F.linear(x, w)                    # Eq. 3–5 (and W_h x) as one matmul, Eq. 8
    return _recurrence(U, x if w.shape[0] == 3 * hidden else None, c0, bias, v)   # Eq. 4–7


def _recurrence(U: Tensor, x: Optional[Tensor], c0: Tensor, bias: Tensor,
                v: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Eq. 4–7: the C++ Function for CPU float tensors when built, else PyTorch."""
    out = sru_ops.recurrence(U, x, c0, bias, v)
    return out if out is not None else _recurrence_python(U, x, c0, bias, v)


class SRU(nn.Module):
    """A stack of SRU layers, shaped like ``nn.LSTM`` minus h_0 (SRU's only state is c).

    Args:
        input_size: I, features of x_t.
        hidden_size: H, features of c_t and h_t.
        num_layers: stacked layers; layer l > 0 reads the h_t of layer l − 1.
        batch_first: input and output are (B, T, ·) if True, else (T, B, ·).
        highway_bias: initial b_r (Eq. 5); negative values start the layer close to the
            highway, h_t ≈ x_t.
        use_peephole: add v ⊙ c_{t−1} to the pre-activations of f_t and r_t (official v2).

    Parameters of layer l: ``weight_l{l}`` (kH, I_l) = [W; W_f; W_r; (W_h)], k = 4 when
    I_l ≠ H else 3; ``bias_l{l}`` (2H,) = [b_f; b_r]; ``peephole_l{l}`` (2H,) = [v_f; v_r].
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = True, highway_bias: float = 0.0,
                 use_peephole: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.highway_bias = batch_first, highway_bias
        self.use_peephole = use_peephole
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size
            k = 3 if n_in == hidden_size else 4
            self.register_parameter(f"weight_l{layer}",
                                    nn.Parameter(torch.empty(k * hidden_size, n_in)))
            self.register_parameter(f"bias_l{layer}", nn.Parameter(torch.empty(2 * hidden_size)))
            self.register_parameter(f"peephole_l{layer}", nn.Parameter(
                torch.empty(2 * hidden_size)) if use_peephole else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        H = self.hidden_size
        with torch.no_grad():
            for layer in range(self.num_layers):
                w, b, v = self._params(layer)
                bound = math.sqrt(3.0 / w.shape[1])                  # Var(w) = 1 / fan-in
                w.uniform_(-bound, bound)
                b[:H].zero_()                                        # b_f
                b[H:].fill_(self.highway_bias)                       # b_r
                if v is not None:
                    v.uniform_(-math.sqrt(3.0), math.sqrt(3.0)).mul_(math.sqrt(0.5))
                    w[H:3 * H].mul_(math.sqrt(0.5))

    def _params(self, layer: int) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        return (getattr(self, f"weight_l{layer}"), getattr(self, f"bias_l{layer}"),
                getattr(self, f"peephole_l{layer}"))

    def forward(self, input: Tensor, c0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Run the stack over a sequence.

        Args:
            input: (B, T, I) if ``batch_first`` else (T, B, I), T ≥ 1.
            c0: (num_layers, B, H) initial cell states; zeros if None.
        Returns:
            output: (B, T, H) if ``batch_first`` else (T, B, H), the last layer's h_t (Eq. 7).
            c_n: (num_layers, B, H), every layer's last cell state c_T (Eq. 6).
        """
        if input.dim() != 3 or input.shape[1 if self.batch_first else 0] == 0:
            raise ValueError(f"SRU expects a 3-d input with T >= 1, got {tuple(input.shape)}")
        x = input.transpose(0, 1) if self.batch_first else input   # time-major (T, B, I)
        if c0 is None:
            c0 = x.new_zeros(self.num_layers, x.shape[1], self.hidden_size)
        c_n = []
        for layer in range(self.num_layers):
            w, b, v = self._params(layer)
            h, c = _layer(x, w, c0[layer], b, v, self.hidden_size)   # Eq. 3–7
            c_n.append(c)
            x = h
        c_n = c_n[0].unsqueeze(0) if len(c_n) == 1 else torch.stack(c_n)
        return (x.transpose(0, 1) if self.batch_first else x), c_n

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, highway_bias={self.highway_bias}, "
                f"use_peephole={self.use_peephole}, backend={backend()!r}")


class SRUCell(nn.Module):
    """One SRU step, shaped like ``nn.LSTMCell``: ``forward(x_t, (h_{t−1}, c_{t−1})) -> (h_t, c_t)``.

    It is a one-layer :class:`SRU` run for T = 1 (same parameters, same equations), so that the
    Skip RNN can use SRU as its state transition S (Skip RNN Eq. 3). h_{t−1} is accepted for the
    LSTM-like interface and ignored: SRU's gates do not read it (Eq. 4–5).
    x_t: (B, I); h, c: (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, **kwargs) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.sru = SRU(input_size, hidden_size, num_layers=1, batch_first=True, **kwargs)

    def forward(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        _, c = state
        h, c_n = self.sru(x.unsqueeze(1), c.unsqueeze(0))   # (B, 1, H), (1, B, H)
        return h.squeeze(1), c_n.squeeze(0)
