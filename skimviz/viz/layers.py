"""Figures for the Transkimmer page: pure functions from numbers to HTML strings and plotly
figures (no Streamlit here), tested on their data.

* :func:`token_html` — the words of the input coloured by the layer before which the Transkimmer
  skimmed (pruned) them, in the style of the paper's Table 5; words kept to the last layer are
  black and bold. For WordPiece models each word is its pieces joined back together, coloured by
  its latest-pruned piece. Every piece of user text is escaped
  (:func:`skimviz.viz.tokens.escape_text`), so ``<script>`` shows as text.
* :func:`legend_html` — the colour bar for :func:`token_html`.
* :func:`remaining_tokens_figure` — the share of tokens entering each layer for this input over
  the card's average validation curve (the paper's Fig. 4).
* :func:`lambda_figure` — validation accuracy against FLOP reduction across the λ sweep, the
  shipped model marked (the paper's Fig. 3 trade-off).

Layers are counted from 1 in everything shown. The model's ``prune_layer`` is 0-based: a token
with ``prune_layer`` = i was dropped by the predictor in front of layer i + 1, so it went
through i layers; ``prune_layer`` = L (the number of layers) means kept to the end.
"""
from __future__ import annotations

import json
import math
from typing import Dict, List, Optional, Sequence

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from skimviz.viz.common import _base_layout
from skimviz.viz.tokens import block_html, span_html

KEPT_COLOR = "#000000"      # kept to the last layer (paper Table 5: black)
UNKNOWN_STYLE = "text-decoration: underline dotted #9e9e9e; text-underline-offset: 3px;"
INPUT_COLOR = "#d62728"     # this input's curve
AVERAGE_COLOR = "#7f7f7f"   # the card's validation average
SWEEP_COLOR = "#1f77b4"
SHIPPED_COLOR = "#ff7f0e"
PAPER_COLOR = "#9467bd"
# Pruned early → light and warm, pruned late → dark and cool, kept → black: the darker a word,
# the more layers worked on it.
_SCALE = "Plasma"
_EARLY, _LATE = 0.88, 0.12   # 6 layers still six distinct hues (yellow … violet … blue)


def layer_colors(layers: int) -> List[str]:
    """One colour per prune layer 0 … L−1 (``rgb(…)`` strings), from light/warm (pruned before
    layer 1) to dark/cool (pruned before the last layer)."""
    if layers < 1:
        raise ValueError("layers must be at least 1")
    if layers == 1:
        return sample_colorscale(_SCALE, [_EARLY])
    return sample_colorscale(_SCALE, [_EARLY + (_LATE - _EARLY) * i / (layers - 1)
                                      for i in range(layers)])


def _ink_on(rgb: str) -> str:
    """Black or white text, whichever reads better on the ``rgb(r, g, b)`` background."""
    r, g, b = (float(v) for v in rgb[rgb.index("(") + 1:rgb.index(")")].split(","))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def color_of(prune_layer: int, layers: int) -> str:
    """The colour of a token pruned before (0-based) layer ``prune_layer``; black when it was kept
    to the end (``prune_layer`` ≥ L)."""
    p = int(prune_layer)
    if p >= layers:
        return KEPT_COLOR
    return layer_colors(layers)[max(0, p)]


def describe_layer(prune_layer: int, layers: int) -> str:
    """“skimmed before layer 3 (went through 2 of 4 layers)” / “kept to the end (all 4
    layers)”."""
    p = int(prune_layer)
    if p >= layers:
        return f"kept to the end (all {layers} layers)"
    p = max(0, p)
    return (f"skimmed before layer {p + 1} (went through {p} of {layers} layer"
            f"{'' if layers == 1 else 's'})")


