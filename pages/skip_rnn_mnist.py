"""Skip RNN — MNIST pixels: which pixels does a Skip GRU read, what does it save, and a model
trained live in the session.

A thin page: numbers come from ``skimviz`` (tasks.mnist, train, cost, checkpoint) and every chart
from ``skimviz.figures``. The shipped checkpoint is loaded once per process
(``st.cache_resource``) and deep-copied into each session before its threshold is touched, so a
session's θ never leaks into another's; the session's own model lives in ``st.session_state`` only.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time

import numpy as np
import streamlit as st
import torch

from app_support import big, presentation, session_model, set_query, share_link
from app_support import checkpoint_stamp as _stamp
from app_support import load_shared as _load_shared
from app_support import pretrained_dir as _pretrained_dir
from app_support import is_on as presenting_on
from skimviz import attribution, cost, figures, urlstate
from skimviz.checkpoint import CheckpointError
from skimviz.data import mnist as mnist_data
from skimviz.data.images import (MAX_UPLOAD_BYTES, ImageError, check_size, digit_check,
                                  image_to_digit)
from skimviz.safety import human_bytes, label
from skimviz.speedlab import threads as _threads
from skimviz.tasks import mnist as task
from skimviz.train import (Trainer, TrainingDiverged, batches, classification_loss,
                           evaluate_classifier, threshold_sweep)

SKIP_NAME, DENSE_NAME = "skip-gru-mnist", "gru-mnist"
N_DIGITS = mnist_data.N_BUNDLED
THETA_MIN, THETA_MAX, THETA_STEP = 0.05, 1.0, 0.05
# Live training: the bundled digits at 14×14 (196 steps), a stratified 4,000 / 1,000 split.
LIVE_SIDE, LIVE_BATCH, LIVE_VALID_PER_CLASS = 14, 64, 100
LIVE_LAMBDAS = [0.0, 1e-5, 1e-4, 1e-3, 1e-2]
LIVE_HIDDEN = [16, 32, 64]
LIVE_LRS = [1e-3, 3e-3, 1e-2, 3e-2]
LIVE_MAX_STEPS = 3000
SEED_MAX = urlstate.SEED_MAX  # 2**31 - 1: the seed input's range, as in the URL
# One CPU thread for training and timing: these small recurrent ops gain nothing from a second
# thread, and on a busy 2-core machine two OpenMP threads per op run many times slower.
THREADS = 1
# The gate (W_p, b_p) learns 10× slower than the rest, as in the shipped models' recipe: with a
# fast gate the budget closes it before the classifier has learnt anything.
GATE_LR_SCALE = 0.1
# Charts keep Plotly's toolbar (its camera button downloads a PNG); no Plotly logo link.
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
# Attributions: IG points per digit, and the validation subset for the agreement summary (every
# 10th of the 1,000 held-out digits: 10 per class, validation for both models).
ATTR_IG_STEPS = attribution.IG_STEPS
SET_N, SET_IG_STEPS = 100, 8
TRAIN_HELP = ("python -m skimviz train mnist --data-dir ../shared/data --name skip-gru-mnist "
              "(and --dense --name gru-mnist for the dense baseline)")


# ---------------------------------------------------------------------------------------------
# helpers (no figures here: those are in skimviz.figures)
@st.cache_resource(show_spinner=False, max_entries=4)
def _fresh_dense(hidden: int) -> torch.nn.Module:
    """An untrained dense GRU classifier of the given size (for timing only)."""
    return task.make_model("gru", hidden, skip=False).eval()


@st.cache_resource(show_spinner=False)
def _live_data() -> dict:
    x, y = mnist_data.load_bundled()
    tr, va = figures.live_split(y, LIVE_VALID_PER_CLASS)
    seq = mnist_data.to_sequence(x, LIVE_SIDE)
    yt = torch.tensor(y)
    return {"x_train": seq[tr], "y_train": yt[tr], "x_valid": seq[va], "y_valid": yt[va],
            "n_train": len(tr), "n_valid": len(va)}


def _rng() -> np.random.Generator:
    if "_rng" not in st.session_state:
        st.session_state["_rng"] = np.random.default_rng()
    return st.session_state["_rng"]


def _session_seed() -> int:
    """Live training's seed: the link's (``seed=``), else one drawn at random once per session;
    then whatever the "Seed" input last held (its widget state is dropped off-page)."""
    if "_live_seed" not in st.session_state:
        st.session_state["_live_seed"] = int(_rng().integers(SEED_MAX + 1))
    return int(st.session_state["_live_seed"])


# --- digit picking (widget callbacks: the last action wins) ----------------------------------
def _set_index(i: int, source: str) -> None:
    """Show bundled digit ``i``. The class and index boxes follow the digit shown, however it was
    picked (random, class, link), and an earlier upload's error no longer applies."""
    _, y = mnist_data.load_bundled()
    st.session_state["digit"] = {"source": source, "index": int(i), "label": int(y[i])}
    st.session_state["digit_index"] = int(i)
    st.session_state["digit_class"] = int(y[i])
    st.session_state["upload_error"] = None


def _on_index() -> None:
    v = st.session_state.get("digit_index")
    if v is not None and 0 <= int(v) < N_DIGITS:
        _set_index(int(v), "index")


def _on_random() -> None:
    _set_index(int(_rng().integers(N_DIGITS)), "random")


def _on_class() -> None:
    c = st.session_state.get("digit_class")
    _, y = mnist_data.load_bundled()
    idx = np.nonzero(y == int(c))[0]
    _set_index(int(_rng().choice(idx)), "class")


