"""The Skim-RNN page's default model shows the mechanism: at its card's θ it skims some tokens and
reads others, and reads label-bearing words far more often than function words."""
import json
from pathlib import Path

import pytest
import torch

from skimviz.data import text as textdata
from skimviz.models.text_classifier import TextClassifier
from skimviz.tasks import skim_text

CARD = Path(__file__).resolve().parents[1] / "pretrained" / "skim-lstm-sst2" / "card.json"
TWIN = CARD.parents[1] / "lstm-sst2" / "card.json"


def test_polarity_lexicon_finds_the_separating_words():
    texts = ["a great film", "great fun", "a dull film", "dull and slow", "the film"] * 20
    labels = [1, 1, 0, 0, 1] * 20
    lex = skim_text.polarity_lexicon(texts, labels, size=3, min_count=10)
    assert lex["great"] > 0 > lex["dull"]
    assert "a" not in lex and "the" not in lex and "and" not in lex   # function words never
    assert len(lex) == 3


def test_word_class_read_rates_counts_reads_per_class():
    torch.manual_seed(0)
    vocab = textdata.Vocab(["<pad>", "<unk>", "the", "great", "dull", "film"])
    model = TextClassifier(len(vocab.itos), 4, 6, 2, 2, skim=True)
    model.rnn.force = "read"
    ids = [vocab.encode(["the", "great", "film"]), vocab.encode(["dull", "the"])]
    r = skim_text.word_class_read_rates(model, vocab, ids, {"great": 2.0, "dull": -1.0})
    assert r["all"] == {"read_rate": 1.0, "tokens": 5}
    assert r["function_words"]["tokens"] == 2 and r["positive_words"]["tokens"] == 1
    model.rnn.force = "skim"
    r = skim_text.word_class_read_rates(model, vocab, ids, {"great": 2.0, "dull": -1.0})
    assert r["all"]["read_rate"] == 0.0 and r["negative_words"]["read_rate"] == 0.0


def test_shipped_default_skims_some_and_reads_sentiment_words():
    card = json.loads(CARD.read_text())
    twin = json.loads(TWIN.read_text())
    m = card["metrics"]
    assert 0.30 <= m["valid_skim_rate"] <= 0.85                  # both states visible
    assert m["valid_flop_r"] >= 2.0
    assert m["valid_accuracy"] >= twin["metrics"]["valid_accuracy"] - 0.01
    rates = card["read_rates"]
    assert rates["threshold"] == card["skim_threshold"]
    function = rates["function_words"]["read_rate"]
    sentiment = [rates[k] for k in ("positive_words", "negative_words")]
    both = sum(r["read_rate"] * r["tokens"] for r in sentiment) / sum(r["tokens"] for r in sentiment)
    assert both >= 3 * function, (both, function)
    # the card's default θ is one of the swept points, and its metrics are that point's
    point = next(p for p in card["threshold_sweep"] if p["threshold"] == card["skim_threshold"])
    assert point["skim_rate"] == pytest.approx(m["valid_skim_rate"])
    assert point["accuracy"] == pytest.approx(m["valid_accuracy"])
