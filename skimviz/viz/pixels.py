"""The MNIST page's figures: a digit, its used/skipped pixel map (the paper's Fig. 4), ũ_t as a
heat map, class probabilities, attributions beside the skip decisions, and the Fig. 4 grid.
Plus two pure helpers of its live training (the stratified split, the counters).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skimviz.viz.common import (
    INK_WASH,
    OTHER_COLOR,
    PREDICTED_COLOR,
    SKIPPED_COLOR,
    USED_COLOR,
    _base_layout,
    _square_axes,
    as_grid,
    flops_ratio,
    format_flops,
    ink,
)


def digit_figure(image: np.ndarray, title: Optional[str] = None, height: int = 260) -> go.Figure:
    """The input digit in grey levels (white ink on black, like MNIST)."""
    z = ink(image, 28)
    fig = go.Figure(go.Heatmap(z=z, zmin=0.0, zmax=1.0, colorscale="gray", showscale=False,
                               hovertemplate="row %{y}, column %{x}<br>intensity %{z:.2f}"
                                             "<extra></extra>"))
    return _square_axes(_base_layout(fig, height, title), 28)


def used_skipped_figure(image: np.ndarray, update: Sequence[float], side: int,
                        update_prob: Optional[Sequence[float]] = None,
                        title: Optional[str] = None, height: int = 360) -> go.Figure:
    """The paper's Fig. 4: each pixel coloured by whether the state was updated there (red) or
    copied (blue). Two layers: trace 0 is the update mask (``z`` = u reshaped to side × side, a
    two-colour scale), trace 1 a white wash over the background (``z`` = 1 − intensity), so the
    digit's ink shows in the full colour. Two legend-only traces name the colours with counts."""
    mask = as_grid(update, side)
    if not np.isin(mask, (0.0, 1.0)).all():
        raise ValueError("update must hold only 0 and 1")
    level = ink(image, side)
    T = side * side
    step = np.arange(T).reshape(side, side)
    prob = as_grid(update_prob, side) if update_prob is not None else np.full((side, side), np.nan)
    custom = np.stack([step, level, prob], axis=-1)
    text = np.where(mask > 0.5, "used (state updated)", "skipped (state copied)")
    used = int(mask.sum())
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=mask, zmin=0.0, zmax=1.0, showscale=False, name="update",
        colorscale=[[0.0, SKIPPED_COLOR], [0.5, SKIPPED_COLOR], [0.5, USED_COLOR],
                    [1.0, USED_COLOR]],
        customdata=custom, text=text,
        hovertemplate="step %{customdata[0]} (row %{y}, column %{x})<br>%{text}<br>"
                      "intensity %{customdata[1]:.2f}<br>ũ %{customdata[2]:.3f}<extra></extra>"))
    fig.add_trace(go.Heatmap(
        z=1.0 - level, zmin=0.0, zmax=1.0, showscale=False, name="ink", hoverinfo="skip",
        colorscale=[[0.0, "rgba(255,255,255,0)"], [1.0, f"rgba(255,255,255,{INK_WASH})"]]))
    for name, colour in ((f"used: {used}", USED_COLOR), (f"skipped: {T - used}", SKIPPED_COLOR)):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(symbol="square", size=12, color=colour),
                                 hoverinfo="skip"))
    fig = _square_axes(_base_layout(fig, height, title), side)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.01,
                                                   xanchor="center", x=0.5),
                      margin=dict(b=36))
    return fig


def update_prob_figure(update_prob: Sequence[float], side: int, theta: Optional[float] = None,
                       title: Optional[str] = None, height: int = 360) -> go.Figure:
    """ũ_t, the accumulated update probability at every pixel (u_t = [ũ_t ≥ θ])."""
    z = as_grid(update_prob, side)
    step = np.arange(side * side).reshape(side, side)
    label = "ũ" if theta is None else f"ũ (θ = {theta:.2f})"
    fig = go.Figure(go.Heatmap(
        z=z, zmin=0.0, zmax=1.0, colorscale="Viridis", customdata=step, name="ũ",
        colorbar=dict(title=dict(text=label, side="right"), thickness=12, len=0.9),
        hovertemplate="step %{customdata} (row %{y}, column %{x})<br>ũ %{z:.3f}<extra></extra>"))
    return _square_axes(_base_layout(fig, height, title), side)


