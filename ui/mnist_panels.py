"""The MNIST page's models and its secondary views, one per tab: does the gate skip what does not
matter (attributions), a second view side by side, the paper's Fig. 3 and Fig. 4, training a
Skip GRU in the session, export.

Numbers come from ``skimviz`` (``tasks.mnist``, ``attribution``, ``digits``), figures from
``skimviz.viz.figures``; live training is the shared :mod:`ui.live_training`.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st
import torch

from skimviz.attribution import pixels as attribution
from skimviz.cost import threads as torch_threads
from skimviz.data import mnist
from skimviz.tasks import mnist as task
from skimviz.training import checkpoint
from skimviz.viz import common
from skimviz.viz import pixels as pixels_figs
from ui import digits

from . import live_training
from .checkpoints import checkpoint_stamp, load_shared, pretrained_dir, session_model
from .presentation import big
from .style import PLOT_CONFIG, THREADS

SKIP_NAME, DENSE_NAME = "skip-gru-mnist", "gru-mnist"
SLOT = "live_mnist"  # the live-training slot (ui.live_training)
ATTR_LABELS = {"ig": f"Integrated Gradients ({attribution.IG_STEPS} steps)",
               "saliency": "Saliency (|gradient|)"}
SET_N, SET_IG_STEPS = 100, 8   # the validation summary: digits, IG points


def _off(col, label, value, delta, help=None):
    col.metric(label, value, delta, delta_color="off", delta_arrow="off", help=help)


@st.cache_resource(show_spinner=False, max_entries=4)
def _fresh_dense(hidden: int) -> torch.nn.Module:
    """An untrained dense GRU classifier of the given size (timing only: weights do not change
    the time)."""
    return task.make_model("gru", hidden, skip=False).eval()


# --- models -------------------------------------------------------------------------------------
def choose_model() -> str:
    """"shipped" or "session" (``model_choice``): the session's model once trained (chosen when
    its training has just finished)."""
    options = ["shipped"] + (["session"] if live_training.model(SLOT) is not None else [])
    if live_training.just_finished(SLOT, st.session_state.get("model_choice") == "session"):
        st.session_state["model_choice"] = "session"
    if st.session_state.get("model_choice") not in options:
        st.session_state["model_choice"] = "shipped"
    return st.session_state["model_choice"]


def model_radio() -> None:
    """The model picker, drawn only once there is a model of the session's own to pick."""
    if live_training.model(SLOT) is not None:
        st.radio("Model", ["shipped", "session"], key="model_choice", horizontal=True,
                 on_change=live_training.picked, args=(SLOT,),
                 format_func={"shipped": "Shipped Skip GRU",
                              "session": "My session's model"}.get,
                 help="Your model is read at 14×14 pixels (196 steps).")


def load(choice: str) -> dict:
    """The model shown and what goes with it: side, θ sweep, cache key, the dense model timed
    against it and what that is. Raises :class:`checkpoint.CheckpointError`."""
    if choice == "session":
        run = live_training.current(SLOT)
        cfg, metrics = run.config, run.snapshot()["metrics"] or {}
        return {"model": run.model, "card": None, "side": digits.LIVE_SIDE,
                "sweep": metrics.get("sweep") or [], "key": ("session", id(run)),
                "name": "session", "dense": _fresh_dense(cfg["hidden"]),
                "dense_note": "an untrained dense GRU of the same size (weights do not change "
                              "the time)"}
    model, card, key = session_model(SKIP_NAME, "_models")
    side = int((card.get("input") or {}).get("side", 28))
    d = pretrained_dir()
    try:
        dense, dense_card = load_shared(DENSE_NAME, d, checkpoint_stamp(DENSE_NAME, d))
        note = f"the shipped dense GRU `{DENSE_NAME}`"
        if int((dense_card.get("input") or {}).get("side", 28)) != side:
            raise checkpoint.CheckpointError("another input size")
    except checkpoint.CheckpointError:
        dense = _fresh_dense(int(model.config["hidden_size"]))
        note = "an untrained dense GRU of the same size (weights do not change the time)"
    return {"model": model, "card": card, "side": side,
            "sweep": card.get("threshold_sweep") or [], "key": key, "name": SKIP_NAME,
            "dense": dense, "dense_note": note}