def _on_upload() -> None:
    """Decode the upload (size checked before its bytes are read; see skimviz.data.images). An
    upload has no class or index, so both boxes are emptied."""
    f = st.session_state.get("digit_upload")
    st.session_state["upload_error"] = None
    if f is None:
        return
    try:
        check_size(f.size)
        img = image_to_digit(f.getvalue())
    except ImageError as e:  # its message is ours: no Python objects, no user text
        st.session_state["upload_error"] = f"“{label(f.name)}”: {e}"
        return
    st.session_state["digit"] = {"source": "upload", "index": None, "label": None,
                                 "image": img, "name": f.name}
    st.session_state["digit_index"] = None
    st.session_state["digit_class"] = None


def _current_digit():
    """(image 28×28 uint8, description, true label or None)."""
    d = st.session_state.setdefault("digit", {"source": "index", "index": 0, "label": None})
    if d["source"] == "upload":
        return d["image"], f"your image “{label(d['name'])}”", None
    x, y = mnist_data.load_bundled()
    i = d["index"]
    return x[i], f"validation digit #{i} (a {int(y[i])})", int(y[i])


# --- URL state (the view in the link) -------------------------------------------------------
def _read_url() -> None:
    """Once per session: the query parameters become the widgets' starting values; every bad
    value falls back to its default with a notice (see ``skimviz.urlstate``)."""
    if st.session_state.get("_url_read"):
        return
    st.session_state["_url_read"] = True
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    state, notices = urlstate.parse(params)
    if state["model"] == "session":
        notices.append("This link asks for a model trained in another browser session; such a "
                       "model lives only in that session, so the shipped model is shown.")
    st.session_state["_url_notices"] = notices
    st.session_state["digit_index"] = state["digit"]
    _set_index(state["digit"], "index")
    st.session_state["attr_method"] = state["method"]
    st.session_state["_url_theta"] = state["theta"]
    if state["seed"] is not None:
        st.session_state["_live_seed"] = state["seed"]
    st.session_state["live_seed"] = _session_seed()


def _url_view(choice) -> dict:
    d = st.session_state.get("digit") or {}
    return {"digit": d.get("index") if d.get("source") != "upload" else None,
            "model": choice or "shipped", "theta": st.session_state.get("theta"),
            "method": st.session_state.get("attr_method") or "ig", "seed": _view_seed(),
            "present": presenting_on()}


def _view_seed() -> int:
    """The seed the view carries: the "Seed" input's when it holds a valid one, else the
    session's."""
    v = st.session_state.get("live_seed")
    if v is not None and 0 <= int(v) <= SEED_MAX:
        return int(v)
    return _session_seed()


def _write_url(view: dict) -> None:
    """Keep the address bar on the current view (only when it changed)."""
    set_query(urlstate.encode(view))


def _share_link(view: dict) -> str:
    """A link that opens this view: ``<app root>/?page=skip-rnn-mnist&...``. Through the root, so
    it also works on the first request to a fresh server."""
    return share_link(urlstate.PAGE, urlstate.share_query(view, via_home=True))


# --- attributions -----------------------------------------------------------------------------
def _set_indices() -> np.ndarray:
    _, y = mnist_data.load_bundled()
    return figures.live_split(y, LIVE_VALID_PER_CLASS)[1][::10][:SET_N]


@st.cache_data(show_spinner=False, max_entries=16)
def _agreement_set(_model, model_key, theta: float, method: str, side: int) -> dict:
    """Agreement over the validation subset, cached per model (key), θ and method."""
    x, _ = mnist_data.load_bundled()
    with _threads(THREADS):
        return attribution.agreement_over_set(_model, x[_set_indices()], side, SET_N, method,
                                              steps=SET_IG_STEPS)


def _trace_json(model, image, side: int, pred: dict, meta: dict) -> str:
    """This example's trace (SkipTrace.to_dict: ũ, u, FLOPs per step) with the prediction."""
    x = mnist_data.to_sequence(image[None], side)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, trace = model(x, return_trace=True)
    finally:
        model.train(was_training)
    out = dict(meta)
    out.update(side=side, steps=side * side, prediction=pred["label"],
               probabilities=pred["probabilities"], updates=pred["updates"],
               flops=pred["flops"], dense_flops=pred["dense_flops"], trace=trace.to_dict(0))
    return json.dumps(out, indent=1)


