"""Skip RNN batch-1 inference in C++ (skimviz/csrc/skip_rnn_cpu.cpp) against the PyTorch oracles:
the Python jump loop (``SKIMVIZ_SKIP_BACKEND=python``) and the training path (Eq. 3 blend), on
random models whose gate really skips (p ≈ 0.2–0.6), for several θ, H and T: the same update
masks exactly, ũ to 1e-6, outputs and final states to 1e-5; forced updates equal nn.GRU/nn.LSTM.

The module-scoped ``cpp`` fixture builds the extension once if ``python -m skimviz._ext build``
has not been run (about a minute of compiling) and the tests skip, saying why, if that fails.
"""
import pytest
import torch
from torch import nn

from skimviz.models import skip_rnn
from skimviz.models.skip_rnn import SkipRNN

CELLS = ("gru", "lstm")


def make_model(cell: str, H: int, I: int = 3, bias: float = 0.0, seed: int = 0) -> SkipRNN:
    """A random model whose gate skips: b_p = ``bias``, W_p scaled up so Δũ varies per step."""
    torch.manual_seed(seed)
    m = SkipRNN(I, H, cell=cell).eval()
    with torch.no_grad():
        m.gate.weight.mul_(4.0)
        m.gate.bias.fill_(bias)
        m.h0.normal_(0, 0.3)
    return m


def run(m: SkipRNN, x: torch.Tensor, backend: str, monkeypatch, hx=None, train=False):
    monkeypatch.setenv("SKIMVIZ_SKIP_BACKEND", backend)
    m.train(train)
    with torch.no_grad():
        out, h_n, tr = m(x, hx, return_trace=True)
    m.eval()
    return out, (h_n if isinstance(h_n, tuple) else (h_n,)), tr


def assert_same(a, b, what):
    out_a, st_a, tr_a = a
    out_b, st_b, tr_b = b
    assert torch.equal(tr_a.update, tr_b.update), f"{what}: update masks differ"
    torch.testing.assert_close(tr_a.update_prob, tr_b.update_prob, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-5)
    for s_a, s_b in zip(st_a, st_b):
        torch.testing.assert_close(s_a, s_b, rtol=0, atol=1e-5)
    torch.testing.assert_close(tr_a.flops, tr_b.flops)


@pytest.mark.parametrize("cell", CELLS)
def test_backend_switch(cpp, monkeypatch, cell):
    calls = []
    real = SkipRNN._forward_jump_cpp
    monkeypatch.setattr(SkipRNN, "_forward_jump_cpp",
                        lambda self, *a: calls.append(1) or real(self, *a))
    m, x = make_model(cell, 8), torch.randn(1, 10, 3)
    monkeypatch.delenv("SKIMVIZ_SKIP_BACKEND", raising=False)
    assert skip_rnn.backend() == "cpp"
    with torch.inference_mode():
        m(x)
    assert calls == [1]
    monkeypatch.setenv("SKIMVIZ_SKIP_BACKEND", "python")
    assert skip_rnn.backend() == "python"
    with torch.no_grad():
        m(x)
    assert calls == [1]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("H", [8, 110])
@pytest.mark.parametrize("T", [1, 50, 784])
@pytest.mark.parametrize("theta", [0.5, 0.3, 0.8])
def test_cpp_equals_python_jump_and_blend(cpp, monkeypatch, cell, H, T, theta):
    m = make_model(cell, H, bias=-1.5 if theta < 0.5 else -1.0, seed=H + T)  # p ≈ 0.2–0.6
    m.update_threshold = theta
    x = torch.randn(1, T, m.input_size)
    c = run(m, x, "cpp", monkeypatch)
    py = run(m, x, "python", monkeypatch)
    blend = run(m, x, "python", monkeypatch, train=True)
    assert_same(c, py, "cpp vs python jump")
    assert_same(c, blend, "cpp vs training blend")
    if T == 784:  # a real skipping pattern, not all-update nor all-skip
        rate = float(c[2].update.mean())
        assert 0.1 < rate < 0.9, rate


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [-2.0, -1.0, 0.0, 1.0])
def test_update_rates(cpp, monkeypatch, cell, bias):
    """Gate biases from rare to frequent updates, H = 110 over 784 steps (pixel MNIST's size)."""
    m = make_model(cell, 110, I=1, bias=bias, seed=7)
    x = torch.randn(1, 784, 1)
    c = run(m, x, "cpp", monkeypatch)
    assert_same(c, run(m, x, "python", monkeypatch), "cpp vs python jump")
    assert_same(c, run(m, x, "python", monkeypatch, train=True), "cpp vs training blend")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("I", [1, 28, 37])