def word_rows(result: Dict[str, object], known: Optional[Sequence[bool]] = None
              ) -> List[Dict[str, object]]:
    """One row per word of :func:`skimviz.tasks.transkimmer.explain`'s result: index, word,
    pieces (space-joined), prune layer (0-based, L = kept), layers it went through, kept to the
    end (0/1), known (when given). The CSV export's rows."""
    L = int(result["layers"])
    words = result["words"]
    if known is not None and len(known) != len(words):
        raise ValueError("known must have one entry per word")
    rows = []
    for i, w in enumerate(words):
        p = int(w["prune_layer"])
        row = {"index": i, "word": str(w["word"]), "pieces": " ".join(map(str, w["pieces"])),
               "prune_layer": p, "layers_run": min(max(p, 0), L), "kept_to_end": int(p >= L)}
        if known is not None:
            row["known"] = int(bool(known[i]))
        rows.append(row)
    return rows


def token_html(words: Sequence[Dict[str, object]], layers: int,
               known: Optional[Sequence[bool]] = None, font_size: float = 1.15,
               block_class: str = "skimviz-tk-tokens") -> str:
    """The words as one HTML block (no blank line, so Markdown leaves it whole): each word a
    ``<span class="skimviz-tk skimviz-tk-L{k}">`` (k = 1-based layer before which it was
    skimmed) or ``<span class="skimviz-tk skimviz-tk-kept">``, coloured by :func:`color_of`,
    plus ``skimviz-unknown`` for a word the vocabulary does not know; the layer (and the
    WordPieces with their own layers) in the ``title`` (hover)."""
    if known is not None and len(known) != len(words):
        raise ValueError("known must have one entry per word")
    parts = []
    for i, w in enumerate(words):
        p = int(w["prune_layer"])
        kept = p >= layers
        cls = "skimviz-tk " + ("skimviz-tk-kept" if kept else f"skimviz-tk-L{max(0, p) + 1}")
        style = f"color: {color_of(p, layers)}; font-weight: {700 if kept else 500};"
        tip = describe_layer(p, layers)
        pieces = list(w.get("pieces") or [])
        if len(pieces) > 1:
            pl = list(w.get("piece_layers") or [])
            tip += "; pieces: " + ", ".join(
                f"{pc} ({'kept' if int(q) >= layers else f'before layer {max(0, int(q)) + 1}'})"
                for pc, q in zip(pieces, pl))
        if known is not None and not known[i]:
            cls += " skimviz-unknown"
            style += " " + UNKNOWN_STYLE
            tip += "; not in the vocabulary"
        parts.append(span_html(cls, style, tip, w["word"]))
    return block_html(parts, font_size, block_class)


def legend_html(layers: int, show_unknown: bool = False) -> str:
    """The colour bar for :func:`token_html`: one swatch per layer, then black for kept."""
    cells = []
    for k, c in enumerate(layer_colors(layers), start=1):
        cells.append(f'<span style="display: inline-block; min-width: 4.2em; padding: 2px 6px; '
                     f'background: {c}; color: {_ink_on(c)}; text-align: center;">layer {k}'
                     '</span>')
    cells.append(f'<span style="display: inline-block; min-width: 4.2em; padding: 2px 6px; '
                 f'background: {KEPT_COLOR}; color: white; text-align: center;">kept</span>')
    unknown = (f' &nbsp;·&nbsp; <span style="{UNKNOWN_STYLE}">dotted underline</span>: a word '
               'the vocabulary does not know' if show_unknown else "")
    return ('<div class="skimviz-tk-legend" style="font-size: 0.9rem;">'
            '<div style="display: flex; flex-wrap: wrap; gap: 2px 0; margin: 4px 0;">' + "".join(cells) + "</div>"
            "Colour = the layer before which the word was skimmed (it went through the layers "
            "to the left of its swatch); <b>black</b>: kept to the last layer" + unknown
            + "</div>")