def _attributions(model, model_key, image, image_hash: str, side: int, theta: float,
                  pred: dict):
    """The "Attributions vs decisions" section for one digit; returns the attribution (dict with
    "attr", "method", "seconds") or None."""
    st.subheader("Attributions vs decisions: does the model skip what does not matter?")
    st.markdown(
        "An **attribution** method scores how much each pixel pushes the model towards its "
        "prediction. If the gate skips what does not matter, the high-attribution pixels should "
        "be the used ones.")
    with st.container(key="controls_attr"):
        method = st.radio(
            "Attribution method", list(attribution.METHODS), key="attr_method",
            horizontal=True,
            format_func=lambda m: {"ig": f"Integrated Gradients ({ATTR_IG_STEPS} steps)",
                                   "saliency": "Saliency (|gradient|)"}[m],
            help="captum.attr, towards the predicted class. Integrated Gradients averages the "
                 "gradient along the path from a black image to this digit; Saliency is the "
                 "gradient at the digit itself.")
    cache = st.session_state.setdefault("_attr", {})
    key = (model_key, image_hash, side, round(theta, 4), method)
    res = cache.get(key)
    if res is None:
        try:
            t0 = time.perf_counter()
            with st.spinner("Computing the attribution…"), _threads(THREADS):
                a = attribution.attribute_digit(model, image, side, method, steps=ATTR_IG_STEPS,
                                                target=pred["label"])
            res = {"attr": a, "method": method, "seconds": time.perf_counter() - t0}
            if len(cache) > 64:
                cache.clear()
            cache[key] = res
        except Exception as e:  # attributions are informative only
            st.warning(f"The attribution could not be computed: {e}")
            return None
    g = attribution.agreement(res["attr"], pred["update"])
    c_attr, c_num = st.columns(2)
    with c_attr:
        st.plotly_chart(
            figures.attribution_figure(res["attr"], side, pred["update"], k=g["k"],
                                       signed=method == "ig", height=400),
            key="attribution_chart", config=PLOT_CONFIG,
            alt=f"attribution map ({attribution.METHODS[method]})")
        st.caption(f"{attribution.METHODS[method]} towards the predicted class "
                   f"{pred['label']}" + (" (red pushes towards it, blue away)" if method == "ig"
                                         else "") +
                   f". Squares: the top {g['k']} pixels by |attribution|, black where the "
                   f"pixel was used, grey where it was skipped. Computed in "
                   f"{res['seconds']:.2f} s on the CPU (cached for this digit, θ and method).")
    with c_num:
        cols = st.columns(2)
        cols[0].metric("Attribution on used pixels", f"{g['mass_on_used']:.0%}",
                       f"chance: {g['used_fraction']:.0%}", delta_color="off", delta_arrow="off",
                       help="share of the total |attribution| that falls on used pixels; if "
                            "the gate ignored importance it would be the share of pixels used")
        cols[1].metric(f"Used-AUC (top {g['k']})", f"{g['used_auc']:.2f}",
                       "0.5 = no relation", delta_color="off", delta_arrow="off",
                       help=f"ROC AUC of “used” as a predictor of being among the {g['k']} "
                            "pixels with the largest |attribution|: 1 = all of them used and "
                            "few others, 0.5 = unrelated, below 0.5 = the gate prefers "
                            "unimportant pixels")
        st.markdown(
            f"**In one line:** {g['mass_on_used']:.0%} of what matters lies on the "
            f"{g['used_fraction']:.0%} of pixels the model read"
            + (" — more than chance." if g["mass_on_used"] > g["used_fraction"] + 0.02 else
               " — no better than chance." if g["mass_on_used"] >= g["used_fraction"] - 0.02
               else " — less than chance."))
        if method == "saliency":
            st.info("Saliency is the gradient with the decisions fixed: a skipped pixel never "
                    "reaches the output, so its saliency is exactly 0 and this share is 100 % "
                    "by construction. Integrated Gradients moves from a black image to this "
                    "digit, the decisions change along the way, so skipped pixels can score: "
                    "use it to ask whether the gate skips what does not matter.")
        else:
            st.caption("Integrated Gradients starts from a black image, so black pixels score "
                       "exactly 0 whether they are used or not.")

        st.markdown(f"**Over {SET_N} validation digits** (10 per class, at this θ)")
        set_key = (model_key, round(theta, 4), method, side)
        done = st.session_state.setdefault("_attr_set", {})
        if st.button(f"Compute over {SET_N} digits", key="attr_set_run",
                     help=f"{attribution.METHODS[method]}"
                          + (f" with {SET_IG_STEPS} steps" if method == "ig" else "")
                          + "; cached per model, θ and method"):
            try:
                with st.spinner(f"Attributing {SET_N} digits…"):
                    done[set_key] = _agreement_set(model, model_key, round(theta, 4), method,
                                                   side)
            except Exception as e:
                st.warning(f"The validation summary could not be computed: {e}")
        summary = done.get(set_key)
        if summary is not None:
            cols = st.columns(2)
            cols[0].metric("Mean attribution on used", f"{summary['mass_on_used_mean']:.0%}",
                           f"chance: {summary['used_fraction_mean']:.0%}", delta_color="off",
                           delta_arrow="off")
            cols[1].metric("Mean used-AUC", f"{summary['used_auc_mean']:.2f}",
                           f"± {summary['used_auc_std']:.2f}", delta_color="off",
                           delta_arrow="off")
            st.plotly_chart(figures.agreement_figure(summary, height=300),
                            key="agreement_chart", config=PLOT_CONFIG,
                            alt="attribution on used pixels against the fraction used, per digit")
            st.caption(f"One point per digit; above the dashed line = more attribution on the "
                       f"used pixels than chance ({summary['share_above_chance']:.0%} of the "
                       f"digits). {attribution.METHODS[method]}"
                       + (f" with {SET_IG_STEPS} steps (fewer than for one digit, to keep it "
                          "quick)" if method == "ig" else "")
                       + f"; computed in {summary['seconds']:.1f} s.")
    return res


# --- live training ----------------------------------------------------------------------------
def _live_metrics(live: dict) -> None:
    """Validation accuracy / updates and a θ sweep for the session's model (once)."""
    if live.get("metrics") is not None or live["step"] == 0:
        return
    data = _live_data()
    model = live["model"]
    with _threads(THREADS):
        v = evaluate_classifier(model, data["x_valid"], data["y_valid"], threshold=0.5)
        sweep = threshold_sweep(model, data["x_valid"], data["y_valid"], task.SWEEP)
    live["metrics"] = {"valid_accuracy": v["accuracy"], "valid_updates_mean": v["updates"],
                       "n_valid": v["n"]}
    live["sweep"] = [{k: s[k] for k in ("threshold", "accuracy", "updates", "flops")}
                     for s in sweep]


def _fmt_lambda(v: float) -> str:
    return "0 (no budget)" if v == 0 else f"{v:.0e}"


# =============================================================================================
st.title("Skip RNN — MNIST pixels")
st.markdown(
    "A **Skip RNN** (Campos et al., ICLR 2018) reads a digit one pixel at a time, 784 steps in "
    "scan-line order. Before each pixel a learned binary gate decides whether to **update** the "
    "recurrent state with that pixel (the GRU runs) or to **copy** the previous state and skip "
    "the pixel (nothing runs). Training adds a budget loss λ·Σu_t, a price per used pixel, which "
    "pushes the network to read fewer pixels for the same answer.")

_read_url()
for _notice in st.session_state.pop("_url_notices", []):
    st.warning(_notice)  # built by skimviz.urlstate: URL text reduced to a safe excerpt
# Presentation mode (app_support): the toggle, and when on the CSS and this page's slides; the
# URL keeps present=1 through _write_url (the view includes it).
presentation(urlstate.PAGE, sync_url=False)

