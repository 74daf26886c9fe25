"""The three-way latency (dense / masked / skipped for real): runners, FLOPs and the sentence."""
import pytest
import torch

from skimviz.bench import latency
from skimviz.models.classifier import SequenceClassifier
from skimviz.models.text_classifier import TextClassifier
from skimviz.models.transkimmer import TranskimmerClassifier


def _skip_pair():
    torch.manual_seed(0)
    model = SequenceClassifier(1, 16, 10, cell="gru")
    with torch.no_grad():
        model.rnn.gate.bias.fill_(-0.5)   # Δũ ≈ 0.4: some steps skipped, some updated
    return model, SequenceClassifier(1, 16, 10, cell="gru", skip=False)


def test_skip_runners_masked_equals_skipped_and_flops_order():
    model, dense = _skip_pair()
    x = torch.rand(1, 40, 1)
    fns, flops, impl = latency.runners(model, dense, (x,))
    assert set(fns) == set(latency.KEYS) == set(flops) == set(impl)
    with torch.no_grad():
        torch.testing.assert_close(fns["masked"](), fns["skipped"]())   # same decisions, same result
    _, trace = model(x, return_trace=True)
    assert 0 < trace.updates.sum() < 40                    # the gate really skipped some steps
    assert flops["skipped"] < flops["dense"] < flops["masked"]


def test_skim_runners_masked_equals_skipped():
    torch.manual_seed(0)
    model = TextClassifier(50, 8, 12, 3, 2, skim=True)
    dense = TextClassifier(50, 8, 12, 3, 2, skim=False)
    model.set_threshold(0.5)
    ids = torch.randint(2, 50, (1, 30))
    fns, flops, _ = latency.runners(model, dense, (ids,))
    with torch.no_grad():
        torch.testing.assert_close(fns["masked"](), fns["skipped"]())
    assert flops["masked"] > flops["dense"] >= flops["skipped"] * 0.99


def test_transkimmer_runners_and_force_keep_restored():
    torch.manual_seed(0)
    kw = dict(vocab_size=60, hidden=16, layers=2, heads=2, ffn=32, max_positions=40)
    model, dense = TranskimmerClassifier(**kw, skim=True), TranskimmerClassifier(**kw, skim=False)
    ids = torch.randint(5, 60, (1, 20))
    fns, flops, impl = latency.runners(model, dense, (ids,))
    r = latency.measure(fns, flops, rounds=3, max_seconds=1)
    assert set(r) == set(latency.KEYS) and all(v["ms"] > 0 for v in r.values())
    assert model.force_keep is False
    assert flops["masked"] >= flops["dense"]
    assert len(set(impl.values())) == 1                   # all three on the same engine


def test_runners_reject_dense_model_and_batches():
    model, dense = _skip_pair()
    with pytest.raises(latency.LatencyError):
        latency.runners(dense, dense, (torch.rand(1, 5, 1),))
    with pytest.raises(latency.LatencyError):
        latency.runners(model, dense, (torch.rand(2, 5, 1),))


def _res(d, m, s, fd=100.0, fm=110.0, fs=25.0):
    return {"dense": {"ms": d, "flops": fd}, "masked": {"ms": m, "flops": fm},
            "skipped": {"ms": s, "flops": fs}}


@pytest.mark.parametrize("d,m,s,words", [
    (4.0, 6.0, 1.0, ["4.0× faster", "1.00 ms vs 4.00 ms", "4.0× fewer FLOPs", "follows",
                     "1.5× the dense time"]),
    (4.0, 6.0, 2.0, ["2.0× faster", "less than FLOPs"]),
    (4.0, 6.0, 0.4, ["10.0× faster", "even more than FLOPs"]),
    (1.0, 6.0, 3.0, ["3.0× slower", "although it does 4.0× fewer FLOPs"]),
    (1.0, 1.02, 1.03, ["about as long", "about the dense time"]),
    (4.0, 2.0, 1.0, ["less than the dense model here"]),
])
def test_sentence_follows_numbers(d, m, s, words):
    text = latency.sentence(_res(d, m, s), "pixels")
    for w in words:
        assert w in text, (w, text)
    assert ("faster" in text) != ("slower" in text) or "about as long" in text


def test_sentence_names_implementations_only_when_they_differ():
    res = _res(4.0, 8.0, 1.0)
    same = latency.sentence(res, "tokens", dict.fromkeys(latency.KEYS, "C++ engine"))
    other = latency.sentence(res, "tokens", {"dense": "nn.LSTM", "masked": "PyTorch loop",
                                              "skipped": "C++ loop"})
    assert "PyTorch loop" not in same and "(a PyTorch loop, against nn.LSTM)" in other
