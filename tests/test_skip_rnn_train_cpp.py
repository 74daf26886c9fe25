"""Skip RNN training in C++ (skimviz/csrc/skip_rnn_train_cpu.cpp, skimviz/ops/skip_rnn.py) against
the PyTorch training path (``SkipRNN._forward_blend``, autograd through the Eq. 3 blend and the
straight-through round of Eq. 7), which stays the oracle:

* float64: outputs, final states, the trace (u_t, ũ_t, FLOPs) and every gradient — input, cell
  weights, gate W_p and b_p, learned s_0 or a given hx — equal to 1e-10, with upstream gradients
  on all outputs (ũ and u included: the budget loss λ·Σ u_t reaches the gate through u);
* float64 gradcheck of the op itself: with u_t treated as a constant (the exact derivative of the
  piecewise-constant forward, on inputs whose ũ stays away from θ and from the min() kink) and
  with forced updates;
* float32 at a realistic size (batch 8, 100 steps, hidden 110, θ = 0.6, CE + budget loss) to
  atol 1e-5, and three Trainer steps (loss and weights) the same on both paths.

The ``cpp`` fixture (tests/conftest.py) builds the extension if needed and skips if it cannot.
"""
import contextlib

import pytest
import torch
from torch.nn import functional as F

from skimviz.models import SequenceClassifier, budget_loss
from skimviz.models.skip_rnn import SkipRNN
from skimviz.ops import skip_rnn as ops

CELLS = ("gru", "lstm")


@contextlib.contextmanager
def threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def one_thread():
    """The PyTorch reference path runs hundreds of tiny ops; on a busy machine each one's
    OpenMP barrier can cost milliseconds with 2 threads. Tests that need the op's thread
    blocks ask for threads themselves."""
    with threads(1):
        yield


def make_model(cell: str, I: int, H: int, dtype=torch.float64, seed: int = 0,
               bias: float = -0.5) -> SkipRNN:
    """A random model whose gate skips (b_p = ``bias``, W_p scaled up so that Δũ varies)."""
    torch.manual_seed(seed)
    m = SkipRNN(I, H, cell=cell).to(dtype).train()
    with torch.no_grad():
        m.gate.weight.mul_(4.0)
        m.gate.bias.fill_(bias)
        m.h0.normal_(0, 0.3)
    return m


def run(m: SkipRNN, x, backend: str, monkeypatch, hx=None, seed: int = 1,
        backward_threads: int = 0):
    """Forward and backward (on ``backward_threads`` threads if > 0) with random upstream
    gradients on out, h_n (c_n), ũ and u; returns (out, final states, trace, {name: grad})."""
    monkeypatch.setenv(ops.ENV, backend)
    m.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    if hx is not None:
        hx = (tuple(h.clone().requires_grad_(True) for h in hx) if isinstance(hx, tuple)
              else hx.clone().requires_grad_(True))
    out, h_n, tr = m(x, hx, return_trace=True)
    states = h_n if isinstance(h_n, tuple) else (h_n,)
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
               for t in (out, *states, tr.update_prob))
    if tr.update.requires_grad:
        loss = loss + (tr.update * torch.randn(tr.update.shape, generator=g, dtype=x.dtype)).sum()
    with threads(backward_threads or torch.get_num_threads()):
        loss.backward()
    # None: no gradient (h0 when hx is given)
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in m.named_parameters()}
    grads["x"] = x.grad
    for i, h in enumerate(() if hx is None else hx if isinstance(hx, tuple) else (hx,)):
        grads[f"hx{i}"] = h.grad
    return out.detach(), [s.detach() for s in states], tr, grads


