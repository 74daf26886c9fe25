"""Skim-RNN batch-1 inference in C++ (skimviz/csrc/skim_rnn_cpu.cpp) against the PyTorch oracle,
the eval-mode Python loop (``SKIMVIZ_SKIM_BACKEND=python``), on random models whose decision
really varies (p_skim spread over (0, 1)), for several θ (0 and 1 included), forced read/skim,
T = 1, explicit (h0, c0) and time-major input: the same skim decisions exactly (mismatches = 0),
p_skim, outputs and final states to 1e-5, the same FLOPs; forced reading equals nn.LSTM.

The session-scoped ``cpp`` fixture (conftest) builds the extension if needed and skips, saying
why, if that fails.
"""
import pytest
import torch
from torch import nn

from skimviz.bench import speedlab
from skimviz.models import skim_rnn
from skimviz.models.skim_rnn import SkimRNN


def make_model(I: int = 12, d: int = 32, d2: int = 4, seed: int = 0) -> SkimRNN:
    """A random model whose decision varies from token to token (W_d scaled up)."""
    torch.manual_seed(seed)
    m = SkimRNN(I, d, d2).eval()
    with torch.no_grad():
        m.decide.weight.mul_(6.0)
    return m


def run(m: SkimRNN, x: torch.Tensor, backend: str, monkeypatch, hx=None, **kw):
    monkeypatch.setenv("SKIMVIZ_SKIM_BACKEND", backend)
    with torch.no_grad():
        return m(x, hx, return_trace=True, **kw)


def assert_same(a, b):
    (out_a, (h_a, c_a), tr_a), (out_b, (h_b, c_b), tr_b) = a, b
    mismatches = int((tr_a.skim != tr_b.skim).sum())
    assert mismatches == 0, f"{mismatches} skim decisions differ"
    torch.testing.assert_close(tr_a.p_skim, tr_b.p_skim, rtol=0, atol=1e-5)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-5)
    torch.testing.assert_close(h_a, h_b, rtol=0, atol=1e-5)
    torch.testing.assert_close(c_a, c_b, rtol=0, atol=1e-5)
    torch.testing.assert_close(tr_a.flops, tr_b.flops, rtol=0, atol=0)
    assert torch.equal(tr_a.valid, tr_b.valid)
    assert out_a.shape == out_b.shape and h_a.shape == h_b.shape == c_a.shape


def test_backend_switch(cpp, monkeypatch):
    calls = []
    real = SkimRNN._forward_cpp
    monkeypatch.setattr(SkimRNN, "_forward_cpp",
                        lambda self, *a: calls.append(1) or real(self, *a))
    m, x = make_model(), torch.randn(1, 10, 12)
    monkeypatch.delenv("SKIMVIZ_SKIM_BACKEND", raising=False)
    assert skim_rnn.backend() == "cpp"
    with torch.inference_mode():
        m(x)
    m(x)  # grad mode on, parameters require grad: the eval path is not differentiable anyway
    assert calls == [1, 1]
    monkeypatch.setenv("SKIMVIZ_SKIM_BACKEND", "python")
    assert skim_rnn.backend() == "python"
    with torch.no_grad():
        m(x)
    assert calls == [1, 1]