def probabilities_figure(probabilities: Sequence[float], true_label: Optional[int] = None,
                         height: int = 260) -> go.Figure:
    """Bar chart of the 10 class probabilities; the predicted class in green."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.size != 10:
        raise ValueError(f"expected 10 probabilities, got {p.size}")
    pred = int(p.argmax())
    colours = [PREDICTED_COLOR if i == pred else OTHER_COLOR for i in range(10)]
    fig = go.Figure(go.Bar(x=[str(i) for i in range(10)], y=p, marker_color=colours,
                           hovertemplate="class %{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(range=[0, 1], title_text="probability", gridcolor="#eeeeee")
    fig.update_xaxes(title_text="class", type="category")
    if true_label is not None:
        fig.add_annotation(x=str(int(true_label)), y=1.0, text="true", showarrow=False,
                           yanchor="bottom", font=dict(size=11))
    return _base_layout(fig, height)


# ---------------------------------------------------------------------------------------------
def attribution_figure(attr: Sequence[float], side: int, update: Optional[Sequence[float]] = None,
                       k: Optional[int] = None, signed: bool = True, title: Optional[str] = None,
                       height: int = 360) -> go.Figure:
    """An attribution map: trace 0 is the heatmap (``z`` = attribution reshaped to side × side;
    a diverging scale centred on 0 when ``signed``, else |attribution| on a sequential one).
    With ``k``, trace 1 marks the top-k |attribution| positions (the positives of the used-AUC):
    a hollow square, black where the pixel was used and grey where it was skipped."""
    a = as_grid(attr, side)
    if not np.isfinite(a).all():
        raise ValueError("the attribution has non-finite values")
    step = np.arange(side * side).reshape(side, side)
    used = as_grid(update, side) if update is not None else np.full((side, side), np.nan)
    state = np.where(used > 0.5, "used", np.where(used < 0.5, "skipped", "?"))
    custom = np.stack([step, state], axis=-1)
    if signed:
        m = float(np.abs(a).max()) or 1.0
        z, zmin, zmax, scale = a, -m, m, "RdBu_r"
    else:
        z, zmin, zmax, scale = np.abs(a), 0.0, float(np.abs(a).max()) or 1.0, "Hot_r"
    fig = go.Figure(go.Heatmap(
        z=z, zmin=zmin, zmax=zmax, colorscale=scale, customdata=custom, name="attribution",
        colorbar=dict(title=dict(text="attribution" if signed else "|attribution|", side="right"),
                      thickness=12, len=0.9),
        hovertemplate="step %{customdata[0]} (row %{y}, column %{x})<br>%{customdata[1]}<br>"
                      "attribution %{z:.3g}<extra></extra>"))
    if k:
        flat = np.abs(a).reshape(-1)
        idx = np.argsort(-flat, kind="mergesort")[: int(k)]
        rows, cols = np.divmod(idx, side)
        u = used.reshape(-1)[idx]
        fig.add_trace(go.Scatter(
            x=cols, y=rows, mode="markers", name=f"top {int(k)} |attribution|",
            marker=dict(symbol="square-open", size=max(4, 220 // side),
                        color=["black" if v > 0.5 else "#9e9e9e" for v in u], line=dict(width=1)),
            hoverinfo="skip", showlegend=True))
    fig = _square_axes(_base_layout(fig, height, title), side)
    if k:
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.01, xanchor="center",
                                      x=0.5), margin=dict(b=36))
    return fig


def agreement_figure(summary: Dict[str, object], height: int = 320) -> go.Figure:
    """Agreement over a validation subset: one point per digit, x = fraction of pixels used (the
    chance level of the mass), y = share of |attribution| on used pixels (trace 0); the diagonal
    y = x (trace 1) is chance, points above it put more attribution on used pixels than chance."""
    x = np.asarray(summary["used_fraction"], dtype=np.float64)
    y = np.asarray(summary["mass_on_used"], dtype=np.float64)
    auc = np.asarray(summary["used_auc"], dtype=np.float64)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=x, y=y, mode="markers", name="one digit", customdata=auc,
        marker=dict(size=7, color=USED_COLOR, opacity=0.7),
        hovertemplate="used %{x:.0%} of pixels<br>attribution on used %{y:.0%}<br>"
                      "used-AUC %{customdata:.2f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (y = x)",
                             line=dict(color="#7f7f7f", dash="dash"), hoverinfo="skip"))
    fig.update_xaxes(title_text="fraction of pixels used", range=[0, 1.02], gridcolor="#eeeeee")
    fig.update_yaxes(title_text="share of |attribution| on used pixels", range=[0, 1.02],
                     gridcolor="#eeeeee")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.2,
                                                   xanchor="left", x=0.0))
    return _base_layout(fig, height)


def pixel_table(image: np.ndarray, side: int, update: Sequence[float],
                update_prob: Sequence[float], attr: Optional[Sequence[float]] = None
                ) -> List[Dict[str, object]]:
    """One row per step (the CSV export behind the maps): row, col, step, pixel value in [0, 1]
    as the model reads it, used (0/1), ũ and the attribution (None when not computed)."""
    level = ink(image, side).reshape(-1)
    u = as_grid(update, side).reshape(-1)
    p = as_grid(update_prob, side).reshape(-1)
    a = as_grid(attr, side).reshape(-1) if attr is not None else [None] * (side * side)
    return [{"row": t // side, "col": t % side, "step": t, "pixel": round(float(level[t]), 6),
             "used": int(u[t]), "u_tilde": round(float(p[t]), 6),
             "attribution": None if a[t] is None else float(a[t])}
            for t in range(side * side)]


def pixel_map_grid_figure(images: Sequence[np.ndarray], updates: Sequence[Sequence[float]],
                          side: int, titles: Optional[Sequence[str]] = None, cols: int = 10,
                          cell: int = 76) -> go.Figure:
    """The paper's Fig. 4 as a grid: one small used/skipped map per digit (trace 2k: the update
    mask as in :func:`used_skipped_figure`, red used and blue skipped; trace 2k + 1: the white
    wash over the background), with "N used" under each map (its x-axis title) and ``titles``
    above."""
    n = len(images)
    if n == 0 or len(updates) != n or (titles is not None and len(titles) != n):
        raise ValueError("one update mask (and title) per image is needed")
    cols = max(1, min(int(cols), n))
    rows = -(-n // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles or [""] * n),
                        horizontal_spacing=0.012, vertical_spacing=0.34 / rows)
    scale = [[0.0, SKIPPED_COLOR], [0.5, SKIPPED_COLOR], [0.5, USED_COLOR], [1.0, USED_COLOR]]
    wash = [[0.0, "rgba(255,255,255,0)"], [1.0, f"rgba(255,255,255,{INK_WASH})"]]
    for k, (image, update) in enumerate(zip(images, updates)):
        mask = as_grid(update, side)
        if not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError("update must hold only 0 and 1")
        r, c = divmod(k, cols)
        fig.add_trace(go.Heatmap(z=mask, zmin=0, zmax=1, colorscale=scale, showscale=False,
                                 hoverinfo="skip", name=f"digit {k}"), row=r + 1, col=c + 1)
        fig.add_trace(go.Heatmap(z=1.0 - ink(image, side), zmin=0, zmax=1, colorscale=wash,
                                 showscale=False, hoverinfo="skip"), row=r + 1, col=c + 1)
        fig.update_xaxes(title_text=f"{int(mask.sum())} used", title_standoff=2,
                         title_font=dict(size=11), row=r + 1, col=c + 1)
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False,
                     range=[-0.5, side - 0.5], constrain="domain")
    fig.update_yaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False,
                     autorange="reversed", constrain="domain")
    for k in range(n):  # each map square: its y axis follows its own x axis
        suffix = "" if k == 0 else str(k + 1)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_annotations(font_size=12)
    _base_layout(fig, rows * (cell + 44) + 10)
    fig.update_layout(margin=dict(l=4, r=4, t=24, b=4))
    return fig


def counters(prediction: Dict[str, object]) -> Dict[str, str]:
    """The counters' texts for one :func:`skimviz.tasks.mnist.predict_digit` result."""
    ratio = flops_ratio(float(prediction["flops"]), float(prediction["dense_flops"]))
    return {
        "updates": f"{int(prediction['updates'])} / {int(prediction['steps'])}",
        "update_rate": f"{float(prediction['update_rate']):.0%} of steps",
        "flops_ratio": f"{ratio:.2f}× fewer" if ratio >= 1 else f"{1 / ratio:.2f}× more",
        "flops": f"{format_flops(float(prediction['flops']))} vs "
                 f"{format_flops(float(prediction['dense_flops']))} dense",
    }


def live_split(labels: Sequence[int] | np.ndarray, valid_per_class: int = 100
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Stratified split of the bundled digits for live training: the last ``valid_per_class``
    digits of every class are held out for validation, the rest train. (The bundled 5,000 are
    sorted by class, 500 each, so "the last 1,000" would be only 8s and 9s.)"""
    y = np.asarray(labels).reshape(-1)
    valid = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        if len(idx) <= valid_per_class:
            raise ValueError(f"class {c} has only {len(idx)} digits")
        valid[idx[-valid_per_class:]] = True
    return np.nonzero(~valid)[0], np.nonzero(valid)[0]
