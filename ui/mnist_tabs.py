"""More of the MNIST page's tabs: the paper's Fig. 3 and Fig. 4 redrawn from our models, training
a Skip GRU in this session (the shared :mod:`ui.live_training`), and export.
"""
from __future__ import annotations

import json

import streamlit as st
import torch

from skimviz.cost import threads as torch_threads
from skimviz.data import mnist
from skimviz.tasks import mnist as task
from skimviz.training import checkpoint
from skimviz.viz import common
from skimviz.viz import curves as curves_figs
from skimviz.viz import pixels as pixels_figs
from ui import digits

from . import live_training, mnist_picker
from .checkpoints import pretrained_dir
from .glossary import definition
from .lede import paragraph
from .mnist_panels import DENSE_NAME, SKIP_NAME, SLOT
from .presentation import big
from .style import PLOT_CONFIG, THREADS

FIG3 = ("It follows validation accuracy during training, over 4 runs of 600 epochs each: the Skip GRU (λ = 10⁻⁴) climbs faster and varies less between runs than "
        "the plain GRU. The authors' guess: skipping makes the sequences the network really "
        "steps through shorter, which makes long-range learning easier.")


def _card(name: str):
    try:
        return checkpoint.load_card(name, pretrained_dir())
    except checkpoint.CheckpointError:
        return None


def paper(m: dict, theta: float) -> None:
    """(a) Accuracy per epoch of the two shipped models beside what the paper's Fig. 3 shows;
    (b) the paper's Fig. 4: maps of 2 digits of every class, pixels used under each."""
    curves = [("Skip GRU", digits.history(_card(SKIP_NAME))),
              ("GRU (no skipping)", digits.history(_card(DENSE_NAME)))]
    left, right = st.columns([3, 2], gap="medium")
    left.plotly_chart(big(curves_figs.epoch_accuracy_figure(curves, height=300)), key="fig3_chart",
                      config=PLOT_CONFIG, alt="validation accuracy per epoch, Skip GRU and GRU")
    with right:
        st.markdown("**The paper's Fig. 3**")
        st.markdown(FIG3)
        st.markdown(digits.history_sentence(dict(curves), expected="Skip GRU"))
    x, y = mnist.load_bundled()
    idx = digits.grid_indices(y, per_class=2)
    side = m["side"]
    cache = st.session_state.setdefault("_fig4", {})
    key = (m["key"], side, round(theta, 4))
    if key not in cache:
        try:
            with st.spinner("Running the model on 20 digits…"), torch_threads(THREADS):
                cache[key] = [task.predict_digit(m["model"], x[i], side)["update"] for i in idx]
        except Exception as e:  # informative only
            st.warning(f"The grid could not be computed: {e}")
            return
        if len(cache) > 8:
            cache.clear()
    updates = cache[key]
    st.markdown("**The paper's Fig. 4**, with this page's model: two digits of every class, "
                "red pixels used, blue skipped")
    order = [k for r in range(2) for k in range(r, len(idx), 2)]  # row 1: first of each class
    st.plotly_chart(pixels_figs.pixel_map_grid_figure([x[idx[k]] for k in order],
                                                  [updates[k] for k in order], side,
                                                  titles=[str(int(y[idx[k]])) for k in order],
                                                  cols=10),
                    key="fig4_chart", config=PLOT_CONFIG,
                    alt="used and skipped pixels of two digits of every class")
    used = [int(sum(u)) for u in updates]
    st.caption(f"At θ = {theta:.2f}; under each map, the pixels used of {side * side} (from "
               f"{min(used)} to {max(used)} here). The paper draws its Skip LSTM (λ = 10⁻⁴), "
               "which skips the blank rows at the top and bottom of the image.")


# --- training in the session --------------------------------------------------------------------
def _fmt_lambda(v: float) -> str:
    return "0 (no cost)" if v == 0 else f"{v:.0e}"


def _describe(s: dict) -> str:
    r, c = s["metrics"], s["config"]
    return (f"Trained {s['step']} steps (seed {c['seed']}) in {s['elapsed_s']:.0f} s: "
            f"{r['valid_accuracy']:.1%} of the {r['n_valid']:,} held-out digits right, using "
            f"{r['valid_updates_mean']:.0f} of {c['side'] ** 2} pixels on average. The "
            "picker under the digit switches between it (“My session's model”) and the shipped "
            "one.")


LIVE_DEFAULTS = {"live_lambda": 1e-3, "live_hidden": 32, "live_steps": 400, "live_lr": 1e-2}


