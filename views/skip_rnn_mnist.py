"""Skip RNN — MNIST pixels: which pixels of a digit a Skip GRU uses and which it skips, what that
saves in FLOPs and in measured time, and a Skip GRU trained in the session.

Layout only: numbers from ``skimviz`` (``tasks.mnist``, ``digits``), figures from
``skimviz.viz.figures`` and ``skimviz.viz.playback``, the pieces in ``ui/`` (``mnist_picker`` for the
digit and the link, ``mnist_panels`` / ``mnist_tabs`` for the tabs). A session works on its own
deep copy of the shipped checkpoint, so its θ never leaks into another session.
"""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from skimviz.cost import threads as torch_threads
from skimviz.data import mnist
from skimviz.data.images import digit_check
from skimviz.tasks import mnist as task
from skimviz.training.checkpoint import CheckpointError
from skimviz.viz import common, playback, tradeoff
from skimviz.viz import pixels as pixels_figs
from ui import digits, figure_cache, latency_panel, mnist_panels, mnist_picker, mnist_tabs, presentation, urlstate
from ui.glossary import definition
from ui.lede import lede
from ui.session_cache import keep_widget_state
from ui.style import PLOT_CONFIG, THREADS

PAGE = urlstate.PAGE
THETA_MIN, THETA_MAX, THETA_STEP = urlstate.THETA_MIN, urlstate.THETA_MAX, urlstate.THETA_STEP


def _theta_slider(card) -> float:
    """θ: the link's, else the card's, else 0.5; kept in ``theta``."""
    url_theta = st.session_state.pop("_url_theta", None)
    if "theta" not in st.session_state:
        st.session_state["theta"] = (url_theta if url_theta is not None
                                     else float((card or {}).get("update_threshold") or 0.5))
    theta = st.slider("Inference threshold θ", THETA_MIN, THETA_MAX, step=THETA_STEP,
                      key="theta", help=definition("θ") + " The same weights, another θ: the "
                                                          "gate opens when ũ reaches it.")
    return float(np.clip(theta, THETA_MIN, THETA_MAX))


def _metrics(cols, pred: dict, timing) -> None:
    """Prediction, pixels used, FLOP reduction, measured time: one metric per column."""
    ratio = common.flops_ratio(float(pred["flops"]), float(pred["dense_flops"]))
    off = dict(delta_color="off", delta_arrow="off")
    cols[0].metric("Prediction", str(pred["label"]), f"{max(pred['probabilities']):.0%} sure",
                   **off)
    cols[1].metric("Pixels used", str(int(pred["updates"])), f"of {int(pred['steps'])}",
                   help=definition("state update"), **off)
    cols[2].metric("FLOP reduction", f"{ratio:.2f}×",
                   f"{pred['flops'] / 1e6:.3g} of {pred['dense_flops'] / 1e6:.3g} M",
                   help=definition("FLOP reduction"), **off)
    latency_panel.time_metric(cols[3], timing)


#: widgets in tabs that only run while open (below): their values are kept while closed
TAB_WIDGETS = ("attr_method", "compare_view", "live_lambda", "live_hidden", "live_steps",
               "live_lr", "live_seed")


