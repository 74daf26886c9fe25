"""The signal and clip tasks' figures: the input with the samples (or frames) used and skipped,
ũ_t's sawtooth, and the clip filmstrip.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skimviz.viz.common import MARKER_COLOR, SKIPPED_COLOR, USED_COLOR, _base_layout


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