def training() -> None:
    """A small Skip GRU trained from scratch in this session, in the server's training pool
    (other clicks do not stop it); the seed is part of the page's link."""
    def value(name: str, shown):  # read when Start is clicked: the click's values (else the
        return st.session_state.get(f"live_{name}", shown)   # value this run drew)

    paragraph("A Skip GRU learns from scratch on the bundled digits shrunk to 14×14 (196 "
              "pixels): 4,000 to learn from, 1,000 held out to test it. {λ} is the cost of "
              "each pixel used; it is raised over the first third of the steps. You can use "
              "the rest of the page meanwhile; the model lives only in this browser session.")
    w = st.columns([1, 1, 1, 1, 1.4])
    for k, v in LIVE_DEFAULTS.items():   # defaults through the session, so that the values
        st.session_state.setdefault(k, v)   # survive the tab being closed (see the page)
    lam = w[0].select_slider("Budget λ", digits.LIVE_LAMBDAS, key="live_lambda",
                             format_func=_fmt_lambda, help=definition("λ"))
    hidden = w[1].select_slider("Hidden units", digits.LIVE_HIDDEN, key="live_hidden")
    steps = w[2].number_input("Training steps", 1, digits.LIVE_MAX_STEPS, step=50,
                              key="live_steps", help=f"batches of {digits.LIVE_BATCH} digits")
    lr = w[3].select_slider("Learning rate", digits.LIVE_LRS, key="live_lr",
                            format_func=lambda v: f"{v:g}")
    if "live_seed" not in st.session_state:
        st.session_state["live_seed"] = mnist_picker.session_seed()
    seed = w[4].number_input("Seed", 0, mnist_picker.SEED_MAX, step=1, key="live_seed",
                             help="Fixes the starting weights and the batch order: the same seed "
                                  "and settings train the same model again. It is part of the "
                                  "page's link.")
    if seed is not None and 0 <= int(seed) <= mnist_picker.SEED_MAX:
        st.session_state["_live_seed"] = int(seed)
    problems = digits.live_problems(lam, hidden, steps, lr, seed, mnist_picker.SEED_MAX)
    live_training.panel(
        SLOT, "the MNIST model",
        lambda alive: digits.live_run(value("hidden", hidden), value("lambda", lam),
                                      value("lr", lr), int(value("steps", steps)),
                                      int(value("seed", seed)), alive=alive),
        describe=_describe, problems=problems)


# --- export -------------------------------------------------------------------------------------
def _trace_json(m: dict, image, pred: dict, meta: dict) -> str:
    x = mnist.to_sequence(image[None], m["side"])
    model = m["model"]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, trace = model(x, return_trace=True)
    finally:
        model.train(was)
    out = dict(meta, side=m["side"], steps=m["side"] ** 2, prediction=pred["label"],
               probabilities=pred["probabilities"], updates=pred["updates"],
               flops=pred["flops"], dense_flops=pred["dense_flops"], trace=trace.to_dict(0))
    return json.dumps(out, indent=1)


def export(m: dict, image, pred: dict, theta: float, attr, choice: str, true_label) -> None:
    """Pixels as CSV, the trace as JSON, and a link to this view."""
    view = mnist_picker.view(choice)
    stem = (f"digit{view['digit']}" if view["digit"] is not None else "upload") + \
        f"-{choice}-theta{theta:.2f}"
    rows = pixels_figs.pixel_table(image, m["side"], pred["update"], pred["update_prob"],
                               attr["attr"] if attr else None)
    e1, e2, e3 = st.columns([1, 1, 3])
    e1.download_button("Pixels as CSV", common.to_csv(rows), file_name=f"{stem}-pixels.csv",
                       mime="text/csv", key="download_pixels", on_click="ignore",
                       help="One row per pixel: row, column, step, value, used, ũ, attribution.")
    meta = {"model": SKIP_NAME if choice == "shipped" else "session", "theta": theta,
            "digit": view["digit"], "true_label": true_label,
            "attribution_method": attr["method"] if attr else None}
    e2.download_button("Trace as JSON", _trace_json(m, image, pred, meta),
                       file_name=f"{stem}-trace.json", mime="application/json",
                       key="download_trace", on_click="ignore",
                       help="ũ, used and FLOPs per pixel, with the prediction.")
    with e3:
        if view["digit"] is not None and choice == "shipped":
            st.markdown("**Link to this view** (digit, θ, attribution method, training seed):")
            st.code(mnist_picker.link(choice), language=None, wrap_lines=True)
        elif choice != "shipped":
            st.caption("A link cannot carry your session's model: it lives only in this "
                       "browser session. Pick the shipped model to share a view.")
        else:
            st.caption("A link cannot carry an uploaded image; pick a bundled digit to share.")
    st.caption("Every chart's toolbar (top right of the chart, on hover) downloads it as a PNG.")
