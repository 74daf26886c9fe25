"""Skim-RNN — your own text: which words does a Skim-LSTM read with its big cell and which does
it skim with the small one, what that saves in FLOPs, and what it saves in measured time.

A thin page: the analysis comes from ``skimviz.tasks.skim_text``, the timing from
``skimviz.skim_speed`` and ``skimviz.cost``, every chart and the coloured text from
``skimviz.figures_text``. Checkpoints are found by their card (task "text-classification", a
Skim-LSTM config), loaded once per process (``st.cache_resource``) and deep-copied into each
session before θ is touched, so a session's θ never leaks into another's.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import streamlit as st

from app_support import (big, cached_latency, dense_twin, export_row, flops_metric,
                         latency_metrics, presentation, read_text_url, session_model, set_query,
                         text_cards, text_input, text_share_link)
from app_support import is_on as presenting_on
from app_support import pretrained_dir as _pretrained_dir
from skimviz import (attribution_text, checkpoint, cost, figures, figures_text, skim_speed,
                     urlstate)
from skimviz.checkpoint import CheckpointError
from skimviz.data import text as textdata
from skimviz.models import skim_rnn as _skim_rnn
from skimviz.speedlab import threads as _threads
from skimviz.tasks import skim_text

PAGE = urlstate.SKIM_PAGE
TASK = "text-classification"
THETA_MIN, THETA_MAX, THETA_STEP = (urlstate.SKIM_THETA_MIN, urlstate.SKIM_THETA_MAX,
                                    urlstate.SKIM_THETA_STEP)
# One CPU thread for timing, as on the other pages: these small recurrent ops gain nothing from
# a second thread, and on a busy 2-core machine two OpenMP threads per op run many times slower.
THREADS = 1
LATENCY_REPEATS, LATENCY_CAP_S = 10, 2.0  # this text, per model and device
SPEED_REPEATS, SPEED_CAP_S = 20, 90.0     # each text at each θ; the whole speed-up measurement
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
DEFAULT_LABELS = {0: "negative", 1: "positive"}
TRAIN_HELP = ("python -m skimviz train text --dataset sst2 --name skim-lstm-sst2 "
              "--dense-twin lstm-sst2 (and --dense --name lstm-sst2 for the dense twin)")

# Written for this page (not from any dataset): mixed sentiment, one long. The first is the
# default: at the shipped θ it shows read and skimmed words side by side.
EXAMPLES = {
    "Pretty but hollow (negative)":
        "The costumes are gorgeous, but the story drags and the ending feels like nobody knew "
        "how to finish it.",
    "A warm surprise (positive)":
        "What a warm, funny little film. The two leads have real chemistry, and I laughed more "
        "than I expected to.",
    "Not bad at all (positive, with a negation)":
        "I went in with low hopes and it was not bad at all; in fact the last act is genuinely "
        "moving.",
    "A waste of a good cast (negative)":
        "A dull, clumsy script wastes a talented cast. Skip it.",
    "A long, mixed review":
        "For its first hour this thriller is a pleasure: the city looks cold and beautiful, the "
        "detective is sharp without being a cliche, and every scene seems to hide a small clue. "
        "Then the plot starts explaining itself. Characters stop talking to each other and "
        "start reciting backstory, the villain's plan becomes harder to believe with every "
        "twist, and the music tells you exactly what to feel. The lead actress still holds it "
        "together, and one quiet scene in a train station is as good as anything I have seen "
        "this year, but by the end I was checking my watch. Worth a look for her performance, "
        "not for the mystery.",
}


# ---------------------------------------------------------------------------------------------
# checkpoints
def _skim_checkpoints(directory) -> dict:
    """name → card for every checkpoint whose card is a text classifier with a Skim-LSTM."""
    return {n: c for n, c in text_cards(TASK, directory).items()
            if (c.get("config") or {}).get("skim") is True}


@st.cache_resource(show_spinner=False, max_entries=8)
def _vocab(name: str, directory: str | None, stamp) -> textdata.Vocab:
    return skim_text.load_vocab(Path(directory or checkpoint.PRETRAINED_DIR) / name)


@st.cache_resource(show_spinner=False, max_entries=4)
def _fresh_dense(config_items: tuple, _model):
    """An untrained dense LSTM twin of the same sizes (for timing only)."""
    return skim_speed.dense_like(_model)


def _dense_twin(model, card):
    """(dense model, sentence for the captions)."""
    return dense_twin(card, lambda: _fresh_dense(tuple(sorted(model.config.items())), model),
                      "a plain nn.LSTM of the same size",
                      "an untrained plain nn.LSTM of the same size", "do not change")


@st.cache_resource(show_spinner=False)
def _speed_store() -> dict:
    """Speed-up measurements, shared by the sessions of this process (key: checkpoint version
    and device)."""
    return {}


# ---------------------------------------------------------------------------------------------
# URL state
def _read_url(names) -> None:
    state = read_text_url("skim", names)
    if state and state["theta"] is not None:
        st.session_state["_skim_url_theta"] = state["theta"]


def _view(name) -> dict:
    return {"model": name, "theta": st.session_state.get("skim_theta"),
            "text": st.session_state.get("skim_text"), "present": presenting_on()}


def _write_url(view: dict) -> None:
    set_query(urlstate.encode_skim(view))


def _share_link(view: dict) -> str:
    """A link that opens this view: ``<app root>/?page=skim-rnn-text&...``. Through the root (the
    home page switches here), so it also works as the first request to a fresh server."""
    return text_share_link(PAGE, view)


# ---------------------------------------------------------------------------------------------
def _latency(model, dense, model_key, ids, text_hash: str, theta: float):
    """This text at batch 1 on every device: {device: {"skim", "dense", "name"}}, cached per
    model, text and θ; (latency, error message or None)."""
    return cached_latency(
        "_skim_latency", (model_key, text_hash, round(theta, 4)),
        lambda dev: skim_speed.latency_pair(model, dense, ids, dev, repeats=LATENCY_REPEATS,
                                            max_seconds=LATENCY_CAP_S), THREADS)


def _speed_section(model, dense, dense_note: str, vocab, model_key, max_tokens: int) -> None:
    st.header("3 · Does skimming save time? Speed-up against skim rate")
    st.markdown(
        "The paper's Fig. 7: as θ goes down the model skims more tokens, Flop-R grows, and the "
        "measured speed-up follows it from below — Flop-R counts only the arithmetic. Here the "
        "Skim-LSTM is timed at batch 1 on the five example texts at several θ, against itself "
        "with every token forced to the big cell (the same code, so that curve shows what "
        "skimming alone saves and stays under the bound up to timing noise) and against the "
        "dense LSTM twin (PyTorch's fused nn.LSTM: a different implementation, so its curve "
        "also carries the difference between the two loops and can land on either side).")
    devices = cost.available_devices()
    with st.container(key="controls_speed"):
        c1, c2 = st.columns([1, 2])
        device = c2.radio("Device", devices, key="speed_device", horizontal=True,
                          format_func=lambda d: d.upper(),
                          disabled=len(devices) == 1)
        run = c1.button("Measure the speed-up", key="speed_run", type="primary",
                        help=f"{len(skim_speed.THRESHOLDS)} thresholds × 5 texts, "
                             f"{SPEED_REPEATS} runs each, {THREADS} CPU thread; at most "
                             f"{SPEED_CAP_S:.0f} s")
    store = _speed_store()
    key = (model_key, device)
    if run:
        bar = st.progress(0.0, text="starting…")

        def progress(fraction: float, message: str) -> bool:
            bar.progress(min(1.0, max(0.0, fraction)), text=message)
            return False

        try:
            ids = skim_speed.encode_texts(vocab, list(EXAMPLES.values()), max_tokens)
            with _threads(THREADS):
                res = skim_speed.speedup_vs_skim(model, dense, ids,
                                                 thresholds=skim_speed.THRESHOLDS, device=device,
                                                 repeats=SPEED_REPEATS,
                                                 max_seconds=SPEED_CAP_S, progress=progress)
            res["when"] = time.strftime("%H:%M:%S")
            store[key] = res
        except Exception as e:  # the measurement must never take the page down
            st.error(f"The speed-up could not be measured: {e}")
        bar.empty()
    res = store.get(key)
    if res is None:
        st.caption("Not measured yet for this model on this device: press the button (a few "
                   f"seconds; at most {SPEED_CAP_S:.0f} s on a busy CPU). The result is kept "
                   "for every session of this app until the checkpoint changes.")
        return
    if not res["rows"]:
        st.warning("The measurement stopped before any threshold was timed.")
        return
    st.plotly_chart(big(figures_text.speedup_skim_figure(res["rows"], height=380)),
                    key="speedup_chart", config=PLOT_CONFIG,
                    alt="measured speed-up against skim rate, with Flop-R as the bound")
    best = max(res["rows"], key=lambda r: r["speedup_vs_dense"])
    st.caption(
        f"Measured at {res['when']} on the {res['device'].upper()}"
        + (f" ({THREADS} thread)" if res["device"] == "cpu" else "")
        + f": {res['texts']} texts, {res['tokens']} tokens, batch 1, the sum of each text's "
        f"median time over {SPEED_REPEATS} runs; dense baseline: {dense_note}. "
        f"Best speed-up over the dense twin: {best['speedup_vs_dense']:.2f}× at θ = "
        f"{best['threshold']:g} (skim rate {best['skim_rate']:.0%}, Flop-R "
        f"{best['flop_r']:.2f}×, {best['speedup_vs_all_read']:.2f}× over reading every "
        f"token). Took {res['seconds']:.0f} s"
        + ("" if res["complete"] else f", stopped at the {SPEED_CAP_S:.0f} s cap before every "
                                      "threshold was timed") + ".")
    st.download_button("Speed-up rows as CSV", figures.to_csv(res["rows"]),
                       file_name="skim-speedup.csv", mime="text/csv", key="download_speed",
                       on_click="ignore")


# ---------------------------------------------------------------------------------------------
# attributions vs decisions; two thresholds side by side
ATTR_LABELS = {"ig": f"Integrated Gradients ({attribution_text.IG_STEPS} steps)",
               "saliency": "Saliency (|gradient|)"}


def _attr_set(model, model_key, vocab, theta: float, method: str, max_tokens: int) -> dict:
    """Agreement over the page's example texts at this θ, cached per model, θ and method."""
    done = st.session_state.setdefault("_skim_attr_set", {})
    key = (model_key, round(theta, 4), method)
    if key not in done:
        ids = skim_speed.encode_texts(vocab, list(EXAMPLES.values()), max_tokens)
        with _threads(THREADS):
            done[key] = attribution_text.skim_agreement_over_texts(model, ids, method)
    return done[key]


