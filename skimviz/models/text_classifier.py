"""Text classifier for the Skim-RNN experiments: embedding → Skim-LSTM (or a plain ``nn.LSTM``
of the same size, the dense baseline) → the last real token's state → linear layer. This is the
paper's classification set-up ("a linear + softmax classifier on the last hidden state"); we have
no GloVe, so the embeddings are learnt from scratch (see the README)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from skimviz import cost
from skimviz.models.skim_rnn import SkimRNN, SkimTrace


class TextClassifier(nn.Module):
    """tokens (B, T) int64 (0 = padding) and lengths (B,) → logits (B, C).

    ``skim=False`` builds the dense baseline on ``nn.LSTM`` (oneDNN) with the same sizes.
    ``forward(tokens, lengths=None, return_trace=False)``; the trace is a :class:`SkimTrace`
    (for the dense model no token is skimmed).
    """

    def __init__(self, vocab_size: int, embed_dim: int = 100, hidden_size: int = 100,
                 small_size: int = 10, num_classes: int = 2, skim: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size,
                           small_size=small_size, num_classes=num_classes, skim=skim,
                           dropout=dropout)
        self.skim = skim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        if skim:
            self.rnn = SkimRNN(embed_dim, hidden_size, small_size)
        else:
            self.rnn = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def set_threshold(self, theta: float) -> None:
        """θ of the skim decision (skim when p_skim > θ); no-op for the dense baseline."""
        if self.skim:
            self.rnn.skim_threshold = theta

    def dense_flops_per_token(self) -> int:
        """One token of the plain LSTM of the same size: the numerator of Flop-R."""
        c = self.config
        return cost.lstm_cell_flops(c["embed_dim"], c["hidden_size"])

    def forward(self, tokens: Tensor, lengths: Optional[Tensor] = None,
                return_trace: bool = False):
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (B, T), got shape {tuple(tokens.shape)}")
        B, T = tokens.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        x = self.drop(self.embed(tokens))                                    # (B, T, E)
        if self.skim:
            _, (h, _), trace = self.rnn(x, lengths=lengths, return_trace=True)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            _, (h, _) = self.rnn(packed)
            valid = (torch.arange(T)[None] < lengths[:, None].cpu()).to(x.dtype)
            zeros = torch.zeros_like(valid)
            trace = SkimTrace(zeros, zeros, valid, valid * self.dense_flops_per_token())
        logits = self.head(self.drop(h[-1]))                                 # (B, C)
        return (logits, trace) if return_trace else logits
