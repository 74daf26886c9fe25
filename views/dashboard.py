"""Trade-off dashboard: every shipped checkpoint as a point, task metric against FLOPs or
measured time per input, one task family at a time (a picker), the papers' reported points beside
ours, and one sentence per task, generated from the numbers, naming the best trade-off.

A thin page: the points, the latency inputs and the sentences come from ``ui.dashboard``,
the chart from ``skimviz.viz.tradeoff.tradeoff_figure``, so a new checkpoint in ``pretrained/``
appears here without a code change.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from skimviz.training import checkpoint
from skimviz.training.checkpoint import CheckpointError
from skimviz.viz import tradeoff
from ui import dashboard, presentation
from ui.checkpoints import checkpoint_stamp as _stamp
from ui.checkpoints import load_shared
from ui.checkpoints import pretrained_dir as _pretrained_dir
from ui.lede import lede
from ui.style import PLOT_CONFIG, THREADS

PAGE = "dashboard"
AXES = {"flops": "FLOPs", "latency_ms": "Measured time"}


@st.cache_data(show_spinner=False, max_entries=64)
def _card(name: str, directory: str | None, stamp) -> dict:
    return checkpoint.load_card(name, directory)


@st.cache_resource(show_spinner=False, max_entries=16)
def _latency(names: tuple, directory: str | None, stamps: tuple) -> dict:
    """Batch-1 time of every checkpoint in ``names``, timed in turn in one run; once per
    process and checkpoint versions (``stamps``): {"ms": name → ms, "inputs": task → what,
    "errors": name → message}."""
    calls, inputs, errors = {}, {}, {}
    base = checkpoint.PRETRAINED_DIR if directory is None else directory
    for name, stamp in zip(names, stamps):
        try:
            model, card = load_shared(name, directory, stamp)
            args, what = dashboard.latency_inputs(card, f"{base}/{name}")
        except (CheckpointError, ValueError, OSError) as e:
            errors[name] = str(e)
            continue
        calls[name] = lambda m=model.eval(), a=args: m(*a)
        inputs[dashboard.card_point(card)["task"]] = what
    return {"ms": dashboard.time_models(calls) if calls else {}, "inputs": inputs,
            "errors": errors}


# --- the checkpoints ---------------------------------------------------------------------------
directory = _pretrained_dir()
names = checkpoint.list_pretrained(directory)
cards, unreadable = [], []
for name in names:
    try:
        cards.append(_card(name, directory, _stamp(name, directory)))
    except CheckpointError:
        unreadable.append(name)
points = dashboard.points_from_cards(cards) if cards else dashboard.paper_points()
curves = dashboard.sweep_curves(cards)

# --- opening -------------------------------------------------------------------------------------
presenting = presentation.toggle(PAGE, st.columns([2.5, 1])[1])  # top right
lede("Trade-off dashboard",
     "Every model shipped with this app is one point: how well it does its task (up is better) "
     "against what one input costs (left is cheaper), counted in {FLOPs} or measured as "
     "{latency|time} on this server. Circles skip work, squares are {dense}; purple marks are "
     "the papers' own numbers.",
     "switch the cost to “Measured time”: do the circles still sit left of the squares?",
     ["Campos et al., ICLR 2018, Table 3 · Seo et al., ICLR 2018, Table 2 · Guan et al., "
      "ACL 2022, Table 3"])
if not cards:
    st.info("No model is installed in this app yet; the papers' reported points are shown "
            "alone.")

groups = dashboard.groups(points)
if st.session_state.get("dash_task") not in groups:  # first visit, or a slide's task is absent
    st.session_state["dash_task"] = groups[0]
st.session_state.setdefault("dash_axis", "flops")
with st.container(key="controls_dashboard"):
    c1, c2 = st.columns([5, 2])
    group = c1.segmented_control("Task", groups, key="dash_task", required=True,
                                 format_func=dashboard.group_label)
    axis = c2.segmented_control(
        "Cost", list(AXES), key="dash_axis", required=True, format_func=AXES.get,
        help="FLOPs: counted arithmetic per input, as on the model cards. Measured time: every "
             f"model of the task timed now, at batch 1 on this server's CPU ({THREADS} thread), "
             "in turn in one run.")
group = group if group in groups else groups[0]
shown = dashboard.in_group(points, group)
tasks = list(dict.fromkeys(p["task"] for p in shown))

timing = None
ours = [p["name"] for p in shown if p["source"] == "ours"]
if axis == "latency_ms" and ours:
    with st.spinner(f"Timing {len(ours)} models at batch 1…"):
        timing = _latency(tuple(ours), directory, tuple(_stamp(n, directory) for n in ours))
    shown = dashboard.with_latency(shown, timing["ms"])

# --- the chart and what it says ------------------------------------------------------------------
best = [b["pick"]["name"] for t in tasks
        if (b := dashboard.best_tradeoff(shown, t, axis)) is not None]
fig = tradeoff.tradeoff_figure(shown, x=axis, curves=curves if axis == "flops" else None,
                              font_size=16 if presenting else 12, highlight=best)
with presentation.beside(PAGE):
    st.plotly_chart(presentation.big(fig), key="tradeoff_chart", config=PLOT_CONFIG,
                    alt="trade-off chart: task metric against cost, one point per model")
    for t in tasks:
        st.markdown(dashboard.tradeoff_sentence(shown, t, axis))

if axis == "flops":
    st.caption("FLOPs per input: the mean over each model's validation set, counted from the "
               "work it really did (a multiply-add is 2 FLOPs). Dotted grey: one skipping model "
               "at other thresholds θ, same weights. Best trade-off: the cheapest of our models "
               f"within {dashboard.ACCURACY_TOLERANCE * 100:g} accuracy point of our most "
               "accurate one (for the adding task: the cheapest that solves it). Hover a point "
               "for its details.")
elif timing is not None:
    inputs = "; ".join(f"{dashboard.task_title(t)}: {w}" for t, w in timing["inputs"].items())
    st.caption(f"Median time per input at batch 1 on this server's CPU ({THREADS} thread), "
               f"every model timed in turn in one run, measured once per server start. Inputs "
               f"— {inputs}. The papers report no times on this machine, so only our models "
               "are drawn.")
    for name, err in timing["errors"].items():
        st.caption(f"{name} could not be timed: {err}")

# --- details -------------------------------------------------------------------------------------
with st.expander("All points of this task as a table"):
    rows = [{"task": dashboard.task_title(p["task"]), "model": p["name"],
             "kind": "skipping" if p["kind"] == "skip" else "dense",
             "source": "ours" if p["source"] == "ours" else p["ref"],
             "measure": p["metric_label"], "value": p["value"],
             "FLOPs per input": p["flops"], "time (ms)": p["latency_ms"]} for p in shown]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="tradeoff_table")
    lost = [p["name"] for p in dashboard.missing(shown, axis)] + unreadable
    if lost:
        st.caption("Listed but not drawn (their cards lack a number): " + ", ".join(lost) + ".")