def _attributions(model, model_key, vocab, res: dict, text_hash: str, theta: float,
                  max_tokens: int, stem: str) -> None:
    """Attributions vs decisions for this text: the read/skim strip beside the tokens coloured
    by attribution, the two agreement numbers with their chance levels, the set over the
    examples, CSV export."""
    st.subheader("Attributions vs decisions: does the model skim what does not matter?")
    st.markdown(
        "An **attribution** method scores how much each token pushes the model towards its "
        "prediction. If the decision layer skims what does not matter, the tokens with the "
        "largest attribution should be the read ones.")
    with st.container(key="controls_skim_attr"):
        method = st.radio(
            "Attribution method", list(attribution_text.METHODS), key="skim_attr_method",
            horizontal=True, format_func=ATTR_LABELS.get,
            help="captum.attr on the word embeddings, towards the predicted class, with the "
                 "model's own read/skim decisions replayed. Integrated Gradients: from the "
                 "padding embedding (zeros), score = sum over the embedding dimensions; "
                 "Saliency: L2 norm of the gradient.")
    cache = st.session_state.setdefault("_skim_attr", {})
    key = (model_key, text_hash, round(theta, 4), method)
    r = cache.get(key)
    if r is None:
        try:
            with st.spinner("Computing the attribution…"), _threads(THREADS):
                r = attribution_text.attribute_skim(model, vocab.encode(res["tokens"]), method,
                                                    target=res["label"])
        except Exception as e:  # attributions are informative only
            st.warning(f"The attribution could not be computed: {e}")
            return
        if len(cache) > 64:
            cache.clear()
        cache[key] = r
    size = 1.6 if presenting_on() else 1.15
    label = DEFAULT_LABELS.get(r["label"], str(r["label"]))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Read / skimmed** (the decisions)")
        st.markdown(figures_text.token_html(res["tokens"], res["skim"], res["known"],
                                            res["p_skim"], font_size=size,
                                            block_class="skimviz-tokens-decisions"),
                    unsafe_allow_html=True)
    with c2:
        st.markdown(f"**{attribution_text.METHODS[method]}** (towards “{label}”)")
        st.markdown(figures_text.attribution_html(
            res["tokens"], r["attr"], signed=method == "ig", font_size=size,
            tips=["read" if u else "skimmed" for u in r["read"]]), unsafe_allow_html=True)
    auc = r["used_auc"]
    m1, m2 = st.columns(2)
    m1.metric("Attribution on read tokens",
              "—" if r["mass_on_used"] != r["mass_on_used"] else f"{r['mass_on_used']:.0%}",
              f"chance: {r['used_fraction']:.0%} (the share read)", delta_color="off",
              delta_arrow="off",
              help="share of the total |attribution| on the tokens the big LSTM read; if the "
                   "decisions ignored importance it would be the share of tokens read")
    m2.metric(f"Read-AUC (top {r['k']})", "—" if auc != auc else f"{auc:.2f}",
              "chance: 0.5", delta_color="off", delta_arrow="off",
              help=f"ROC AUC of “read” as a predictor of being among the {r['k']} tokens with "
                   "the largest |attribution|: 1 = they are read and the others skimmed; "
                   "undefined when every token is read, or none")
    st.markdown("**In one line:** " + attribution_text.reading(r, "read", "skimmed"))
    st.caption(f"{attribution_text.METHODS[method]} on the word embeddings, towards the "
               f"predicted class; per token the {attribution_text.REDUCTIONS[method]}"
               + ("; red pushes towards the prediction, blue away; baseline: the padding "
                  "embedding (zeros)" if method == "ig" else "")
               + f". The read/skim decisions of θ = {theta:.2f} are replayed in the "
               "differentiable path (the same forward), so a skimmed token is attributed "
               f"through the small LSTM. Computed in {r['seconds']:.2f} s on the CPU (cached "
               "for this text, θ and method).")
    n_ex = len(EXAMPLES)
    if st.button(f"Compute over the {n_ex} example texts", key="skim_attr_set_run",
                 help="the same two numbers on every example text of this page, at this θ"):
        try:
            with st.spinner(f"Attributing {n_ex} texts…"):
                _attr_set(model, model_key, vocab, theta, method, max_tokens)
        except Exception as e:
            st.warning(f"The set could not be computed: {e}")
    s = st.session_state.get("_skim_attr_set", {}).get((model_key, round(theta, 4), method))
    if s is not None:
        st.markdown(
            f"**Over the {s['n']} example texts** (θ = {theta:.2f}): on average "
            f"{s['mass_on_used_mean']:.0%} of the attribution on read tokens against a chance "
            f"level of {s['used_fraction_mean']:.0%}; above chance in "
            f"{s['share_above_chance']:.0%} of the texts; mean read-AUC "
            + ("undefined (every text all read or all skimmed)" if s["used_auc_n"] == 0 else
               f"{s['used_auc_mean']:.2f} over {s['used_auc_n']} texts")
            + f" ({s['seconds']:.1f} s).")
    rows = attribution_text.token_rows(res["tokens"], r["attr"], r["read"], "read",
                                       {"p_skim": [round(p, 6) for p in res["p_skim"]]})
    st.download_button("Attributions as CSV", figures.to_csv(rows),
                       file_name=f"{stem}-attributions-{method}.csv", mime="text/csv",
                       key="download_skim_attr", on_click="ignore",
                       help="one row per token: index, token, attribution, share of the "
                            "|attribution|, read (1) or skimmed (0), p_skim")


