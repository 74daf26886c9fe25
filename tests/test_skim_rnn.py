"""Skim-RNN: oracle against nn.LSTM, the skim branch against a hand-written step, batched vs
batch-1 inference, the θ knob, padding, the skim loss and the FLOP accounting."""
import math

import pytest
import torch
from torch import nn

from skimviz.models.skim_rnn import SkimRNN, skim_loss
from skimviz.models.text_classifier import TextClassifier


def _copy_big_to_lstm(m: SkimRNN) -> nn.LSTM:
    ref = nn.LSTM(m.input_size, m.hidden_size, batch_first=True)
    with torch.no_grad():
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, n + "_l0").copy_(getattr(m.big, n))
    return ref


@pytest.fixture(autouse=True)
def _python_backend(monkeypatch):
    # the C++ batch-1 loop has its own oracle tests; here the PyTorch paths are checked
    monkeypatch.setenv("SKIMVIZ_SKIM_BACKEND", "python")


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("batch", [1, 4])
def test_forced_read_equals_nn_lstm(mode, batch):
    torch.manual_seed(0)
    m = SkimRNN(6, 12, 3)
    ref = _copy_big_to_lstm(m)
    getattr(m, mode)()
    m.force = "read"
    x = torch.randn(batch, 9, 6)
    h0, c0 = torch.randn(1, batch, 12), torch.randn(1, batch, 12)
    out, (h, c), trace = m(x, (h0, c0), return_trace=True)
    out_r, (h_r, c_r) = ref(x, (h0, c0))
    torch.testing.assert_close(out, out_r, atol=1e-5, rtol=0)
    torch.testing.assert_close(h, h_r, atol=1e-5, rtol=0)
    torch.testing.assert_close(c, c_r, atol=1e-5, rtol=0)
    assert float(trace.skim.sum()) == 0.0


def test_forced_skim_updates_only_the_first_dims():
    """A skimmed step: the small LSTM (reading x and the whole h_{t-1}) writes h[:d'], c[:d'];
    the rest is the previous state, not the new one (a pitfall of public ports)."""
    torch.manual_seed(1)
    m = SkimRNN(5, 10, 4).eval()
    m.force = "skim"
    x, h0, c0 = torch.randn(1, 1, 5), torch.randn(1, 1, 10), torch.randn(1, 1, 10)
    _, (h, c) = m(x, (h0, c0))
    s = m.small
    gates = x[0] @ s.weight_ih.T + s.bias_ih + h0[0] @ s.weight_hh.T + s.bias_hh
    i, f, g, o = gates.chunk(4, -1)
    c_exp = torch.sigmoid(f) * c0[0, :, :4] + torch.sigmoid(i) * torch.tanh(g)
    h_exp = torch.sigmoid(o) * torch.tanh(c_exp)
    torch.testing.assert_close(h[0, :, :4], h_exp, atol=1e-6, rtol=0)
    torch.testing.assert_close(c[0, :, :4], c_exp, atol=1e-6, rtol=0)
    assert torch.equal(h[0, :, 4:], h0[0, :, 4:]) and torch.equal(c[0, :, 4:], c0[0, :, 4:])


def test_decision_reads_previous_state_not_the_new_one():
    torch.manual_seed(2)
    m = SkimRNN(4, 8, 2).eval()
    x = torch.randn(1, 3, 4)
    _, _, trace = m(x, return_trace=True)
    # p_1 from [x_1; h_0 = 0]
    p = torch.softmax(m.decide(torch.cat([x[0, 0], torch.zeros(8)])), -1)[1]
    assert math.isclose(float(trace.p_skim[0, 0]), float(p.detach()), abs_tol=1e-6)