@pytest.mark.parametrize("theta", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("T", [1, 7, 300])
@pytest.mark.parametrize("sizes", [(12, 32, 4), (100, 100, 10), (3, 9, 1)])
def test_cpp_equals_python(cpp, monkeypatch, theta, T, sizes):
    I, d, d2 = sizes
    m = make_model(I, d, d2, seed=T + d)
    m.skim_threshold = theta
    x = torch.randn(1, T, I)
    c, py = run(m, x, "cpp", monkeypatch), run(m, x, "python", monkeypatch)
    assert_same(c, py)
    rate = float(c[2].skim_rate)
    if theta == 0.0:
        assert rate == 1.0
    elif theta == 1.0:
        assert rate == 0.0
    elif T == 300:  # a real mix of read and skimmed tokens
        assert 0.05 < rate < 0.95, rate


@pytest.mark.parametrize("force", ["read", "skim"])
def test_forced(cpp, monkeypatch, force):
    m = make_model(seed=5)
    m.force = force
    x = torch.randn(1, 120, 12)
    c = run(m, x, "cpp", monkeypatch)
    assert float(c[2].skim_rate) == float(force == "skim")
    assert_same(c, run(m, x, "python", monkeypatch))


def test_explicit_hx_lengths_and_time_major(cpp, monkeypatch):
    m = make_model(seed=3)
    hx = (torch.randn(1, 1, 32), torch.randn(1, 1, 32))
    x = torch.randn(1, 80, 12)
    c = run(m, x, "cpp", monkeypatch, hx, lengths=torch.tensor([80]))
    assert_same(c, run(m, x, "python", monkeypatch, hx))
    m.batch_first = False
    xt = x.transpose(0, 1).contiguous()
    c_t = run(m, xt, "cpp", monkeypatch, hx)
    assert c_t[0].shape == (80, 1, 32)
    assert_same(c_t, run(m, xt, "python", monkeypatch, hx))
    torch.testing.assert_close(c_t[0].transpose(0, 1), c[0], rtol=0, atol=0)


def test_read_rate_knob_same_decisions(cpp, monkeypatch):
    """speedlab.set_read_rate (the benchmarks' knob) reads exactly round(p·T) tokens in C++ and
    in Python, at the same positions."""
    m = SkimRNN(100, 100, 10).eval()
    x = torch.randn(1, 400, 100)
    for p in (1.0, 0.5, 0.25, 0.1, 0.0):
        assert speedlab.set_read_rate(m, x, p) == pytest.approx(round(p * 400) / 400)
        c = run(m, x, "cpp", monkeypatch)
        assert int(c[2].skim.sum()) == 400 - round(p * 400)
        assert_same(c, run(m, x, "python", monkeypatch))


def test_force_read_equals_nn_lstm(cpp, monkeypatch):
    """Every token read: the C++ loop is the big cell alone, i.e. nn.LSTM with its weights."""
    m = make_model(100, 100, 10, seed=11)
    m.force = "read"
    x = torch.randn(1, 200, 100)
    h0, c0 = torch.randn(1, 1, 100), torch.randn(1, 1, 100)
    out, (h, c), tr = run(m, x, "cpp", monkeypatch, (h0, c0))
    assert not bool(tr.skim.any())
    lstm = nn.LSTM(100, 100, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(getattr(m.big, name))
        ref_out, (ref_h, ref_c) = lstm(x, (h0, c0))
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(h, ref_h, rtol=0, atol=1e-5)
    torch.testing.assert_close(c, ref_c, rtol=0, atol=1e-5)


def test_falls_back_when_not_eligible(cpp, monkeypatch):
    """Training mode, batches, padding and float64 use the Python loop."""
    calls = []
    monkeypatch.setattr(SkimRNN, "_forward_cpp",
                        lambda self, *a: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    monkeypatch.delenv("SKIMVIZ_SKIM_BACKEND", raising=False)
    m = make_model()
    x = torch.randn(1, 20, 12)
    with torch.no_grad():
        m(torch.randn(3, 20, 12))
        m(x, lengths=torch.tensor([15]))
        make_model().double()(x.double())
        m.train()(x)
    assert not calls


def test_op_checks_shapes(cpp):
    m = make_model()
    b, s = m.big, m.small
    args = [torch.randn(5, 12), b.weight_ih, b.weight_hh, b.bias_ih, b.bias_hh, s.weight_ih,
            s.weight_hh, s.bias_ih, s.bias_hh, m.decide.weight, m.decide.bias, torch.zeros(32),
            torch.zeros(32), 0.5, 0]
    with torch.no_grad():
        assert cpp.skim_rnn_forward(*args)[0].shape == (5, 32)
        bad = list(args)
        bad[9] = torch.randn(2, 40)
        with pytest.raises(RuntimeError, match="w_d"):
            cpp.skim_rnn_forward(*bad)
        bad = list(args)
        bad[14] = 3
        with pytest.raises(RuntimeError, match="force"):
            cpp.skim_rnn_forward(*bad)
