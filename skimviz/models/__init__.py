"""Models: one per file, each mirroring the ``torch.nn`` recurrent layers."""
from .classifier import ARCHITECTURES, SequenceClassifier, build
from .skip_rnn import SkipRNN, SkipTrace, budget_loss
from .skim_rnn import SkimRNN, SkimTrace, skim_loss
from .sru import SRU, SRUCell
from .text_classifier import TextClassifier

__all__ = ["SkimRNN", "SkimTrace", "skim_loss", "TextClassifier", "SRU", "SRUCell", "SkipRNN", "SkipTrace", "budget_loss", "SequenceClassifier", "ARCHITECTURES", "build"]