def test_batched_equals_batch_one_with_padding():
    torch.manual_seed(3)
    m = SkimRNN(6, 16, 4).eval()
    with torch.no_grad():
        m.decide.bias.copy_(torch.tensor([0.0, 0.2]))
    x = torch.randn(3, 11, 6)
    lengths = torch.tensor([11, 4, 7])
    out, (h, c), tr = m(x, lengths=lengths, return_trace=True)
    for i, L in enumerate(lengths.tolist()):
        o1, (h1, c1), t1 = m(x[i:i + 1, :L], return_trace=True)
        torch.testing.assert_close(out[i, :L], o1[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(h[0, i], h1[0, 0], atol=1e-6, rtol=0)
        assert tr.skim[i, :L].tolist() == t1.skim[0].tolist()
        assert float(tr.flops[i, L:].sum()) == 0.0 and float(out[i, L:].abs().sum()) == 0.0
    assert 0 < float(tr.skim.sum()) < float(lengths.sum())  # both branches were exercised


def test_threshold_is_monotone():
    """A lower θ (more bias towards skimming) never skims fewer tokens."""
    torch.manual_seed(4)
    m = SkimRNN(8, 20, 5).eval()
    x = torch.randn(6, 30, 8)
    rates = []
    for theta in (1.0, 0.8, 0.6, 0.5, 0.4, 0.2, 0.0):
        m.skim_threshold = theta
        _, _, tr = m(x, return_trace=True)
        rates.append(float(tr.skim_rate.mean()))
    assert rates == sorted(rates)
    assert rates[0] == 0.0 and rates[-1] == 1.0
    with pytest.raises(ValueError):
        m.skim_threshold = 1.5


def test_flops_follow_decisions_and_flop_r():
    m = SkimRNN(10, 100, 10).eval()
    x = torch.randn(1, 20, 10)
    m.force = "read"
    _, _, tr = m(x, return_trace=True)
    assert float(tr.flops.sum()) == 20 * m.read_flops()
    m.force = "skim"
    _, _, tr = m(x, return_trace=True)
    assert float(tr.flops.sum()) == 20 * m.skim_flops()
    # the small cell is much cheaper: Flop-R of skimming everything is large
    assert m.dense_flops_per_token() / m.skim_flops() > 5
    assert m.read_flops() > m.dense_flops_per_token()  # the decision layer is paid on reads


def test_training_mixes_both_candidates_and_trains_the_decision():
    torch.manual_seed(5)
    m = SkimRNN(4, 8, 2).train()
    x = torch.randn(3, 5, 4)
    out, _, tr = m(x, return_trace=True)
    assert tr.log_p_skim is not None and tr.log_p_skim.requires_grad
    soft = tr.skim
    assert bool(((soft > 0) & (soft < 1)).any())  # Gumbel-softmax weights, not hard
    loss = out.pow(2).mean() + skim_loss(tr, 0.01)
    loss.backward()
    assert m.decide.weight.grad is not None and m.decide.weight.grad.abs().sum() > 0
    assert m.small.weight_hh.grad.abs().sum() > 0 and m.big.weight_hh.grad.abs().sum() > 0


def test_skim_loss_pushes_towards_skimming():
    torch.manual_seed(6)
    m = SkimRNN(4, 8, 2).train()
    opt = torch.optim.SGD(m.decide.parameters(), lr=1.0)
    x = torch.randn(8, 6, 4)
    before = m(x, return_trace=True)[2].p_skim.mean()
    for _ in range(20):
        _, _, tr = m(x, return_trace=True)
        opt.zero_grad()
        skim_loss(tr, 1.0).backward()
        opt.step()
    after = m(x, return_trace=True)[2].p_skim.mean()
    assert after > before + 0.2


def test_anneal_schedule():
    m = SkimRNN(2, 4, 1)
    assert m.anneal(0) == 1.0
    assert math.isclose(m.anneal(1000), math.exp(-0.1))
    assert m.anneal(100_000) == 0.5


def test_bad_arguments():
    with pytest.raises(ValueError):
        SkimRNN(4, 8, 8)
    with pytest.raises(ValueError):
        SkimRNN(4, 8, 2, cell="gru")
    m = SkimRNN(4, 8, 2)
    with pytest.raises(ValueError):
        m(torch.randn(2, 3, 5))
    with pytest.raises(ValueError):
        m(torch.randn(2, 3, 4), lengths=torch.tensor([0, 3]))


def test_text_classifier_dense_and_skim_agree_when_reading():
    """The dense twin (nn.LSTM with packing) and the Skim model forced to read give the same
    logits on padded batches when they share weights."""
    torch.manual_seed(7)
    sk = TextClassifier(30, 8, 12, 3, skim=True).eval()
    dn = TextClassifier(30, 8, 12, 3, skim=False).eval()
    with torch.no_grad():
        dn.embed.weight.copy_(sk.embed.weight)
        dn.head.load_state_dict(sk.head.state_dict())
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(dn.rnn, n + "_l0").copy_(getattr(sk.rnn.big, n))
    sk.rnn.force = "read"
    tokens = torch.randint(1, 30, (4, 9))
    lengths = torch.tensor([9, 2, 5, 1])
    for i, L in enumerate(lengths.tolist()):
        tokens[i, L:] = 0
    a, ta = sk(tokens, lengths, return_trace=True)
    b, tb = dn(tokens, lengths, return_trace=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert torch.equal(ta.valid, tb.valid)


@pytest.mark.parametrize("batch", [1, 3])
def test_decisions_replay_equals_inference(batch):
    """``decisions`` replays the inference path's read/skim choices in the differentiable
    two-candidate path: same logits (and states), with gradients reaching the embeddings."""
    from skimviz.attribution.text import skim_logits

    torch.manual_seed(3)
    model = TextClassifier(40, 8, 16, 4, 2, skim=True).eval()
    with torch.no_grad():
        model.rnn.decide.weight.mul_(8.0)  # a mix of read and skimmed tokens
    tokens = torch.randint(1, 40, (batch, 11))
    lengths = torch.tensor([11, 7, 4][:batch])
    with torch.no_grad():
        logits, trace = model(tokens, lengths, return_trace=True)
    skim = trace.skim.round().long()
    assert 0 < int(skim.sum()) < int(lengths.sum())
    replay = skim_logits(model, tokens, lengths, skim)
    torch.testing.assert_close(replay, logits, atol=1e-5, rtol=0)
    x = model.embed(tokens).detach().requires_grad_(True)
    out, (h, _), tr = model.rnn(x, lengths=lengths, decisions=skim, return_trace=True)
    assert torch.equal(tr.skim.round().long(), skim)
    model.head(h[-1])[:, 0].sum().backward()
    assert x.grad is not None and x.grad[0, :int(lengths[0])].abs().sum(-1).gt(0).all()
    with pytest.raises(ValueError):
        model.rnn(x, lengths=lengths, decisions=skim[:, :3])
