"""Trade-off charts: accuracy against FLOPs or time per checkpoint (the dashboard), a model's θ
sweep with the current θ marked, and accuracy against λ.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skimviz.viz.common import (
    MARKER_COLOR,
    USED_COLOR,
    _base_layout,
    _empty_figure,
    _grid,
    current_theta_trace,
    legend_rows,
    log_ticks,
    short_number,
    spaced_labels,
)


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
    fig.add_trace(current_theta_trace(m["updates"], m["accuracy"], theta, m["how"],
                                      "pixels read %{x:.1f}"))
    xtitle = "pixels read per digit" + (f" (of {seq_len})" if seq_len else "")
    fig.update_xaxes(title_text=xtitle, gridcolor="#eeeeee", automargin=True)
    fig.update_yaxes(title_text="validation accuracy", gridcolor="#eeeeee", tickformat=".0%",
                     automargin=True)
    _base_layout(fig, height)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.02,
                                                   xanchor="left", x=0.0),
                      margin=dict(t=40))
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
