"""SRU (Lei et al. 2017): both recurrences (PyTorch loop, C++ extension) against a per-step loop
written here from Eq. 3–7, gradcheck of each, C++ == PyTorch forward and backward.

The C++ cases need the extension. If ``python -m skimviz._ext build`` has not been run, the
module-scoped ``cpp`` fixture builds it once (about a minute of compiling) and the C++ cases
skip, saying why, if that fails (e.g. no C++ compiler).
"""
import os
import subprocess
import sys

import pytest
import torch
from torch.autograd import gradcheck

from skimviz import _ext
from skimviz.models import sru
from skimviz.models.sru import SRU, _recurrence_python
from skimviz.ops.sru import SRUFunction, SRULayerFunction

H = 8


@pytest.fixture(params=["python", "cpp"])
def backend(request, monkeypatch):
    """Runs the test once per recurrence implementation (SKIMVIZ_SRU_BACKEND)."""
    if request.param == "cpp":
        request.getfixturevalue("cpp")
    monkeypatch.setenv("SKIMVIZ_SRU_BACKEND", request.param)
    assert sru.backend() == request.param
    return request.param


def naive_sru(m: SRU, x: torch.Tensor, c0: torch.Tensor):
    """Eq. 3–7 step by step, one layer after the other; x (B, T, I), c0 (L, B, H)."""
    Hm = m.hidden_size
    inputs = list(x.unbind(1))
    c_n = []
    for layer in range(m.num_layers):
        W, b, v = m._params(layer)
        W_x, W_f, W_r, W_h = W[:Hm], W[Hm:2 * Hm], W[2 * Hm:3 * Hm], W[3 * Hm:]
        c, outputs = c0[layer], []
        for x_t in inputs:
            x_tilde = x_t @ W_x.T                                            # Eq. 3
            pre_f, pre_r = x_t @ W_f.T + b[:Hm], x_t @ W_r.T + b[Hm:]
            if v is not None:                                                # peephole on c_{t-1}
                pre_f, pre_r = pre_f + v[:Hm] * c, pre_r + v[Hm:] * c
            f, r = torch.sigmoid(pre_f), torch.sigmoid(pre_r)                # Eq. 4, 5
            c = f * c + (1 - f) * x_tilde                                    # Eq. 6
            highway = x_t if W_h.numel() == 0 else x_t @ W_h.T               # Appendix A.1
            outputs.append(r * torch.tanh(c) + (1 - r) * highway)            # Eq. 7
        inputs = outputs
        c_n.append(c)
    return torch.stack(inputs, 1), torch.stack(c_n)


@pytest.mark.parametrize("input_size", [H, 5])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("given_c0", [False, True])
def test_equals_naive_loop(backend, input_size, layers, peephole, given_c0):
    torch.manual_seed(0)
    m = SRU(input_size, H, num_layers=layers, use_peephole=peephole, highway_bias=-1.0)
    x = torch.randn(3, 9, input_size)
    c0 = torch.randn(layers, 3, H) if given_c0 else None
    with torch.no_grad():
        out, c_n = m(x, c0)
        ref_out, ref_c = naive_sru(m, x, torch.zeros(layers, 3, H) if c0 is None else c0)
    assert out.shape == (3, 9, H) and c_n.shape == (layers, 3, H)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=1e-5, rtol=0)