def dense_checkpoint(side: int):
    """The shipped dense GRU when it reads this side, else None."""
    d = pretrained_dir()
    try:
        dense, card = load_shared(DENSE_NAME, d, checkpoint_stamp(DENSE_NAME, d))
    except checkpoint.CheckpointError:
        return None
    return dense if int((card.get("input") or {}).get("side", 28)) == side else None


# --- attributions -------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def _agreement_set(_model, model_key, theta: float, method: str, side: int) -> dict:
    x, y = mnist.load_bundled()
    idx = pixels_figs.live_split(y, digits.LIVE_VALID_PER_CLASS)[1][::10][:SET_N]
    with torch_threads(THREADS):
        return attribution.agreement_over_set(_model, x[idx], side, SET_N, method,
                                              steps=SET_IG_STEPS)


def computed_attribution(m: dict, image_hash: str, theta: float):
    """The attribution the "Skips what matters?" tab computed for this model, digit and θ (with
    the method last chosen there), or None: for the export, which does not compute one."""
    method = st.session_state.get("attr_method", next(iter(attribution.METHODS)))
    return st.session_state.get("_attr", {}).get((m["key"], image_hash, m["side"],
                                                  round(theta, 4), method))


def attributions(m: dict, image, image_hash: str, theta: float, pred: dict):
    """Does the gate skip what does not matter? The attribution map, two numbers with their
    chance levels, the same over 100 validation digits on demand. Returns the attribution."""
    model, side = m["model"], m["side"]
    st.markdown("An **attribution** method scores how much each pixel pushes the model towards "
                "its answer. If the gate skips what does not matter, the pixels with the "
                "largest attribution should be the used ones.")
    method = st.radio("Attribution method", list(attribution.METHODS), key="attr_method",
                      horizontal=True, format_func=ATTR_LABELS.get,
                      help="Integrated Gradients follows the gradient from a black image to "
                           "this digit; Saliency is the gradient at the digit itself.")
    cache = st.session_state.setdefault("_attr", {})
    key = (m["key"], image_hash, side, round(theta, 4), method)
    if key not in cache:
        try:
            t0 = time.perf_counter()
            with st.spinner("Computing the attribution…"), torch_threads(THREADS):
                a = attribution.attribute_digit(model, image, side, method,
                                                steps=attribution.IG_STEPS, target=pred["label"])
        except Exception as e:  # attributions are informative only
            st.warning(f"The attribution could not be computed: {e}")
            return None
        if len(cache) > 64:
            cache.clear()
        cache[key] = {"attr": a, "method": method, "seconds": time.perf_counter() - t0}
    res = cache[key]
    g = attribution.agreement(res["attr"], pred["update"])
    top = digits.top_used_share(res["attr"], pred["update"], g["k"])
    left, right = st.columns(2)
    with left:
        st.plotly_chart(pixels_figs.attribution_figure(res["attr"], side, pred["update"], k=g["k"],
                                                   signed=method == "ig", height=360),
                        key="attribution_chart", config=PLOT_CONFIG,
                        alt=f"attribution map ({attribution.METHODS[method]})")
        st.caption(f"Towards the answer {pred['label']}"
                   + (": red pushes towards it, blue away" if method == "ig" else "")
                   + f". Squares: the {g['k']} pixels with the largest attribution, black where "
                   "used, grey where skipped.")
    with right:
        c = st.columns(2)
        _off(c[0], "Attribution on used pixels", f"{g['mass_on_used']:.0%}",
             f"chance: {g['used_fraction']:.0%}",
             "Share of the total |attribution| on the pixels the model used. If the gate "
             "ignored importance, it would be the share of pixels used.")
        _off(c[1], "Top pixels used", f"{top:.0%}", f"chance: {g['used_fraction']:.0%}",
             f"Of the {g['k']} pixels with the largest |attribution| (the top tenth), the share "
             "the model used.")
        st.markdown("**In one line:** " + digits.attribution_line(g["mass_on_used"],
                                                                  g["used_fraction"]))
        if method == "saliency":
            st.info("Saliency is the gradient with the gate's decisions fixed: a skipped pixel "
                    "never reaches the output, so it scores exactly 0 and the share is 100 % by "
                    "construction. Integrated Gradients lets the decisions change on its way "
                    "from a black image: use it to ask whether the gate skips what does not "
                    "matter.")
        _agreement_summary(m, theta, method)
    return res


