"""Models: one per file, each mirroring the ``torch.nn`` recurrent layers."""
from .classifier import ARCHITECTURES, SequenceClassifier, build
from .skip_rnn import SkipRNN, SkipTrace, budget_loss

__all__ = ["SkipRNN", "SkipTrace", "budget_loss", "SequenceClassifier", "ARCHITECTURES", "build"]