def test_input_sizes(cpp, monkeypatch, cell, I):
    """I < 16 takes the transposed W_ih product, larger I the row dot products (28: row MNIST)."""
    m = make_model(cell, 24, I=I, bias=-1.0, seed=I)
    x = torch.randn(1, 300, I)
    c = run(m, x, "cpp", monkeypatch)
    assert_same(c, run(m, x, "python", monkeypatch), "cpp vs python jump")
    assert_same(c, run(m, x, "python", monkeypatch, train=True), "cpp vs training blend")


@pytest.mark.parametrize("cell", CELLS)
def test_explicit_hx_and_time_major(cpp, monkeypatch, cell):
    m = make_model(cell, 16, seed=3)
    m.batch_first = False
    x = torch.randn(60, 1, m.input_size)
    h = torch.randn(1, 1, 16)
    hx = h if cell == "gru" else (h, torch.randn(1, 1, 16))
    assert_same(run(m, x, "cpp", monkeypatch, hx), run(m, x, "python", monkeypatch, hx), "hx")


@pytest.mark.parametrize("cell", CELLS)
def test_force_update_equals_dense(cpp, monkeypatch, cell):
    """u_t = 1 everywhere: the C++ loop is the plain cell, i.e. nn.GRU / nn.LSTM with the same
    weights and initial state."""
    m = make_model(cell, 110, seed=5)
    m.force_update = True
    x = torch.randn(1, 200, m.input_size)
    out, st, tr = run(m, x, "cpp", monkeypatch)
    assert bool(tr.update.all())
    dense = (nn.GRU if cell == "gru" else nn.LSTM)(m.input_size, 110, batch_first=True)
    c = m.cells[0]
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(dense, f"{name}_l0").copy_(getattr(c, name))
        h0 = m.h0[:, 0].unsqueeze(1)
        ref_out, ref_st = dense(x, h0 if cell == "gru" else (h0, m.h0[:, 1].unsqueeze(1)))
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    for s, r in zip(st, ref_st if cell == "lstm" else (ref_st,)):
        torch.testing.assert_close(s, r, rtol=0, atol=1e-5)
    assert_same((out, st, tr), run(m, x, "python", monkeypatch), "forced: cpp vs python")


def test_constant_gate_update_period(cpp, monkeypatch):
    """speedlab's knob (W_p = 0, b_p = logit(d)) updates every round(1/p) steps in C++ too."""
    from skimviz.bench import speedlab
    m = SkipRNN(1, 32).eval()
    x = torch.randn(1, 784, 1)
    for p in (1.0, 0.5, 0.25, 0.1):
        speedlab.set_update_rate(m, p)
        _, _, tr = run(m, x, "cpp", monkeypatch)
        assert int(tr.update.sum()) == speedlab.expected_updates(784, p)


def test_falls_back_when_not_eligible(cpp, monkeypatch):
    """Autograd, float64, several layers or the SRU cell use the Python loop (same numbers)."""
    calls = []
    monkeypatch.setattr(SkipRNN, "_forward_jump_cpp",
                        lambda self, *a: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    monkeypatch.delenv("SKIMVIZ_SKIP_BACKEND", raising=False)
    x = torch.randn(1, 20, 3)
    with torch.enable_grad():  # eval mode, but parameters need grad: stay differentiable
        out, _ = make_model("gru", 8)(x)
    assert out.requires_grad
    with torch.no_grad():
        make_model("gru", 8).double()(x.double())
        SkipRNN(3, 8, num_layers=2).eval()(x)
        SkipRNN(3, 8, cell="sru").eval()(x)
    assert not calls
