"""Models: one per file, each mirroring the ``torch.nn`` recurrent layers."""
from .classifier import ARCHITECTURES, SequenceClassifier, build
from .skip_rnn import SkipRNN, SkipTrace, budget_loss
from .sru import SRU, SRUCell

__all__ = ["SRU", "SRUCell", "SkipRNN", "SkipTrace", "budget_loss", "SequenceClassifier", "ARCHITECTURES", "build"]