# --- model -------------------------------------------------------------------------------------
live = st.session_state.get("live")
if live is not None:
    # Any click starts a new run at once (fast reruns) while the previous run, perhaps a training,
    # winds down until its next Streamlit call (within one training step): wait for it before
    # touching the session's model.
    if live["lock"].acquire(timeout=60):
        live["lock"].release()
    if live["status"] == "training":
        # The rerun interrupted the training loop (Stop or any other click): keep the model.
        live["status"] = "stopped"
has_live = live is not None and live["step"] > 0

if st.session_state.pop("_select_live", False) and has_live:
    st.session_state["model_choice"] = "session"
options = ["shipped"] + (["session"] if has_live else [])
if st.session_state.get("model_choice") not in options:
    st.session_state.pop("model_choice", None)
with st.container(key="controls_model"):
    choice = st.radio(
        "Model", options, key="model_choice", horizontal=True,
        format_func=lambda o: {"shipped": f"Shipped: {SKIP_NAME} (28×28 = 784 steps)",
                               "session": f"My session's model ({LIVE_SIDE}×{LIVE_SIDE} = "
                                          f"{LIVE_SIDE ** 2} steps)"}[o],
        help="Train your own model in the last section of this page; it then appears here.")

model = card = None
model_key = None
if choice == "shipped":
    try:
        model, card, model_key = session_model(SKIP_NAME, "_models")
    except CheckpointError as e:
        st.error(f"The shipped checkpoint **{SKIP_NAME}** is not available: {e}\n\n"
                 f"Train it with `{TRAIN_HELP}` (it is exported to `pretrained/` after every "
                 "epoch), or train a small model in this session at the bottom of this page.")
    if card is not None:
        side = int(card.get("input", {}).get("side", 28))
        metrics = card.get("metrics", {})
        training = card.get("training", {})
        sweep = card.get("threshold_sweep", [])
        c1, c2, c3 = st.columns(3)
        c1.metric("Validation accuracy", f"{metrics.get('valid_accuracy', float('nan')):.1%}",
                  help=f"on the {metrics.get('n_valid', '?')} bundled MNIST digits, never trained "
                       "on, at θ = 0.5")
        c2.metric("Mean state updates", f"{metrics.get('valid_updates_mean', float('nan')):.0f}"
                  f" / {side * side}", help="pixels used per digit, averaged over validation")
        c3.metric("Epochs trained", f"{training.get('epochs', '?')}",
                  help=f"of {training.get('epochs_planned', '?')} planned; "
                       f"λ = {training.get('lambda', '?')}")
        if training.get("dry_run"):
            st.warning("This checkpoint comes from a pipeline dry run (two training steps): its "
                       "predictions are meaningless. Train the real one with "
                       f"`{TRAIN_HELP}`.")
        st.caption(f"Checkpoint `{card['name']}`: {card.get('architecture')} "
                   f"{card.get('config', {}).get('cell', '').upper()}, "
                   f"{card.get('config', {}).get('hidden_size')} units, "
                   f"λ = {training.get('lambda', '?')}. "
                   f"Validation: {card.get('data', {}).get('valid', '?')}.")
else:
    _live_metrics(live)
    model, side, sweep = live["model"], LIVE_SIDE, live.get("sweep") or []
    model_key = ("session", live["version"], live["step"])
    m = live["metrics"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Validation accuracy", f"{m['valid_accuracy']:.1%}",
              help=f"on the {m['n_valid']} held-out bundled digits (100 per class), at θ = 0.5")
    c2.metric("Mean state updates", f"{m['valid_updates_mean']:.0f} / {LIVE_SIDE ** 2}")
    c3.metric("Training steps", f"{live['step']}",
              help=f"batches of {LIVE_BATCH}; {live['step'] * LIVE_BATCH / _live_data()['n_train']:.1f}"
                   " epochs over the 4,000 training digits")
    cfg = live["config"]
    st.caption(f"Your Skip GRU: {cfg['hidden']} units, λ = {_fmt_lambda(cfg['lam'])}, "
               f"learning rate {cfg['lr']:g}, seed {cfg['seed']}, trained in this session "
               f"only (status: {live['status']}).")

# --- digit ---------------------------------------------------------------------------------------
st.header("1 · Choose the input")
pick, show = st.columns([3, 2])
with pick:
    with st.container(key="controls_digit"):
        a, b = st.columns(2)
        with a:
            if "digit_class" not in st.session_state:  # dropped off-page, like the index
                st.session_state["digit_class"] = (st.session_state.get("digit") or {}).get(
                    "label")
            st.selectbox("Digit class", list(range(10)), index=None, key="digit_class",
                         placeholder="a random digit of class…", on_change=_on_class)
            st.button("Another one of this class", key="digit_class_again",
                      on_click=_on_class, disabled=st.session_state.get("digit_class") is None)
        with b:
            if "digit_index" not in st.session_state:  # the widget's state is dropped off-page
                st.session_state["digit_index"] = (st.session_state.get("digit") or {}).get(
                    "index", 0)
            st.number_input(f"Digit index (0–{N_DIGITS - 1})", step=1, key="digit_index",
                            on_change=_on_index,
                            help="one of the 5,000 MNIST digits bundled with the app; the "
                                 "shipped model never trained on them")
            st.button("Random digit", key="digit_random", on_click=_on_random)
        idx_value = st.session_state.get("digit_index")
        uploaded = (st.session_state.get("digit") or {}).get("source") == "upload"
        if idx_value is None and not uploaded:
            st.error(f"The digit index is empty: choose a number from 0 to {N_DIGITS - 1}. The "
                     "page still shows the previous digit.")
        elif idx_value is not None and not 0 <= int(idx_value) < N_DIGITS:
            st.error(f"Digit index {idx_value} is out of range: choose a number from 0 to "
                     f"{N_DIGITS - 1}. The page still shows the previous digit.")
    with st.container(key="controls_upload"):
        st.file_uploader(
            f"…or upload a photo or drawing of a digit (PNG or JPEG, up to "
            f"{human_bytes(MAX_UPLOAD_BYTES)})", type=["png", "jpg", "jpeg"],
            key="digit_upload", on_change=_on_upload,
            max_upload_size=MAX_UPLOAD_BYTES // 2**20,
            help=f"PNG or JPEG only, at most {human_bytes(MAX_UPLOAD_BYTES)} and "
                 "4096×4096 pixels (the server refuses larger files). It is turned into a 28×28 "
                 "MNIST-like digit as MNIST's were made: grey, the paper's uneven light "
                 "removed, bright ink on black, cropped to the ink, scaled to fit 20×20 "
                 "pixels and centred by its centre of mass.")
    if st.session_state.get("upload_error"):
        st.error(f"That upload cannot be used: {st.session_state['upload_error']}. The page "
                 "still shows the previous digit.")

