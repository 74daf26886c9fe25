"""Step-by-step playback: the input as the model reads it, one step after another.

Each builder returns one Plotly figure with animation frames, a Play/Pause button and a time
slider, so a class can watch (or a student scrub through) what happens at every step without any
server round trip: the browser animates the frames.

* :func:`pixel_playback` — Skip RNN on a digit (the paper's Fig. 4 drawn as it happens): pixels
  read so far, coloured used/skipped, beside ũ_t accumulating (Eq. 5) and the gate firing when
  it reaches θ (Eq. 2);
* :func:`signal_playback` — the same for a 1-D signal;
* :func:`token_playback` — Skim-RNN on a text: each word as it is reached, read by the big LSTM
  or skimmed by the small one, beside p_skim against θ.

Frames are sampled (at most ``max_frames``) so a 784-step digit stays a small figure, and they
are built without Plotly's per-property validation (``_validate=False``; the first frame's traces,
added to the figure, are validated) from compact arrays (uint8 maps, float32 curves), so that a
page redrawing one for every move of θ stays quick and its browser download small. The text
playback, new for every review, is written as a plain figure dict (tests check Plotly accepts it).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skimviz.viz.common import (SKIPPED_COLOR, USED_COLOR, _base_layout, as_grid,
                                base_layout_props, ink)
from skimviz.viz.tokens import READ_COLOR, SKIM_COLOR

UNSEEN = "#f2f2f2"


def frame_steps(T: int, max_frames: int) -> List[int]:
    """The steps shown as frames: evenly spaced, ending at T (the number of steps read)."""
    if T < 1:
        raise ValueError("nothing to play: the input has no steps")
    n = max(1, min(int(max_frames), T))
    return sorted({int(round(T * (i + 1) / n)) for i in range(n)})


def _controls_props(steps: Sequence[int], unit: str, duration: int) -> dict:
    """Layout of the Play/Pause buttons and of a slider over ``steps`` (frame names are the step
    counts)."""
    play = dict(frame=dict(duration=duration, redraw=True), fromcurrent=True,
                transition=dict(duration=0), mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), mode="immediate",
                 transition=dict(duration=0))
    every = max(1, -(-len(steps) // 12))          # at most ~12 labelled ticks
    return dict(
        # the buttons on their own row under the slider (pad: pixels), so that neither covers
        # the other in a narrow column (a slide beside the figure at 768 px)
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.12, xanchor="left",
                          yanchor="top", showactive=False, pad=dict(t=100, r=8),
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate",
                                        args=[[None], pause])])],
        sliders=[dict(active=len(steps) - 1, x=0.0, len=1.0, y=-0.12, yanchor="top",
                      pad=dict(t=0, b=0),
                      currentvalue=dict(prefix=f"{unit} read: ", font=dict(size=13)),
                      steps=[dict(label=str(s) if i % every == 0 or i == len(steps) - 1 else "",
                                  method="animate",
                                  args=[[str(s)], dict(mode="immediate", frame=dict(
                                      duration=0, redraw=True), transition=dict(duration=0))])
                             for i, s in enumerate(steps)])])


def _controls(fig: go.Figure, steps: Sequence[int], unit: str, duration: int) -> go.Figure:
    """Play/Pause buttons and a slider over ``steps``."""
    fig.update_layout(**_controls_props(steps, unit, duration))
    return fig


def _fast(cls, **props):
    """A trace (or frame) of one of the many frames: its values are checked by the builder, not
    by Plotly again."""
    return cls(**props, _validate=False)


# Legend in one row above the plots (below them sit the Play button and the slider).
_LEGEND_ON_TOP = dict(showlegend=True, margin=dict(t=78, b=180),
                      legend=dict(orientation="h", x=0.0, xanchor="left", y=1.12,
                                  yanchor="bottom"))


def _legend_on_top(fig: go.Figure) -> None:
    fig.update_layout(**_LEGEND_ON_TOP)


def _u_traces(u_tilde: np.ndarray, update: np.ndarray, t: int) -> List[go.Scatter]:
    """ũ over the first t steps and the steps where the gate fired (u = 1) among them."""
    fired = (np.flatnonzero(update[:t] > 0.5) + 1).astype(np.int32)
    u = u_tilde.astype(np.float32)
    return [_fast(go.Scatter, x0=1, dx=1, y=u[:t], mode="lines",
                  line=dict(color="#555", width=1.5), name="ũ (update probability)",
                  hovertemplate="step %{x}: ũ %{y:.2f}<extra></extra>"),
            _fast(go.Scatter, x=fired, y=u[fired - 1], mode="markers", name="gate fired (u = 1)",
                  marker=dict(color=USED_COLOR, size=6),
                  hovertemplate="step %{x}: updated<extra></extra>")]


def _check(update: Sequence[float], u_tilde: Sequence[float]) -> tuple:
    update = np.asarray(update, dtype=float).reshape(-1)
    u_tilde = np.asarray(u_tilde, dtype=float).reshape(-1)
    if update.shape != u_tilde.shape:
        raise ValueError("update and ũ must have one value per step")
    if not np.isin(update, (0.0, 1.0)).all():
        raise ValueError("update must hold only 0 and 1")
    return update, u_tilde


def pixel_playback(image: np.ndarray, update: Sequence[float], u_tilde: Sequence[float],
                   side: int = 28, theta: float = 0.5, max_frames: int = 49,
                   height: int = 520, duration: int = 120) -> go.Figure:
    """A digit read pixel by pixel in scan-line order. Left: pixels not reached yet are pale
    grey, reached ones red where the state was updated and blue where it was copied, the ink
    shown through a white wash as in :func:`skimviz.viz.pixels.used_skipped_figure`. Right: ũ_t
    with θ and the steps where the gate fired. ``height`` is the whole figure's: the legend
    above and the slider and buttons below take about 260 px of it, the two plots the rest."""
    update, u_tilde = _check(update, u_tilde)
    T = side * side
    if update.size != T:
        raise ValueError(f"expected {T} steps for a {side}×{side} digit, got {update.size}")
    level = ink(image, side)
    mask = as_grid(update, side)
    order = np.arange(T).reshape(side, side)
    steps = frame_steps(T, max_frames)
    scale = [[0.0, UNSEEN], [0.33, UNSEEN], [0.34, SKIPPED_COLOR], [0.66, SKIPPED_COLOR],
             [0.67, USED_COLOR], [1.0, USED_COLOR]]
    code = (1 + mask).astype(np.uint8)                        # 1 skipped, 2 used
    white = np.round(255 * (1.0 - level)).astype(np.uint8)   # the wash over the ink, 0–255

    def state(t: int) -> list:
        reached = order < t
        z = np.where(reached, code, 0).astype(np.uint8)        # 0 unseen, 1 skipped, 2 used
        wash = np.where(reached, white, 0).astype(np.uint8)
        return [_fast(go.Heatmap, z=z, zmin=0, zmax=2, colorscale=scale, showscale=False,
                      hoverinfo="skip"),
                _fast(go.Heatmap, z=wash, zmin=0, zmax=255, showscale=False, hoverinfo="skip",
                      colorscale=[[0, "rgba(255,255,255,0)"], [1, "rgba(255,255,255,0.75)"]]),
                *_u_traces(u_tilde, update, t)]

    fig = make_subplots(rows=1, cols=2, column_widths=[0.42, 0.58], horizontal_spacing=0.08,
                        subplot_titles=("pixels read so far", "ũ accumulates; the gate fires at θ"))
    for i, tr in enumerate(state(T)):
        fig.add_trace(tr, row=1, col=1 if i < 2 else 2)
    fig.frames = [_fast(go.Frame, name=str(t), data=state(t), traces=[0, 1, 2, 3])
                  for t in steps]
    fig.add_hline(y=theta, line=dict(color=USED_COLOR, dash="dot", width=1), row=1, col=2,
                  annotation_text=f"θ = {theta:g}", annotation_position="top left")
    for name, colour in (("used (state updated)", USED_COLOR),
                         ("skipped (state copied)", SKIPPED_COLOR), ("not reached yet", UNSEEN)):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name, hoverinfo="skip",
                                 marker=dict(symbol="square", size=11, color=colour,
                                             line=dict(color="#bbb", width=1))), row=1, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=1,
                     range=[-0.5, side - 0.5], constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=1,
                     autorange="reversed", scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_xaxes(title_text="step (pixel)", range=[0, T + 1], row=1, col=2)
    fig.update_yaxes(title_text="ũ", range=[0, 1.05], row=1, col=2)
    _base_layout(fig, height)
    _legend_on_top(fig)
    return _controls(fig, steps, "pixels", duration)


def signal_playback(values: Sequence[float], update: Sequence[float], u_tilde: Sequence[float],
                    theta: float = 0.5, max_frames: int = 60, height: int = 420,
                    duration: int = 100, x_label: str = "step") -> go.Figure:
    """A 1-D signal read sample by sample: top, the signal so far with the samples that updated
    the state in red (skipped ones as the grey line only); bottom, ũ_t and the gate firing."""
    update, u_tilde = _check(update, u_tilde)
    values = np.asarray(values, dtype=float).reshape(-1)
    if values.size != update.size:
        raise ValueError("one signal value per step is needed")
    T = values.size
    steps = frame_steps(T, max_frames)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (hi - lo or 1.0)

    v = values.astype(np.float32)

    def state(t: int) -> list:
        used = np.flatnonzero(update[:t] > 0.5).astype(np.int32)
        return [_fast(go.Scatter, x0=1, dx=1, y=v[:t], mode="lines",
                      line=dict(color="#9e9e9e", width=1), name="signal", hoverinfo="skip"),
                _fast(go.Scatter, x=used + 1, y=v[used], mode="markers",
                      name="used (state updated)", marker=dict(color=USED_COLOR, size=5),
                      hovertemplate="step %{x}: %{y:.3f}<extra></extra>"),
                *_u_traces(u_tilde, update, t)]

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.6, 0.4],
                        subplot_titles=("the signal as read", "ũ accumulates; the gate fires at θ"))
    for i, tr in enumerate(state(T)):
        fig.add_trace(tr, row=1 if i < 2 else 2, col=1)
    fig.frames = [_fast(go.Frame, name=str(t), data=state(t), traces=[0, 1, 2, 3])
                  for t in steps]
    fig.add_hline(y=theta, line=dict(color=USED_COLOR, dash="dot", width=1), row=2, col=1)
    fig.update_xaxes(range=[0, T + 1])
    fig.update_xaxes(title_text=x_label, row=2, col=1)
    fig.update_yaxes(range=[lo - pad, hi + pad], row=1, col=1)
    fig.update_yaxes(title_text="ũ", range=[0, 1.05], row=2, col=1)
    _base_layout(fig, height)
    _legend_on_top(fig)
    return _controls(fig, steps, "samples", duration)


def token_playback(tokens: Sequence[str], skim: Sequence[int], p_skim: Sequence[float],
                   theta: float = 0.5, per_row: int = 8, height: Optional[int] = None,
                   duration: int = 350) -> go.Figure:
    """A text read word by word: top, the words reached so far (bold dark = read by the big
    LSTM, light blue = skimmed by the small one) in reading order; bottom, p_skim of each word
    against θ (a word is skimmed when p_skim > θ).

    Every student's review is a new figure, so it is written as the plain figure dict Plotly
    would make (two stacked plots as ``make_subplots(rows=2, vertical_spacing=0.2)`` lays them
    out, θ as a dotted line) and handed to Plotly unvalidated: a quarter of the time of building
    it through Plotly's objects. ``tests/test_playback.py`` checks Plotly accepts it."""
    tokens = [str(t) for t in tokens]
    skim = np.asarray(skim, dtype=float).reshape(-1)
    p_skim = np.asarray(p_skim, dtype=float).reshape(-1)
    T = len(tokens)
    if not (skim.size == p_skim.size == T):
        raise ValueError("tokens, skim and p_skim must have the same length")
    if T < 1:
        raise ValueError("nothing to play: the text has no tokens")
    rows = -(-T // per_row)
    height = height or 300 + 50 * rows
    col, row = np.arange(T) % per_row, np.arange(T) // per_row
    colour = np.where(skim > 0.5, SKIM_COLOR, READ_COLOR)
    label = np.where(skim > 0.5, "skimmed", "read")
    steps = list(range(1, T + 1))
    p32 = p_skim.astype(np.float32)
    words = np.array(tokens, dtype=object)

    def state(t: int) -> list:
        shown = [tok if i < t else "" for i, tok in enumerate(tokens)]
        return [dict(type="scatter", x=col, y=row, mode="text", text=shown,
                     textfont=dict(color=list(colour), size=15), customdata=label,
                     hovertemplate="%{text}: %{customdata}<extra></extra>", name="words",
                     showlegend=False),
                dict(type="bar", x0=1, dx=1, y=p32[:t], marker=dict(color=list(colour[:t])),
                     customdata=np.stack([words[:t], label[:t]], -1) if t else None,
                     name="p_skim", hovertemplate="%{customdata[0]}: p_skim %{y:.2f} "
                                                  "(%{customdata[1]})<extra></extra>",
                     showlegend=False)]

    words_now, bars_now = state(T)       # the figure's own traces (frames only restyle them)
    words_now.update(xaxis="x", yaxis="y")
    bars_now.update(xaxis="x2", yaxis="y2")
    legend = [dict(type="scatter", x=[None], y=[None], mode="markers", name=name,
                   marker=dict(symbol="square", size=11, color=c), xaxis="x2", yaxis="y2")
              for name, c in (("read (big LSTM)", READ_COLOR),
                              ("skimmed (small LSTM)", SKIM_COLOR))]
    words_share = max(0.35, rows / (rows + 3))        # of the height left by the 0.2 gap
    words_bottom, bars_top = 1 - 0.8 * words_share, 0.8 * (1 - words_share)

    def title(text: str, y: float) -> dict:
        return dict(text=text, font=dict(size=16), showarrow=False, x=0.5, xanchor="center",
                    xref="paper", y=y, yanchor="bottom", yref="paper")

    layout = base_layout_props(height)
    layout.update(
        xaxis=dict(anchor="y", domain=[0.0, 1.0], visible=False, range=[-0.7, per_row - 0.3]),
        yaxis=dict(anchor="x", domain=[words_bottom, 1.0], visible=False,
                   range=[rows - 0.4, -0.9]),
        xaxis2=dict(anchor="y2", domain=[0.0, 1.0], title=dict(text="word"),
                    range=[0.4, T + 0.6]),
        yaxis2=dict(anchor="x2", domain=[0.0, bars_top], title=dict(text="p_skim"),
                    range=[0, 1.02]),
        annotations=[title("words reached so far", 1.0),
                     title("p_skim per word; skimmed above θ", bars_top),
                     dict(text=f"θ = {theta:g}", showarrow=False, x=0, xanchor="left",
                          xref="x2 domain", y=theta, yanchor="bottom", yref="y2")],
        shapes=[dict(type="line", x0=0, x1=1, xref="x2 domain", y0=theta, y1=theta,
                     yref="y2", line=dict(color="#d62728", dash="dot", width=1))],
        **{k: v for k, v in _LEGEND_ON_TOP.items() if k != "margin"},
        **_controls_props(steps, "words", duration))
    layout["margin"] = {**layout["margin"], **_LEGEND_ON_TOP["margin"]}
    return go.Figure(dict(data=[words_now, bars_now, *legend], layout=layout,
                          frames=[dict(name=str(t), data=state(t), traces=[0, 1])
                                  for t in steps]), _validate=False)
