"""Transkimmer — before which layer a transformer drops each word of your text, how many tokens
each layer still works on, and what that saves in FLOPs and in measured time.

Layout only: the analysis is ``skimviz.tasks.transkimmer.explain``, the figures
``skimviz.viz.layers``, the shared pieces ``ui/``. Each session works on its own deep
copy of a shipped checkpoint (``ui.checkpoints.session_model``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st
import torch

from skimviz.cost import threads as torch_threads
from skimviz.data import text as textdata
from skimviz.models.transkimmer import TranskimmerClassifier
from skimviz.tasks import transkimmer as tk
from skimviz.training import checkpoint
from skimviz.viz import common
from skimviz.viz import layers as figs
from ui import latency_panel, presentation, text_page, transkimmer_panels, urlstate
from ui.checkpoints import dense_twin, pretrained_dir, session_model, text_cards
from ui.glossary import definition
from ui.lede import lede
from ui.style import PLOT_CONFIG, THREADS
from ui.urls import read_text_url, set_query, text_share_link

PAGE = "transkimmer-text"
MINILM_NAME = "transkimmer-minilm-sst2"
LABELS = transkimmer_panels.LABELS

# Written for this page (not from any dataset): mixed sentiment, one long.
EXAMPLES = {
    "Small and lovely (positive)":
        "A small, lovely film about two sisters who run a bakery. Quiet, kind and often very "
        "funny.",
    "Loud and empty (negative)":
        "Loud, long and strangely empty: the explosions never stop, and neither does the "
        "boredom.",
    "Not what I feared (positive, with a negation)":
        "I feared another lazy sequel, but it is not lazy at all; the new director clearly "
        "loves these characters.",
    "Flat jokes (negative)":
        "The jokes fall flat and the cast looks tired.",
    "A long, mixed review":
        "The first half of this musical is pure joy: the songs are catchy, the dancing is "
        "sharp, and the young lead has a voice that fills the whole theatre. Sadly the second "
        "half loses its nerve. A pointless love triangle takes over, two of the best "
        "characters simply vanish, and the finale repeats a song we already heard three "
        "times. I still smiled on the way out, and the costumes alone are worth the ticket, "
        "but it could have been a great film instead of a pleasant one.",
}


def _kind(card: dict) -> str:
    wordpiece = (card.get("input") or {}).get("tokenizer") == "wordpiece"
    return "MiniLM, WordPiece" if wordpiece else "small, word tokens"


@st.cache_resource(show_spinner=False, max_entries=8)
def _encoder(name: str, directory: str | None, stamp, _card: dict) -> tk.TextEncoder:
    return tk.text_encoder(_card, str(Path(directory or checkpoint.PRETRAINED_DIR) / name))


@st.cache_resource(show_spinner=False, max_entries=4)
def _same_encoder(model_key, _model):
    """The model's own encoder without its predictors (shared, read-only, for timing): the same
    weights, so the same engine path (int8 codes included) as the skimming model."""
    dense = TranskimmerClassifier(**{**_model.config, "skim": False}).eval()
    dense.load_state_dict(_model.state_dict(), strict=False)    # everything but the predictors
    return dense


def _view(name) -> dict:
    return {"model": name, "text": st.session_state.get("tk_text"),
            "present": presentation.is_on()}


def _leave_sentence(words: list, L: int, flops_reduction: float) -> str:
    """Where the words left, layer by layer, from this text's prune layers."""
    left = [sum(1 for w in words if int(w["prune_layer"]) == i) for i in range(L)]
    kept = len(words) - sum(left)
    parts = [f"{n} before layer {i + 1}" for i, n in enumerate(left) if n]
    return (f"Of the {len(words)} words, " + (", ".join(parts) if parts else "none")
            + f" were dropped, and {kept} went through all {L} layers; so this text needed "
            f"{flops_reduction:.1f}× fewer FLOPs than the same encoder without dropping.")