def _compare(model, vocab, res: dict, text: str, text_hash: str, model_key, theta: float,
             max_tokens: int) -> None:
    """The same text at a second θ (B) beside the current one (A): two strips with the same
    colours, the skim rate and Flop-R of each."""
    with st.expander("Compare two thresholds", expanded=False):
        with st.container(key="controls_skim_compare"):
            theta_b = st.slider("θ for B", THETA_MIN, THETA_MAX, step=THETA_STEP,
                                value=0.9 if abs(theta - 0.9) > 1e-9 else 0.5,
                                key="skim_compare_theta",
                                help="A is the view above (the θ of the main slider).")
        theta_b = float(min(THETA_MAX, max(THETA_MIN, theta_b)))
        cache = st.session_state.setdefault("_skim_compare", {})
        key = (model_key, text_hash, round(theta_b, 4))
        res_b = cache.get(key)
        if res_b is None:
            try:
                model.set_threshold(theta_b)
                with _threads(THREADS):
                    res_b = skim_text.analyse(model, vocab, text, max_tokens)
            except Exception as e:  # the comparison is informative only
                st.warning(f"The second view could not be computed: {e}")
                return
            finally:
                model.set_threshold(theta)
            if len(cache) > 32:
                cache.clear()
            cache[key] = res_b
        size = 1.6 if presenting_on() else 1.15
        cols = st.columns(2)
        for col, (tag, th, r) in zip(cols, (("A", theta, res), ("B", theta_b, res_b))):
            with col:
                st.markdown(f"**{tag}: θ = {th:.2f}**")
                st.markdown(figures_text.token_html(r["tokens"], r["skim"], r["known"],
                                                    r["p_skim"], font_size=size,
                                                    block_class=f"skimviz-tokens-{tag.lower()}"),
                            unsafe_allow_html=True)
                m1, m2, m3 = st.columns(3)
                m1.metric(f"Skim rate ({tag})", f"{r['skim_rate']:.0%}",
                          f"{int(sum(r['skim']))} / {len(r['skim'])} tokens",
                          delta_color="off", delta_arrow="off")
                m2.metric(f"Flop-R ({tag})", f"{r['flop_r']:.2f}×",
                          figures.format_flops(r["flops"]), delta_color="off", delta_arrow="off")
                m3.metric(f"Prediction ({tag})", DEFAULT_LABELS.get(r["label"], str(r["label"])),
                          f"{r['probability']:.0%}", delta_color="off", delta_arrow="off")
        diff = sum(int(a != b) for a, b in zip(res["skim"], res_b["skim"]))
        agree = "agree" if res["label"] == res_b["label"] else "disagree"
        st.caption(f"Same text, same colours (bold dark: read, light blue: skimmed). The two "
                   f"thresholds differ on {diff} of {len(res['skim'])} tokens and the "
                   f"predictions {agree}; Flop-R of both against the same dense LSTM count "
                   f"({figures.format_flops(res['dense_flops'])}).")


