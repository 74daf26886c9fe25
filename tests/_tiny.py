"""Tiny checkpoints built in a test (no dataset, no shipped file): one per predict path —
an MNIST Skip GRU, a Skim-LSTM text model with its vocab.txt and a small Transkimmer."""
from pathlib import Path

import torch

from skimviz.data import text as textdata
from skimviz.models.text_classifier import TextClassifier
from skimviz.models.transkimmer import TranskimmerClassifier
from skimviz.tasks import mnist
from skimviz.tasks.transkimmer import CLS
from skimviz.training import checkpoint

WORDS = ["good", "bad", "film", "fun", "dull", "a", "the", "is", "!"]


def mnist_checkpoint(d: Path, name: str = "tiny-mnist") -> Path:
    torch.manual_seed(0)
    m = mnist.make_model("gru", hidden=4, skip=True)
    card = mnist.base_card(name, m, 7)
    return checkpoint.save(m, card, d / name)


def text_checkpoint(d: Path, name: str = "tiny-text", skim: bool = True) -> Path:
    torch.manual_seed(0)
    vocab = textdata.Vocab([textdata.PAD, textdata.UNK] + WORDS)
    m = TextClassifier(len(vocab), 8, 8, 2, 2, skim=skim)
    card = {"name": name, "task": "text-classification", "architecture": "TextClassifier",
            "config": m.config, "skim_threshold": 0.5, "dataset": "sst2",
            "input": {"max_tokens": 50, "vocab_file": "vocab.txt", "vocab_size": len(vocab)}}
    return checkpoint.save(m, card, d / name, extra_files={"vocab.txt": vocab.to_text()})


def transkimmer_checkpoint(d: Path, name: str = "tiny-tk") -> Path:
    torch.manual_seed(0)
    vocab = textdata.Vocab([textdata.PAD, textdata.UNK, CLS] + WORDS)
    m = TranskimmerClassifier(len(vocab), 16, 2, 2, 32, 128).eval()
    card = {"name": name, "task": "sst2-transkimmer", "architecture": "TranskimmerClassifier",
            "config": m.config,
            "input": {"tokenizer": "words", "file": "vocab.txt", "max_len": 128,
                      "lowercase": True}}
    return checkpoint.save(m, card, d / name, extra_files={"vocab.txt": vocab.to_text()})
