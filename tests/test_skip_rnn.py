"""Skip RNN (Campos et al., ICLR 2018): oracle tests against torch.nn, the three execution paths
agreeing, the gate equations and the straight-through gradient."""
import pytest
import torch
from torch import nn

from skimviz.models import SkipRNN, budget_loss
from skimviz.models.skip_rnn import binarize

CELLS = ["gru", "lstm"]


def _reference(m: SkipRNN) -> nn.Module:
    ref = (nn.GRU if m.cell == "gru" else nn.LSTM)(m.input_size, m.hidden_size,
                                                   num_layers=m.num_layers, batch_first=True)
    with torch.no_grad():
        for i, cell in enumerate(m.cells):
            for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{p}_l{i}").copy_(getattr(cell, p))
    return ref


def _hx(m: SkipRNN, B: int):
    h = torch.randn(m.num_layers, B, m.hidden_size)
    return h if m.cell == "gru" else (h, torch.randn_like(h))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("mode", ["train", "eval-batch", "eval-b1"])
def test_always_update_equals_torch_rnn(cell, layers, mode):
    """Gate forced to update at every step ⇒ identical to nn.GRU / nn.LSTM (atol 1e-5)."""
    torch.manual_seed(0)
    m = SkipRNN(3, 16, cell=cell, num_layers=layers)
    m.force_update = True
    ref = _reference(m)
    B = 1 if mode == "eval-b1" else 4
    x, hx = torch.randn(B, 25, 3), _hx(m, B)
    m.train(mode == "train")
    with torch.no_grad():
        out, h_n, trace = m(x, hx, return_trace=True)
        ref_out, ref_h = ref(x, hx)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    if cell == "gru":
        torch.testing.assert_close(h_n, ref_h, atol=1e-5, rtol=0)
    else:
        for a, b in zip(h_n, ref_h):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert trace.update.eq(1).all()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("theta", [0.5, 0.8, 1.0])
def test_inference_paths_agree_with_training_path(cell, theta):
    """Blend (train), gather/scatter (batched eval) and jump (batch-1 eval) take the same
    decisions and give the same outputs."""
    torch.manual_seed(1)
    m = SkipRNN(2, 12, cell=cell)
    with torch.no_grad():
        m.gate.bias.fill_(-1.0)  # Δũ ≈ 0.27: a real skipping pattern
    m.update_threshold = theta
    x = torch.randn(5, 40, 2)
    with torch.no_grad():
        m.train()
        o1, h1, t1 = m(x, return_trace=True)
        m.eval()
        o2, h2, t2 = m(x, return_trace=True)
        for b in range(5):
            o3, _, t3 = m(x[b:b + 1], return_trace=True)
            torch.testing.assert_close(o3, o1[b:b + 1], atol=1e-5, rtol=0)
            assert torch.equal(t3.update, t1.update[b:b + 1])
            torch.testing.assert_close(t3.update_prob, t1.update_prob[b:b + 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(o2, o1, atol=1e-5, rtol=0)
    assert torch.equal(t1.update, t2.update)
    assert 0 < t1.update.mean() < 1, "the test needs a pattern with both updates and skips"


def test_first_step_updates_and_skipped_steps_copy_the_state():
    torch.manual_seed(2)
    m = SkipRNN(1, 8).eval()
    with torch.no_grad():
        m.gate.bias.fill_(-3.0)
        m.gate.weight.zero_()  # Δũ = σ(-3) ≈ 0.047 constant: update every ceil(0.5/0.047) = 11 steps
        out, _, tr = m(torch.randn(1, 30, 1), return_trace=True)
    u = tr.update[0]
    assert u[0] == 1  # ũ_1 = 1 forces the first update
    steps = u.nonzero().squeeze(-1).tolist()
    assert steps == [0, 11, 22]  # Eq. 6: N_skip = min{n: n·Δũ ≥ 0.5} − 1 = 10 skipped steps
    for t in range(1, 11):  # copied state: output unchanged while skipping
        torch.testing.assert_close(out[0, t], out[0, 0])


def test_update_prob_follows_eq5():
    torch.manual_seed(3)
    m = SkipRNN(1, 8).eval()
    with torch.no_grad():
        m.gate.weight.zero_()
        m.gate.bias.fill_(-2.0)
        _, _, tr = m(torch.randn(1, 12, 1), return_trace=True)
    d = torch.sigmoid(torch.tensor(-2.0)).item()
    p = tr.update_prob[0]
    assert p[0] == pytest.approx(1.0)
    assert p[1] == pytest.approx(d, abs=1e-6)          # after an update: ũ = Δũ
    assert p[2] == pytest.approx(2 * d, abs=1e-6)      # after a skip: ũ + min(Δũ, 1 − ũ)
    assert p[3] == pytest.approx(3 * d, abs=1e-6)
    assert (p <= 1.0 + 1e-6).all()


def test_straight_through_gradient_reaches_the_gate():
    x = torch.tensor([0.2, 0.7], requires_grad=True)
    u = binarize(x, 0.5)
    assert u.tolist() == [0.0, 1.0]
    u.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]  # Eq. 7: ∂f/∂x = 1
    torch.manual_seed(4)
    m = SkipRNN(1, 8).train()
    _, _, tr = m(torch.randn(3, 10, 1), return_trace=True)
    budget_loss(tr, 1e-2).backward()
    assert m.gate.weight.grad is not None and m.gate.weight.grad.abs().sum() > 0
    assert m.gate.bias.grad.abs().sum() > 0


def test_budget_loss_is_lambda_times_updates():
    torch.manual_seed(5)
    m = SkipRNN(1, 4).train()
    _, _, tr = m(torch.randn(2, 7, 1), return_trace=True)
    assert budget_loss(tr, 0.5).item() == pytest.approx(0.5 * tr.update.sum(1).mean().item())


def test_init_learned_state_and_gate_bias():
    m = SkipRNN(2, 5, cell="lstm", num_layers=2)
    assert m.gate.bias.item() == 1.0
    assert m.gate.in_features == 10  # W_p [h; c] for the LSTM
    assert m.h0.shape == (2, 2, 5) and m.h0.requires_grad
    out, (h, c) = m(torch.randn(3, 4, 2))
    assert out.shape == (3, 4, 5) and h.shape == (2, 3, 5) and c.shape == (2, 3, 5)


def test_batch_first_false_and_errors():
    m = SkipRNN(2, 5, batch_first=False).eval()
    out, h = m(torch.randn(7, 3, 2))
    assert out.shape == (7, 3, 5) and h.shape == (1, 3, 5)
    with pytest.raises(ValueError):
        m(torch.randn(3, 2))
    with pytest.raises(ValueError):
        m(torch.randn(3, 7, 4))
    with pytest.raises(ValueError):
        SkipRNN(1, 1, cell="rnn")
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ValueError):
            m.update_threshold = bad