def trace_json(result: Dict[str, object], meta: Dict[str, object]) -> str:
    """One input's explanation (prediction, per-piece and per-word prune layers, tokens kept per
    layer, FLOPs) as JSON, with ``meta`` (model, text…) first."""
    keys = ("label", "probability", "probabilities", "layers", "flops", "dense_flops",
            "flops_reduction", "tokens_kept_per_layer", "tokens", "prune_layer", "words")
    out = dict(meta)
    out.update({k: result[k] for k in keys if k in result})
    return json.dumps(out, indent=1, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
def _message(fig: go.Figure, text: str, height: int, y: float = 0.5) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=y, xref="paper", yref="paper",
                       font=dict(size=13, color="#555555"))
    return _base_layout(fig, height)


def remaining_tokens_figure(kept_per_layer: Sequence[float], n_tokens: int,
                            average: Optional[Sequence[float]] = None,
                            height: int = 320) -> go.Figure:
    """Share of the tokens entering each layer (the paper's Fig. 4).

    Traces, in order: 0 this input (``kept_per_layer[i] / n_tokens``, counts in the hover),
    1 the card's average over the validation set (``kept_fraction_per_layer``) when given. x is
    the layer, 1 … L."""
    fig = go.Figure()
    if not kept_per_layer or n_tokens <= 0:
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _message(fig, "no tokens", height)
    L = len(kept_per_layer)
    xs = list(range(1, L + 1))
    counts = [float(k) for k in kept_per_layer]
    fig.add_trace(go.Scatter(
        x=xs, y=[c / n_tokens for c in counts], mode="lines+markers", name="this input",
        customdata=[[int(round(c)), n_tokens] for c in counts],
        line=dict(color=INPUT_COLOR, width=3), marker=dict(size=9, color=INPUT_COLOR),
        hovertemplate="layer %{x}<br>%{customdata[0]} of %{customdata[1]} tokens "
                      "(%{y:.0%})<extra>this input</extra>"))
    if average:
        avg = [float(a) for a in average][:L]
        fig.add_trace(go.Scatter(
            x=xs[:len(avg)], y=avg, mode="lines+markers",
            name="average (dev set)",  # short: the chart is narrow beside a slide
            line=dict(color=AVERAGE_COLOR, dash="dash"), marker=dict(size=7, color=AVERAGE_COLOR),
            hovertemplate="layer %{x}<br>%{y:.1%} of the tokens on average"
                          "<extra>validation</extra>"))
    fig.update_xaxes(title_text="layer", tickmode="array", tickvals=xs, range=[0.7, L + 0.3],
                     gridcolor="#eeeeee")
    fig.update_yaxes(title_text="tokens entering the layer", tickformat=".0%", range=[0, 1.05],
                     gridcolor="#eeeeee")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.25,
                                                   xanchor="left", x=0.0))
    return _base_layout(fig, height)


_PAPER_LABELS = {"bert_base": "BERT-base", "transkimmer": "Transkimmer"}


def _paper_points(paper: Optional[Dict[str, object]]) -> List[Dict[str, object]]:
    """The card's ``paper`` entries with an accuracy and a FLOP reduction (1 when missing)."""
    if not isinstance(paper, dict):
        return []
    out = []
    for key, v in paper.items():
        if isinstance(v, dict) and "accuracy" in v:
            out.append({"name": key, "accuracy": float(v["accuracy"]),
                        "flops_reduction": float(v.get("flops_reduction", 1.0))})
    return out