def _analysis(name: str, model, card: dict, model_key, text: str) -> None:
    vocab = _vocab(name, _pretrained_dir(), model_key[2])
    max_tokens = min(int((card.get("input") or {}).get("max_tokens", textdata.MAX_TOKENS)),
                     textdata.MAX_TOKENS)
    labels = DEFAULT_LABELS
    sweep = card.get("threshold_sweep") or []

    st.header("2 · What the model reads")
    left, right = st.columns([3, 2])
    with left:
        # not a "controls" container: presentation mode keeps the θ slider (app_support)
        with st.container(key="skim_theta_box"):
            url_theta = st.session_state.pop("_skim_url_theta", None)
            if "skim_theta" not in st.session_state:
                default = float(card.get("skim_threshold", 0.5))
                st.session_state["skim_theta"] = urlstate.snap_skim_theta(
                    url_theta if url_theta is not None else default)
            theta = st.slider("Skim threshold θ", THETA_MIN, THETA_MAX, step=THETA_STEP,
                              key="skim_theta",
                              help="A token is skimmed when the decision layer's p_skim > θ. "
                                   "0.5 is the paper's argmax; a lower θ skims more.")
    theta = float(min(THETA_MAX, max(THETA_MIN, theta)))
    try:
        model.set_threshold(theta)
        with _threads(THREADS):
            res = skim_text.analyse(model, vocab, text, max_tokens)
    except ValueError as e:
        st.warning(f"Nothing to read: {e}. Type a sentence with some words.")
        return
    except Exception as e:  # the model must never take the page down
        st.error(f"The model could not run on this text: {e}")
        return
    n = len(res["tokens"])
    skimmed = int(sum(res["skim"]))
    unknown = n - int(sum(res["known"]))
    with left:
        st.markdown(figures_text.token_html(res["tokens"], res["skim"], res["known"],
                                            res["p_skim"],
                                            font_size=1.6 if presenting_on() else 1.15),
                    unsafe_allow_html=True)
        st.markdown(figures_text.legend_html(), unsafe_allow_html=True)
        if res["truncated"]:
            st.warning(f"The model reads at most {max_tokens} tokens: only the first "
                       f"{max_tokens} of your text are shown and read.")
        st.caption(f"{n} tokens as the model sees them (lower-cased, SST-2 tokenisation)"
                   + (f"; {unknown} not in its vocabulary" if unknown else "")
                   + ". Hover a token for its p_skim — the paper's Table 3.")
    with right:
        st.plotly_chart(big(figures_text.accuracy_flop_r_figure(
            sweep, theta, res["flop_r"], card.get("paper"), card.get("dataset"), height=340)),
            key="flop_r_chart", config=PLOT_CONFIG,
            alt="validation accuracy against Flop-R across θ")
        mark = figures_text.sweep_point(sweep, theta)
        n_valid = (card.get("metrics") or {}).get("n_valid")
        st.caption("Validation accuracy against Flop-R as θ moves (grey points, from the card"
                   + (f", {n_valid:,} validation texts" if n_valid else "") + "; the paper's "
                   "Fig. 5); the star is the current θ"
                   + (f" ({mark['note']}: accuracy {mark['accuracy']:.1%}, Flop-R "
                      f"{mark['flop_r']:.2f}×)" if mark else "")
                   + f"; the dotted line is this text's Flop-R, {res['flop_r']:.2f}×.")

    dense, dense_note = _dense_twin(model, card)
    ids = vocab.encode(res["tokens"])
    text_hash = hashlib.sha1(text.encode("utf-8")).hexdigest()
    latency, latency_error = _latency(model, dense, model_key, ids, text_hash, theta)

    cols = st.columns(4)
    cols[0].metric("Prediction", labels.get(res["label"], str(res["label"])),
                   f"{res['probability']:.0%} confidence", delta_color="off", delta_arrow="off")
    cols[1].metric("Skimmed tokens", f"{skimmed} / {n}", f"{res['skim_rate']:.0%} skimmed",
                   delta_color="off", delta_arrow="off",
                   help="tokens where only the small LSTM ran; the big one ran on the others")
    flops_metric(cols[2], "Flop-R (this text)", res["flop_r"], res["flops"], res["dense_flops"],
                 help="FLOPs of a plain LSTM on these tokens / FLOPs of the Skim-LSTM (its "
                        "decision layer included), recurrent part only")
    latency_metrics(cols[3], latency, latency_error, "Skim-LSTM", "dense LSTM", LATENCY_CAP_S)
    devs = "; ".join(lat["name"] for lat in latency.values())
    loop = getattr(_skim_rnn, "backend", lambda: "python")()
    st.caption(f"Device in use: {devs or cost.describe_device('cpu')}. Latency is this text at "
               f"batch 1 ({THREADS} CPU thread), the Skim-LSTM at θ = {theta:.2f} against "
               f"{dense_note}. The dense LSTM is one fused call over all tokens, while the "
               "Skim-LSTM decides token by token ("
               + ("its batch-1 loop in the C++ extension" if loop == "cpp" else
                  "a Python loop: the C++ extension is not built")
               + "), so fewer FLOPs do not always mean less time.")

    _attributions(model, model_key, vocab, res, text_hash, theta, max_tokens,
                  f"{name}-theta{theta:.2f}")
    _compare(model, vocab, res, text, text_hash, model_key, theta, max_tokens)

    _speed_section(model, dense, dense_note, vocab, model_key, max_tokens)

    # --- export ---------------------------------------------------------------------------
    st.header("4 · Export and share")
    view = _view(name)
    stem = f"{name}-theta{theta:.2f}"
    meta = {"model": name, "dataset": card.get("dataset"), "theta": theta,
            "dense_twin": card.get("dense_twin"), "text": text}
    export_row(("Tokens as CSV", figures.to_csv(figures_text.token_rows(res)),
                f"{stem}-tokens.csv", "download_tokens",
                "one row per token: index, token, read/skimmed, p_skim, known"),
               ("Trace as JSON", figures_text.trace_json(res, meta), f"{stem}-trace.json",
                "download_trace", "tokens, decisions, p_skim, prediction and FLOPs"),
               text, _share_link(view), "model, θ and the text")