image, digit_text, true_label = _current_digit()
with show:
    st.plotly_chart(big(figures.digit_figure(image, height=240)), key="digit_input",
                    config=PLOT_CONFIG, alt="the input: " + (digit_text if true_label is not None
                                                             else "your uploaded image"))
    st.caption(f"The input: {digit_text}, 28×28 pixels"
               + (f", read by this model at {side}×{side}" if model is not None and side != 28
                  else "") + ".")

# --- compare --------------------------------------------------------------------------------------
COMPARE_VIEWS = {"dense": f"the dense baseline `{DENSE_NAME}`",
                 "theta": "the same model at a second θ"}


def _compare(model, model_key, image, image_hash: str, side: int, theta: float,
             pred: dict) -> None:
    """Compare: the view above (A) beside a second one (B) on the same digit: the dense baseline
    checkpoint, or the same weights at a second θ. Both maps come from
    ``figures.used_skipped_figure`` at the same size and colours; both FLOP counts are against the
    same dense cost."""
    d = _pretrained_dir()
    dense = None
    try:
        dense, dense_card = _load_shared(DENSE_NAME, d, _stamp(DENSE_NAME, d))
        if int(dense_card.get("input", {}).get("side", 28)) != side:
            dense = None  # e.g. the session's 14×14 model: not the same input
    except CheckpointError:
        dense = None
    with st.expander("Compare: two views side by side on this digit", expanded=False):
        options = (["dense"] if dense is not None else []) + ["theta"]
        if st.session_state.get("compare_view") not in options:
            st.session_state.pop("compare_view", None)
        with st.container(key="controls_compare"):
            c1, c2 = st.columns(2)
            view = c1.radio("Second view (B)", options, key="compare_view", horizontal=True,
                            format_func=lambda o: COMPARE_VIEWS[o],
                            help="A is the view above (this model at the θ of the slider).")
            theta_b = theta
            if view == "theta":
                theta_b = c2.slider("θ for B", THETA_MIN, THETA_MAX, step=THETA_STEP,
                                    value=0.8 if abs(theta - 0.8) > 1e-9 else 0.5,
                                    key="compare_theta")
                theta_b = float(np.clip(theta_b, THETA_MIN, THETA_MAX))
        if dense is None:
            st.caption(f"The dense baseline `{DENSE_NAME}` is not available for this input, so "
                       "only a second θ can be compared.")
        cache = st.session_state.setdefault("_compare", {})
        key = (model_key, image_hash, side, view, round(theta_b, 4))
        pred_b = cache.get(key)
        if pred_b is None:
            try:
                with _threads(THREADS):
                    if view == "dense":
                        pred_b = task.predict_digit(dense, image, side)
                    else:
                        model.set_threshold(theta_b)
                        try:
                            pred_b = task.predict_digit(model, image, side)
                        finally:
                            model.set_threshold(theta)
            except Exception as e:  # the comparison is informative only
                st.warning(f"The second view could not be computed: {e}")
                return
            if len(cache) > 32:
                cache.clear()
            cache[key] = pred_b
        name_a = SKIP_NAME if model_key and model_key[0] == SKIP_NAME else "your model"
        views = [("A", f"{name_a} at θ = {theta:.2f}", pred),
                 ("B", f"{DENSE_NAME} (dense: every pixel)" if view == "dense"
                  else f"{name_a} at θ = {theta_b:.2f}", pred_b)]
        cols = st.columns(2)
        dense_flops = float(pred["dense_flops"])  # one reference for both: the same scale
        for col, (tag, title, p) in zip(cols, views):
            with col:
                st.markdown(f"**{tag}: {title}**")
                st.plotly_chart(
                    big(figures.used_skipped_figure(image, p["update"], side, p["update_prob"],
                                                    height=360)),
                    key=f"compare_map_{tag.lower()}", config=PLOT_CONFIG,
                    alt=f"view {tag}: map of used (red) and skipped (blue) pixels")
                text = figures.counters({**p, "dense_flops": dense_flops})
                m1, m2, m3 = st.columns(3)
                m1.metric(f"Prediction ({tag})", f"{p['label']}",
                          f"{max(p['probabilities']):.0%}", delta_color="off", delta_arrow="off")
                m2.metric(f"State updates ({tag})", text["updates"], text["update_rate"],
                          delta_color="off", delta_arrow="off")
                m3.metric(f"FLOPs vs dense ({tag})", text["flops_ratio"],
                          figures.format_flops(float(p["flops"])), delta_color="off",
                          delta_arrow="off")
        diff = int(np.sum(np.asarray(pred["update"]) != np.asarray(pred_b["update"])))
        agree = "agree" if pred["label"] == pred_b["label"] else "disagree"
        st.caption(
            f"Same digit, same colours (red used, blue skipped, strong where the ink is) and the "
            f"same size; FLOPs of both against the same dense GRU count "
            f"({figures.format_flops(dense_flops)}). B reads {int(pred_b['updates'])} pixels "
            f"against A's {int(pred['updates'])}; the maps differ on {diff} of "
            f"{side * side} pixels and the predictions {agree}.")


