"""The Transkimmer page's secondary views, each in a tab: attributions against the prune
layers, and the λ trade-off."""
from __future__ import annotations

import streamlit as st

from skimviz.attribution import text as attribution_text
from skimviz.cost import threads as torch_threads
from skimviz.tasks import transkimmer as tk
from skimviz.viz import common
from skimviz.viz import layers as figs
from skimviz.viz import tokens as figures_text

from .presentation import big, is_on
from .session_cache import cached
from .style import PLOT_CONFIG, THREADS

LABELS = {0: "negative", 1: "positive"}


ATTR_LABELS = {"ig": f"Integrated Gradients ({attribution_text.IG_STEPS} steps)",
               "saliency": "Saliency (|gradient|)"}
KEPT_MIN_LAYERS = 2  # "kept": the word went on past the first layer (through at least 2)


def attributions(model, model_key, enc: tk.TextEncoder, res: dict, known, text: str,
                 text_hash: str, name: str, examples: dict) -> None:
    """Attributions vs decisions for this text: the prune-layer strip beside the words coloured
    by attribution, the two agreement numbers with their chance levels, the set over the
    examples, CSV export."""
    L = int(res["layers"])
    st.markdown(
        "An **attribution** method scores how much each word pushes the model towards its "
        "prediction. If the predictors drop what does not matter, the words with the largest "
        f"attribution should be those kept past the first layer (through at least "
        f"{KEPT_MIN_LAYERS} of {L} layers).")
    method = st.radio(
        "Attribution method", list(attribution_text.METHODS), key="tk_attr_method",
        horizontal=True, format_func=ATTR_LABELS.get,
        help="captum.attr on the word embeddings, towards the predicted class, through the "
             "masking path (every token computed, the same decisions and logits as the "
             "pruning path). Integrated Gradients: from the [PAD] embedding ([CLS] kept), "
             "score = sum over the embedding dimensions; Saliency: L2 norm of the "
             "gradient. A word's score joins its pieces'.")
    try:
        with st.spinner("Computing the attribution…"), torch_threads(THREADS):
            e = enc.encode(text)
            r = cached("_tk_attr", (model_key, text_hash, method),
                       lambda: attribution_text.attribute_transkimmer(
                           model, e["ids"], e["words"], method, min_layers=KEPT_MIN_LAYERS,
                           target=res["label"]))
    except Exception as ex:  # attributions are informative only
        st.warning(f"The attribution could not be computed: {ex}")
        return
    words = res["words"]
    if len(r["word_attr"]) != len(words):
        st.warning("The attribution does not line up with the words shown; not displayed.")
        return
    size = 1.6 if is_on() else 1.15
    label = LABELS.get(r["label"], str(r["label"]))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Prune layer** (the decisions)")
        st.markdown(figs.token_html(words, L, known, font_size=size,
                                    block_class="skimviz-tk-tokens-decisions"),
                    unsafe_allow_html=True)
    with c2:
        st.markdown(f"**{attribution_text.METHODS[method]}** (towards “{label}”)")
        st.markdown(figures_text.attribution_html(
            [w["word"] for w in words], r["word_attr"], signed=method == "ig", font_size=size,
            tips=[figs.describe_layer(p, L) for p in r["word_prune_layer"]]),
            unsafe_allow_html=True)
    auc, mass = r["used_auc"], r["mass_on_used"]
    m1, m2 = st.columns(2)
    m1.metric("Attribution on kept words", "—" if mass != mass else f"{mass:.0%}",
              f"chance: {r['used_fraction']:.0%} (the share kept)", delta_color="off",
              delta_arrow="off",
              help=f"share of the total |attribution| on the words that went through at least "
                   f"{KEPT_MIN_LAYERS} layers; if the predictors ignored importance it would be "
                   "the share of such words")
    m2.metric(f"Kept-AUC (top {r['k']})", "—" if auc != auc else f"{auc:.2f}", "chance: 0.5",
              delta_color="off", delta_arrow="off",
              help=f"ROC AUC of “kept” as a predictor of being among the {r['k']} words with "
                   "the largest |attribution|; undefined when every word is kept, or none")
    st.markdown("**In one line:** " + attribution_text.reading(
        r, f"kept past layer {KEPT_MIN_LAYERS - 1}", f"dropped by layer {KEPT_MIN_LAYERS}",
        "words"))
    st.caption(f"{attribution_text.METHODS[method]} on the word embeddings towards the "
               f"predicted class; per token the {attribution_text.REDUCTIONS[method]}"
               + ("; red pushes towards the prediction, blue away; baseline: the [PAD] "
                  "embedding" if method == "ig" else "")
               + "; a word's score is the sum of its pieces' (Saliency: their L2 norm), [CLS] "
               "and [SEP] left out. Through the masking path, whose logits equal the pruning "
               f"path's ({max(abs(a - b) for a, b in zip(r['logits'], r['masked_logits'])):.1e}"
               f" apart here). Computed in {r['seconds']:.2f} s on the CPU (cached for this "
               "text and method).")
    n_ex = len(examples)
    set_key = (model_key, method)
    done = st.session_state.setdefault("_tk_attr_set", {})
    if st.button(f"Compute over the {n_ex} example texts", key="tk_attr_set_run",
                 help="the same two numbers on every example text of this page"):
        try:
            with st.spinner(f"Attributing {n_ex} texts…"), torch_threads(THREADS):
                done[set_key] = attribution_text.transkimmer_agreement_over_texts(
                    model, [enc.encode(t) for t in examples.values()], method,
                    min_layers=KEPT_MIN_LAYERS)
        except Exception as ex:
            st.warning(f"The set could not be computed: {ex}")
    s = done.get(set_key)
    if s is not None:
        st.markdown(
            f"**Over the {s['n']} example texts**: on average {s['mass_on_used_mean']:.0%} of "
            f"the attribution on kept words against a chance level of "
            f"{s['used_fraction_mean']:.0%}; mean kept-AUC "
            + ("undefined (in every text all words kept, or none)" if s["used_auc_n"] == 0
               else f"{s['used_auc_mean']:.2f} over {s['used_auc_n']} texts")
            + f" ({s['seconds']:.1f} s).")
    rows = attribution_text.token_rows(
        [w["word"] for w in words], r["word_attr"], r["kept"], "kept",
        {"prune_layer": r["word_prune_layer"],
         "pieces": [" ".join(map(str, w["pieces"])) for w in words]})
    st.download_button("Attributions as CSV", common.to_csv(rows),
                       file_name=f"{name}-attributions-{method}.csv", mime="text/csv",
                       key="download_tk_attr", on_click="ignore",
                       help="one row per word: index, word, attribution, share of the "
                            "|attribution|, kept past the first layer (1/0), prune layer, pieces")


