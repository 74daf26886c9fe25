"""Shared pieces of the figure builders: the colours (used red, skipped blue, as the Skip RNN
paper's Fig. 4), the base layout, axes helpers and number formatting.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

USED_COLOR = "#d62728"     # red: the state was updated with this pixel (u_t = 1)
SKIPPED_COLOR = "#1f77b4"  # blue: the state was copied, the pixel was skipped (u_t = 0)
PREDICTED_COLOR = "#2ca02c"
OTHER_COLOR = "#9e9e9e"
MARKER_COLOR = "#ff7f0e"
# Background (no ink) pixels are washed out towards white by this much, so the digit's ink shows
# in the full used/skipped colour and the empty canvas in a pale one.
INK_WASH = 0.75

_FONT = dict(family="sans-serif", size=12)


def base_layout_props(height: int, title: Optional[str] = None) -> dict:
    """The layout every skimviz figure shares (height, margins, font, white background)."""
    return dict(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                font=dict(_FONT), title=dict(text=title) if title else None,
                paper_bgcolor="white", plot_bgcolor="white")


def _base_layout(fig: go.Figure, height: int, title: Optional[str] = None) -> go.Figure:
    fig.update_layout(**base_layout_props(height, title))
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


def enlarge(fig: go.Figure, scale: float = 1.35, font_size: int = 18) -> go.Figure:
    """Presentation mode: a larger figure (height × ``scale``) with larger fonts."""
    h = fig.layout.height or 400
    fig.update_layout(height=int(h * scale), font=dict(size=font_size))
    fig.update_traces(textfont_size=font_size - 2,
                      selector=dict(type="scatter", mode="markers+text"))
    fig.update_annotations(font_size=font_size)
    return fig


def current_theta_trace(x: float, y: float, theta: float, how: str, x_hover: str) -> go.Scatter:
    """The star that marks the current θ on a θ-sweep chart (accuracy on y); ``how`` says how
    the point was got (measured, interpolated…), ``x_hover`` is the hover text of x (a Plotly
    template such as ``"Flop-R %{x:.2f}×"``)."""
    label = f"current θ = {theta:.2f} ({how})"
    return go.Scatter(
        x=[x], y=[y], mode="markers", name=label,
        marker=dict(symbol="star", size=16, color=MARKER_COLOR, line=dict(width=1, color="black")),
        hovertemplate=f"{label}<br>{x_hover}<br>accuracy %{{y:.3f}}<extra></extra>")
