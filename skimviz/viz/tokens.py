"""Figures for the Skim-RNN text page: pure functions from numbers to HTML strings and plotly
figures (no Streamlit here), tested on their data.

* :func:`token_html` — the text as the model read it, in the style of the Skim-RNN paper's
  Table 3: read tokens (the big LSTM ran) bold and dark, skimmed tokens (the small LSTM ran)
  light blue; tokens the vocabulary does not know are underlined with a dotted line. Every
  piece of user text is escaped (``html.escape`` plus Markdown's active characters), so
  ``<script>`` shows as text.
* :func:`accuracy_flop_r_figure` — validation accuracy against Flop-R as θ moves (the paper's
  Fig. 5), the current θ marked and this text's own Flop-R drawn as a vertical line.
* :func:`speedup_skim_figure` — measured speed-up against skim rate, Flop-R as the bound (the
  paper's Fig. 7), from :func:`skimviz.bench.skim_speed.speedup_vs_skim` rows.
"""
from __future__ import annotations

import html
import json
import math
from typing import Dict, List, Optional, Sequence

import plotly.graph_objects as go

from skimviz.viz.common import (
    OTHER_COLOR,
    _base_layout,
    _empty_figure,
    current_theta_trace,
)
from skimviz.viz.tradeoff import PAPER_COLOR, sweep_at

READ_COLOR = "#14213d"      # read by the big LSTM: bold, dark
SKIM_COLOR = "#7fb2e5"      # skimmed by the small LSTM: light blue
UNKNOWN_STYLE = "text-decoration: underline dotted #9e9e9e; text-underline-offset: 3px;"
READ_STYLE = f"color: {READ_COLOR}; font-weight: 700;"
SKIM_STYLE = f"color: {SKIM_COLOR}; font-weight: 400;"
DENSE_COLOR = "#1f1f1f"
ALL_READ_COLOR = "#ff7f0e"
SKIM_POINT_COLOR = "#d62728"

# Characters that Markdown (or Streamlit's Markdown extensions: math, emoji and icon short codes)
# could still act on after html.escape: written as numeric character references.
_MD_ACTIVE = {c: f"&#{ord(c)};" for c in "$:*_`[]\\~#|{}!"}


def escape_text(text: str) -> str:
    """User text made inert inside HTML that ``st.markdown(..., unsafe_allow_html=True)``
    renders: ``html.escape`` (``< > & " '``) then Markdown's active characters as entities."""
    # one character at a time: escaping the entities html.escape writes (its "&#x27;" holds a
    # "#") would show them as text
    return "".join(_MD_ACTIVE.get(c) or html.escape(c, quote=True) for c in str(text))


def span_html(cls: str, style: str, tip: str, text: str) -> str:
    """One token as ``<span class=... style=... title=tip>text</span>``, ``tip`` and ``text``
    escaped by :func:`escape_text` (``cls`` and ``style`` are the caller's own, never user
    text)."""
    return (f'<span class="{cls}" style="{style}" title="{escape_text(tip)}">'
            f'{escape_text(text)}</span>')


def block_html(parts: Sequence[str], font_size: float, block_class: str) -> str:
    """Token spans as one HTML block (no blank line, so Markdown leaves it whole)."""
    return (f'<div class="{block_class}" style="font-size: {font_size}rem; line-height: 1.9; '
            f'word-wrap: break-word;">' + " ".join(parts) + "</div>")


def token_spans(tokens: Sequence[str], skim: Sequence[int],
                known: Optional[Sequence[bool]] = None,
                p_skim: Optional[Sequence[float]] = None) -> List[Dict[str, object]]:
    """One record per token: text, decision ("read" / "skimmed"), known, p_skim."""
    n = len(tokens)
    if len(skim) != n or (known is not None and len(known) != n) or \
            (p_skim is not None and len(p_skim) != n):
        raise ValueError("tokens, skim, known and p_skim must have the same length")
    return [{"index": i, "token": str(tokens[i]),
             "decision": "skimmed" if int(round(float(skim[i]))) else "read",
             "known": True if known is None else bool(known[i]),
             "p_skim": None if p_skim is None else float(p_skim[i])} for i in range(n)]