def lambda_section(card: dict) -> None:
    """The λ trade-off: validation accuracy against FLOP reduction for models trained with
    different λ, the shipped one starred, the paper's points beside them."""
    sweep = card.get("lambda_sweep") or []
    metrics, target = card.get("metrics") or {}, card.get("target") or {}
    acc, red, twin = (metrics.get("dev_accuracy"), metrics.get("flops_reduction"),
                      target.get("dense_twin_accuracy"))
    st.markdown(
        "Training adds λ × (the share of tokens kept) to the loss: a larger λ pushes the "
        "predictors to drop more tokens, trading accuracy for FLOPs."
        + (f" This model: {acc:.1%} on the {metrics.get('n', '')} validation reviews with "
           f"{red:.2f}× fewer FLOPs" if acc is not None and red is not None else "")
        + (f"; the same encoder trained without predictors reached {twin:.1%}."
           if twin is not None else "."))
    st.plotly_chart(big(figs.lambda_figure(sweep, figs.shipped_point(card), card.get("paper"),
                                           height=360)),
                    key="tk_lambda_chart", config=PLOT_CONFIG,
                    alt="validation accuracy against FLOP reduction across λ")
    if sweep:
        curve = [p for p in sweep if not p.get("second_stage")]
        two = len(curve) < len(sweep)
        st.caption(f"{len(curve)} models trained with different λ, each evaluated on the "
                   "validation set (blue); the star is the shipped model (λ = "
                   f"{card.get('lambda', '?')}"
                   + ("; after its λ run it went through a second stage, fine-tuning the "
                      "encoder under its frozen decisions, so it is not a point of that curve"
                      if two else "")
                   + "); crosses are the paper's BERT-base points (Table 3).")
    else:
        st.info("Only the shipped model is shown (its card has no λ sweep): the star, with the "
                "paper's BERT-base points as crosses.")
    cfg, training = card.get("config") or {}, card.get("training") or {}
    head = ("the mean of the output rows, dropped words at the state they left with"
            if cfg.get("pool") == "mean" else "h_[CLS], as in the paper")
    st.caption(f"The model: {cfg.get('layers')} layers, hidden size {cfg.get('hidden')}, "
               f"{cfg.get('heads')} attention heads, {card.get('backbone', '?')}; the classifier "
               f"reads {head}."
               + (" Trained in two stages: the predictors with λ, then the encoder fine-tuned "
                  "under their frozen decisions." if training.get("fixed_policy") else ""))