# =============================================================================================
def main() -> None:
    st.title("Skim-RNN — speed reading your text")
    st.markdown(
        "A **Skim-RNN** (Seo et al., ICLR 2018) keeps two LSTMs that share one state: a big one "
        "(100 units) and a small one (a few units). Before each word a small decision layer "
        "looks at the word and the state so far and chooses: **read** it with the big LSTM, or "
        "**skim** it with the small one, which updates only the first few dimensions of the "
        "state and copies the rest. Skimmed words cost a fraction of the FLOPs. Type a movie "
        "review and see which words the model reads.")
    directory = _pretrained_dir()
    cards = _skim_checkpoints(directory)
    _read_url(cards)
    for notice in st.session_state.pop("_skim_url_notices", []):
        st.warning(notice)  # built by skimviz.urlstate: URL text reduced to a safe excerpt
    presentation(PAGE, sync_url=False)

    if not cards:
        st.error("No Skim-RNN checkpoint is available: this page needs a text classifier with a "
                 "Skim-LSTM in `pretrained/` (a card with task “text-classification”). Train "
                 f"one with `{TRAIN_HELP}`.")
        _write_url({"present": presenting_on()})
        return
    names = list(cards)
    if st.session_state.get("skim_model") not in names:
        preferred = [n for n in names if n.endswith("sst2")]
        st.session_state["skim_model"] = (preferred or names)[0]
    with st.container(key="controls_model"):
        name = st.selectbox(
            "Model", names, key="skim_model",
            format_func=lambda n: f"{n} ({cards[n].get('dataset', '?')})",
            help="Every checkpoint whose card is a text classifier with a Skim-LSTM.")
    try:
        model, card, model_key = session_model(name, "_skim_models")
    except CheckpointError as e:
        st.error(f"The checkpoint **{name}** cannot be loaded: {e}\n\nTrain it again with "
                 f"`{TRAIN_HELP}`.")
        _write_url(_view(name))
        return
    metrics = card.get("metrics") or {}
    c1, c2, c3 = st.columns(3)
    c1.metric("Validation accuracy", f"{metrics.get('valid_accuracy', float('nan')):.1%}",
              help=f"on {metrics.get('n_valid', '?')} validation texts at θ = "
                   f"{card.get('skim_threshold', 0.5)}")
    c2.metric("Validation skim rate", f"{metrics.get('valid_skim_rate', float('nan')):.0%}",
              help="share of the validation tokens skimmed")
    c3.metric("Validation Flop-R", f"{metrics.get('valid_flop_r', float('nan')):.2f}×",
              help="FLOPs of the plain LSTM / FLOPs of the Skim-LSTM on the validation set")
    cfg = card.get("config") or {}
    training = card.get("training") or {}
    if training.get("dry_run"):
        st.warning("This checkpoint comes from a pipeline dry run (two training steps): its "
                   f"predictions are meaningless. Train the real one with `{TRAIN_HELP}`.")
    st.caption(f"Checkpoint `{name}`: big LSTM d = {cfg.get('hidden_size')}, small LSTM "
               f"d' = {cfg.get('small_size')}, embeddings {cfg.get('embed_dim')}, "
               f"γ = {training.get('gamma', '?')}, trained on {card.get('dataset', '?')}; "
               f"dense twin: `{card.get('dense_twin') or 'none'}`. Labels: 1 = positive, "
               "0 = negative.")

    st.header("1 · Your text")
    text = text_input("skim", EXAMPLES,
                      f"Up to {textdata.MAX_CHARS:,} characters and {textdata.MAX_TOKENS} "
                      "tokens are read; press Ctrl+Enter to apply.",
                      "which words the model reads and which it skims")
    if text is None:
        _write_url(_view(name))
        return
    _analysis(name, model, card, model_key, text)
    _write_url(_view(name))


main()
