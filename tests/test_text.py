"""Tokenizer (matches SST-2's tokenisation on free text), vocabulary, batching, loaders."""
import os
from pathlib import Path

import pytest

from skimviz.data import text as T

DATA = Path(os.environ.get("SKIMVIZ_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.mark.parametrize("raw, tokens", [
    ("It's a charming, often affecting journey.",
     ["it", "'s", "a", "charming", ",", "often", "affecting", "journey", "."]),
    ("I CAN'T believe it DOESN'T work", ["i", "ca", "n't", "believe", "it", "does", "n't", "work"]),
    ("won't they'll we're I'm you'd", ["wo", "n't", "they", "'ll", "we", "'re", "i", "'m", "you", "'d"]),
    ("Curly \u2019quotes\u2019 don\u2019t matter", ["curly", "'", "quotes", "'", "do", "n't", "matter"]),
    ('He said "wow" (really)', ["he", "said", "``", "wow", "''", "(", "really", ")"]),
    ("Wait... what?!", ["wait", "...", "what", "?", "!"]),
    ("an old-fashioned, well-made film by Mr. Smith", ["an", "old-fashioned", ",", "well-made",
                                                       "film", "by", "mr.", "smith"]),
    ("great\u2014really", ["great", "--", "really"]),
    ("a clich\u00e9 \U0001F600", ["a", "clich\u00e9", "\U0001F600"]),
    ("line one<br />line two", ["line", "one", "line", "two"]),
    ("10,000 times, 3.5 stars", ["10,000", "times", ",", "3.5", "stars"]),
    ("<script>alert(1)</script>", ["<", "script", ">", "alert", "(", "1", ")", "<", "/", "script", ">"]),
    ("", []),
])
def test_tokenize(raw, tokens):
    assert T.tokenize(raw) == tokens


def test_tokenize_limits_very_long_input():
    toks = T.tokenize("good " * 10_000, max_tokens=400)
    assert len(toks) == 400
    with pytest.raises(TypeError):
        T.tokenize(None)


def test_vocab_round_trip_and_unknown_words():
    v = T.Vocab.build([["a", "b", "a"], ["c", "a", "b"]], min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "a", "b"]
    assert v.encode(["a", "zzz", "b"]) == [2, 1, 3]
    assert v.known(["a", "zzz"]) == [True, False]
    assert T.Vocab.from_text(v.to_text()).itos == v.itos
    with pytest.raises(ValueError):
        T.Vocab(["a", "b"])


def test_pad_batch():
    x, lengths = T.pad_batch([[5, 6, 7], [], [8]], max_len=2)
    assert x.tolist() == [[5, 6], [1, 0], [8, 0]]
    assert lengths.tolist() == [2, 1, 1]


@pytest.mark.skipif(not (DATA / "sst2" / "dev.tsv").is_file(), reason="needs ../shared/data/sst2")
def test_tokenizer_reproduces_sst2_tokenisation():
    """On SST-2 dev, re-tokenising the (already tokenised) text gives the same tokens, so typed
    text meets the vocabulary the model learnt."""
    texts, labels = T.load_sst2(DATA, "dev")
    assert len(texts) == 872 and set(labels) == {0, 1}
    same = sum(T.tokenize(t) == t.split() for t in texts)
    assert same / len(texts) > 0.99