def main() -> None:
    keep_widget_state(TAB_WIDGETS)
    lede("Skip RNN — MNIST pixels",
         "A {Skip RNN} reads a digit one pixel at a time, 784 pixels row by row. Before each "
         "pixel a learned {update gate} decides: use the pixel and update the memory (red), or "
         "skip it and keep the memory as it was (blue), which costs almost nothing.",
         "pick another class, or move θ and watch the red pixels thin out.",
         ["Campos et al., “Skip RNN”, ICLR 2018: Eq. 2–5 (the gate), Eq. 8 (the budget λ), "
          "Fig. 3, Fig. 4, Table 3."])
    mnist_picker.read_url()
    for notice in st.session_state.pop("_url_notices", []):
        st.warning(notice)  # built by ui.urlstate: URL text reduced to a safe excerpt
    mnist_picker.controls(PAGE)
    image, digit_text, true_label = mnist_picker.current_digit()
    choice = mnist_panels.choose_model()
    try:
        m = mnist_panels.load(choice)
    except CheckpointError as e:
        st.error(f"The shipped Skip GRU ({mnist_panels.SKIP_NAME}) is not available: {e}. You "
                 "can still train a small one in this session, under “Train your own” below.")
        st.plotly_chart(pixels_figs.digit_figure(image, height=220), key="digit_input",
                        config=PLOT_CONFIG, alt=f"the input: {digit_text}")
        st.subheader("Train your own")
        mnist_tabs.training()
        mnist_picker.write_url("shipped")
        return
    model, side, card = m["model"], m["side"], m["card"]
    if (card or {}).get("training", {}).get("dry_run"):
        st.warning("This model was trained for only two steps (a dry run of the training "
                   "pipeline): its predictions are meaningless.")

    presenting = presentation.is_on()
    with presentation.beside(PAGE):
        cols = st.columns([0.8, 1.1, 1.6] if not presenting else [1, 1.4], gap="small")
        with cols[0]:
            st.plotly_chart(figure_cache.shared(  # the digit alone: the same at every θ
                "digit", lambda: presentation.big(pixels_figs.digit_figure(image, height=170)),
                image, presenting), key="digit_input", config=PLOT_CONFIG,
                alt="the input: " + (digit_text if true_label is not None
                                     else "your uploaded image"))
            st.caption(digit_text[:1].upper() + digit_text[1:]
                       + (f", read at {side}×{side}" if side != 28 else "") + ".")
            theta = _theta_slider(card)
            mnist_panels.model_radio()
        try:
            model.set_threshold(theta)
            with torch_threads(THREADS):
                pred = task.predict_digit(model, image, side)
        except Exception as e:  # the model must never take the page down
            st.error(f"The model could not run on this digit: {e}")
            return
        with cols[1]:
            st.plotly_chart(presentation.big(pixels_figs.used_skipped_figure(
                image, pred["update"], side, pred["update_prob"], height=280)),
                key="used_skipped_chart", config=PLOT_CONFIG,
                alt="map of used (red) and skipped (blue) pixels")
        x = mnist.to_sequence(image[None], side)
        timing = latency_panel.quick(m["name"], model, m["dense"], (x,), model_key=m["key"],
                                     extra=round(theta, 4), shared=m["name"] != "session",
                                     full=st.session_state.get("mnist_tab") == "Time")
        with cols[2] if not presenting else st.container():  # two by two: values never cut
            top, bottom = st.columns(2), st.columns(2)
            _metrics(top + bottom, pred, timing)
        if true_label is None and not digit_check(image).looks_like_digit:
            st.warning(f"**This image does not look like a handwritten digit**: "
                       f"{digit_check(image).reason}. The model answers one of 0–9 for "
                       "anything, often confidently, so this prediction means little.")
        st.markdown(digits.summary(pred, image, side, timing[0] if timing else None))

    image_hash = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
    # Only the open tab runs (on_change="rerun"): with a class on one server, every θ move
    # would otherwise also redraw the paper's figures, the attributions and the comparison.
    tabs = st.tabs(["Step by step", "Time", "Accuracy vs θ", "The paper's Fig. 3 and 4",
                    "Skips what matters?", "Compare", "Train your own", "Export"],
                   key="mnist_tab", on_change="rerun")
    attr = None
    with tabs[0]:
        st.plotly_chart(figure_cache.shared(
            "pixel_playback", lambda: presentation.big(playback.pixel_playback(
                image, pred["update"], pred["update_prob"], side, theta)),
            image, np.asarray(pred["update"]), np.asarray(pred["update_prob"]), side, theta,
            presenting), key="pixel_playback", config=PLOT_CONFIG,
            alt="the digit read pixel by pixel, used or skipped")
        st.caption("Press Play: the pixels appear in reading order, red where the memory was "
                   "updated, blue where it was skipped; on the right ũ grows at every skipped "
                   f"pixel until it reaches θ = {theta:.2f}, and the next pixel is used.")
        c1, c2 = st.columns(2)
        c1.plotly_chart(pixels_figs.update_prob_figure(pred["update_prob"], side, theta, height=320),
                        key="update_prob_chart", config=PLOT_CONFIG, alt="map of ũ per pixel")
        c1.caption("ũ, the update probability, before each pixel.")
        c2.plotly_chart(pixels_figs.probabilities_figure(pred["probabilities"], true_label,
                                                     height=320),
                        key="probabilities", config=PLOT_CONFIG, alt="class probabilities")
        c2.caption("The ten class probabilities; the predicted class in green.")
    with tabs[1]:
        if tabs[1].open:
            latency_panel.panel(m["name"], model, m["dense"], (x,), "pixels", model_key=m["key"],
                                extra=round(theta, 4), shared=m["name"] != "session")
            st.caption(f"Dense: {m['dense_note']}.")
    with tabs[2]:
        if tabs[2].open:
            st.plotly_chart(presentation.big(tradeoff.threshold_sweep_figure(
                m["sweep"], theta, side * side, height=340)), key="sweep_chart", config=PLOT_CONFIG,
                alt="validation accuracy against pixels used across θ")
            mark = tradeoff.sweep_marker(m["sweep"], theta)
            st.caption("Each grey point is the model at one θ on the validation digits; the star is "
                       "your θ" + (f": {mark['accuracy']:.1%} right with {mark['updates']:.0f} "
                                   f"pixels used ({mark['note']})." if mark else "."))
    with tabs[3]:
        if tabs[3].open:
            mnist_tabs.paper(m, theta)
    with tabs[4]:
        if tabs[4].open:
            attr = mnist_panels.attributions(m, image, image_hash, theta, pred)
    with tabs[5]:
        if tabs[5].open:
            mnist_panels.compare(m, image, image_hash, theta, pred)
    with tabs[6]:
        if tabs[6].open:
            mnist_tabs.training()
    with tabs[7]:
        if tabs[7].open:
            attr = attr or mnist_panels.computed_attribution(m, image_hash, theta)
            mnist_tabs.export(m, image, pred, theta, attr, choice, true_label)
    mnist_picker.write_url(choice)


main()