def token_html(tokens: Sequence[str], skim: Sequence[int],
               known: Optional[Sequence[bool]] = None,
               p_skim: Optional[Sequence[float]] = None, font_size: float = 1.15,
               block_class: str = "skimviz-tokens") -> str:
    """The tokens as one HTML block (no blank line, so Markdown leaves it whole): each token a
    ``<span class="skimviz-read">`` or ``<span class="skimviz-skim">`` (plus
    ``skimviz-unknown``), its decision and p_skim in the ``title`` (hover). ``block_class``:
    the block's class (a second strip of the same text gets its own)."""
    parts = []
    for r in token_spans(tokens, skim, known, p_skim):
        read = r["decision"] == "read"
        cls = "skimviz-read" if read else "skimviz-skim"
        style = READ_STYLE if read else SKIM_STYLE
        tip = "read (big LSTM)" if read else "skimmed (small LSTM)"
        if r["p_skim"] is not None:
            tip += f", p_skim = {r['p_skim']:.2f}"
        if not r["known"]:
            cls += " skimviz-unknown"
            style += " " + UNKNOWN_STYLE
            tip += ", not in the vocabulary"
        parts.append(span_html(cls, style, tip, r["token"]))
    return block_html(parts, font_size, block_class)


def attribution_html(tokens: Sequence[str], scores: Sequence[float], signed: bool = False,
                     font_size: float = 1.15, tips: Optional[Sequence[str]] = None,
                     block_class: str = "skimviz-attr-tokens") -> str:
    """The tokens coloured by attribution, as one HTML block like :func:`token_html` (every
    token escaped the same way): each token a ``<span class="skimviz-attr">`` whose background
    opacity is |score| / max |score|; red pushes towards the predicted class and blue away when
    ``signed`` (Integrated Gradients), orange for an unsigned score (Saliency). The score (and
    ``tips``) in the ``title`` (hover)."""
    if len(scores) != len(tokens) or (tips is not None and len(tips) != len(tokens)):
        raise ValueError("tokens, scores and tips must have the same length")
    vals = [float(v) if math.isfinite(float(v)) else 0.0 for v in scores]
    top = max((abs(v) for v in vals), default=0.0) or 1.0
    parts = []
    for i, (t, v) in enumerate(zip(tokens, vals)):
        rgb = ("214, 39, 40" if v >= 0 else "31, 119, 180") if signed else "255, 127, 14"
        alpha = min(1.0, abs(v) / top)
        tip = f"attribution {v:+.4f}" if signed else f"attribution {v:.4f}"
        tip += f" ({alpha:.0%} of the largest)"
        if tips is not None:
            tip += f"; {tips[i]}"
        parts.append(span_html("skimviz-attr", f"background: rgba({rgb}, {0.85 * alpha:.3f}); "
                               "padding: 1px 2px; border-radius: 3px;", tip, t))
    return block_html(parts, font_size, block_class)


def legend_html() -> str:
    """The colour key for :func:`token_html`."""
    return ('<div class="skimviz-legend" style="font-size: 0.9rem;">'
            f'<span style="{READ_STYLE}">read</span> (the big LSTM ran) &nbsp;·&nbsp; '
            f'<span style="{SKIM_STYLE}">skimmed</span> (only the small LSTM ran) '
            f'&nbsp;·&nbsp; <span style="{UNKNOWN_STYLE}">dotted underline</span>: '
            'a word the vocabulary does not know (read as &lt;unk&gt;)</div>')