# --- θ and prediction ---------------------------------------------------------------------------
def _analysis(model, card, side: int, sweep: list, model_key, choice: str, image: np.ndarray,
              true_label) -> None:
    """θ slider, sweep chart, prediction, the two maps and the counters for one digit."""
    st.header("2 · What the model reads")
    tcol, scol = st.columns([2, 3])
    with tcol:
        with st.container(key="controls_theta"):
            default_theta = float(card.get("update_threshold", 0.5)) if card else 0.5
            url_theta = st.session_state.pop("_url_theta", None)
            if "theta" not in st.session_state:
                st.session_state["theta"] = (url_theta if url_theta is not None
                                             else default_theta)
            theta = st.slider("Inference threshold θ", THETA_MIN, THETA_MAX,
                              step=THETA_STEP, key="theta",
                              help="u_t = 1 (update) when the accumulated update probability "
                                   "ũ_t ≥ θ. 0.5 is the paper's rounding; a larger θ skips "
                                   "more pixels.")
            st.caption("The budget knob at inference time: the same weights, a different "
                       "threshold on ũ. Moving it re-runs the digit.")
    theta = float(np.clip(theta, THETA_MIN, THETA_MAX))
    try:
        model.set_threshold(theta)
    except ValueError as e:
        st.error(f"θ = {theta} cannot be used: {e}")
        return
    with scol:
        st.plotly_chart(big(figures.threshold_sweep_figure(sweep, theta, side * side,
                                                           height=290)),
                        key="sweep_chart", config=PLOT_CONFIG,
                        alt="validation accuracy against mean updates across θ")
        mark = figures.sweep_marker(sweep, theta)
        n_valid = (card or {}).get("metrics", {}).get("n_valid")
        source = (f"the model's card, on {n_valid:,} validation digits" if card and n_valid
                  else "the model's card" if card
                  else "your model, on the 1,000 held-out digits")
        st.caption("Validation accuracy vs mean pixels used as θ moves (each grey point is one θ, "
                   f"from {source}); the star is the current θ"
                   + (f": {mark['note']}." if mark else "."))

    try:
        with _threads(THREADS):
            pred = task.predict_digit(model, image, side)
    except Exception as e:  # the model must never take the page down
        st.error(f"The model could not run on this digit: {e}")
        return

    c_map, c_prob_map = st.columns(2)
    with c_map:
        with st.container(key="used_map"):
            st.plotly_chart(
                big(figures.used_skipped_figure(image, pred["update"], side,
                                                pred["update_prob"], height=400)),
                key="used_skipped_chart", config=PLOT_CONFIG,
                alt="map of used (red) and skipped (blue) pixels")
        st.caption("Used pixels in red (the state was updated), skipped pixels in blue (the state "
                   "was copied); the digit's ink in the strong colours — the paper's Fig. 4.")
    with c_prob_map:
        st.plotly_chart(big(figures.update_prob_figure(pred["update_prob"], side, theta,
                                                       height=400)),
                        key="update_prob_chart", config=PLOT_CONFIG,
                        alt="map of the update probability")
        st.caption("ũ, the update probability before each pixel: it grows by Δũ at every skipped "
                   f"pixel until it reaches θ = {theta:.2f}, then the state is updated.")

    image_hash = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
    attr = _attributions(model, model_key, image, image_hash, side, theta, pred)

    # --- counters -----------------------------------------------------------------------------
    text = figures.counters(pred)
    dense_model, dense_note = None, ""
    if choice == "shipped":
        try:
            dense_model, _ = _load_shared(DENSE_NAME, _pretrained_dir(),
                                                   _stamp(DENSE_NAME, _pretrained_dir()))
            dense_note = f"the `{DENSE_NAME}` checkpoint"
        except CheckpointError:
            dense_note = (f"an untrained dense GRU of the same size: the `{DENSE_NAME}` checkpoint "
                          "is not available, and weights do not change the time")
    else:
        dense_note = "an untrained dense GRU of the same size (weights do not change the time)"
    if dense_model is None:
        dense_model = _fresh_dense(int(model.config["hidden_size"]))

    lat_cache = st.session_state.setdefault("_latency", {})
    lat_key = (model_key, image_hash, side, round(theta, 4))
    latency, latency_error = lat_cache.get(lat_key), None
    if latency is None:
        latency = {}
        try:
            with st.spinner("Timing both models on this digit…"), _threads(THREADS):
                for dev in cost.available_devices():  # latency_pair times copies on `dev`
                    latency[dev] = task.latency_pair(model, dense_model, image, side, dev, repeats=5)
                    latency[dev]["name"] = cost.describe_device(dev)
            if len(lat_cache) > 64:
                lat_cache.clear()
            lat_cache[lat_key] = latency
        except Exception as e:  # timing is informative only
            latency_error = str(e)

    c_prob, c_count = st.columns([1, 2])
    with c_prob:
        truth = f" (true label {true_label})" if true_label is not None else ""
        st.metric("Prediction", f"{pred['label']}",
                  f"{max(pred['probabilities']):.0%} probability", delta_color="off",
                  delta_arrow="off")
        if true_label is None:  # an upload: say when it does not look like a digit
            check = digit_check(image)
            if not check.looks_like_digit:
                st.warning(f"**This image does not look like a handwritten digit**: "
                           f"{check.reason}. The model only ever saw digits and answers one "
                           "of 0–9 for anything, often with high confidence, so this "
                           "prediction means little.")
        st.plotly_chart(figures.probabilities_figure(pred["probabilities"], true_label, height=220),
                        key="probabilities", config=PLOT_CONFIG,
                        alt="class probabilities")
        st.caption(f"The ten class probabilities; the predicted class in green{truth}.")
    with c_count:
        st.subheader("Counters")
        cols = st.columns(2)
        cols[0].metric("State updates", text["updates"], text["update_rate"], delta_color="off",
                       delta_arrow="off",
                       help="pixels where the GRU ran; on the others the state was copied")
        cols[1].metric("FLOPs vs the dense GRU", text["flops_ratio"], text["flops"],
                       delta_color="off", delta_arrow="off",
                       help="analytic count: a used pixel costs the GRU cell and the gate, a "
                            "skipped one 3 FLOPs; the dense GRU runs its cell at every pixel")
        cols = st.columns(2)
        for i, (dev, lat) in enumerate(latency.items()):
            s, d = lat["skip"]["median_ms"], lat["dense"]["median_ms"]
            cols[i % 2].metric(f"Latency on {dev.upper()}, batch 1", f"{s:.1f} ms",
                               f"dense GRU {d:.1f} ms (Skip GRU {d / s:.2f}× faster)" if d >= s
                               else f"dense GRU {d:.1f} ms (Skip GRU {s / d:.2f}× slower)",
                               delta_color="off", delta_arrow="off",
                               help=f"{lat['name']}; median of {lat['skip']['repeats']} runs after "
                                    "2 warm-up runs")
        if latency_error:
            st.warning(f"Latency could not be measured: {latency_error}")
        devs = "; ".join(f"{lat['name']}" for lat in latency.values())
        st.caption(f"Device in use: {devs or cost.describe_device('cpu')}. Latency is one digit at "
                   f"batch 1 ({THREADS} CPU thread), the Skip GRU against {dense_note}. "
                   "The dense GRU is one fused nn.GRU call, while the Skip GRU steps in Python "
                   "from update to update, so fewer FLOPs do not always mean less time.")

    # --- compare ---------------------------------------------------------------------------------
    _compare(model, model_key, image, image_hash, side, theta, pred)

    # --- export ---------------------------------------------------------------------------------
    view = _url_view(choice)
    st.subheader("Export and share")
    d = st.session_state.get("digit") or {}
    stem = (f"digit{d['index']}" if d.get("source") != "upload" else "upload") + \
        f"-{choice}-theta{theta:.2f}"
    e1, e2, e3 = st.columns([1, 1, 2])
    rows = figures.pixel_table(image, side, pred["update"], pred["update_prob"],
                               attr["attr"] if attr else None)
    e1.download_button("Pixels as CSV", figures.to_csv(rows), file_name=f"{stem}-pixels.csv",
                       mime="text/csv", key="download_pixels", on_click="ignore",
                       help="one row per step: row, col, step, pixel value, used, ũ, attribution")
    meta = {"model": SKIP_NAME if choice == "shipped" else "session", "theta": theta,
            "digit": view["digit"], "true_label": true_label,
            "attribution_method": attr["method"] if attr else None}
    e2.download_button("Trace as JSON", _trace_json(model, image, side, pred, meta),
                       file_name=f"{stem}-trace.json", mime="application/json",
                       key="download_trace", on_click="ignore",
                       help="ũ, u and FLOPs per step (SkipTrace.to_dict) with the prediction")
    with e3:
        if view["digit"] is not None and choice == "shipped":
            st.markdown("**Link to this view** (digit, θ, attribution method and the training "
                        "seed of section 3):")
            st.code(_share_link(view), language=None)
        elif choice != "shipped":
            st.caption("A link cannot carry your session's model: it lives only in this browser "
                       "session. Switch to the shipped model to share a view.")
        else:
            st.caption("A link cannot carry an uploaded image; pick a bundled digit to share.")
    st.caption("Every chart's toolbar (top right of the chart, on hover) downloads it as a PNG.")