@pytest.mark.parametrize("input_size", [H, 5])
def test_batch_first_false(backend, input_size):
    torch.manual_seed(1)
    m = SRU(input_size, H, num_layers=2, batch_first=False, use_peephole=True)
    x, c0 = torch.randn(9, 3, input_size), torch.randn(2, 3, H)  # (T, B, I)
    with torch.no_grad():
        out, c_n = m(x, c0)
        ref_out, ref_c = naive_sru(m, x.transpose(0, 1), c0)
    assert out.shape == (9, 3, H)
    torch.testing.assert_close(out, ref_out.transpose(0, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=1e-5, rtol=0)


def _recurrence_inputs(k: int, peephole: bool, T=4, B=2, Hs=3, dtype=torch.float64):
    torch.manual_seed(2)
    make = lambda *s: torch.randn(*s, dtype=dtype, requires_grad=True)  # noqa: E731
    return (make(T, B, k * Hs), make(T, B, Hs) if k == 3 else None, make(B, Hs), make(2 * Hs),
            make(2 * Hs) if peephole else None)


@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("peephole", [False, True])
def test_gradcheck_python(k, peephole):
    assert gradcheck(_recurrence_python, _recurrence_inputs(k, peephole))


@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("peephole", [False, True])
def test_gradcheck_cpp(cpp, k, peephole):
    assert gradcheck(SRUFunction.apply, _recurrence_inputs(k, peephole))


@pytest.mark.parametrize("input_size,hidden", [(H, H), (5, H), (7, 70)])  # 70: 2 blocks of 64
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_equals_python_forward_backward(cpp, monkeypatch, input_size, hidden, peephole,
                                            dtype):
    torch.manual_seed(3)
    m = SRU(input_size, hidden, num_layers=2, use_peephole=peephole).to(dtype)
    x = torch.randn(4, 11, input_size, dtype=dtype, requires_grad=True)
    c0 = torch.randn(2, 4, hidden, dtype=dtype, requires_grad=True)
    g_out, g_c = torch.randn(4, 11, hidden, dtype=dtype), torch.randn(2, 4, hidden, dtype=dtype)
    results = []
    for name in ("cpp", "python"):
        monkeypatch.setenv("SKIMVIZ_SRU_BACKEND", name)
        out, c_n = m(x, c0)
        grads = torch.autograd.grad([out, c_n], [x, c0, *m.parameters()], [g_out, g_c])
        results.append((out, c_n, *grads))
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def _layer_inputs(T, B, I, Hs, peephole, dtype, seed=5):
    """x as a transposed batch-first tensor (not contiguous), W (4H, I), c0, bias, v."""
    torch.manual_seed(seed)
    make = lambda *s: torch.randn(*s, dtype=dtype, requires_grad=True)  # noqa: E731
    x = torch.randn(B, T, I, dtype=dtype).transpose(0, 1).requires_grad_()
    return (x, make(4 * Hs, I), make(B, Hs), make(2 * Hs), make(2 * Hs) if peephole else None)


@pytest.mark.parametrize("I", [1, 3])
@pytest.mark.parametrize("peephole", [False, True])
def test_gradcheck_cpp_layer(cpp, I, peephole):
    """The fused layer (U = x Wᵀ inside the loop): analytic = numerical gradients, float64."""
    assert gradcheck(SRULayerFunction.apply, _layer_inputs(4, 2, I, 3, peephole, torch.float64))


@pytest.mark.parametrize("I,hidden", [(1, 128), (1, 8), (5, 70), (8, 16)])  # 70: 2 blocks of 64
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("broadcast_grad", [False, True])
def test_cpp_layer_equals_unfused_path(cpp, I, hidden, peephole, dtype, broadcast_grad):
    """layer_forward/backward (projection in the loop) == F.linear + SRUFunction (the matmul
    outside), forward and every gradient; dL/dh either a dense tensor or the expanded one that
    out.sum() gives (read with stride 0)."""
    x, w, c0, bias, v = _layer_inputs(13, 4, I, hidden, peephole, dtype)
    T, B = x.shape[:2]
    g_h = torch.randn(T, B, hidden, dtype=dtype)
    g_c = torch.randn(B, hidden, dtype=dtype)
    results = []
    for fn in (lambda: SRULayerFunction.apply(x, w, c0, bias, v),
               lambda: SRUFunction.apply(torch.nn.functional.linear(x, w), None, c0, bias, v)):
        h, c_n = fn()
        if broadcast_grad:
            grads = torch.autograd.grad(h.sum() + c_n.sum(), [x, w, c0, bias]
                                        + ([v] if peephole else []))
        else:
            grads = torch.autograd.grad([h, c_n], [x, w, c0, bias] + ([v] if peephole else []),
                                        [g_h, g_c])
        results.append((h, c_n, *grads))
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_cpp_layer_used_for_small_inputs(cpp, monkeypatch):
    """A layer with I <= FUSED_MAX_INPUT and I != H runs as one layer_forward call (no
    F.linear), with and without autograd; a layer with I = H is one layer_forward call (the
    matmul inside) without autograd, F.linear + SRUFunction with it."""
    monkeypatch.setenv("SKIMVIZ_SRU_BACKEND", "cpp")
    calls = []
    real = sru.F.linear
    monkeypatch.setattr(sru.F, "linear", lambda *a: calls.append(1) or real(*a))
    m = SRU(1, H, num_layers=2)
    x = torch.randn(2, 6, 1)
    with torch.no_grad():
        ref, ref_c = naive_sru(m, x, torch.zeros(2, 2, H))
    with torch.inference_mode():
        out, c_n = m(x)
    assert calls == []
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=1e-5, rtol=0)
    out, c_n = m(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=1e-5, rtol=0)
    out.sum().backward()
    assert len(calls) == 1 and m.weight_l0.grad is not None  # layer 1 (I = H) only


def test_parameters_and_init():
    m = SRU(5, H, num_layers=2, highway_bias=-2.0, use_peephole=True)
    assert m.weight_l0.shape == (4 * H, 5)      # [W; W_f; W_r; W_h]: projected highway
    assert m.weight_l1.shape == (3 * H, H)      # [W; W_f; W_r]
    assert torch.all(m.bias_l0[:H] == 0) and torch.all(m.bias_l0[H:] == -2.0)  # b_f, b_r
    assert m.peephole_l1.shape == (2 * H,)
    assert SRU(H, H).peephole_l0 is None


def test_rejects_empty_sequence():
    with pytest.raises(ValueError):
        SRU(3, H)(torch.randn(2, 0, 3))


def test_falls_back_without_a_build(tmp_path):
    """Import never compiles: with an empty build dir the backend is the PyTorch loop."""
    code = ("import torch; from skimviz.models import sru; m = sru.SRU(3, 4); "
            "out, c = m(torch.randn(2, 5, 3)); print(sru.backend(), tuple(out.shape))")
    env = {**os.environ, "SKIMVIZ_EXT_DIR": str(tmp_path)}
    env.pop("SKIMVIZ_SRU_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, cwd=_ext.REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["python", "(2,", "5,", "4)"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("input_size", [H, 5])
def test_cuda_matches_cpu(input_size):
    torch.manual_seed(4)
    m = SRU(input_size, H, num_layers=2, use_peephole=True)
    x, c0 = torch.randn(3, 9, input_size), torch.randn(2, 3, H)
    out, c_n = m(x, c0)
    (out.sum() + c_n.sum()).backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m_gpu = m.cuda()
    out_gpu, c_gpu = m_gpu(x.cuda(), c0.cuda())
    (out_gpu.sum() + c_gpu.sum()).backward()
    torch.testing.assert_close(out_gpu.cpu(), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c_gpu.cpu(), c_n, atol=1e-5, rtol=1e-5)
    for g, p in zip(grads, m_gpu.parameters()):
        torch.testing.assert_close(p.grad.cpu(), g, atol=1e-4, rtol=1e-4)