def lambda_figure(sweep: Sequence[Dict[str, object]],
                  shipped: Optional[Dict[str, float]] = None,
                  paper: Optional[Dict[str, object]] = None, height: int = 340) -> go.Figure:
    """Validation accuracy against FLOP reduction across λ (the card's ``lambda_sweep``).

    Traces, in order: 0 the sweep (one point per λ, labelled, sorted by λ) when not empty, then
    the shipped model (a star: the sweep's point with ``shipped`` true, else ``shipped`` =
    {lambda, accuracy, flops_reduction} from the card), then the paper's points (crosses). With an
    empty sweep the figure says so and shows the shipped model alone. A point with
    ``second_stage`` true (a model fine-tuned further after its λ run, e.g. ``--fixed-policy``)
    is the star only, not a point of the λ curve."""
    every = sorted((p for p in sweep if p.get("accuracy") is not None
                    and p.get("flops_reduction") is not None), key=lambda p: float(p["lambda"]))
    pts = [p for p in every if not p.get("second_stage")]
    fig = go.Figure()
    if pts:
        fig.add_trace(go.Scatter(
            x=[float(p["flops_reduction"]) for p in pts], y=[float(p["accuracy"]) for p in pts],
            mode="lines+markers+text", name="λ sweep (validation)",
            text=[f"λ={float(p['lambda']):g}" for p in pts], textposition="top center",
            textfont=dict(size=10), customdata=[float(p["lambda"]) for p in pts],
            line=dict(color=SWEEP_COLOR), marker=dict(size=8, color=SWEEP_COLOR),
            hovertemplate="λ = %{customdata:g}<br>FLOP reduction %{x:.2f}×<br>accuracy "
                          "%{y:.3f}<extra></extra>"))
    star = next((p for p in every if p.get("shipped")), None) or shipped
    if star and star.get("accuracy") is not None and star.get("flops_reduction") is not None:
        lam = star.get("lambda")
        name = "shipped model" + (f" (λ = {float(lam):g})" if lam is not None else "")
        fig.add_trace(go.Scatter(
            x=[float(star["flops_reduction"])], y=[float(star["accuracy"])], mode="markers",
            name=name, marker=dict(symbol="star", size=18, color=SHIPPED_COLOR,
                                   line=dict(width=1, color="black")),
            hovertemplate=f"{name}<br>FLOP reduction %{{x:.2f}}×<br>accuracy %{{y:.3f}}"
                          "<extra></extra>"))
    pp = _paper_points(paper)
    if pp:
        fig.add_trace(go.Scatter(
            x=[p["flops_reduction"] for p in pp], y=[p["accuracy"] for p in pp],
            mode="markers+text", name="the paper (BERT-base, Table 3)",
            text=[_PAPER_LABELS.get(p["name"], p["name"]) for p in pp],
            textposition="bottom center", textfont=dict(size=10, color=PAPER_COLOR),
            marker=dict(symbol="x", size=11, color=PAPER_COLOR),
            hovertemplate="paper: %{text}<br>FLOP reduction %{x:.2f}×<br>accuracy "
                          "%{y:.3f}<extra></extra>"))
    if not pts:
        fig.add_annotation(text="no λ sweep in this model's card (it was not run)",
                           showarrow=False, x=0.5, y=0.95, xref="paper", yref="paper",
                           font=dict(size=13, color="#555555"))
    if not fig.data:
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _base_layout(fig, height)
    ys = [y for t in fig.data for y in t.y]
    lo, hi = min(ys), max(ys)
    pad = max(0.02, 0.1 * (hi - lo))
    xs = [x for t in fig.data for x in t.x]
    fig.update_xaxes(title_text="FLOP reduction (× fewer FLOPs than the dense encoder)",
                     range=[min(0.8, min(xs) - 0.2), max(xs) * 1.1 + 0.2], gridcolor="#eeeeee")
    fig.update_yaxes(title_text="validation accuracy", range=[lo - pad, hi + pad],
                     gridcolor="#eeeeee", tickformat=".0%")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.25,
                                                   xanchor="left", x=0.0))
    return _base_layout(fig, height)


def shipped_point(card: Dict[str, object]) -> Optional[Dict[str, float]]:
    """The shipped model's (λ, dev accuracy, FLOP reduction) from its card, or None."""
    m = card.get("metrics") or {}
    acc, red = m.get("dev_accuracy"), m.get("flops_reduction")
    if acc is None or red is None or not all(math.isfinite(float(v)) for v in (acc, red)):
        return None
    return {"lambda": card.get("lambda"), "accuracy": float(acc), "flops_reduction": float(red)}