def test_higher_threshold_never_updates_more():
    torch.manual_seed(6)
    m = SkipRNN(1, 16).eval()
    with torch.no_grad():
        m.gate.bias.fill_(-0.5)
    x = torch.randn(8, 60, 1)
    counts = []
    for theta in (0.2, 0.5, 0.8, 1.0):
        m.update_threshold = theta
        with torch.no_grad():
            counts.append(m(x, return_trace=True)[2].updates.sum().item())
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_skipped_steps_cost_no_cell_flops():
    torch.manual_seed(7)
    m = SkipRNN(1, 10).eval()
    with torch.no_grad():
        m.gate.bias.fill_(-2.0)
        _, _, tr = m(torch.randn(1, 30, 1), return_trace=True)
    n_up = int(tr.update.sum())
    assert 0 < n_up < 30
    expected = n_up * m.flops_per_update() + (30 - n_up) * 3
    assert tr.flops.sum().item() == pytest.approx(expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_matches_cpu(cell):
    torch.manual_seed(8)
    m = SkipRNN(2, 12, cell=cell).eval()
    x = torch.randn(4, 30, 2)
    with torch.no_grad():
        o_cpu, _, t_cpu = m(x, return_trace=True)
        o_gpu, _, t_gpu = m.cuda()(x.cuda(), return_trace=True)
    torch.testing.assert_close(o_gpu.cpu(), o_cpu, atol=1e-4, rtol=0)
    assert torch.equal(t_gpu.update.cpu(), t_cpu.update)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("mode", ["train", "eval-batch", "eval-b1"])
def test_sru_cell_always_update_equals_sru_layer(layers, mode):
    """cell="sru": the gate forced to update ⇒ identical to the SRU layer with the same weights."""
    from skimviz.models import SRU
    torch.manual_seed(9)
    m = SkipRNN(3, 16, cell="sru", num_layers=layers)
    m.force_update = True
    ref = SRU(3, 16, num_layers=layers)
    with torch.no_grad():
        for i, cell in enumerate(m.cells):
            getattr(ref, f"weight_l{i}").copy_(cell.sru.weight_l0)
            getattr(ref, f"bias_l{i}").copy_(cell.sru.bias_l0)
    B = 1 if mode == "eval-b1" else 4
    x, (h0, c0) = torch.randn(B, 20, 3), _hx(m, B)
    m.train(mode == "train")
    with torch.no_grad():
        out, (h_n, c_n) = m(x, (h0, c0))
        ref_out, ref_c = ref(x, c0)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=1e-5, rtol=0)


def test_sru_skip_rnn_skips_and_counts_flops():
    from skimviz import cost
    torch.manual_seed(10)
    m = SkipRNN(1, 8, cell="sru").eval()
    with torch.no_grad():
        m.gate.bias.fill_(-2.0)
        _, _, tr = m(torch.randn(2, 30, 1), return_trace=True)
    assert 0 < tr.update.mean() < 1
    assert m.flops_per_update() == cost.sru_cell_flops(1, 8) + cost.skip_gate_flops(16)
