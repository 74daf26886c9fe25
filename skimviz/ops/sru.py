"""The SRU recurrence in C++ (``skimviz/csrc/sru_cpu.cpp``): dispatch, the autograd Functions
around its forward/backward pairs, and FLOP formulas for its ops. The model and the PyTorch
reference of Eq. 4–7 are :mod:`skimviz.models.sru`.

* :func:`recurrence` — Eq. 4–7 given U = x [W; W_f; W_r(; W_h)]ᵀ (:class:`SRUFunction`);
* :func:`layer` — a whole layer, Eq. 3–7, the input projection inside the loop
  (:class:`SRULayerFunction` while autograd records; one ``sru_layer_forward`` call otherwise).
Both return None where the C++ op does not apply (not built, ``SKIMVIZ_SRU_BACKEND=python``,
another device or dtype); the model then runs PyTorch.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from skimviz import _ext


def backend() -> str:
    """The recurrence that CPU tensors use: "cpp" (the built extension) or "python"."""
    return _ext.backend("SKIMVIZ_SRU_BACKEND")


class SRUFunction(torch.autograd.Function):
    """Eq. 4–7 in the C++ extension: same arguments and results as :func:`skimviz.models.sru._recurrence_python`,
    for CPU float32/float64 tensors. The backward is hand-written (``sru_backward``)."""

    @staticmethod
    def forward(ctx, U: Tensor, x: Optional[Tensor], c0: Tensor,  # type: ignore[override]
                bias: Tensor, v: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        U, x, c0, bias, v = (None if t is None else t.contiguous() for t in (U, x, c0, bias, v))
        h, c = _ext.load().sru_forward(U, x, c0, bias, v)  # c: (T, B, H), every c_t
        ctx.save_for_backward(U, x, c0, bias, v, c)
        return h, c[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor, grad_cn: Tensor):  # type: ignore[override]
        U, x, c0, bias, v, c = ctx.saved_tensors
        gU, gx, gc0, gbias, gv = _ext.load().sru_backward(
            grad_h.contiguous(), grad_cn.contiguous(), U, x, c0, bias, v, c)
        return gU, (gx if x is not None else None), gc0, gbias, (gv if v is not None else None)


class SRULayerFunction(torch.autograd.Function):
    """One SRU layer with the input projection done in the C++ loop (``sru_layer_forward``):
    (x (T, B, I), W (4H, I), c0 (B, H), bias (2H,), v (2H,) or None) -> (h (T, B, H), c_T (B, H)),
    the same as ``skimviz.models.sru._recurrence(F.linear(x, W), None, c0, bias, v)``, for CPU
    float32/float64 with 1 <= I <= ``FUSED_MAX_INPUT`` and 4H rows in W. The backward is ``sru_layer_backward``."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, c0: Tensor,  # type: ignore[override]
                bias: Tensor, v: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        c0, bias, v = (None if t is None else t.contiguous() for t in (c0, bias, v))
        h, c, c_n = _ext.load().sru_layer_forward(x, w, c0, bias, v, True)  # c: every c_t
        ctx.save_for_backward(x, w, c0, bias, v, c)
        return h, c_n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor, grad_cn: Tensor):  # type: ignore[override]
        x, w, c0, bias, v, c = ctx.saved_tensors
        gx, gw, gc0, gbias, gv = _ext.load().sru_layer_backward(
            grad_h, grad_cn, x, w, c0, bias, v, c, ctx.needs_input_grad[0])
        return ((gx if ctx.needs_input_grad[0] else None), gw, gc0, gbias,
                (gv if v is not None else None))


FUSED_MAX_INPUT = 8  # the largest input size SRULayerFunction / layer_forward take (kMaxFusedInput)


def _fused_ok(x: Tensor, w: Tensor, hidden: int) -> bool:
    """Can this layer run as one ``sru_layer_forward`` call (see :class:`SRULayerFunction`)?"""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and w.dtype == x.dtype and w.shape[0] == 4 * hidden
            and 1 <= w.shape[1] <= FUSED_MAX_INPUT and backend() == "cpp")


def _register_flop_formulas() -> None:
    """Let ``torch.utils.flop_counter.FlopCounterMode`` (and so ``cost.measured_matmul_flops``)
    count the matmul inside ``sru_layer_forward`` / ``sru_layer_backward`` as it counts F.linear's:
    2·T·B·kH·I forward; backward dL/dW, plus dL/dx when asked for."""
    ops = _ext.load()
    try:
        from torch.utils.flop_counter import flop_registry, register_flop_formula
    except ImportError:  # an older torch: the counter just does not see these ops
        return
    if ops is None or ops.sru_layer_forward in flop_registry:
        return

    def layer_flops(x_shape, w_shape) -> int:
        return 2 * x_shape[0] * x_shape[1] * w_shape[0] * w_shape[1]

    @register_flop_formula(ops.sru_layer_forward)
    def _forward_flops(x, w, *args, out_shape=None, **kwargs) -> int:
        return layer_flops(x, w)

    @register_flop_formula(ops.sru_layer_backward)
    def _backward_flops(grad_h, grad_cn, x, w, c0, bias, v, c, need_gx, out_shape=None,
                        **kwargs) -> int:
        return layer_flops(x, w) * (2 if need_gx else 1)


_register_flop_formulas()


def layer(x: Tensor, w: Tensor, c0: Tensor, bias: Tensor, v: Optional[Tensor],
          hidden: int) -> Optional[Tuple[Tensor, Tensor]]:
    """One layer, Eq. 3–7, in C++: x (T, B, I) -> (h (T, B, H), c_T (B, H)), or None where it does
    not apply. Without autograd any CPU float layer is one call (``sru_layer_forward`` does the
    matmul itself for a larger I)."""
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in (x, w, c0, bias, v))
    if _fused_ok(x, w, hidden):
        if grad:
            return SRULayerFunction.apply(x, w, c0, bias, v)
        h, _, c_n = _ext.load().sru_layer_forward(x, w, c0.contiguous(), bias, v, False)
        return h, c_n
    if (not grad and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and w.dtype == x.dtype and backend() == "cpp"):
        h, _, c_n = _ext.load().sru_layer_forward(x, w, c0.contiguous(), bias, v, False)
        return h, c_n
    return None


def recurrence(U: Tensor, x: Optional[Tensor], c0: Tensor, bias: Tensor,
               v: Optional[Tensor]) -> Optional[Tuple[Tensor, Tensor]]:
    """Eq. 4–7 in C++ for CPU float tensors when built (:class:`SRUFunction`), else None."""
    if U.device.type == "cpu" and U.dtype in (torch.float32, torch.float64) and backend() == "cpp":
        return SRUFunction.apply(U, x, c0, bias, v)
    return None
