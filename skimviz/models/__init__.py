"""Models: one per file, each mirroring the ``torch.nn`` recurrent layers."""
from skimviz.models.classifier import ARCHITECTURES, SequenceClassifier, build
from skimviz.models.skim_rnn import SkimRNN, SkimTrace, skim_loss
from skimviz.models.skip_rnn import SkipRNN, SkipTrace, budget_loss
from skimviz.models.sru import SRU, SRUCell
from skimviz.models.text_classifier import TextClassifier

__all__ = ["SkimRNN", "SkimTrace", "skim_loss", "TextClassifier", "SRU", "SRUCell", "SkipRNN", "SkipTrace", "budget_loss", "SequenceClassifier", "ARCHITECTURES", "build"]