def main() -> None:
    lede("Transkimmer — layer-wise skimming",
         "A Transkimmer is a BERT-style transformer with a tiny predictor in front of every "
         "{layer}. The predictor decides whether each word is still needed; a word it drops "
         "({prune}) leaves with the meaning it has so far, and the later layers work on fewer "
         "words. Each word below is coloured by the layer before which it was dropped.",
         "pick the long, mixed review and see which words survive to the last layer.",
         ["Guan et al., “Transkimmer: Transformer Learns to Layer-wise Skim”, ACL 2022: Eq. 1–7 "
          "(the predictors and the skim loss), Fig. 4 (tokens per layer), Table 3."])
    directory = pretrained_dir()
    cards = {n: c for n, c in text_cards(tk.TASK, directory).items()
             if (c.get("config") or {}).get("skim", True)}
    read_text_url("tk", cards, ignore=("theta",))
    for notice in st.session_state.pop("_tk_url_notices", []):
        st.warning(notice)  # built by ui.urlstate: URL text reduced to a safe excerpt
    if not cards:
        st.error("No Transkimmer model is installed: this page needs one in the app's model "
                 "folder (see the README).")
        return
    names = list(cards)
    # MiniLM by default: its words leave at several layers, which is the mechanism
    name = text_page.top_row(PAGE, "tk", names, MINILM_NAME if MINILM_NAME in names else names[0],
                             lambda n: f"{n} ({_kind(cards[n])})", EXAMPLES)
    try:
        model, card, model_key = session_model(name, "_tk_models")
        enc = _encoder(name, directory, model_key[2], card)
    except Exception as e:  # a broken checkpoint must not take the page down
        st.error(f"The model **{name}** cannot be loaded: {e}")
        return
    text = text_page.text_box("tk", "which words each layer drops", card)
    if text is None:
        set_query(urlstate.encode_skim(_view(name)))
        return
    try:
        with torch_threads(THREADS):
            res = tk.explain(model, enc, text)
    except Exception as e:  # the model must never take the page down
        st.error(f"The model could not run on this text: {e}")
        return
    words, L = res["words"], int(model.config["layers"])
    if not words:
        st.warning("Nothing to read: the text has no words the model can tokenise.")
        return
    known = ([w["word"] in enc.vocab.stoi for w in words] if enc.kind == "words" else None)
    n_tok, kept_end = len(res["tokens"]), sum(1 for w in words if int(w["prune_layer"]) >= L)
    same = _same_encoder(model_key, model)
    dense, dense_note = dense_twin(card, lambda: same, "trained separately, without predictors",
                                   "", "")
    if dense is same:
        dense_note = ("this model's own encoder with its predictors switched off (its "
                      "separately trained twin is not shipped)")
    ids = enc.encode(text)["ids"]
    with presentation.beside(PAGE):
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.markdown(figs.token_html(words, L, known,
                                        font_size=1.6 if presentation.is_on() else 1.25),
                        unsafe_allow_html=True)
            st.markdown(figs.legend_html(L, show_unknown=bool(known) and not all(known)),
                        unsafe_allow_html=True)
            total = (len(textdata.tokenize(text)) + 1 if enc.kind == "words"
                     else len(enc.tok.encode(text).ids))          # before the cut, specials in
            if total > enc.max_len:
                st.warning(f"The model reads at most {enc.max_len} tokens: your text has "
                           f"{total}, so only the first {enc.max_len} are read and shown.")
        with right:
            st.plotly_chart(presentation.big(figs.remaining_tokens_figure(
                res["tokens_kept_per_layer"], n_tok,
                (card.get("metrics") or {}).get("kept_fraction_per_layer"), height=300)),
                key="tk_curve_chart", config=PLOT_CONFIG,
                alt="share of tokens entering each layer, this text and the average")
        timing = latency_panel.quick(name, model, dense, (torch.tensor([ids]),),
                                     model_key=model_key, shared=True,
                                     full=True)  # its Time tab always runs: one measurement
        m = presentation.metric_slots(4)
        m[0].metric("Prediction", LABELS.get(res["label"], str(res["label"])),
                    f"{res['probability']:.0%} sure", delta_color="off", delta_arrow="off")
        m[1].metric("Kept to the end", f"{kept_end} of {len(words)}", "words",
                    delta_color="off", delta_arrow="off",
                    help="Words no predictor dropped: every layer worked on them.")
        m[2].metric("FLOP reduction", f"{res['flops_reduction']:.1f}×",
                    f"{res['flops'] / 1e6:.3g} of {res['dense_flops'] / 1e6:.3g} M FLOPs",
                    delta_color="off", delta_arrow="off", help=definition("FLOP reduction"))
        latency_panel.time_metric(m[3], timing)
        st.markdown(_leave_sentence(words, L, res["flops_reduction"]))

    text_hash = hashlib.sha1(text.encode("utf-8")).hexdigest()
    tabs = st.tabs(["Time", "Accuracy vs λ", "Skims what matters?", "Export"])
    with tabs[0]:
        latency_panel.panel(name, model, dense, (torch.tensor([ids]),), "tokens",
                            model_key=model_key, shared=True)
        st.caption(f"Dense: {dense_note}. Masked: every token through every layer with the "
                   "predictors run, the arithmetic of the masking the paper's code uses.")
    with tabs[1]:
        transkimmer_panels.lambda_section(card)
    with tabs[2]:
        transkimmer_panels.attributions(model, model_key, enc, res, known, text, text_hash,
                                        name, EXAMPLES)
    with tabs[3]:
        meta = {"model": name, "dense_twin": card.get("dense_twin"), "text": text}
        text_page.export_tab(
            ("Words as CSV", common.to_csv(figs.word_rows(res, known)), f"{name}-words.csv",
             "download_tk_words", "one row per word: word, pieces, prune layer, layers run"),
            ("Trace as JSON", figs.trace_json(res, meta), f"{name}-trace.json",
             "download_tk_trace", "tokens, prune layers, words, tokens per layer, FLOPs"),
            text, text_share_link(PAGE, _view(name)), "model and the text")
    set_query(urlstate.encode_skim(_view(name)))


main()
