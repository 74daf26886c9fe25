"""Sequence classifier: a (Skip) RNN whose last state feeds a linear layer, as in the Skip RNN
paper's MNIST set-up (Sec. 4.3: "the last hidden state is fed into a linear classifier")."""
from __future__ import annotations

from torch import Tensor, nn

from skimviz import cost
from skimviz.models.skip_rnn import SkipRNN, SkipTrace
from skimviz.models.sru import SRU


class SequenceClassifier(nn.Module):
    """(B, T, I) → logits (B, C). ``skip=False`` builds the dense baseline on ``nn.GRU`` /
    ``nn.LSTM`` with the same sizes.

    ``forward(x, return_trace=False)`` returns logits, or (logits, trace) where the trace is a
    :class:`SkipTrace` (for the dense model every step is an update).
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "gru",
                 num_layers: int = 1, skip: bool = True):
        super().__init__()
        self.config = dict(input_size=input_size, hidden_size=hidden_size, num_classes=num_classes,
                           cell=cell, num_layers=num_layers, skip=skip)
        self.skip = skip
        if skip:
            self.rnn = SkipRNN(input_size, hidden_size, cell=cell, num_layers=num_layers)
        else:
            RNN = {"gru": nn.GRU, "lstm": nn.LSTM, "sru": SRU}[cell]
            self.rnn = RNN(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def step_flops(self) -> int:
        """FLOPs of one updating step (dense: one plain step)."""
        if self.skip:
            return self.rnn.flops_per_update()
        c = self.config
        return sum(cost.cell_flops(c["cell"], c["input_size"] if i == 0 else c["hidden_size"],
                                   c["hidden_size"]) for i in range(c["num_layers"]))

    def dense_flops(self, seq_len: int) -> int:
        """FLOPs of the dense baseline (no gate) on a sequence of ``seq_len`` steps, head included."""
        c = self.config
        step = sum(cost.cell_flops(c["cell"], c["input_size"] if i == 0 else c["hidden_size"],
                                   c["hidden_size"]) for i in range(c["num_layers"]))
        return seq_len * step + cost.linear_flops(c["hidden_size"], c["num_classes"])

    def forward(self, x: Tensor, return_trace: bool = False):
        if self.skip:
            out, _, trace = self.rnn(x, return_trace=True)
        else:
            out, _ = self.rnn(x)
            B, T = x.shape[:2]
            ones = x.new_ones(B, T)
            trace = SkipTrace(ones, ones, ones * self.step_flops())
        logits = self.head(out[:, -1])
        if return_trace:
            trace.flops[:, -1] += cost.linear_flops(self.head.in_features, self.head.out_features)
            return logits, trace
        return logits

    def set_threshold(self, theta: float) -> None:
        if self.skip:
            self.rnn.update_threshold = theta


from skimviz.models.clip_classifier import ClipClassifier  # noqa: E402  (registered here, defined there)
from skimviz.models.text_classifier import TextClassifier  # noqa: E402

ARCHITECTURES = {"SequenceClassifier": SequenceClassifier, "ClipClassifier": ClipClassifier,
                 "TextClassifier": TextClassifier}
from skimviz.models.transkimmer import TranskimmerClassifier  # noqa: E402

ARCHITECTURES["TranskimmerClassifier"] = TranskimmerClassifier


def build(architecture: str, config: dict) -> nn.Module:
    """Instantiate a model from a card's ``architecture`` and ``config`` (no code from the card)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**config)
