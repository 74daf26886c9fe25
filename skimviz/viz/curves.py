"""Training curves: validation accuracy per epoch (the paper's Fig. 3) and a run's loss and
accuracy per step.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skimviz.viz.common import _FONT, USED_COLOR, _base_layout, _empty_figure, moving_average


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


# ---------------------------------------------------------------------------------------------
CURVES = (("loss", "loss (task + budget)"), ("accuracy", "batch accuracy"),
          ("update_rate", "update rate (fraction of steps used)"))
#: The same panels for a regression task (the adding task): batch MSE instead of accuracy.
REGRESSION_CURVES = (("loss", "loss (task + budget)"), ("mse", "batch MSE"),
                     ("update_rate", "update rate (fraction of steps used)"))


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
