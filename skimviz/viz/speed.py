"""Speed charts: measured latency and GFLOP/s against sequence length, speed-up against FLOP
reduction, and the dense / skipped dumbbell.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

from skimviz.viz.common import (
    OTHER_COLOR,
    USED_COLOR,
    _empty_figure,
    _legend_on_top,
    _log_axis,
    log_ticks,
    rate_fraction,
    short_number,
)


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
