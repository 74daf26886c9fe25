"""Skim-RNN — which words of your text a Skim-LSTM reads with its big cell and which it skims,
what that saves in FLOPs, and what it saves in measured time.

Layout only: the analysis is ``skimviz.tasks.skim_text``, the figures ``skimviz.viz.tokens``
and ``skimviz.viz.playback``, the shared pieces ``ui/``. A session works on its own deep copy of a
shipped checkpoint (``ui.checkpoints.session_model``), so its θ never leaks into another session.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from skimviz.bench import skim_speed
from skimviz.cost import threads as torch_threads
from skimviz.data import text as textdata
from skimviz.tasks import skim_text
from skimviz.training import checkpoint
from skimviz.viz import common, playback
from skimviz.viz import tokens as figures_text
from ui import figure_cache, latency_panel, presentation, skim_panels, text_page, urlstate
from ui.checkpoints import dense_twin, pretrained_dir, session_model, text_cards
from ui.glossary import definition
from ui.lede import lede
from ui.session_cache import keep_widget_state
from ui.style import PLOT_CONFIG, THREADS
from ui.urls import read_text_url, set_query, text_share_link

PAGE = urlstate.SKIM_PAGE
TASK = "text-classification"
LABELS = skim_panels.LABELS

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


@st.cache_resource(show_spinner=False, max_entries=8)
def _vocab(name: str, directory: str | None, stamp) -> textdata.Vocab:
    return skim_text.load_vocab(Path(directory or checkpoint.PRETRAINED_DIR) / name)


@st.cache_resource(show_spinner=False, max_entries=4)
def _fresh_dense(config_items: tuple, _model):
    return skim_speed.dense_like(_model)


def _view(name) -> dict:
    return {"model": name, "theta": st.session_state.get("skim_theta"),
            "text": st.session_state.get("skim_text"), "present": presentation.is_on()}


def _card_sentence(card: dict, theta: float) -> str:
    """What the model reads on the validation set, from the card's read rates (at its θ)."""
    rates = card.get("read_rates") or {}
    parts = [(rates.get(k) or {}).get("read_rate") for k in
             ("negative_words", "positive_words", "function_words")]
    if None in parts or rates.get("threshold") is None:
        return ""
    neg, pos, fun = parts
    at = ("" if abs(theta - rates["threshold"]) < 1e-9 else
          f" (at the default θ = {rates['threshold']:g}; you have moved it)")
    return (f"On the {card.get('metrics', {}).get('n_valid', '')} validation reviews{at}, "
            f"this model reads {neg:.0%} of the strongest negative words, {pos:.0%} of the "
            f"strongest positive words and {fun:.0%} of function words (the, of, and, …).")


#: widgets in tabs that only run while open (below): their values are kept while closed
TAB_WIDGETS = ("skim_attr_method", "skim_compare_theta")


