"""Figures for the app: pure functions from numbers to plotly figures (no Streamlit here).

Every chart the pages draw is built here so that its data can be unit-tested: the used/skipped
map's ``z`` is exactly the update mask reshaped to side × side, used pixels are red and skipped
ones blue (the colours of the Skip RNN paper's Fig. 4), the θ marker on the sweep chart sits where
:func:`sweep_marker` says, and so on.

A few small helpers for the app's live training (the stratified split of the bundled digits and
the numbers shown in the counters) live at the end; they are pure as well.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

USED_COLOR = "#d62728"     # red: the state was updated with this pixel (u_t = 1)
SKIPPED_COLOR = "#1f77b4"  # blue: the state was copied, the pixel was skipped (u_t = 0)
PREDICTED_COLOR = "#2ca02c"
OTHER_COLOR = "#9e9e9e"
MARKER_COLOR = "#ff7f0e"
# Background (no ink) pixels are washed out towards white by this much, so the digit's ink shows
# in the full used/skipped colour and the empty canvas in a pale one.
INK_WASH = 0.75

_FONT = dict(family="sans-serif", size=12)


def _base_layout(fig: go.Figure, height: int, title: Optional[str] = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      font=_FONT, title=dict(text=title) if title else None,
                      paper_bgcolor="white", plot_bgcolor="white")
    return fig


def _empty_figure(fig: go.Figure, text: str, height: int) -> go.Figure:
    """``fig`` with no axes and ``text`` in its middle (nothing to plot)."""
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, height)


def _square_axes(fig: go.Figure, side: int) -> go.Figure:
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False,
                     range=[-0.5, side - 0.5],
                     constrain="domain")
    fig.update_yaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False,
                     autorange="reversed",
                     scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


# ---------------------------------------------------------------------------------------------
def as_grid(values: Sequence[float] | np.ndarray, side: int) -> np.ndarray:
    """A per-step sequence (scan-line order, length side²) as a (side, side) float array."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size != side * side:
        raise ValueError(f"expected {side * side} values for a {side}×{side} map, got {a.size}")
    return a.reshape(side, side)


def ink(image: np.ndarray, side: int = 28) -> np.ndarray:
    """The digit as the model sees it: (side, side) intensities in [0, 1] (2×2 mean-pooled when
    side is 14, exactly like :func:`skimviz.data.mnist.to_sequence`)."""
    img = np.asarray(image, dtype=np.float64)
    if img.shape != (28, 28):
        raise ValueError(f"expected a 28×28 digit, got shape {img.shape}")
    img = img / 255.0
    if side == 28:
        return img
    if 28 % side:
        raise ValueError("side must divide 28 (28, 14, 7)")
    k = 28 // side
    return img.reshape(side, k, side, k).mean(axis=(1, 3))


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


def to_csv(rows: Sequence[Dict[str, object]]) -> str:
    """Rows of dicts (same keys) as CSV text; None becomes an empty cell."""
    import csv
    import io

    if not rows:
        return ""
    fields = list(dict.fromkeys(k for r in rows for k in r))  # every key, first-seen order
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
def sweep_at(sweep: Sequence[Dict[str, float]], theta: float,
             columns: Dict[str, Optional[float]]) -> Optional[Dict[str, object]]:
    """The ``columns`` of a card's ``threshold_sweep`` at θ (``{column: default}``, None: the
    column is required), with ``threshold`` = θ, ``how`` and a ``note``.

    ``how`` is "exact" (θ is a sweep point), "interpolated" (linear in θ between the two sweep
    points around it) or "nearest" (θ outside the swept range: the nearest end point is used).
    Returns None for an empty sweep (the dense model has none).
    """
    pts = sorted(({"threshold": float(s["threshold"]),
                   **{k: float(s[k] if d is None else s.get(k, d)) for k, d in columns.items()}}
                  for s in sweep), key=lambda p: tuple(p.values()))
    if not pts:
        return None
    theta = float(theta)
    lo, hi = pts[0]["threshold"], pts[-1]["threshold"]
    for p in pts:
        if math.isclose(p["threshold"], theta, abs_tol=1e-9):
            return {**p, "threshold": theta, "how": "exact",
                    "note": f"sweep point θ = {p['threshold']:g}"}
    if theta < lo or theta > hi:
        p = pts[0] if theta < lo else pts[-1]
        return {**p, "threshold": theta, "how": "nearest",
                "note": f"θ is outside the swept range {lo:g}–{hi:g}; nearest sweep point "
                        f"θ = {p['threshold']:g} marked"}
    for a, b in zip(pts, pts[1:]):
        if a["threshold"] <= theta <= b["threshold"]:
            w = (theta - a["threshold"]) / (b["threshold"] - a["threshold"])
            return {"threshold": theta, **{k: a[k] + w * (b[k] - a[k]) for k in columns},
                    "how": "interpolated",
                    "note": f"interpolated between sweep points θ = {a['threshold']:g} and "
                            f"θ = {b['threshold']:g}"}
    raise AssertionError("unreachable")  # pragma: no cover


def sweep_marker(sweep: Sequence[Dict[str, float]], theta: float) -> Optional[Dict[str, object]]:
    """Where θ sits on a card's ``threshold_sweep``: accuracy and mean updates at θ
    (:func:`sweep_at`: exact, interpolated or nearest; None for an empty sweep)."""
    return sweep_at(sweep, theta, {"accuracy": None, "updates": None})


def spaced_labels(xs: Sequence[float], ys: Sequence[float], labels: Sequence[str],
                  gap: float = 0.08) -> List[str]:
    """``labels`` with those blanked whose point lies within ``gap`` (a share of each axis's
    range) of an already labelled point in both x and y: their texts would overlap."""
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    wx = (float(np.ptp(x)) if len(x) else 0.0) or 1.0
    wy = (float(np.ptp(y)) if len(y) else 0.0) or 1.0
    kept: List[int] = []
    out = []
    for i, text in enumerate(labels):
        clash = any(abs(x[i] - x[j]) < gap * wx and abs(y[i] - y[j]) < gap * wy for j in kept)
        out.append("" if clash else str(text))
        if not clash:
            kept.append(i)
    return out