def token_rows(analysis: Dict[str, object]) -> List[Dict[str, object]]:
    """Per-token rows for the CSV export: index, token, decision, p_skim, known."""
    return [{"index": r["index"], "token": r["token"], "decision": r["decision"],
             "p_skim": None if r["p_skim"] is None else round(r["p_skim"], 6),
             "known": int(r["known"])}
            for r in token_spans(analysis["tokens"], analysis["skim"], analysis.get("known"),
                                 analysis.get("p_skim"))]


def trace_json(analysis: Dict[str, object], meta: Dict[str, object]) -> str:
    """The analysis of one text (decisions, p_skim, prediction, FLOPs) as JSON, with ``meta``
    (model, θ…) first."""
    keys = ("label", "probability", "probabilities", "skim_rate", "flops", "dense_flops",
            "flop_r", "truncated", "tokens", "known", "skim", "p_skim")
    out = dict(meta)
    out.update({k: analysis[k] for k in keys if k in analysis})
    return json.dumps(out, indent=1, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
def sweep_point(sweep: Sequence[Dict[str, float]], theta: float) -> Optional[Dict[str, object]]:
    """Accuracy, Flop-R and skim rate at θ on a card's ``threshold_sweep``: "exact" at a sweep
    point, "interpolated" (linear in θ) between two, "nearest" outside the swept range
    (:func:`skimviz.viz.tradeoff.sweep_at`). None for an empty sweep."""
    return sweep_at(sweep, theta, {"accuracy": None, "flop_r": None, "skim_rate": math.nan})


def _paper_points(paper: Optional[Dict[str, object]], dataset: Optional[str]
                  ) -> List[Dict[str, object]]:
    """The card's ``paper`` reference points: ``{name: {accuracy, flop_r…}}`` as the training CLI
    writes it (one dataset), or the same per dataset (``{dataset: {...}}``). A point without a
    Flop-R is the dense LSTM (Flop-R 1)."""
    if not isinstance(paper, dict):
        return []
    if dataset and isinstance(paper.get(dataset), dict):
        paper = paper[dataset]
    out = []
    for key, v in paper.items():
        if isinstance(v, dict) and "accuracy" in v:
            out.append({"name": key, "accuracy": float(v["accuracy"]),
                        "flop_r": float(v.get("flop_r", 1.0))})
    return out


def accuracy_flop_r_figure(sweep: Sequence[Dict[str, float]], theta: float,
                           text_flop_r: Optional[float] = None,
                           paper: Optional[Dict[str, object]] = None,
                           dataset: Optional[str] = None, height: int = 320) -> go.Figure:
    """Validation accuracy against Flop-R across θ (the paper's Fig. 5).

    Traces, in order: 0 the sweep (one point per θ, labelled), 1 the current θ (a star, see
    :func:`sweep_point`), then — when given — this text's Flop-R at θ (a vertical dotted line)
    and the paper's reported points (crosses; the dense LSTM at Flop-R 1)."""
    pts = sorted(sweep, key=lambda s: float(s["threshold"]))
    fig = go.Figure()
    if not pts:
        return _empty_figure(fig, "this model's card has no θ sweep", height)
    xs = [float(s["flop_r"]) for s in pts]
    ys = [float(s["accuracy"]) for s in pts]
    ts = [float(s["threshold"]) for s in pts]
    rates = [float(s.get("skim_rate", math.nan)) for s in pts]
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="lines+markers+text", name="swept θ (validation)",
        text=[f"{t:g}" for t in ts], textposition="top center", textfont=dict(size=10),
        customdata=[[t, r] for t, r in zip(ts, rates)],
        line=dict(color=OTHER_COLOR), marker=dict(size=7, color=OTHER_COLOR),
        hovertemplate="θ = %{customdata[0]:g}<br>Flop-R %{x:.2f}×<br>skim rate "
                      "%{customdata[1]:.0%}<br>accuracy %{y:.3f}<extra></extra>"))
    m = sweep_point(pts, theta)
    assert m is not None
    fig.add_trace(current_theta_trace(m["flop_r"], m["accuracy"], theta, m["how"],
                                      "Flop-R %{x:.2f}×"))
    paper_pts = _paper_points(paper, dataset)
    y_all = ys + [p["accuracy"] for p in paper_pts]
    lo, hi = min(y_all), max(y_all)
    pad = max(0.02, 0.08 * (hi - lo))
    if text_flop_r is not None and math.isfinite(float(text_flop_r)):
        fr = float(text_flop_r)
        fig.add_trace(go.Scatter(
            x=[fr, fr], y=[lo - pad, hi + pad], mode="lines",
            name=f"this text at θ = {theta:.2f}: Flop-R {fr:.2f}×",
            line=dict(color=SKIM_POINT_COLOR, dash="dot", width=2), hoverinfo="name"))
    if paper_pts:
        fig.add_trace(go.Scatter(
            x=[p["flop_r"] for p in paper_pts], y=[p["accuracy"] for p in paper_pts],
            mode="markers", name="the paper (GloVe, Table 2)", text=[p["name"] for p in paper_pts],
            marker=dict(symbol="x", size=10, color=PAPER_COLOR),
            hovertemplate="paper %{text}<br>Flop-R %{x:.1f}×<br>accuracy %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="Flop-R (× fewer FLOPs than the plain LSTM)",
                     gridcolor="#eeeeee")
    fig.update_yaxes(title_text="validation accuracy", gridcolor="#eeeeee",
                     range=[lo - pad, hi + pad])
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.28,
                                                   xanchor="left", x=0.0))
    return _base_layout(fig, height)