def main() -> None:
    keep_widget_state(TAB_WIDGETS)
    lede("Skim-RNN — speed reading your text",
         "A Skim-RNN has two LSTMs sharing one memory: a big one and a tiny one. Before each "
         "word, a small decision layer chooses to {read} it with the big LSTM or to {skim} it "
         "with the tiny one, which costs about a tenth of the {FLOPs}. Dark words below were "
         "read, light blue words were skimmed.",
         "move θ and watch words change colour; type a review with “not” in it.",
         ["Seo et al., “Neural Speed Reading via Skim-RNN”, ICLR 2018: Eq. 1–4 (the model), "
          "Fig. 5 (accuracy against FLOP reduction), Fig. 7 (speed-up)."])
    directory = pretrained_dir()
    cards = {n: c for n, c in text_cards(TASK, directory).items()
             if (c.get("config") or {}).get("skim") is True}
    state = read_text_url("skim", cards)
    if state and state["theta"] is not None:
        st.session_state["_skim_url_theta"] = state["theta"]
    for notice in st.session_state.pop("_skim_url_notices", []):
        st.warning(notice)  # built by ui.urlstate: URL text reduced to a safe excerpt
    if not cards:
        st.error("No Skim-RNN model is installed: this page needs a text classifier with a "
                 "Skim-LSTM in the app's model folder (see the README).")
        return
    names = list(cards)
    name = text_page.top_row(PAGE, "skim", names,
                             next((n for n in names if n == "skim-lstm-sst2"), names[0]),
                             lambda n: f"{n} ({cards[n].get('dataset', '?')})", EXAMPLES)
    try:
        model, card, model_key = session_model(name, "_skim_models")
    except checkpoint.CheckpointError as e:
        st.error(f"The model **{name}** cannot be loaded: {e}")
        return
    text = text_page.text_box("skim", "which words the model reads and which it skims", card)
    if text is None:
        set_query(urlstate.encode_skim(_view(name)))
        return
    vocab = _vocab(name, directory, model_key[2])
    max_tokens = min(int((card.get("input") or {}).get("max_tokens", textdata.MAX_TOKENS)),
                     textdata.MAX_TOKENS)

    url_theta = st.session_state.pop("_skim_url_theta", None)
    if "skim_theta" not in st.session_state:
        st.session_state["skim_theta"] = urlstate.snap_skim_theta(
            url_theta if url_theta is not None else float(card.get("skim_threshold", 0.5)))
    dense, dense_note = dense_twin(card, lambda: _fresh_dense(tuple(sorted(model.config.items())),
                                                              model),
                                   "a plain LSTM of the same size",
                                   "an untrained plain LSTM of the same size", "do not change")
    with presentation.beside(PAGE):
        theta = st.columns([2, 3])[0].slider(
            "Skim threshold θ", urlstate.SKIM_THETA_MIN, urlstate.SKIM_THETA_MAX,
            step=urlstate.SKIM_THETA_STEP, key="skim_theta",
            help=definition("θ") + " A word is skimmed when p_skim > θ.")
        try:
            model.set_threshold(theta)
            with torch_threads(THREADS):
                res = skim_text.analyse(model, vocab, text, max_tokens)
        except ValueError as e:
            st.warning(f"Nothing to read: {e}. Type a sentence with some words.")
            return
        n, skimmed = len(res["tokens"]), int(sum(res["skim"]))
        st.markdown(figures_text.token_html(res["tokens"], res["skim"], res["known"],
                                            res["p_skim"],
                                            font_size=1.6 if presentation.is_on() else 1.3),
                    unsafe_allow_html=True)
        st.markdown(figures_text.legend_html(), unsafe_allow_html=True)
        if res["truncated"]:
            st.warning(f"The model reads at most {max_tokens} words: only the first "
                       f"{max_tokens} are shown and read.")
        ids = vocab.encode(res["tokens"])
        timing = latency_panel.quick(name, model, dense, (torch.tensor([ids]),),
                                     model_key=model_key, extra=round(theta, 4), shared=True,
                                     full=st.session_state.get("skim_tab") == "Time")
        m = presentation.metric_slots(4)
        m[0].metric("Prediction", LABELS.get(res["label"], str(res["label"])),
                    f"{res['probability']:.0%} sure", delta_color="off", delta_arrow="off")
        m[1].metric("Words skimmed", f"{skimmed} of {n}", f"{res['skim_rate']:.0%}",
                    delta_color="off", delta_arrow="off", help=definition("skim"))
        m[2].metric("FLOP reduction", f"{res['flop_r']:.1f}×",
                    f"{res['flops'] / 1e6:.2g} of {res['dense_flops'] / 1e6:.2g} M FLOPs",
                    delta_color="off",
                    delta_arrow="off", help=definition("FLOP reduction"))
        latency_panel.time_metric(m[3], timing)
        st.markdown(f"The big LSTM read {n - skimmed} of the {n} words; the tiny one skimmed "
                    f"the other {skimmed}, so this text needed {res['flop_r']:.1f}× fewer FLOPs "
                    "than reading every word. " + _card_sentence(card, theta))

    text_hash = hashlib.sha1(text.encode("utf-8")).hexdigest()
    stem = f"{name}-theta{theta:.2f}"
    # Only the open tab runs (on_change="rerun"): with a class on one server, every new review
    # would otherwise also time three runs, attribute every word and redraw the comparison.
    tabs = st.tabs(["Step by step", "Time", "Accuracy vs θ", "Skims what matters?", "Two θ",
                    "Speed-up", "Export"], key="skim_tab", on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            st.plotly_chart(figure_cache.shared(
                "token_playback", lambda: presentation.big(playback.token_playback(
                    res["tokens"], res["skim"], res["p_skim"], theta)),
                res["tokens"], np.asarray(res["skim"]), np.asarray(res["p_skim"]), theta,
                presentation.is_on()), key="skim_playback", config=PLOT_CONFIG,
                alt="the text read word by word, read or skimmed")
            st.caption("Press Play: each word appears as the model reaches it, with its p_skim "
                       "below; words above θ are skimmed.")
    with tabs[1]:
        if tabs[1].open:
            latency_panel.panel(name, model, dense, (torch.tensor([ids]),), "words",
                                model_key=model_key, extra=round(theta, 4), shared=True)
            st.caption(f"Dense: {dense_note}.")
    with tabs[2]:
        if tabs[2].open:
            sweep = card.get("threshold_sweep") or []
            st.plotly_chart(presentation.big(figures_text.accuracy_flop_r_figure(
                sweep, theta, res["flop_r"], card.get("paper"), card.get("dataset"),
                height=360)), key="flop_r_chart", config=PLOT_CONFIG,
                alt="validation accuracy against FLOP reduction across θ")
            mark = figures_text.sweep_point(sweep, theta)
            st.caption("Each grey point is the model at one θ on the validation set; the star "
                       "is your θ" + (f" (accuracy {mark['accuracy']:.1%}, {mark['flop_r']:.2f}× "
                                      "fewer FLOPs)" if mark else "") + "; purple crosses are "
                       "the paper's models; the dotted line is this text's FLOP reduction.")
    with tabs[3]:
        if tabs[3].open:
            skim_panels.attributions(model, model_key, vocab, res, text_hash, theta, EXAMPLES,
                                     max_tokens, stem)
    with tabs[4]:
        if tabs[4].open:
            skim_panels.compare(model, lambda: skim_text.analyse(model, vocab, text, max_tokens),
                                res, text_hash, model_key, theta)
    with tabs[5]:
        if tabs[5].open:
            skim_panels.speedup(model, dense, vocab, model_key, EXAMPLES, max_tokens)
    with tabs[6]:
        if tabs[6].open:
            meta = {"model": name, "dataset": card.get("dataset"), "theta": theta,
                    "dense_twin": card.get("dense_twin"), "text": text}
            text_page.export_tab(
                ("Words as CSV", common.to_csv(figures_text.token_rows(res)),
                 f"{stem}-tokens.csv", "download_tokens",
                 "one row per word: index, word, read/skimmed, p_skim, known"),
                ("Trace as JSON", figures_text.trace_json(res, meta), f"{stem}-trace.json",
                 "download_trace", "words, decisions, p_skim, prediction and FLOPs"),
                text, text_share_link(PAGE, _view(name)), "model, θ and the text")
    set_query(urlstate.encode_skim(_view(name)))


main()
