"""Presentation mode's guided sequences: a few slides per page saying what to look at.

Pure data (no Streamlit). Each slide has a ``title``, a Markdown ``text`` and optionally a
``state``: widget values the page applies when the slide is shown (e.g. ``{"theta": 0.8}`` moves
the MNIST page's θ slider, which is hidden in presentation mode).
"""
from __future__ import annotations

from typing import Dict, List

SLIDES: Dict[str, List[dict]] = {
    "skip-rnn-mnist": [
        {"title": "One pixel at a time",
         "text": "The Skip GRU reads the black-and-white digit as 784 pixels, row by row. "
                 "Before each pixel a learned gate decides: **use** the pixel and update its "
                 "memory, or **skip** it and keep the memory as it was, which costs almost "
                 "nothing.",
         "state": {"theta": 0.5}},
        {"title": "Red used, blue skipped",
         "text": "In the map, red pixels were used and blue ones skipped; the strong colours "
                 "are the digit's ink, the pale ones the empty background. **Pixels used** "
                 "counts the red ones, **FLOP reduction** says how much work skipping saved.",
         "state": {"theta": 0.5}},
        {"title": "Raise θ: fewer pixels",
         "text": "θ is now 0.8 (the slider under the digit): the same weights, a stricter gate. "
                 "Fewer pixels turn red and the FLOP reduction grows. The **Accuracy vs θ** tab "
                 "shows what that costs over the validation digits.",
         "state": {"theta": 0.8}},
        {"title": "Saved FLOPs, saved time?",
         "text": "**Time** is measured on this server, now, for this digit: skipping for real "
                 "against the dense GRU. The sentence under the map says which was faster; the "
                 "**Time** tab adds a masked run that computes every pixel.",
         "state": {"theta": 0.5}},
    ],
    "skim-rnn-text": [
        {"title": "Two readers, one memory",
         "text": "A big LSTM and a tiny one share one memory. Before each word a small layer "
                 "looks at the word and the memory so far and decides: **read** it with the big "
                 "LSTM, or **skim** it with the tiny one, which costs about a tenth as much.",
         "state": {"skim_theta": 0.8}},
        {"title": "Dark words were read",
         "text": "Dark, bold words went through the big LSTM; light blue ones were only "
                 "skimmed. The sentence under the metrics says which kinds of words this model "
                 "reads most on the validation set. Hover a word to see its p_skim.",
         "state": {"skim_theta": 0.8}},
        {"title": "Lower θ: skim more",
         "text": "θ is the skim threshold: a word is skimmed when p_skim > θ. Lower it and more "
                 "words turn blue and the FLOP reduction grows; the “Accuracy vs θ” tab shows "
                 "what that costs on the validation set.",
         "state": {"skim_theta": 0.5}},
        {"title": "Saved FLOPs, saved time?",
         "text": "FLOPs count arithmetic; the Time metric is the clock. The “Time” tab compares "
                 "the dense LSTM, a masked run that computes every word and throws the skimmed "
                 "part away, and skimming for real, and says which is faster.",
         "state": {"skim_theta": 0.8}},
    ],
    "transkimmer-text": [
        {"title": "Every layer may drop tokens",
         "text": "Before each transformer layer a small predictor looks at every token and "
                 "decides: keep it for this layer and the next ones, or let it **leave** with "
                 "the representation it has now. [CLS], which the classifier reads, always stays."},
        {"title": "Colour = where a word left",
         "text": "Each word is coloured by the layer before which it was dropped; black words "
                 "went through every layer. The earlier a word leaves, the fewer layers paid "
                 "for it — attention is quadratic in the tokens left, so dropping early saves "
                 "the most."},
        {"title": "The curve under the text",
         "text": "The remaining-token curve shows how many tokens enter each layer for this "
                 "text, over the average of the validation set. A steep first drop means the "
                 "model decided early what it needed."},
        {"title": "FLOPs vs the clock",
         "text": "The FLOP reduction counts arithmetic on real tokens only (padding never counts "
                 "as saved). The measured latency shows that tiny layers on a few tokens still "
                 "pay a fixed cost per operation, so time falls less than FLOPs."},
    ],
    "dashboard": [
        {"title": "Every model is a point",
         "text": "Each model shipped with the app is one point: its accuracy on held-out digits "
                 "(up is better) against the FLOPs it spends per digit (left is cheaper). Red "
                 "circles skip pixels; the black square reads every pixel.",
         "state": {"dash_task": "mnist", "dash_axis": "flops"}},
        {"title": "The paper beside ours",
         "text": "Purple crosses and the open square are the paper's own numbers, counted with "
                 "the same FLOP rules. The vertical gap shows how far a short CPU training is "
                 "from the paper's 600 epochs.",
         "state": {"dash_task": "mnist", "dash_axis": "flops"}},
        {"title": "θ is a free knob",
         "text": "The dotted grey line is one skipping model at other thresholds θ: the same "
                 "weights trade accuracy for FLOPs without any retraining. The orange ring marks "
                 "the best trade-off, named in the sentence under the chart.",
         "state": {"dash_task": "mnist", "dash_axis": "flops"}},
        {"title": "FLOPs or time?",
         "text": "Now the cost is **measured time**: every model timed at batch 1 on this server, "
                 "just now. Fewer FLOPs do not always mean less time; read the sentence under "
                 "the chart to see whether the saving survived.",
         "state": {"dash_task": "mnist", "dash_axis": "latency_ms"}},
    ],
    "home": [
        {"title": "Not every step deserves the same work",
         "text": "A recurrent network normally runs the same cell on every pixel, sample or "
                 "word. Conditional computation lets the model decide, step by step, how much "
                 "work the input deserves: **skip** the step, **skim** it with a small cell, or "
                 "**drop** the token for the layers that follow."},
        {"title": "One page per system",
         "text": "Each card opens one system on real data: which steps the model used (red or "
                 "dark) and which it skipped (blue or light), with the same colours on every "
                 "page. Each page has its own short guided sequence."},
        {"title": "FLOPs saved, time saved?",
         "text": "Every page puts two numbers side by side: the FLOPs the model saved (counted) "
                 "and the time it saved (measured on this machine). They are rarely the same — "
                 "the Speed lab shows why."},
    ],
    "speed-lab": [
        {"title": "FLOPs are not time",
         "text": "Each row is one recurrent cell reading a 784-step sequence at batch 1. The "
                 "grey diamond says how many times fewer FLOPs it needs than nn.LSTM, the red "
                 "dot how many times faster it really ran. Where the two sit apart, time did "
                 "not follow the arithmetic.",
         "state": {"sl_rate": 0.25}},
        {"title": "Why SRU is fast",
         "text": "SRU has no matrix product on its previous state: its products read only the "
                 "inputs and run for all steps at once, and the loop that is left is cheap "
                 "element-wise work. With one input feature per step it also needs far fewer "
                 "FLOPs than nn.LSTM: its grey diamond sits far to the right, and its red dot "
                 "shows how much of that saving this server turned into time.",
         "state": {"sl_rate": 0.25}},
        {"title": "Skipping saves time only if the loop jumps",
         "text": "The Skip GRU at p = 1/4 computes one step in four. Compare its red dot with "
                 "the Skip GRU at p = 1, the same cell computing every step: the gap between "
                 "the two is the time skipping saved at batch 1, where the loop jumps straight "
                 "to the next update. The **Skipping vs its bound** tab puts it beside the 1/p "
                 "line the FLOPs promise.",
         "state": {"sl_rate": 0.25}},
        {"title": "Fewer updates, p = 1/10",
         "text": "p is now 1/10: press **Run benchmark**. FLOPs fall tenfold, the time less: "
                 "every step, skipped or not, still pays the loop's bookkeeping (the update "
                 "probability grows, the state is copied), so the measured speed-up stays "
                 "below 10×.",
         "state": {"sl_rate": 0.1}},
    ],
    "skip-rnn-signals": [
        {"title": "A gate before every step",
         "state": {"signals_task": "frequency"},
         "text": "The figure is a sine wave as the Skip GRU read it, one sample per millisecond. "
                 "**Red dots** are the samples it read (its memory was updated); along the grey "
                 "line between them it skipped: the memory was copied and nothing ran. The "
                 "numbers above count the reads and the FLOPs saved."},
        {"title": "Press ▶ Play",
         "state": {"signals_task": "frequency"},
         "text": "Play the figure. The lower panel is ũ, the update probability: after each read "
                 "it restarts low, grows at every skipped sample, and when it reaches θ (dotted "
                 "line) the gate opens and the next sample is read (Eq. 2–5)."},
        {"title": "Why so few reads?",
         "state": {"signals_task": "frequency"},
         "text": "Training charged λ for every read (Eq. 8). A sine wave is smooth, so a few "
                 "well-spaced samples tell its period. Pick a shipped model with a smaller λ "
                 "under **Model** and it reads more."},
        {"title": "Does skipping save time?",
         "state": {"signals_task": "frequency"},
         "text": "Under the figure, **Time it** runs this wave three ways at batch 1: the plain "
                 "GRU, the Skip GRU computing everything and masking (as in training), and "
                 "skipping for real. The sentence under the times says which wins here, and why."},
        {"title": "Frames the CNN never saw",
         "state": {"signals_task": "frames"},
         "text": "The **Digit clips** task: bright frames with a red border went through the "
                 "CNN; dimmed frames with a blue border were skipped, so at batch 1 they were "
                 "never encoded. Most skipped frames repeat the one before."},
    ],
}


def slides(page: str) -> List[dict]:
    """The slides for ``page`` (an empty list for a page without a guided sequence)."""
    return [dict(s) for s in SLIDES.get(page, [])]


def clamp_step(step: int, page: str) -> int:
    """A slide index within ``page``'s sequence (0 when it has none)."""
    n = len(SLIDES.get(page, []))
    return 0 if n == 0 else max(0, min(n - 1, int(step)))