def speedup_skim_figure(rows: Sequence[Dict[str, float]], height: int = 340,
                        title: Optional[str] = None) -> go.Figure:
    """Measured batch-1 speed-up against skim rate (the paper's Fig. 7).

    Traces, in order: 0 Flop-R at each measured θ (the bound: what the FLOP count alone
    promises, dashed), 1 the speed-up over the dense LSTM twin, 2 over the same Skim-LSTM with
    every token read, 3 no speed-up (1×, dotted). x is the skim rate in every trace."""
    pts = sorted(rows, key=lambda r: float(r["skim_rate"]))
    fig = go.Figure()
    xs = [float(r["skim_rate"]) for r in pts]
    ts = [float(r["threshold"]) for r in pts]
    fig.add_trace(go.Scatter(x=xs, y=[float(r["flop_r"]) for r in pts], mode="lines+markers",
                             name="Flop-R: the bound from FLOPs", customdata=ts,
                             line=dict(dash="dash", color=OTHER_COLOR),
                             marker=dict(size=6, color=OTHER_COLOR),
                             hovertemplate="θ = %{customdata:g}<br>skim rate %{x:.0%}<br>"
                                           "Flop-R %{y:.2f}×<extra></extra>"))
    for key, name, color in (("speedup_vs_dense", "measured vs the dense LSTM twin", DENSE_COLOR),
                             ("speedup_vs_all_read",
                              "measured vs the same Skim-LSTM reading every token",
                              ALL_READ_COLOR)):
        fig.add_trace(go.Scatter(x=xs, y=[float(r[key]) for r in pts], mode="lines+markers",
                                 name=name, customdata=ts, line=dict(color=color),
                                 marker=dict(size=9, color=color),
                                 hovertemplate="θ = %{customdata:g}<br>skim rate %{x:.0%}<br>"
                                               "speed-up %{y:.2f}×<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[1, 1], mode="lines", name="no speed-up (1×)",
                             line=dict(color="#bbbbbb", dash="dot", width=1), hoverinfo="skip"))
    fig.update_xaxes(title_text="skim rate (share of tokens skimmed)", range=[0, 1],
                     tickformat=".0%", gridcolor="#eeeeee")
    fig.update_yaxes(title_text="speed-up (×), batch 1", gridcolor="#eeeeee", rangemode="tozero")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.25,
                                                   xanchor="left", x=0.0))
    return _base_layout(fig, height, title)