def _agreement_summary(m: dict, theta: float, method: str) -> None:
    done = st.session_state.setdefault("_attr_set", {})
    key = (m["key"], round(theta, 4), method, m["side"])
    if st.button(f"Compute over {SET_N} validation digits", key="attr_set_run"):
        try:
            with st.spinner(f"Attributing {SET_N} digits…"):
                done[key] = _agreement_set(m["model"], m["key"], round(theta, 4), method,
                                           m["side"])
        except Exception as e:
            st.warning(f"The validation summary could not be computed: {e}")
    s = done.get(key)
    if s is None:
        return
    c = st.columns(2)
    _off(c[0], "Mean attribution on used", f"{s['mass_on_used_mean']:.0%}",
         f"chance: {s['used_fraction_mean']:.0%}")
    _off(c[1], "Digits above chance", f"{s['share_above_chance']:.0%}", f"of {SET_N}")
    st.plotly_chart(pixels_figs.agreement_figure(s, height=300), key="agreement_chart",
                    config=PLOT_CONFIG, alt="attribution on used pixels against pixels used")
    st.caption(f"One point per digit (10 per class); above the dashed line, more attribution "
               f"on the used pixels than chance. Computed in {s['seconds']:.1f} s.")


# --- a second view ------------------------------------------------------------------------------
def compare(m: dict, image, image_hash: str, theta: float, pred: dict) -> None:
    """The view above (A) beside a second one (B) on the same digit: the shipped dense GRU, or
    the same weights at a second θ; the same colours, size and FLOP reference."""
    model, side = m["model"], m["side"]
    dense = dense_checkpoint(side)
    labels = {"dense": "the dense GRU (every pixel)", "theta": "the same model at another θ"}
    options = (["dense"] if dense is not None else []) + ["theta"]
    if st.session_state.get("compare_view") not in options:
        st.session_state.pop("compare_view", None)
    c1, c2 = st.columns(2)
    which = c1.radio("Second view (B)", options, key="compare_view", horizontal=True,
                     format_func=labels.get, help="A is the view above.")
    theta_b = theta
    if which == "theta":
        theta_b = float(c2.slider("θ for B", 0.05, 1.0, step=0.05, key="compare_theta",
                                  value=0.8 if abs(theta - 0.8) > 1e-9 else 0.5))
    if dense is None:
        st.caption("The shipped dense GRU is not available for this input, so only another θ "
                   "can be compared.")
    cache = st.session_state.setdefault("_compare", {})
    key = (m["key"], image_hash, side, which, round(theta_b, 4))
    if key not in cache:
        try:
            with torch_threads(THREADS):
                if which == "dense":
                    cache[key] = task.predict_digit(dense, image, side)
                else:
                    model.set_threshold(theta_b)
                    try:
                        cache[key] = task.predict_digit(model, image, side)
                    finally:
                        model.set_threshold(theta)
        except Exception as e:  # the comparison is informative only
            st.warning(f"The second view could not be computed: {e}")
            return
    pred_b = cache[key]
    ref = float(pred["dense_flops"])  # one reference for both
    views = [("A", f"θ = {theta:.2f}", pred),
             ("B", "dense GRU" if which == "dense" else f"θ = {theta_b:.2f}", pred_b)]
    for col, (tag, title, p) in zip(st.columns(2), views):
        with col:
            st.markdown(f"**{tag}: {title}**, predicts {p['label']} "
                        f"({max(p['probabilities']):.0%} sure)")
            st.plotly_chart(big(pixels_figs.used_skipped_figure(image, p["update"], side,
                                                            p["update_prob"], height=320)),
                            key=f"compare_map_{tag.lower()}", config=PLOT_CONFIG,
                            alt=f"view {tag}: map of used (red) and skipped (blue) pixels")
            c = st.columns(2)
            _off(c[0], f"Pixels used ({tag})", str(int(p["updates"])), f"of {p['steps']}")
            _off(c[1], f"FLOP reduction ({tag})",
                 f"{common.flops_ratio(float(p['flops']), ref):.2f}×", "vs dense")
    diff = int(np.sum(np.asarray(pred["update"]) != np.asarray(pred_b["update"])))
    st.caption(f"B uses {int(pred_b['updates'])} pixels against A's {int(pred['updates'])}; the "
               f"maps differ on {diff} of {side * side} pixels and the predictions "
               + ("agree." if pred["label"] == pred_b["label"] else "disagree."))