if model is not None:
    _analysis(model, card, side, sweep, model_key, choice, image, true_label)
_write_url(_url_view(choice if model is not None else "shipped"))

# --- live training --------------------------------------------------------------------------------
st.header("3 · Train your own Skip GRU in this session")
st.markdown(
    f"A small Skip GRU learns from scratch on the bundled digits, average-pooled to "
    f"{LIVE_SIDE}×{LIVE_SIDE} = {LIVE_SIDE ** 2} steps: 400 digits per class (4,000) for "
    f"training and the last 100 of each class (1,000) for validation; batches of {LIVE_BATCH}, "
    f"Adam, gradient clipping at 1, {THREADS} CPU thread. λ is ramped up over the first third of "
    "the steps and the gate learns 10× slower than the rest, so the classifier learns something "
    "before the budget closes the gate. "
    "With the defaults, 400 steps take about a minute on an idle 2-core CPU (more when it is "
    "busy) and reach roughly 50 % validation accuracy reading about a third of the pixels; "
    "700 steps reach roughly 60 %. **Any click on the page stops the training** (the model so "
    "far is kept). The model lives only in this browser session. The **seed** fixes the "
    "starting weights and the order of the batches: the same seed with the same settings trains "
    "the same model again (it is part of the page's link).")
with st.container(key="controls_training"):
    w1, w2, w3, w4, w5 = st.columns(5)
    lam = w1.select_slider("Budget λ (cost per used pixel)", LIVE_LAMBDAS, value=1e-3,
                           key="live_lambda", format_func=_fmt_lambda)
    hidden = w2.select_slider("Hidden units", LIVE_HIDDEN, value=32, key="live_hidden")
    steps = w3.number_input("Training steps", min_value=1, max_value=LIVE_MAX_STEPS, value=400,
                            step=50, key="live_steps", help=f"batches of {LIVE_BATCH}")
    lr = w4.select_slider("Learning rate", LIVE_LRS, value=1e-2, key="live_lr",
                          format_func=lambda v: f"{v:g}")
    if "live_seed" not in st.session_state:  # the widget's state is dropped off-page
        st.session_state["live_seed"] = _session_seed()
    seed_in = w5.number_input(f"Seed (0–{SEED_MAX})", min_value=0, max_value=SEED_MAX, step=1,
                              key="live_seed",
                              help="fixes the starting weights and the batch order; drawn at "
                                   "random once per session, carried by the page's link")
    if seed_in is not None and 0 <= int(seed_in) <= SEED_MAX:
        st.session_state["_live_seed"] = int(seed_in)
    b1, b2, _ = st.columns([1, 1, 4])
    start = b1.button("Start training", key="live_start", type="primary")
    b2.button("Stop training", key="live_stop", help="stops the training; the model so far is kept")