def threshold_sweep_figure(sweep: Sequence[Dict[str, float]], theta: float,
                           seq_len: Optional[int] = None, height: int = 300) -> go.Figure:
    """Validation accuracy against mean pixels read as θ moves (trace 0, one point per swept θ,
    labelled with θ where the labels do not overlap: :func:`spaced_labels`) with the current θ
    marked (trace 1, see :func:`sweep_marker`); the legend on top."""
    pts = sorted(sweep, key=lambda s: float(s["threshold"]))
    fig = go.Figure()
    if not pts:
        return _empty_figure(fig, "this model's card has no θ sweep", height)
    xs = [float(s["updates"]) for s in pts]
    ys = [float(s["accuracy"]) for s in pts]
    ts = [float(s["threshold"]) for s in pts]
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="lines+markers+text", name="θ on the validation digits",
        text=spaced_labels(xs, ys, [f"{t:g}" for t in ts]),
        textposition="top center", textfont=dict(size=11), customdata=ts,
        line=dict(color="#7f7f7f"), marker=dict(size=7, color="#7f7f7f"), cliponaxis=False,
        hovertemplate="θ = %{customdata:g}<br>pixels read %{x:.1f}<br>accuracy %{y:.3f}"
                      "<extra></extra>"))
    m = sweep_marker(pts, theta)
    assert m is not None
    label = f"current θ = {theta:.2f} ({m['how']})"
    fig.add_trace(go.Scatter(
        x=[m["updates"]], y=[m["accuracy"]], mode="markers", name=label,
        marker=dict(symbol="star", size=16, color=MARKER_COLOR, line=dict(width=1, color="black")),
        hovertemplate=f"{label}<br>pixels read %{{x:.1f}}<br>accuracy %{{y:.3f}}<extra></extra>"))
    xtitle = "pixels read per digit" + (f" (of {seq_len})" if seq_len else "")
    fig.update_xaxes(title_text=xtitle, gridcolor="#eeeeee", automargin=True)
    fig.update_yaxes(title_text="validation accuracy", gridcolor="#eeeeee", tickformat=".0%",
                     automargin=True)
    _base_layout(fig, height)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.02,
                                                   xanchor="left", x=0.0),
                      margin=dict(t=40))
    return fig


def epoch_accuracy_figure(curves: Sequence[Tuple[str, Dict[str, list]]],
                          colours: Sequence[str] = (USED_COLOR, "#1f1f1f"),
                          height: int = 300) -> go.Figure:
    """The paper's Fig. 3 for our trainings: validation accuracy after each epoch, one line per
    model (``curves``: (name, {"epoch": [...], "accuracy": [...]}), trace i is curve i with
    ``colours[i]``); the legend on top. Curves without epochs are left out."""
    fig = go.Figure()
    drawn = [(n, h) for n, h in curves if h.get("epoch")]
    if not drawn:
        return _empty_figure(fig, "the models' cards have no accuracy per epoch", height)
    for i, (name, h) in enumerate(curves):
        if not h.get("epoch"):
            continue
        fig.add_trace(go.Scatter(
            x=[int(e) for e in h["epoch"]], y=[float(a) for a in h["accuracy"]],
            mode="lines+markers", name=name, line=dict(color=colours[i % len(colours)], width=2),
            hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.1%}}<extra></extra>"))
    last = max(max(int(e) for e in h["epoch"]) for _, h in drawn)
    fig.update_xaxes(title_text="epoch", gridcolor="#eeeeee", dtick=1 if last <= 12 else None,
                     automargin=True)
    fig.update_yaxes(title_text="validation accuracy", gridcolor="#eeeeee", tickformat=".0%",
                     automargin=True)
    _base_layout(fig, height)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.02,
                                                   xanchor="left", x=0.0), margin=dict(t=40))
    return fig


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


# ---------------------------------------------------------------------------------------------
CURVES = (("loss", "loss (task + budget)"), ("accuracy", "batch accuracy"),
          ("update_rate", "update rate (fraction of steps used)"))
#: The same panels for a regression task (the adding task): batch MSE instead of accuracy.
REGRESSION_CURVES = (("loss", "loss (task + budget)"), ("mse", "batch MSE"),
                     ("update_rate", "update rate (fraction of steps used)"))


def moving_average(values: Sequence[float], window: int) -> List[float]:
    """Trailing mean over ``window`` values (shorter at the start)."""
    out, acc = [], 0.0
    v = [float(x) for x in values]
    for i, x in enumerate(v):
        acc += x
        if i >= window:
            acc -= v[i - window]
        out.append(acc / min(i + 1, window))
    return out


def training_curves_figure(history: Sequence[Dict[str, float]], height: int = 280,
                           smooth: int = 10, curves: Sequence[Tuple[str, str]] = CURVES
                           ) -> go.Figure:
    """Loss, batch accuracy and update rate against the training step: three panels, each with the
    raw per-step values (faint) and a moving average over ``smooth`` steps."""
    fig = make_subplots(rows=1, cols=len(curves), subplot_titles=[t for _, t in curves],
                        horizontal_spacing=0.08)
    steps = [int(r["step"]) for r in history]
    for col, (key, title) in enumerate(curves, start=1):
        vals = [float(r[key]) for r in history]
        fig.add_trace(go.Scatter(x=steps, y=vals, mode="lines", name=f"{key} (per step)",
                                 line=dict(color="#c7c7c7", width=1), showlegend=False),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=steps, y=moving_average(vals, smooth), mode="lines",
                                 name=f"{key} (mean of {smooth})",
                                 line=dict(color=USED_COLOR if key == "update_rate" else "#1f1f1f",
                                           width=2), showlegend=False),
                      row=1, col=col)
        fig.update_xaxes(title_text="step", row=1, col=col, gridcolor="#eeeeee")
        if key not in ("loss", "mse"):
            fig.update_yaxes(range=[0, 1.02], row=1, col=col, gridcolor="#eeeeee")
        else:
            fig.update_yaxes(rangemode="tozero", row=1, col=col, gridcolor="#eeeeee")
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), font=_FONT,
                      paper_bgcolor="white", plot_bgcolor="white")
    return fig