def assert_same(a, b, atol: float):
    out_a, st_a, tr_a, g_a = a
    out_b, st_b, tr_b, g_b = b
    assert torch.equal(tr_a.update, tr_b.update), "update masks differ"
    torch.testing.assert_close(tr_a.update_prob, tr_b.update_prob, rtol=0, atol=atol)
    torch.testing.assert_close(tr_a.flops, tr_b.flops, rtol=0, atol=0)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=atol)
    for s_a, s_b in zip(st_a, st_b):
        torch.testing.assert_close(s_a, s_b, rtol=0, atol=atol)
    assert g_a.keys() == g_b.keys()
    for k in g_b:
        assert (g_a[k] is None) == (g_b[k] is None), k
        if g_b[k] is not None:
            torch.testing.assert_close(g_a[k], g_b[k], rtol=0, atol=atol, msg=f"gradient of {k}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("I", [3, 12])  # in the row pass (I <= 8) / as GEMMs
@pytest.mark.parametrize("force", [False, True])
def test_float64_equals_pytorch_path(cpp, monkeypatch, cell, I, force):
    m = make_model(cell, I, 5, seed=I)
    m.force_update = force
    x = torch.randn(3, 9, I, dtype=torch.float64)
    assert "SkipRNNTrainFunction" in type(_grad_fn(m, x, monkeypatch)).__name__
    c = run(m, x, "cpp", monkeypatch)
    py = run(m, x, "python", monkeypatch)
    assert_same(c, py, atol=1e-10)
    rate = float(py[2].update.detach().mean())
    assert rate == 1.0 if force else 0.2 < rate < 0.9, rate  # a real skipping pattern


def _grad_fn(m, x, monkeypatch):
    monkeypatch.setenv(ops.ENV, "cpp")
    return m(x)[0].grad_fn


@pytest.mark.parametrize("cell", CELLS)
def test_float64_hx_time_major_and_theta(cpp, monkeypatch, cell):
    """A given initial state (gradient to hx), batch_first=False and θ = 0.7."""
    m = make_model(cell, 2, 6, seed=4, bias=0.0)
    m.batch_first = False
    m.update_threshold = 0.7
    x = torch.randn(11, 4, 2, dtype=torch.float64)  # (T, B, I)
    h = torch.randn(1, 4, 6, dtype=torch.float64)
    hx = h if cell == "gru" else (h, torch.randn_like(h))
    c = run(m, x, "cpp", monkeypatch, hx)
    assert_same(c, run(m, x, "python", monkeypatch, hx), atol=1e-10)
    assert 0 < float(c[2].update.detach().mean()) < 1
    assert c[3]["h0"] is None and c[3]["hx0"] is not None


@pytest.mark.parametrize("cell", CELLS)
def test_float64_thread_blocks(cpp, monkeypatch, cell):
    """Batch 11 over 3 threads (blocks of 4, 4 and 3 rows, each packing its updating rows in the
    backward), and the backward run at another thread count than the forward."""
    m = make_model(cell, 1, 16, seed=6, bias=-1.0)
    x = torch.randn(11, 130, 1, dtype=torch.float64)
    with threads(3):
        c3 = run(m, x, "cpp", monkeypatch)
        c31 = run(m, x, "cpp", monkeypatch, backward_threads=1)  # the forward's blocks still
    py = run(m, x, "python", monkeypatch)
    assert_same(c3, py, atol=1e-10)
    assert_same(c31, py, atol=1e-10)
    assert 0.2 < float(py[2].update.detach().mean()) < 0.9


def _gradcheck_inputs(cell: str, seed: int, theta: float, force: bool):
    """Inputs of SkipRNNTrainFunction (B 3, T 7, H 4) whose ũ stays 1e-3 away from θ, so that
    finite differences see no jump."""
    m = make_model(cell, 2, 4, seed=seed)
    c = m.cells[0]
    x = torch.randn(3, 7, 2, dtype=torch.float64)
    h0 = m.h0[0, 0].expand(3, 4).clone()
    c0 = m.h0[0, 1].expand(3, 4).clone() if cell == "lstm" else None
    args = [x, c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh, m.gate.weight, m.gate.bias, h0,
            c0]
    args = [a.detach().clone().requires_grad_(True) if a is not None else None for a in args]
    with torch.no_grad():
        _, _, probs, update = ops.SkipRNNTrainFunction.apply(*args, theta, force, False)
    return args, probs, update


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("force", [False, True])
def test_gradcheck(cpp, cell, force):
    theta = 0.5
    for seed in range(20):  # the first seed whose decisions are not near a boundary
        args, probs, update = _gradcheck_inputs(cell, seed, theta, force)
        if force or ((probs - theta).abs().min() > 1e-3 and 0 < update.mean() < 1):
            break
    else:
        pytest.fail("no seed gave a skipping pattern away from θ")

    def f(*a):
        out, c_n, probs, update = ops.SkipRNNTrainFunction.apply(*a, theta, force, False, True)
        return (out, probs) + ((c_n,) if cell == "lstm" else ())

    assert torch.autograd.gradcheck(f, [a for a in args], eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_realistic_size(cpp, monkeypatch, cell):
    """Batch 8, 100 steps, hidden 110, input 1 (pixel MNIST's cell), θ = 0.6, a Linear head on
    the last output, cross-entropy + budget loss (λ = 0.01): everything to atol 1e-5. The fused
    op runs on 2 threads (two blocks of 4 rows)."""
    torch.manual_seed(11)
    model = SequenceClassifier(1, 110, 10, cell=cell).train()
    rnn = model.rnn
    rnn.update_threshold = 0.6
    with torch.no_grad():
        rnn.gate.bias.fill_(0.3)
        rnn.h0.normal_(0, 0.3)
    x, y = torch.rand(8, 100, 1), torch.randint(0, 10, (8,))

    def step(backend):
        monkeypatch.setenv(ops.ENV, backend)
        model.zero_grad(set_to_none=True)
        logits, tr = model(x, return_trace=True)
        loss = F.cross_entropy(logits, y) + budget_loss(tr, 0.01)
        loss.backward()
        return logits.detach(), loss.item(), tr, {n: p.grad.clone()
                                                  for n, p in model.named_parameters()}

    with threads(2):
        lc, loss_c, tr_c, g_c = step("cpp")
    lp, loss_p, tr_p, g_p = step("python")
    assert torch.equal(tr_c.update, tr_p.update)
    assert 0.2 < float(tr_p.update.detach().mean()) < 0.9
    torch.testing.assert_close(tr_c.update_prob, tr_p.update_prob, rtol=0, atol=1e-5)
    torch.testing.assert_close(lc, lp, rtol=0, atol=1e-5)
    assert loss_c == pytest.approx(loss_p, abs=1e-5)
    for k in g_p:
        torch.testing.assert_close(g_c[k], g_p[k], rtol=0, atol=1e-5, msg=f"gradient of {k}")


def test_training_loop_same_first_steps(cpp, monkeypatch):
    """Three Trainer steps (Adam, clipping, the gate's own learning rate, λ ramp) from one seed:
    the same losses and weights on the fused and the PyTorch path."""
    from skimviz.training.loop import Trainer, batches, classification_loss

    def train(backend):
        monkeypatch.setenv(ops.ENV, backend)
        torch.manual_seed(3)
        model = SequenceClassifier(1, 24, 10, cell="gru")
        with torch.no_grad():
            model.rnn.gate.weight.mul_(4.0)
            model.rnn.gate.bias.fill_(-0.3)
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(48, 30, 1, generator=g), torch.randint(0, 10, (48,), generator=g)
        trainer = Trainer(model, classification_loss(0.05, warmup_steps=2), lr=1e-3, clip=1.0,
                          gate_lr=1e-4)
        trainer.fit(batches(x, y, 16, seed=0), 3)
        return trainer.history, model.state_dict()

    hist_c, w_c = train("cpp")
    hist_p, w_p = train("python")
    for a, b in zip(hist_c, hist_p):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["update_rate"] == b["update_rate"]
    assert 0.2 < hist_p[0]["update_rate"] < 0.9  # the gate skipped
    for k in w_p:
        torch.testing.assert_close(w_c[k], w_p[k], rtol=0, atol=1e-5, msg=k)


def test_dispatch_and_switches(cpp, monkeypatch):
    """The fused op runs in training with autograd; the env switches, no autograd, several
    layers and the SRU cell use the PyTorch path."""
    calls = []
    real = ops.forward_blend
    monkeypatch.setattr(ops, "forward_blend", lambda *a: calls.append(1) or real(*a))
    monkeypatch.delenv(ops.ENV, raising=False)
    monkeypatch.delenv("SKIMVIZ_SKIP_BACKEND", raising=False)
    x = torch.randn(2, 5, 3)
    m = SkipRNN(3, 4).train()
    assert ops.train_backend() == "cpp"
    m(x)
    m.double()(x.double())
    assert len(calls) == 2
    for env in (ops.ENV, "SKIMVIZ_SKIP_BACKEND"):
        monkeypatch.setenv(env, "python")
        assert ops.train_backend() == "python"
        m(x.double())
        monkeypatch.delenv(env)
    with torch.no_grad():
        m(x.double())
    SkipRNN(3, 4, num_layers=2).train()(x)
    SkipRNN(3, 4, cell="sru").train()(x)
    assert len(calls) == 2
    m.float().eval()
    m(x.requires_grad_(True))  # eval mode, but autograd through x: the training path
    assert len(calls) == 3


@pytest.mark.parametrize("case", ["one step", "forced, loss on out only"])
def test_gate_gets_no_gradient_where_it_has_no_path(cpp, monkeypatch, case):
    """With T = 1, or forced updates and ũ unused, the gate does not reach the loss: its .grad
    stays None on both paths (Adam treats a zero gradient and none differently)."""
    def grads(backend):
        monkeypatch.setenv(ops.ENV, backend)
        torch.manual_seed(0)
        m = SkipRNN(2, 5).double().train()
        m.force_update = case != "one step"
        x = torch.randn(3, 1 if case == "one step" else 6, 2, dtype=torch.float64)
        out, _, tr = m(x, return_trace=True)
        loss = out.sum() + (tr.update.sum() if tr.update.requires_grad else 0)
        loss.backward()
        return {n: p.grad for n, p in m.named_parameters()}

    c, py = grads("cpp"), grads("python")
    assert c["gate.weight"] is None and c["gate.bias"] is None
    for k in py:
        assert (c[k] is None) == (py[k] is None), k
        if py[k] is not None:
            torch.testing.assert_close(c[k], py[k], rtol=0, atol=1e-12)


def test_backward_twice_is_a_clear_error(cpp, monkeypatch):
    monkeypatch.setenv(ops.ENV, "cpp")
    m = SkipRNN(1, 4).train()
    out, _ = m(torch.randn(2, 5, 1))
    out.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        out.sum().backward()


def test_aten_gemm_fallback_gives_the_same(cpp, monkeypatch):
    """Without the exported BLAS the GEMMs go through ATen: the same numbers."""
    m = make_model("lstm", 12, 6, seed=2)
    x = torch.randn(3, 8, 12, dtype=torch.float64)
    direct = cpp.skip_rnn_train_blas(-1)
    try:
        cpp.skip_rnn_train_blas(0)
        assert not cpp.skip_rnn_train_blas(-1)
        a = run(m, x, "cpp", monkeypatch)
    finally:
        cpp.skip_rnn_train_blas(1 if direct else 0)
    assert_same(a, run(m, x, "cpp", monkeypatch), atol=1e-12)


def test_bench_runs_and_reports_ratios(cpp, capsys):
    """``python -m skimviz bench skip-train`` at toy sizes: three medians, two ratios, JSON."""
    import json

    from skimviz.cli import main
    assert main(["bench", "skip-train", "--batch", "2", "--steps", "6", "--hidden", "4",
                 "--repeats", "1", "--threads", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["median_s"]) == {"fused", "pytorch", "dense"}
    assert set(r["ratios"]) == {"dense_over_fused", "pytorch_over_fused"}
    assert r["threads"] == 1 and len(r["loadavg_1_5_15"]) == 3
    assert main(["bench", "skip-train", "--batch", "0"]) == 2
    assert "--batch" in capsys.readouterr().err
