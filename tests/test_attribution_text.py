"""Attributions on text (skimviz.attribution.text): shapes, the agreement numbers on a model
whose logit depends on one token only (the answer is known), the Transkimmer's masking path,
and the set-level summary."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skimviz.attribution import text as AT
from skimviz.models.skim_rnn import SkimTrace
from skimviz.models.text_classifier import TextClassifier
from skimviz.models.transkimmer import TranskimmerClassifier


class _OneTokenRNN(nn.Module):
    """Stands in for the Skim-LSTM: h_n = the embedding of token ``pos``; records decisions."""

    def __init__(self, pos: int):
        super().__init__()
        self.pos = pos
        self.seen = None

    def forward(self, x, lengths=None, decisions=None, return_trace=False):
        self.seen = decisions
        h = x[:, self.pos]
        return x, (h[None], h[None])


class OneTokenModel(nn.Module):
    """A TextClassifier look-alike whose logit depends only on the token at ``pos``; its
    "inference trace" reads exactly the tokens in ``read``."""

    skim = True

    def __init__(self, pos: int, read, vocab=20, dim=6):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.drop = nn.Identity()
        self.rnn = _OneTokenRNN(pos)
        self.head = nn.Linear(dim, 2)
        self.read = torch.tensor(read, dtype=torch.float32)

    def forward(self, tokens, lengths=None, return_trace=False):
        _, (h, _) = self.rnn(self.embed(tokens))
        logits = self.head(h[-1])
        skim = (1 - self.read)[None].expand(tokens.shape[0], -1)
        ones = torch.ones_like(skim)
        trace = SkimTrace(skim, skim, ones, ones)
        return (logits, trace) if return_trace else logits


IDS = [3, 5, 7, 2, 9, 11, 4, 6, 8, 10]


@pytest.mark.parametrize("method", ["ig", "saliency"])
def test_one_token_model_known_answer(method):
    read = [0, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    model = OneTokenModel(pos=3, read=read)
    r = AT.attribute_skim(model, IDS, method, steps=16)
    a = np.asarray(r["attr"])
    assert a.shape == (10,) and np.isfinite(a).all()
    assert a[3] != 0 and (np.delete(a, 3) == 0).all()        # only the token that matters
    assert r["read"] == read and r["skim"] == [1 - v for v in read]
    assert torch.equal(model.rnn.seen[0], torch.tensor([1 - v for v in read]))  # replayed
    assert r["mass_on_used"] == 1.0 and r["used_fraction"] == pytest.approx(0.2)
    # k = 1: the top token is read; of the 9 others, 8 skimmed (ranked below) and 1 read (tie)
    assert r["k"] == 1 and r["used_auc"] == pytest.approx(8.5 / 9)
    if method == "ig":  # completeness: the scores add up to logit(text) − logit(zeros)
        with torch.no_grad():
            x = torch.tensor([IDS])
            diff = model(x)[0, r["label"]] - model(torch.zeros_like(x))[0, r["label"]]
        assert a.sum() == pytest.approx(float(diff), abs=1e-4)
    else:
        assert (a >= 0).all()
    # the token that matters skimmed: no mass on the read tokens
    miss = AT.attribute_skim(OneTokenModel(pos=3, read=[1] * 3 + [0] + [1] * 6), IDS, method, 8)
    assert miss["mass_on_used"] == 0.0 and miss["used_auc"] == 0.0


def test_agreement_text_edge_cases():
    g = AT.agreement_text([1.0, 0.0, 0.0], [1, 1, 1])
    assert g["mass_on_used"] == 1.0 and g["used_fraction"] == 1.0 and np.isnan(g["used_auc"])
    assert np.isnan(AT.agreement_text([2.0], [1])["used_auc"])
    assert np.isnan(AT.agreement_text([0.0, 0.0], [0, 1])["mass_on_used"])
    with pytest.raises(ValueError):
        AT.agreement_text([1.0, 2.0], [1])
    with pytest.raises(ValueError):
        AT.attribute_skim(OneTokenModel(0, [1] * 10), IDS, "shap")


@pytest.fixture(scope="module")
def skim_model():
    torch.manual_seed(1)
    m = TextClassifier(30, 8, 16, 4, 2, skim=True).eval()
    with torch.no_grad():
        m.rnn.decide.weight.mul_(8.0)
    return m


@pytest.mark.parametrize("method", ["ig", "saliency"])
def test_skim_lstm_attribution(skim_model, method):
    ids = [4, 9, 2, 17, 5, 22, 8, 3, 11, 6, 14, 7]
    r = AT.attribute_skim(skim_model, ids, method, steps=8)
    assert len(r["attr"]) == len(ids) == len(r["read"]) and np.isfinite(r["attr"]).all()
    assert not skim_model.training
    with torch.no_grad():
        logits = skim_model(torch.tensor([ids]))
    np.testing.assert_allclose(r["logits"], logits[0].numpy(), atol=1e-6)
    assert r["label"] == int(logits[0].argmax())
    # skimmed tokens still reach the output through the small cell
    skimmed = np.asarray(r["skim"]) == 1
    assert skimmed.any() and (np.abs(np.asarray(r["attr"]))[skimmed] > 0).any()
    assert 0.0 <= r["mass_on_used"] <= 1.0 and r["seconds"] < 5
    s = AT.skim_agreement_over_texts(skim_model, [ids, ids[:5], [3, 4]], method, steps=4)
    assert s["n"] == 3 and len(s["mass_on_used"]) == 3
    assert s["mass_on_used"][0] == pytest.approx(r["mass_on_used"], rel=1e-3, abs=1e-6) \
        if method == "saliency" else np.isfinite(s["mass_on_used_mean"])


@pytest.fixture(scope="module")
def tk_model():
    torch.manual_seed(2)
    m = TranskimmerClassifier(30, 16, 3, 2, 32, 32, dropout=0.0)
    for g in m.gate:  # predictors that drop tokens at every layer (seeded: a mix of layers)
        g.net[-1].weight.data.normal_(0, 1.0)
        g.net[-1].bias.data.copy_(torch.tensor([0.0, 1.0]))
    return m.eval()


@pytest.mark.parametrize("method", ["ig", "saliency"])
def test_transkimmer_attribution(tk_model, method):
    ids = [2] + [5, 9, 12, 7, 3, 20, 11, 8, 14, 6, 17, 4]
    words = [None] + list(range(12))
    r = AT.attribute_transkimmer(tk_model, ids, words, method, steps=8)
    a = np.asarray(r["attr"])
    assert a.shape == (13,) and np.isfinite(a).all() and len(r["word_attr"]) == 12
    np.testing.assert_allclose(r["masked_logits"], r["logits"], atol=1e-5)  # same decisions
    assert r["kept"] == [int(p >= 2) for p in r["word_prune_layer"]]
    assert r["word_prune_layer"] == r["prune_layer"][1:]
    assert 0 < sum(r["kept"]) < 12                 # a mix, so the AUC is defined
    assert 0.0 <= r["used_auc"] <= 1.0
    if method == "ig":
        assert a[0] == 0                           # [CLS] is its own baseline
    else:  # a token dropped before the first layer is never attended to
        dropped = np.asarray(r["prune_layer"]) == 0
        assert dropped.any() and (a[dropped] < 1e-4 * a.max()).all()
    s = AT.transkimmer_agreement_over_texts(
        tk_model, [{"ids": ids, "words": words}, {"ids": ids[:6], "words": words[:6]}],
        method, steps=4)
    assert s["n"] == 2 and s["min_layers"] == 2


def test_token_rows():
    rows = AT.token_rows(["a", "b"], [1.0, -3.0], [1, 0], "read", {"p_skim": [0.1, 0.9]})
    assert rows[1] == {"index": 1, "token": "b", "attribution": -3.0, "abs_share": 0.75,
                       "read": 0, "p_skim": 0.9}
    with pytest.raises(ValueError):
        AT.token_rows(["a"], [1.0, 2.0], [1, 0])