# ---------------------------------------------------------------------------------------------
# Numbers for the counters (st.metric) and the live-training split; pure helpers.
def flops_ratio(flops: float, dense_flops: float) -> float:
    """How many times fewer FLOPs than the dense model (> 1 means cheaper)."""
    if flops <= 0:
        raise ValueError("flops must be positive")
    return float(dense_flops) / float(flops)


def format_flops(flops: float) -> str:
    for unit, scale in (("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.2f} {unit}"
    return f"{flops:.0f} FLOPs"


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


# --- Speed lab (rows from skimviz.speedlab.run_grid) -----------------------------------------
def _measured(rows: Sequence[Dict[str, object]]) -> List[Dict[str, object]]:
    """Rows that have a time (points skipped by the time cap have ms = NaN)."""
    out = []
    for r in rows:
        ms = r.get("ms")
        if ms is not None and isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0:
            out.append(r)
    return out


BACKEND_WORDS = {"cpp": "C++", "python": "PyTorch loop"}


def _series_label(r: Dict[str, object], backend: bool = False) -> str:
    """A speed-lab row's cell in plain words: "SRU", "Skip GRU, p = 1/4" (with ``backend``:
    "SRU (C++)"). Without it one line or bar group holds a cell whatever loop ran it (the Skip
    GRU's C++ loop runs at batch 1 only); the hover says which."""
    label = str(r.get("label") or r.get("cell"))
    if backend and r.get("backend"):
        label += f" ({BACKEND_WORDS.get(str(r['backend']), r['backend'])})"
    if r.get("cell") in ("skip-gru", "skim-rnn"):  # the requested rate (measured varies with T)
        p = r.get("requested_update_rate", r.get("update_rate"))
        if p is not None:
            label += f", p = {rate_fraction(p)}"
    return label


def rate_fraction(p: float) -> str:
    """An update rate as the Speed lab's slider writes it: 0.25 → "1/4", 1 → "1"."""
    p = float(p)
    if p >= 1.0:
        return "1"
    k = round(1 / p) if p > 0 else 0
    return f"1/{k}" if k and abs(1 / k - p) < 1e-3 else f"{p:.2g}"


def _legend_on_top(fig: go.Figure, height: int, title: Optional[str] = None,
                   width: float = 640) -> go.Figure:
    """The base layout with a horizontal legend above the plot and the top margin it needs
    (``width``: the narrowest the chart is drawn at), added to ``height``, so the legend never
    squeezes the plot."""
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    rows = legend_rows(names, _FONT["size"], width)
    head = 30 if title else 0
    top = int(rows * _FONT["size"] * 1.9) + head + 10
    height += top  # the plot keeps its height; the legend gets its own room above
    _base_layout(fig, height)
    fig.update_layout(margin=dict(l=10, r=10, t=top, b=10), showlegend=bool(names),
                      legend=dict(orientation="h", yref="container", y=1 - head / height,
                                  yanchor="top", x=0, xanchor="left"))
    if title:
        fig.update_layout(title=dict(text=title, yref="container", y=1, yanchor="top", x=0,
                                     xanchor="left", pad=dict(t=6, l=4)))
    return fig


def _log_axis(update, values: Sequence[float], title: str, suffix: str = "") -> None:
    """A log axis over ``values`` with a few round ticks and short labels (no minor clutter)."""
    vals = [float(v) for v in values if v and float(v) > 0]
    if not vals:
        update(type="log", title=title, automargin=True)
        return
    lo, hi = min(vals) / 1.5, max(vals) * 1.5
    ticks = log_ticks(lo, hi, 5)
    update(type="log", title=title, automargin=True, range=[math.log10(lo), math.log10(hi)],
           tickvals=ticks, ticktext=[short_number(v) + suffix for v in ticks])


def latency_figure(rows: Sequence[Dict[str, object]], x: str = "seq_len",
                   height: int = 300, title: Optional[str] = None) -> go.Figure:
    """Latency (ms) against ``x`` ("seq_len" or "batch"), log-log, one line per cell; the legend
    in rows above the plot.

    With several values of the other axis the line keeps the smallest one (batch 1 for the
    sequence-length chart, the shortest sequence for the batch chart), so each line is one
    slice of the grid, as in the SRU paper's Fig. 1.
    """
    if x not in ("seq_len", "batch"):
        raise ValueError("x must be 'seq_len' or 'batch'")
    other = "batch" if x == "seq_len" else "seq_len"
    rows = _measured(rows)
    fig = go.Figure()
    series: Dict[str, List[Dict[str, object]]] = {}
    for r in rows:
        series.setdefault(_series_label(r), []).append(r)
    for name, rs in series.items():
        fix = min(int(r[other]) for r in rs)
        pts = sorted((r for r in rs if int(r[other]) == fix), key=lambda r: int(r[x]))
        fig.add_trace(go.Scatter(
            x=[int(r[x]) for r in pts], y=[float(r["ms"]) for r in pts], mode="lines+markers",
            name=name if len({min(int(r[other]) for r in v) for v in series.values()}) == 1
            else f"{name}, {'batch' if other == 'batch' else 'steps'} {fix}",
            customdata=[_series_label(r, backend=True) for r in pts],
            hovertemplate=f"%{{customdata}}<br>{'steps' if x == 'seq_len' else 'batch'} "
                          "%{x}<br>%{y:.3g} ms<extra></extra>"))
    _log_axis(fig.update_xaxes, [int(r[x]) for r in rows],
              "sequence length (steps)" if x == "seq_len" else "batch size")
    _log_axis(fig.update_yaxes, [float(r["ms"]) for r in rows], "time (ms)")
    return _legend_on_top(fig, height, title)


def gflops_figure(rows: Sequence[Dict[str, object]], height: int = 300,
                  title: Optional[str] = None) -> go.Figure:
    """Achieved GFLOP/s (analytic FLOPs / measured time): one group of bars per cell (short
    tick labels), one bar colour per grid point (steps, batch), the legend above."""
    rows = _measured(rows)
    fig = go.Figure()
    points = list(dict.fromkeys((int(r["seq_len"]), int(r["batch"])) for r in rows))
    for T, B in points:
        rs = [r for r in rows if (int(r["seq_len"]), int(r["batch"])) == (T, B)]
        fig.add_trace(go.Bar(
            x=[_series_label(r).replace(", ", "<br>") for r in rs],
            y=[float(r["gflops_per_s"]) for r in rs], name=f"{T} steps, batch {B}",
            customdata=[_series_label(r, backend=True) for r in rs],
            hovertemplate=f"%{{customdata}}<br>{T} steps, batch {B}<br>%{{y:.3g}} GFLOP/s"
                          "<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="GFLOP/s achieved", rangemode="tozero", automargin=True)
    fig.update_xaxes(automargin=True, tickangle=0)
    return _legend_on_top(fig, height, title)


def skip_speedup_points(rows: Sequence[Dict[str, object]]) -> List[Dict[str, float]]:
    """Measured speed-up of Skip RNN rows over their own dense run (update rate 1) at the same
    (seq_len, batch, hidden, mode, device): [{update_rate, speedup, theory}], theory = 1/p."""
    rows = [r for r in _measured(rows) if r.get("cell") == "skip-gru"]
    key = ("seq_len", "batch", "hidden", "mode", "device")
    dense = {tuple(r.get(k) for k in key): float(r["ms"]) for r in rows
             if float(r["update_rate"]) >= 1.0}
    out = []
    for r in rows:
        d = dense.get(tuple(r.get(k) for k in key))
        p = float(r["update_rate"])
        if d is not None and p > 0:
            out.append({"update_rate": p, "speedup": d / float(r["ms"]), "theory": 1.0 / p,
                        "seq_len": int(r["seq_len"]), "batch": int(r["batch"])})
    return sorted(out, key=lambda o: (o["seq_len"], o["batch"], o["update_rate"]))


def speedup_figure(points: Sequence[Dict[str, float]], height: int = 300,
                   title: Optional[str] = None) -> go.Figure:
    """Measured vs theoretical speed-up of skipping: x = update rate p, y = speed-up over the
    dense run; the 1/p bound (FLOPs alone) drawn as a line; the legend above."""
    fig = go.Figure()
    ps = [float(p["update_rate"]) for p in points]
    lo, hi = (min(ps + [1.0]), 1.0) if ps else (0.05, 1.0)
    grid = np.geomspace(max(lo, 1e-3), hi, 50)
    fig.add_trace(go.Scatter(x=grid.tolist(), y=(1.0 / grid).tolist(), mode="lines",
                             name="bound 1/p (FLOPs alone)",
                             line=dict(dash="dash", color=OTHER_COLOR)))
    groups: Dict[Tuple[object, object], List[Dict[str, float]]] = {}
    for p in points:
        groups.setdefault((p.get("seq_len"), p.get("batch")), []).append(p)
    for (T, B), pts in groups.items():
        name = "measured" if T is None else f"measured, {T} steps, batch {B}"
        fig.add_trace(go.Scatter(x=[float(p["update_rate"]) for p in pts],
                                 y=[float(p["speedup"]) for p in pts], mode="markers+lines",
                                 name=name, marker=dict(size=9),
                                 hovertemplate="p = %{x:.3g}<br>%{y:.2f}× faster<extra></extra>"))
    _log_axis(fig.update_xaxes, grid.tolist(), "share of steps computed, p")
    _log_axis(fig.update_yaxes, (1.0 / grid).tolist() + [float(p["speedup"]) for p in points],
              "× faster than p = 1", "×")
    return _legend_on_top(fig, height, title)


def speed_dumbbell_figure(entries: Sequence[Dict[str, object]], height: Optional[int] = None,
                          font_size: int = 12) -> go.Figure:
    """The Speed lab's main chart: one row per cell (``skimviz.speedlab_summary.headline``),
    a grey diamond at how many times fewer FLOPs it needs than the baseline and a red dot at how
    many times faster it ran, joined by a line: where the two sit apart, time did not follow
    the arithmetic. Log x axis, the baseline's 1× dotted; the legend above."""
    fig = go.Figure()
    if not entries:
        return _empty_figure(fig, "nothing measured yet", height or 300)
    names = [str(e["name"]) for e in entries][::-1]
    base = str(entries[0]["baseline"])
    for e in entries:
        fig.add_trace(go.Scatter(x=[e["flop_ratio"], e["time_ratio"]], y=[e["name"]] * 2,
                                 mode="lines", line=dict(color="#cccccc", width=4),
                                 showlegend=False, hoverinfo="skip"))
    for key, label, symbol, colour in (
            ("flop_ratio", f"FLOPs: × fewer than {base}", "diamond", OTHER_COLOR),
            ("time_ratio", f"time: × faster than {base}", "circle", USED_COLOR)):
        vals = [float(e[key]) for e in entries]
        fig.add_trace(go.Scatter(
            x=vals, y=[e["name"] for e in entries], mode="markers+text", name=label,
            text=["" if i == 0 else f"{v:.2g}×" for i, v in enumerate(vals)],  # baseline: 1×
            textposition="top center" if key == "time_ratio" else "bottom center",
            textfont=dict(color=colour, size=font_size),
            marker=dict(symbol=symbol, size=14, color=colour),
            customdata=[[e["ms"], e["flops"]] for e in entries],
            hovertemplate="%{y}<br>" + label + ": %{x:.2f}<br>%{customdata[0]:.3g} ms, "
                          "%{customdata[1]:.3s} FLOPs<extra></extra>"))
    xs = [float(e[k]) for e in entries for k in ("flop_ratio", "time_ratio")] + [1.0]
    lo, hi = min(xs) / 2, max(xs) * 2
    ticks = log_ticks(lo, hi, 6)
    fig.add_vline(x=1.0, line=dict(color="#888888", dash="dot", width=1))
    fig.update_xaxes(type="log", range=[math.log10(lo), math.log10(hi)], tickvals=ticks,
                     ticktext=[f"{short_number(v)}×" for v in ticks], gridcolor="#eeeeee",
                     title=f"× {base} (right of 1×: cheaper, faster)", automargin=True)
    fig.update_yaxes(categoryorder="array", categoryarray=names, automargin=True)
    fig = _legend_on_top(fig, height or 60 + 46 * len(entries))
    fig.update_layout(font=dict(size=font_size))
    return fig


# --- Trade-off dashboard (points from skimviz.dashboard) -------------------------------------
OURS_SKIP_COLOR = USED_COLOR     # our conditional-computation checkpoints
OURS_DENSE_COLOR = "#1f1f1f"     # our dense baselines
PAPER_COLOR = "#9467bd"          # the papers' reported points
SWEEP_COLOR = "#7f7f7f"          # a card's θ sweep
BEST_COLOR = MARKER_COLOR        # the ring round the best trade-off
TRADEOFF_X = {"flops": "FLOPs per input", "latency_ms": "time per input (ms)"}
#: (source, kind) → trace name, marker symbol, colour. Dense baselines are squares, paper points
#: crosses (open squares for the paper's dense baselines), ours circles.
TRADEOFF_STYLE = {
    ("ours", "skip"): ("ours: skipping", "circle", OURS_SKIP_COLOR),
    ("ours", "dense"): ("ours: dense", "square", OURS_DENSE_COLOR),
    ("paper", "skip"): ("paper: skipping", "x", PAPER_COLOR),
    ("paper", "dense"): ("paper: dense", "square-open", PAPER_COLOR),
}


def short_number(v: float) -> str:
    """20000000 → "20M", 0.5 → "0.5": a tick label that fits."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:g}"


def log_ticks(lo: float, hi: float, max_ticks: int = 5) -> List[float]:
    """Two to ``max_ticks`` round tick values for a log axis over [lo, hi]: 1-2-5 per decade,
    else 1-3, else the powers of ten (every second or third one on long ranges); on a short
    range a finer 1-1.5-2-3-4-5-6-8; the ends themselves when even that finds fewer than two."""
    if not (lo > 0 and hi >= lo):
        return []
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))

    def inside(steps) -> List[float]:
        vals = [float(f"{m * 10.0 ** k:.12g}") for k in range(k0, k1 + 1) for m in steps]
        return [v for v in vals if lo <= v <= hi]

    for steps in ((1, 2, 5), (1, 3), (1,)):
        vals = inside(steps)
        if len(vals) <= max_ticks:
            break
    if len(vals) < 2:
        vals = inside((1, 1.5, 2, 3, 4, 5, 6, 8))
    stride = 1
    while len(vals[::stride]) > max_ticks:
        stride += 1
    vals = vals[::stride]
    if len(vals) < 2:
        vals = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    return vals


def legend_rows(names: Sequence[str], font_size: int, width: float) -> int:
    """About how many rows a horizontal legend of ``names`` takes in a figure ``width`` px wide
    (a symbol and a gap of ~45 px per entry, ~0.55 em per character): the top margin it needs,
    since a legend above the plot does not push the panels' titles down by itself."""
    if not names:
        return 0
    rows, used = 1, 0.0
    for n in names:
        w = 45 + 0.55 * font_size * len(n)
        if used and used + w > width:
            rows, used = rows + 1, 0.0
        used += w
    return rows


def _grid(n: int, max_cols: int) -> Tuple[int, int]:
    """(rows, cols) for ``n`` panels: at most ``max_cols`` columns; four panels as 2 × 2."""
    cols = 2 if n == 4 and max_cols >= 2 else max(1, min(max_cols, n))
    return max(1, math.ceil(n / cols)), cols


def _tradeoff_trace(sel, x: str, name: str, symbol: str, colour: str, task: str, source: str,
                    kind: str, show_legend: bool, label: bool, font_size: int) -> go.Scatter:
    """One marker trace of the trade-off chart; ``text`` holds the labels (drawn when
    ``label``), ``customdata`` the hover text."""
    hover = [f"{p['label']}" + (f"<br>{p['note']}" if p.get("note") else "")
             + (f"<br>{float(p['updates']):.1f} of {p['seq_len']} updates"
                if p.get("updates") is not None and p.get("seq_len") else "")
             for p in sel]
    return go.Scatter(
        x=[float(p[x]) for p in sel], y=[float(p["value"]) for p in sel],
        mode="markers+text" if label else "markers", name=name, legendgroup=name,
        showlegend=show_legend, text=[str(p["label"]) for p in sel],
        texttemplate=[str(p["name"]) for p in sel] if label else None,
        textposition="bottom center" if kind == "dense" else "top center",
        textfont=dict(size=max(9, font_size - 2), color=colour),
        marker=dict(symbol=symbol, size=12, color=colour,
                    line=dict(width=2 if symbol.endswith("open") or symbol == "x" else 1,
                              color=colour if source == "paper" else "white")),
        customdata=hover, meta={"task": task, "source": source, "kind": kind},
        hovertemplate="%{customdata}<br>" + ("%{x:.3s} FLOPs" if x == "flops" else
                                             "%{x:.2f} ms")
                      + f"<br>{sel[0]['metric_label']} %{{y:.3f}}<extra></extra>")


def tradeoff_figure(points: Sequence[Dict[str, object]], x: str = "flops",
                    curves: Optional[Sequence[Dict[str, object]]] = None,
                    height: Optional[int] = None, font_size: int = 12, max_cols: int = 3,
                    highlight: Sequence[str] = ()) -> go.Figure:
    """Task metric against cost, one panel per task (in order of first appearance), in a grid
    of at most ``max_cols`` columns, the legend in one row above.

    ``x`` is "flops" (FLOPs per input) or "latency_ms" (measured; points without one are left
    out, and the papers report none); both axes of cost are logarithmic, with a few round ticks.
    Each panel has up to four point traces, named after :data:`TRADEOFF_STYLE` (dense baselines
    as squares, the papers' points as crosses with their table number in ``text`` and the hover),
    one dotted line per θ sweep in ``curves`` (FLOPs only), and an orange ring round each of our
    points named in ``highlight`` (the best trade-off). Our points are labelled with their names
    where a panel has room (one or two columns, at most four of ours, normal fonts). Every
    trace's ``meta`` is ``{"task", "source", "kind"}`` (kind "sweep" or "best" for the extra traces)."""
    if x not in TRADEOFF_X:
        raise ValueError(f"x must be one of {sorted(TRADEOFF_X)}")
    tasks: List[str] = []
    titles: Dict[str, str] = {}
    for p in points:
        if p["task"] not in tasks:
            tasks.append(str(p["task"]))
            titles[str(p["task"])] = str(p.get("task_title") or p["task"])
    n_rows, n_cols = _grid(len(tasks), max_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols,  # one panel: the picker and sentence name it
                        subplot_titles=[titles[t] for t in tasks] if len(tasks) > 1 else None,
                        horizontal_spacing=0.12 if n_cols > 2 else 0.1,
                        vertical_spacing=0.2 if n_rows > 1 else 0.1)
    height = height or (400 if n_rows == 1 else 330 * n_rows)
    if not tasks:
        return _empty_figure(fig, "no checkpoints to show", height)
    shown = set()
    for i, task in enumerate(tasks):
        row, col = i // n_cols + 1, i % n_cols + 1
        pts = [p for p in points if p["task"] == task]
        _sweeps(fig, curves if x == "flops" else None, task, row, col, shown)
        ours = [p for p in pts if p["source"] == "ours" and p.get("value") is not None
                and p.get(x) is not None]
        label = n_cols <= 2 and len(ours) <= 4 and font_size <= 12  # no room beside a slide
        for (source, kind), (name, symbol, colour) in TRADEOFF_STYLE.items():
            sel = [p for p in pts if p["source"] == source and p["kind"] == kind
                   and p.get("value") is not None and p.get(x) is not None]
            if sel:
                fig.add_trace(_tradeoff_trace(sel, x, name, symbol, colour, task, source, kind,
                                              name not in shown, label and source == "ours",
                                              font_size), row=row, col=col)
                shown.add(name)
        best = [p for p in ours if p["name"] in set(highlight)]
        if best:
            fig.add_trace(go.Scatter(
                x=[float(p[x]) for p in best], y=[float(p["value"]) for p in best],
                mode="markers", name="best trade-off", legendgroup="best",
                showlegend="best" not in shown, hoverinfo="skip",
                marker=dict(symbol="circle-open", size=24, color=BEST_COLOR,
                            line=dict(width=3, color=BEST_COLOR)),
                meta={"task": task, "source": "ours", "kind": "best"}), row=row, col=col)
            shown.add("best")
        _tradeoff_axes(fig, pts, curves if x == "flops" else None, task, x, row, col, label)
    fig.update_annotations(font_size=font_size + 1)
    rows = legend_rows([t.name for t in fig.data if t.showlegend is not False], font_size,
                       420 if font_size > 12 else 680)  # larger fonts: beside a slide
    fig.update_layout(height=height,
                      margin=dict(l=10, r=10, b=10, t=int(rows * font_size * 1.9 + 10 + (
                          font_size + 14 if len(tasks) > 1 else 0))),
                      font=dict(family="sans-serif", size=font_size),
                      paper_bgcolor="white", plot_bgcolor="white", showlegend=True,
                      legend=dict(orientation="h", yref="container", y=1, yanchor="top",
                                  xanchor="left", x=0, font=dict(size=font_size)))
    return fig


def _sweeps(fig, curves, task: str, row: int, col: int, shown: set) -> None:
    """Each θ sweep of ``task`` as a dotted grey line (one legend entry for all)."""
    for c in curves or ():
        if c["task"] != task:
            continue
        fig.add_trace(go.Scatter(
            x=list(c["flops"]), y=list(c["values"]), mode="lines+markers",
            name="ours at other θ", legendgroup="sweep",
            showlegend="sweep" not in shown,
            line=dict(color=SWEEP_COLOR, dash="dot", width=1),
            marker=dict(size=5, color=SWEEP_COLOR), customdata=list(c["thresholds"]),
            meta={"task": task, "source": "ours", "kind": "sweep", "name": c["name"]},
            hovertemplate=f"{c['name']} at θ = %{{customdata:g}}<br>%{{x:.3s}} FLOPs"
                          f"<br>{c['metric_label']} %{{y:.3f}}<extra></extra>"),
            row=row, col=col)
        shown.add("sweep")


def _tradeoff_axes(fig, pts, curves, task: str, x: str, row: int, col: int,
                   labelled: bool = False) -> None:
    """Log cost axis with a few round ticks (short labels; wider margins when points carry
    labels, so a name at the edge is not cut), and a metric axis padded around the values
    (accuracy never past 100 %, errors in plain decimals)."""
    drawn = [p for p in pts if p.get(x) is not None and p.get("value") is not None]
    xs = [float(p[x]) for p in drawn]
    ys = [float(p["value"]) for p in drawn]
    for c in curves or ():
        if c["task"] == task:
            xs += [float(v) for v in c["flops"]]
            ys += [float(v) for v in c["values"]]
    pad_x = 2.0 if labelled else 1.3
    ticks = log_ticks(min(xs) / pad_x, max(xs) * pad_x, 4) if xs and min(xs) > 0 else []
    fig.update_xaxes(title_text=TRADEOFF_X[x], type="log", gridcolor="#eeeeee",
                     tickvals=ticks or None, ticktext=[short_number(v) for v in ticks] or None,
                     range=[math.log10(min(xs) / pad_x), math.log10(max(xs) * pad_x)]
                     if ticks else None, automargin=True, row=row, col=col)
    metric_label = pts[0]["metric_label"] if pts else "metric"
    y_range = None
    if ys:
        lo, hi = min(ys), max(ys)
        pad = max(0.1 * (hi - lo), 0.01 if "accuracy" in str(metric_label) else 0.1 * hi)
        y_range = [lo - pad, hi + pad]
        if "accuracy" in str(metric_label):  # no tick above 100 %
            y_range[1] = min(y_range[1], max(1.0, hi + 0.003))
    fig.update_yaxes(title_text=str(metric_label), gridcolor="#eeeeee", nticks=6,
                     range=y_range, tickformat="~g" if "accuracy" not in str(metric_label)
                     else None, automargin=True, row=row, col=col)


def enlarge(fig: go.Figure, scale: float = 1.35, font_size: int = 18) -> go.Figure:
    """Presentation mode: a larger figure (height × ``scale``) with larger fonts."""
    h = fig.layout.height or 400
    fig.update_layout(height=int(h * scale), font=dict(size=font_size))
    fig.update_traces(textfont_size=font_size - 2,
                      selector=dict(type="scatter", mode="markers+text"))
    fig.update_annotations(font_size=font_size)
    return fig


# ---------------------------------------------------------------------------------------------
# Skip RNN on signals and clips (adding task, frequency discrimination, digit clips). Colours as
# in the paper's Fig. 2: used samples red, skipped blue.
def _signal_traces(fig: go.Figure, t: np.ndarray, values: np.ndarray, update: np.ndarray,
                   row: int, line: bool, name: str) -> None:
    if line:
        fig.add_trace(go.Scatter(x=t, y=values, mode="lines", line=dict(color="#c7c7c7", width=1),
                                 name=name, showlegend=False, hoverinfo="skip"), row=row, col=1)
    for mask, color, label in ((update > 0.5, USED_COLOR, "used (state updated)"),
                               (update <= 0.5, SKIPPED_COLOR, "skipped (state copied)")):
        fig.add_trace(go.Scatter(x=t[mask], y=values[mask], mode="markers", name=label,
                                 marker=dict(color=color, size=6)), row=row, col=1)


def _sawtooth_traces(fig: go.Figure, t: np.ndarray, update_prob: np.ndarray,
                     update: np.ndarray, theta: float, row: int) -> None:
    fig.add_trace(go.Scatter(x=t, y=update_prob, mode="lines+markers", name="ũ_t (Eq. 5)",
                             line=dict(color="#1f1f1f", width=1.5, shape="linear"),
                             marker=dict(size=4, color=[USED_COLOR if u > 0.5 else SKIPPED_COLOR
                                                        for u in update])),
                  row=row, col=1)
    fig.add_trace(go.Scatter(x=[t[0], t[-1]], y=[theta, theta], mode="lines",
                             name=f"θ = {theta:g} (update when ũ ≥ θ)",
                             line=dict(color=MARKER_COLOR, dash="dash", width=1.5)),
                  row=row, col=1)
    fig.update_yaxes(range=[0, 1.05], title_text="ũ_t", row=row, col=1, gridcolor="#eeeeee")


def signal_figure(values: Sequence[float], update: Sequence[float],
                  update_prob: Optional[Sequence[float]] = None, theta: float = 0.5,
                  markers: Optional[Sequence[float]] = None, time_step: float = 1.0,
                  x_title: str = "step", y_title: str = "value", title: Optional[str] = None,
                  line: bool = False, height: int = 420) -> go.Figure:
    """A 1-D input, each sample red (used) or blue (skipped); ``markers`` (the adding task's
    marker channel) ring the marked samples; with ``update_prob`` a second panel underneath shows
    the ũ_t accumulation (the sawtooth of Eq. 5) against θ."""
    v = np.asarray(values, dtype=float)
    u = np.asarray(update, dtype=float)
    if v.shape != u.shape:
        raise ValueError(f"values and update must have the same length ({v.shape} vs {u.shape})")
    t = np.arange(len(v)) * time_step
    rows = 2 if update_prob is not None else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.6, 0.4] if rows == 2 else None)
    _signal_traces(fig, t, v, u, 1, line, "input")
    if markers is not None:
        m = np.asarray(markers, dtype=float) > 0.5
        fig.add_trace(go.Scatter(x=t[m], y=v[m], mode="markers", name="marked (marker = 1)",
                                 marker=dict(symbol="circle-open", size=16, color=MARKER_COLOR,
                                             line=dict(width=2.5))), row=1, col=1)
    fig.update_yaxes(title_text=y_title, row=1, col=1, gridcolor="#eeeeee")
    if update_prob is not None:
        p = np.asarray(update_prob, dtype=float)
        if p.shape != u.shape:
            raise ValueError("update_prob and update must have the same length")
        _sawtooth_traces(fig, t, p, u, theta, 2)
    fig.update_xaxes(title_text=x_title, row=rows, col=1, gridcolor="#eeeeee")
    _base_layout(fig, height, title)
    fig.update_layout(legend=dict(orientation="h", y=-0.18 if rows == 2 else -0.3, x=0))
    return fig


def adding_figure(x: np.ndarray, update: Sequence[float],
                  update_prob: Optional[Sequence[float]] = None, theta: float = 0.5,
                  title: Optional[str] = None, height: int = 440) -> go.Figure:
    """The adding task's input (T, 2) = (value, marker) as in the paper's Fig. 2: values as dots,
    used red, skipped blue, the two marked values ringed; ũ underneath when given."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"adding-task input must be (T, 2), got {x.shape}")
    return signal_figure(x[:, 0], update, update_prob, theta, markers=x[:, 1],
                         y_title="value", title=title, height=height)


def sine_figure(x: Sequence[float], update: Sequence[float],
                update_prob: Optional[Sequence[float]] = None, theta: float = 0.5,
                sampling_ms: float = 1.0, title: Optional[str] = None,
                height: int = 440) -> go.Figure:
    """A sine wave sampled every ``sampling_ms``: used samples red, skipped blue, ũ underneath."""
    return signal_figure(np.asarray(x, dtype=float).reshape(-1), update, update_prob, theta,
                         time_step=sampling_ms, x_title="time (ms)", y_title="amplitude",
                         title=title, line=True, height=height)


def sawtooth_figure(update_prob: Sequence[float], update: Sequence[float], theta: float = 0.5,
                    time_step: float = 1.0, x_title: str = "step", title: Optional[str] = None,
                    height: int = 220) -> go.Figure:
    """ũ_t alone: it resets to Δũ after an update and grows by Δũ at each skipped step until it
    reaches θ (Eq. 5) — a sawtooth."""
    u = np.asarray(update, dtype=float)
    p = np.asarray(update_prob, dtype=float)
    if p.shape != u.shape:
        raise ValueError("update_prob and update must have the same length")
    fig = make_subplots(rows=1, cols=1)
    _sawtooth_traces(fig, np.arange(len(p)) * time_step, p, u, theta, 1)
    fig.update_xaxes(title_text=x_title, gridcolor="#eeeeee")
    return _base_layout(fig, height, title)


FILM_DIM = 0.25  # skipped frames are shown at this brightness


def filmstrip(frames: np.ndarray, update: Sequence[float], cols: int = 12, pad: int = 3
              ) -> np.ndarray:
    """(T, H, W) frames in [0, 1] → one RGB uint8 image, ``cols`` frames per row: used frames at
    full brightness in a red border, skipped frames dimmed in a blue border."""
    f = np.asarray(frames, dtype=float)
    u = np.asarray(update, dtype=float)
    if f.ndim != 3 or len(f) != len(u):
        raise ValueError(f"frames must be (T, H, W) with T = len(update); got {f.shape}, {u.shape}")
    T, H, W = f.shape
    cols = max(1, min(cols, T))
    rows = math.ceil(T / cols)
    ch, cw = H + 2 * pad, W + 2 * pad
    img = np.full((rows * ch, cols * cw, 3), 255, np.uint8)
    red = np.array([int(USED_COLOR[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)
    blue = np.array([int(SKIPPED_COLOR[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)
    for t in range(T):
        r, c = divmod(t, cols)
        y0, x0 = r * ch, c * cw
        used = u[t] > 0.5
        border = red if used else blue
        cell = img[y0:y0 + ch, x0:x0 + cw]
        if used:
            cell[:] = border
        else:  # a thin border for skipped frames
            cell[:] = 255
            cell[pad - 1:ch - pad + 1, pad - 1:cw - pad + 1] = border
        v = np.clip(f[t], 0, 1) * (1.0 if used else FILM_DIM)
        g = (v * 255).astype(np.uint8)
        cell[pad:pad + H, pad:pad + W] = g[..., None]
    return img


def filmstrip_figure(frames: np.ndarray, update: Sequence[float], cols: int = 12,
                     title: Optional[str] = None, height: Optional[int] = None) -> go.Figure:
    """The clip as a filmstrip (see :func:`filmstrip`); the title carries the update count."""
    img = filmstrip(frames, update, cols)
    u = np.asarray(update, dtype=float)
    n_used, T = int((u > 0.5).sum()), len(u)
    fig = go.Figure(go.Image(z=img, hoverinfo="skip"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    text = title or f"{n_used} of {T} frames used (red border); skipped frames dimmed (blue)"
    rows = math.ceil(T / max(1, min(cols, T)))
    return _base_layout(fig, height or 60 + 75 * rows, text)


def lambda_points(cards: Sequence[Dict[str, object]], task: str,
                  sampling_ms: Optional[float] = None) -> List[Dict[str, object]]:
    """One point per skip-model card of ``task``: λ, updates, update rate and the task metric
    (adding: MSE; else accuracy), from the card's metrics; with ``sampling_ms``, only the cards
    of that sampling period (frequency task: 1 ms and 0.5 ms are different sequence lengths)."""
    out = []
    for c in cards:
        if c.get("task") != task or not c.get("config", {}).get("skip", True):
            continue
        ms = c.get("input", {}).get("sampling_ms")
        if sampling_ms is not None and ms is not None and float(ms) != float(sampling_ms):
            continue
        m, tr = c.get("metrics", {}), c.get("training", {})
        metric = "mse" if task == "adding" else "accuracy"
        val = m.get(f"test_{metric}", m.get(f"valid_{metric}"))
        if val is None or "lambda" not in tr:
            continue
        out.append({"name": c.get("name"), "lambda": float(tr["lambda"]), "metric": metric,
                    "value": float(val), "updates": float(m.get("valid_updates_mean", 0.0)),
                    "update_rate": float(m.get("valid_update_rate", 0.0)),
                    "cell": c.get("config", {}).get("cell"),
                    "sampling_ms": c.get("input", {}).get("sampling_ms"),
                    "dry_run": bool(tr.get("dry_run"))})
    return sorted(out, key=lambda p: (p["lambda"], str(p["name"])))


def _lam_label(v: float) -> str:
    return "0" if v == 0 else f"{v:.0e}"


def lambda_figure(points: Sequence[Dict[str, object]], height: int = 320) -> go.Figure:
    """Updates vs λ and the task metric vs λ, one marker per checkpoint (λ on a categorical axis
    so that λ = 0 has a place)."""
    metric = points[0]["metric"] if points else "metric"
    fig = make_subplots(rows=1, cols=2, subplot_titles=["state updates (% of steps) vs λ",
                                                        f"{metric} vs λ"],
                        horizontal_spacing=0.12)
    order = sorted({float(p["lambda"]) for p in points})
    cats = [_lam_label(v) for v in order]
    x = [_lam_label(float(p["lambda"])) for p in points]
    names = [str(p["name"]) for p in points]
    fig.add_trace(go.Scatter(x=x, y=[100 * float(p["update_rate"]) for p in points],
                             mode="markers+text", text=names, textposition="top center",
                             cliponaxis=False, hovertext=names,
                             marker=dict(color=USED_COLOR, size=10), name="updates",
                             showlegend=False), row=1, col=1)
    # names once, on the left panel (long names overlapped at the edges); hover on the right
    fig.add_trace(go.Scatter(x=x, y=[float(p["value"]) for p in points], mode="markers",
                             hovertext=names, marker=dict(color="#1f1f1f", size=10), name=metric,
                             showlegend=False), row=1, col=2)
    for col in (1, 2):
        # half a category of room on each side, so labels at the first and last λ fit
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=cats,
                         range=[-0.7, len(cats) - 0.3],
                         title_text="λ (cost per sample)", row=1, col=col, gridcolor="#eeeeee")
    fig.update_yaxes(range=[0, 105], title_text="% of steps", row=1, col=1, gridcolor="#eeeeee")
    if metric == "mse":
        fig.update_yaxes(type="log", title_text="test MSE (log)", row=1, col=2,
                         gridcolor="#eeeeee")
    else:
        fig.update_yaxes(range=[0, 1.02], title_text="accuracy", row=1, col=2,
                         gridcolor="#eeeeee")
    fig.update_annotations(font_size=12)
    return _base_layout(fig, height)
