"""Trade-off dashboard: every shipped checkpoint as a point, task metric against FLOPs (or
measured latency), one panel per task, the dense baselines and the papers' reported points
beside ours.

A thin page: the points come from the model cards through ``skimviz.dashboard`` and the chart
from ``skimviz.figures.tradeoff_figure``, so a new checkpoint in ``pretrained/`` appears here
without a code change.
"""
from __future__ import annotations


import pandas as pd
import streamlit as st

from app_support import big, presentation
from app_support import checkpoint_stamp as _stamp
from app_support import pretrained_dir as _pretrained_dir
from skimviz import checkpoint, dashboard, figures
from skimviz.checkpoint import CheckpointError

PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


@st.cache_data(show_spinner=False, max_entries=64)
def _card(name: str, directory: str | None, stamp) -> dict:
    return checkpoint.load_card(name, directory)


@st.cache_data(show_spinner=False, max_entries=64)
def _latency(name: str, directory: str | None, stamp) -> dict:
    """Batch-1 latency of one checkpoint on validation digit #0, 1 CPU thread (cached per
    checkpoint version)."""
    model, card = checkpoint.load(name, directory)
    return dashboard.checkpoint_latency(model, card)


st.title("Trade-off dashboard")
presenting = presentation("dashboard")
st.markdown(
    "Every checkpoint shipped with the app is one point: its task metric against what it "
    "costs per sequence. Dense baselines are marked as squares, the papers' reported points as "
    "purple crosses labelled with their table, and a model's θ sweep as a dotted line. The "
    "points are read from the model cards, so a newly trained checkpoint appears here by itself.")

directory = _pretrained_dir()
names = checkpoint.list_pretrained(directory)
cards, problems = [], []
for name in names:
    try:
        cards.append(_card(name, directory, _stamp(name, directory)))
    except CheckpointError as e:
        problems.append(f"`{name}`: {e}")
for p in problems:
    st.warning(f"A checkpoint card could not be read and is left out: {p}")
if not cards:
    st.info("No checkpoint is shipped yet (see the README for the training commands); the "
            "papers' reported points are shown alone.")

points = dashboard.points_from_cards(cards) if cards else dashboard.paper_points()
curves = dashboard.sweep_curves(cards)

with st.container(key="controls_dashboard"):
    c1, c2 = st.columns([2, 3])
    axis = c1.radio("Cost axis", ["flops", "latency_ms"], key="dash_axis", horizontal=True,
                    format_func=lambda v: {"flops": "FLOPs per sequence",
                                           "latency_ms": "Measured latency"}[v])
    with c2:
        measure = st.button("Measure latency of every checkpoint", key="dash_measure",
                            disabled=not cards,
                            help="Times each checkpoint on one validation digit, batch 1, 1 CPU "
                                 "thread (median of 5 runs after 2 warm-ups); cached per "
                                 "checkpoint.")

lat = st.session_state.setdefault("_dash_latency", {})
if measure:
    with st.spinner("Timing every checkpoint on one digit…"):
        for name in names:
            try:
                lat[name] = _latency(name, directory, _stamp(name, directory))
            except Exception as e:  # timing is informative only
                st.warning(f"Latency of `{name}` could not be measured: {e}")
points = dashboard.with_latency(points, {k: v["median_ms"] for k, v in lat.items()})

if axis == "latency_ms" and not dashboard.drawable(points, "latency_ms"):
    st.info("No latency measured yet: press “Measure latency of every checkpoint”. Showing "
            "FLOPs meanwhile.")
    axis = "flops"

fig = figures.tradeoff_figure(points, x=axis, curves=curves if axis == "flops" else None,
                              height=460, font_size=16 if presenting else 12)
st.plotly_chart(big(fig), key="tradeoff_chart", config=PLOT_CONFIG,
                alt="trade-off chart: task metric against cost, one point per checkpoint")
if axis == "flops":
    st.caption(
        "Task metric (validation accuracy for MNIST) against analytic FLOPs per sequence (log "
        "scale; a multiply-add is 2 FLOPs, element-wise work counted, head included). Circles: "
        "our conditional models; black squares: our dense baselines; purple: the paper's "
        "reported numbers (Skip RNN, Table 3), whose FLOPs are computed with skimviz.cost from "
        "the reported updates for a 110-unit cell at input 1 over 784 steps; dotted grey: our "
        "model at each swept inference threshold θ. Hover a point for its details.")
else:
    measured = [p for p in points if p.get("latency_ms") is not None]
    how = next(iter(lat.values()), {}).get("input", "one validation digit, batch 1, 1 thread")
    st.caption(
        f"Task metric against measured latency: {how}; median of the timed runs on this "
        f"machine's CPU ({len(measured)} checkpoint{'s' if len(measured) != 1 else ''} timed). "
        "The papers report no comparable latency, so they are not drawn here. The dense GRU is "
        "one fused call while a Skip GRU steps in Python from update to update, so fewer FLOPs "
        "do not always mean less time.")

# --- targets, table ---------------------------------------------------------------------------
for t in dashboard.target_notes(points):
    st.info(f"**{t['name']}** — target: {t['goal']}. Status: {t['note']}.")
dry = [p["name"] for p in points if p["source"] == "ours" and p["dry_run"]]
if dry:
    st.warning("From a pipeline dry run (two training steps; meaningless numbers): "
               + ", ".join(f"`{n}`" for n in dry) + ".")
for p in dashboard.missing(points, "flops"):
    st.warning(f"`{p['name']}`: its card has no "
               f"{'task metric' if p['value'] is None else 'FLOP count'}, so it is listed but "
               "not drawn.")

if not presenting:
    rows = [{"task": p["task"], "model": p["name"], "kind": p["kind"],
             "source": p["source"] if p["source"] == "ours" else p["ref"],
             "metric": p["metric_label"], "value": p["value"], "updates": p["updates"],
             "FLOPs / sequence": p["flops"], "latency ms": p["latency_ms"]} for p in points]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="tradeoff_table")
    st.caption("The same points as a table: ours from the model cards (validation set of each "
               "card), the paper's as reported; updates are mean state updates per sequence.")