status_box = st.empty()
with st.container(key="train_progress"):
    progress_box = st.empty()
curves_box = st.empty()
live_map_box = st.empty()

problems = []
if lam not in LIVE_LAMBDAS:
    problems.append(f"λ must be one of {', '.join(map(_fmt_lambda, LIVE_LAMBDAS))}")
if hidden not in LIVE_HIDDEN:
    problems.append(f"hidden units must be one of {LIVE_HIDDEN}")
if steps is None or not 1 <= int(steps) <= LIVE_MAX_STEPS:
    problems.append(f"training steps must be between 1 and {LIVE_MAX_STEPS}")
if lr not in LIVE_LRS:
    problems.append(f"the learning rate must be one of {LIVE_LRS}")
if seed_in is None or not 0 <= int(seed_in) <= SEED_MAX:
    problems.append(f"the seed must be a whole number from 0 to {SEED_MAX}")

if start and problems:
    status_box.error("Cannot start: " + "; ".join(problems) + ".")
elif start:
    steps = int(steps)
    data = _live_data()
    seed = int(seed_in)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new_model = task.make_model("gru", int(hidden), skip=True)
    trainer = Trainer(new_model, classification_loss(float(lam), warmup_steps=max(1, steps // 3)),
                      lr=float(lr), gate_lr=float(lr) * GATE_LR_SCALE)
    live = {"model": new_model, "config": {"hidden": int(hidden), "lam": float(lam),
                                           "lr": float(lr), "steps": steps, "seed": seed},
            "status": "training", "step": 0, "elapsed_s": 0.0, "history": trainer.history,
            "metrics": None, "sweep": None, "error": None,
            "version": int(time.time() * 1e6), "lock": threading.RLock()}
    st.session_state["live"] = live  # stored now: a Stop keeps whatever was learnt so far
    chart_every = max(1, steps // 25)
    map_every = max(1, steps // 8)
    map_image = image

    def on_step(p) -> bool:
        live["step"], live["elapsed_s"] = p.step, p.elapsed_s
        last = p.step == p.total_steps
        # every step: a Streamlit call is also where a click interrupts the loop
        s = p.stats
        progress_box.progress(
            p.fraction, text=f"step {p.step}/{p.total_steps} · loss {p.loss:.3f} · batch "
                             f"accuracy {s['accuracy']:.0%} · update rate "
                             f"{s['update_rate']:.0%} · {p.elapsed_s:.0f} s")
        if p.step % chart_every == 0 or last:
            curves_box.plotly_chart(figures.training_curves_figure(p.history),
                                    key=f"live_curves_{p.step}", config=PLOT_CONFIG)
        if p.step % map_every == 0 or last:
            r = task.predict_digit(new_model, map_image, LIVE_SIDE)
            new_model.train()  # predict_digit switched to eval; training goes on
            live_map_box.plotly_chart(
                figures.used_skipped_figure(map_image, r["update"], LIVE_SIDE, r["update_prob"],
                                            title=f"your model at step {p.step}: predicts "
                                                  f"{r['label']}, uses {r['updates']}/"
                                                  f"{r['steps']} pixels", height=330),
                key=f"live_map_{p.step}", config=PLOT_CONFIG)
        return False

    status_box.info("Training… click “Stop training” (or anything else) to stop.")
    progress_box.progress(0.0, text=f"step 0/{steps}")
    finished = False
    with live["lock"]:  # held until the loop ends, however it ends (see the top of the page)
        try:
            with _threads(THREADS):
                trainer.fit(batches(data["x_train"], data["y_train"], LIVE_BATCH, seed=seed),
                            steps, callback=on_step, log_every=1)
        except TrainingDiverged as e:
            live["status"], live["error"] = "diverged", str(e)
        else:
            live["status"] = "done"
            _live_metrics(live)
            finished = True
    if finished:
        st.session_state["_select_live"] = True
        st.rerun()

live = st.session_state.get("live")
if live is not None and (not start or live["status"] == "diverged"):
    if live["status"] == "diverged":
        status_box.error(f"Training diverged: {live['error']}. The model keeps the weights from "
                         "before the bad step; try a lower learning rate or a smaller λ.")
    elif live["status"] == "stopped":
        status_box.warning(f"Training stopped at step {live['step']} of "
                           f"{live['config']['steps']}; the model trained so far is kept"
                           + (" and can be chosen under “Model” at the top." if live["step"]
                              else "."))
    elif live["status"] == "done":
        m = live.get("metrics") or {}
        status_box.success(
            f"Trained {live['step']} steps in {live['elapsed_s']:.0f} s: validation accuracy "
            f"{m.get('valid_accuracy', float('nan')):.1%}, {m.get('valid_updates_mean', 0):.0f} of "
            f"{LIVE_SIDE ** 2} pixels used on average. Your model is available under “Model” at "
            "the top.")
    if live["history"]:
        curves_box.plotly_chart(figures.training_curves_figure(live["history"]),
                                key="live_curves", config=PLOT_CONFIG)
        st.download_button("Training curves as CSV", figures.to_csv(live["history"]),
                           file_name="training-curves.csv", mime="text/csv",
                           key="download_curves", on_click="ignore",
                           help="one row per training step: loss, batch accuracy, update rate…")
st.caption("Training curves (when a model has been trained here): loss, batch accuracy and the "
           "fraction of pixels used, per step (grey) and averaged over 10 steps.")
