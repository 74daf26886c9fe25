"""Every term a page uses, in plain words, for a tooltip (``<abbr title=…>``) or a metric's help.

Keys are the words as they appear on the pages; :func:`term` renders one with its tooltip.
"""
from __future__ import annotations

from skimviz.safety import escape_html

GLOSSARY = {
    "FLOPs": "Floating-point operations: the multiplications and additions a model does. "
             "A count of work, not of time.",
    "conditional computation": "A network that decides, input by input, how much of itself to "
                               "run: it can skip a step, read a word cheaply, or drop a word "
                               "for the layers that follow.",
    "FLOP reduction": "How many times fewer FLOPs the skipping model needs than the same model "
                      "without skipping, on the same input (2× = half the work).",
    "Flop-R": "FLOP reduction: dense FLOPs divided by the skimming model's FLOPs (the Skim-RNN "
              "paper's name for it).",
    "dense": "The same network without any skipping: it computes every step, word or layer.",
    "dense twin": "A network of the same size trained without skipping, to compare against.",
    "SRU": "Simple recurrent unit: a recurrent cell whose matrix products read only the inputs, "
           "never the previous state, so they run for all steps at once; only cheap "
           "element-wise work is left step by step.",
    "update rate p": "The share of steps a skipping cell computes in full: p = 1/4 computes one "
                     "step in four and skips the rest (for the Skim-RNN: the share of words "
                     "read by the big cell).",
    "masked": "Computing everything and then zeroing the skipped part. It gives the same "
              "answer as skipping, but saves no time.",
    "skipped for real": "The skipped work is not executed at all, so it can save time.",
    "latency": "Wall-clock time for one input (batch size 1), measured here, now.",
    "Skip RNN": "A recurrent network with a learned gate before every step: it either reads the "
                "input and updates its memory, or skips the input and keeps its memory as it was.",
    "state update": "A step where the recurrent network changes its memory using the input.",
    "update gate": "The Skip RNN's switch u_t: 1 = read this step and update the memory, "
                   "0 = skip it and keep the memory as it was.",
    "ũ": "ũ_t, the update probability: it grows at every skipped step and the gate opens "
         "(u_t = 1) once it reaches θ.",
    "θ": "The threshold the gate compares with. A higher θ skips more.",
    "λ": "The weight of the cost of computing in training. A larger λ teaches the model to "
         "skip more, usually at some cost in accuracy.",
    "skim": "Read a word with the small, cheap LSTM only (the big one is not run).",
    "read": "Read a word with the big LSTM (full cost).",
    "p_skim": "The model's probability of skimming this word; it skims when p_skim is above θ.",
    "prune": "Drop a token from all later layers: they no longer compute anything for it.",
    "layer": "One of the Transformer's stacked blocks; every token kept goes through each.",
    "accuracy": "Share of validation examples the model classifies correctly.",
    "validation": "Examples held out from training, used to measure the model honestly.",
    "SST-2": "Stanford Sentiment Treebank: short movie-review sentences labelled positive or "
             "negative.",
    "MNIST": "Handwritten digits, 28 × 28 pixels; here read one pixel at a time.",
    "attribution": "How much each input (pixel or word) changed the prediction, measured by "
                   "perturbing or differentiating the model.",
}


def definition(word: str) -> str:
    """The plain-words definition of ``word`` (KeyError when it has none: add it here)."""
    return GLOSSARY[word]


def term(word: str, shown: str | None = None) -> str:
    """``word`` (or ``shown``) as HTML with its definition as a tooltip."""
    return (f'<abbr class="skv-term" title="{escape_html(definition(word))}">'
            f'{escape_html(shown or word)}</abbr>')
