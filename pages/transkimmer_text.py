"""Transkimmer — layer-wise skimming of your own text: before which layer does the transformer
drop each word, how many tokens are left layer by layer, what that saves in FLOPs and in
measured time against the dense twin, and the λ trade-off.

A thin page: the analysis comes from ``skimviz.tasks.transkimmer`` (``explain``,
``text_encoder``), the timing from ``skimviz.cost``, the coloured text and every chart from
``skimviz.figures_transkimmer``. Checkpoints are found by their card (task "sst2-transkimmer",
a config with ``skim``), loaded once per process (``st.cache_resource``) and deep-copied into
each session, so nothing a session does to its model (train/eval mode) reaches another's.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import streamlit as st
import torch

from app_support import flops_metric, big, presentation
from app_support import is_on as presenting_on
from app_support import pretrained_dir as _pretrained_dir
from app_support import (cached_latency, dense_twin, export_row, latency_metrics,
                         read_text_url, session_model, set_query, text_cards, text_input,
                         text_share_link)
from skimviz import attribution_text, checkpoint, cost, figures, figures_text, urlstate
from skimviz import figures_transkimmer as figs
from skimviz.checkpoint import CheckpointError
from skimviz.data import text as textdata
from skimviz.models.transkimmer import TranskimmerClassifier
from skimviz.speedlab import threads as _threads
from skimviz.tasks import transkimmer as tk

PAGE = "transkimmer-text"
TASK = tk.TASK
MINILM_NAME = "transkimmer-minilm-sst2"
# One CPU thread for timing, as on the other pages (a busy 2-core machine).
THREADS = 1
LATENCY_REPEATS, LATENCY_CAP_S = 10, 2.0  # this text, per model and device
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
LABELS = {0: "negative", 1: "positive"}
TRAIN_HELP = ("python -m skimviz train transkimmer --model small --name transkimmer-small-sst2 "
              "--dense-twin transkimmer-small-sst2-dense --data-dir DATA (and --dense --name "
              "transkimmer-small-sst2-dense for the dense twin)")
SWEEP_HELP = ("python -m skimviz train transkimmer --model small --name transkimmer-small-sst2 "
              "--sweep 0.1,0.3,0.6,1.0 --data-dir DATA")
MINILM_HELP = ("python -m skimviz train transkimmer --model minilm --name "
               "transkimmer-minilm-sst2 --data-dir DATA")

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


# ---------------------------------------------------------------------------------------------
# checkpoints
def _cards(directory) -> tuple[dict, dict]:
    """(skim checkpoints, dense checkpoints): name → card for every Transkimmer card."""
    skim, dense = {}, {}
    for name, card in text_cards(TASK, directory).items():
        ((skim if (card.get("config") or {}).get("skim", True) else dense))[name] = card
    return skim, dense


def _kind(card: dict) -> str:
    """“MiniLM, WordPiece” or “small, word tokens”, from the card's tokenizer."""
    wordpiece = (card.get("input") or {}).get("tokenizer") == "wordpiece"
    return "MiniLM, WordPiece" if wordpiece else "small, word tokens"


def _ckpt_path(name: str) -> Path:
    return Path(_pretrained_dir() or checkpoint.PRETRAINED_DIR) / name


@st.cache_resource(show_spinner=False, max_entries=8)
def _encoder(name: str, directory: str | None, stamp, _card: dict) -> tk.TextEncoder:
    return tk.text_encoder(_card, str(_ckpt_path(name)))


@st.cache_resource(show_spinner=False, max_entries=4)
def _fresh_dense(config_items: tuple):
    """An untrained dense twin of the same sizes (for timing only)."""
    cfg = dict(config_items)
    cfg["skim"] = False
    return TranskimmerClassifier(**cfg).eval()


def _dense_twin(model, card):
    """(dense model, sentence for the captions)."""
    return dense_twin(card, lambda: _fresh_dense(tuple(sorted(model.config.items()))),
                      "the same encoder without predictors",
                      "an untrained encoder of the same size without predictors", "barely change")


@st.cache_resource(show_spinner=False, max_entries=4)
def _on_device(key: tuple, _model, device: str):
    """A read-only copy of a model on ``device`` (shared; only ever run forward)."""
    return copy.deepcopy(_model).to(device).eval()


# ---------------------------------------------------------------------------------------------
# URL state: ``/transkimmer-text?model=…&text=…`` (texts longer than urlstate.SKIM_TEXT_MAX stay
# out of the URL)
def _read_url(names) -> None:
    read_text_url("tk", names, ignore=("theta",))


def _view(name) -> dict:
    return {"model": name, "text": st.session_state.get("tk_text"), "present": presenting_on()}


def _write_url(view: dict) -> None:
    set_query(urlstate.encode_skim(view))


def _share_link(view: dict) -> str:
    """A link that opens this view: ``<app root>/?page=transkimmer-text&model=…&text=…``
    (through the root, which the home page switches here)."""
    return text_share_link(PAGE, view)


# ---------------------------------------------------------------------------------------------
def _n_tokens(enc: tk.TextEncoder, text: str) -> int:
    """Tokens of ``text`` before the encoder's cut at ``max_len`` (specials included)."""
    if enc.kind == "words":
        return len(textdata.tokenize(text)) + 1
    return len(enc.tok.encode(text).ids)


def _known(enc: tk.TextEncoder, words) -> list | None:
    """Whether each word is in the vocabulary (word-level models only)."""
    if enc.kind != "words":
        return None
    return [w["word"] in enc.vocab.stoi for w in words]


def _latency(model, dense, model_key, ids: list, text_hash: str):
    """This text at batch 1 on every device: {device: {"skim", "dense", "name"}}, cached per
    model and text; (latency, error message or None)."""
    def measure_on(dev: str) -> dict:
        x = torch.tensor([ids], device=dev)
        pair = {}
        for k, m in (("skim", model), ("dense", dense)):
            # the session's skim copy: one GPU copy per checkpoint version; the shared dense
            # twin: one per loaded object
            mm = m if dev == "cpu" else _on_device(
                (model_key, k, dev, id(m) if k == "dense" else None), m, dev)
            with torch.inference_mode():
                pair[k] = cost.measure_latency(
                    lambda mm=mm: mm(x), device=dev, warmup=2, repeats=LATENCY_REPEATS,
                    max_seconds=LATENCY_CAP_S).to_dict()
        return pair

    return cached_latency("_tk_latency", (model_key, text_hash), measure_on, THREADS)


def _analysis(name: str, model, card: dict, model_key, text: str) -> None:
    L = int(model.config["layers"])
    try:
        enc = _encoder(name, _pretrained_dir(), model_key[2], card)
    except Exception as e:
        st.error(f"The tokenizer of **{name}** cannot be read: {e}\n\nTrain the model again "
                 f"with `{TRAIN_HELP}`.")
        return
    try:
        with _threads(THREADS):
            res = tk.explain(model, enc, text)
        total = _n_tokens(enc, text)
    except Exception as e:  # the model must never take the page down
        st.error(f"The model could not run on this text: {e}")
        return
    if not res["words"]:
        st.warning("Nothing to read: the text has no words the model can tokenise. Type a "
                   "sentence with some words.")
        return
    words = res["words"]
    known = _known(enc, words)
    n_tok = len(res["tokens"])
    kept_end = sum(1 for w in words if int(w["prune_layer"]) >= L)
    metrics = card.get("metrics") or {}

    st.header("2 · Which words each layer skims")
    left, right = st.columns([3, 2])
    with left:
        st.markdown(figs.token_html(words, L, known,
                                    font_size=1.6 if presenting_on() else 1.15),
                    unsafe_allow_html=True)
        st.markdown(figs.legend_html(L, show_unknown=bool(known) and not all(known)),
                    unsafe_allow_html=True)
        if total > enc.max_len:
            st.warning(f"The model reads at most {enc.max_len} tokens: your text has {total}, "
                       f"so only the first {enc.max_len} are read and shown.")
        unknown = sum(1 for k in known or [] if not k)
        st.caption(
            f"{len(words)} words, {n_tok} tokens as the model sees them ("
            + ("SST-2 word tokens, lower-cased, " if enc.kind == "words" else
               "WordPiece pieces joined back into words, each word coloured by its "
               "latest-skimmed piece; ")
            + "plus [CLS]" + (" and [SEP]" if enc.kind != "words" else "")
            + ", which is never skimmed)"
            + (f"; {unknown} not in the vocabulary" if unknown else "")
            + ". A skimmed word leaves the encoder with the state it had (Eq. 3). Hover a word "
              "for its layer — the paper's Table 5.")
    with right:
        avg = metrics.get("kept_fraction_per_layer")
        st.plotly_chart(big(figs.remaining_tokens_figure(res["tokens_kept_per_layer"], n_tok,
                                                         avg, height=330)),
                        key="tk_curve_chart", config=PLOT_CONFIG,
                        alt="share of tokens entering each layer, this input and the average")
        st.caption("Share of the tokens entering each layer: this input (red) and the average "
                   "over the validation set from the model card (grey"
                   + (f", {metrics['n']:,} texts" if metrics.get("n") else "")
                   + ") — the paper's Fig. 4."
                   + ("" if avg else " This card has no validation curve."))

    dense, dense_note = _dense_twin(model, card)
    text_hash = hashlib.sha1(text.encode("utf-8")).hexdigest()
    ids = enc.encode(text)["ids"]
    latency, latency_error = _latency(model, dense, model_key, ids, text_hash)

    cols = st.columns(4)
    cols[0].metric("Prediction", LABELS.get(res["label"], str(res["label"])),
                   f"{res['probability']:.0%} confidence", delta_color="off", delta_arrow="off")
    cols[1].metric("Words kept to the end", f"{kept_end} / {len(words)}",
                   f"{res['tokens_kept_per_layer'][-1]} of {n_tok} tokens in layer {L}",
                   delta_color="off", delta_arrow="off",
                   help="words no predictor dropped: every layer ran on them")
    flops_metric(cols[2], "FLOP reduction (this text)", res["flops_reduction"], res["flops"], res["dense_flops"],
                 help="FLOPs of the dense encoder on these tokens / FLOPs of the Transkimmer "
                        "(its predictors included), counted on real tokens only")
    latency_metrics(cols[3], latency, latency_error, "Transkimmer", "dense", LATENCY_CAP_S)
    devs = "; ".join(lat["name"] for lat in latency.values())
    st.caption(f"Device in use: {devs or cost.describe_device('cpu')}. Latency is this text at "
               f"batch 1 ({THREADS} CPU thread on the CPU) against {dense_note}. The "
               "Transkimmer gathers the kept tokens before every layer, so a layer's work "
               "shrinks with the tokens it keeps; on short texts the predictors and the "
               "gathering can cost more time than the skipped tokens save.")
    _attributions(model, model_key, enc, res, known, text, text_hash, name)
    return res, known


# ---------------------------------------------------------------------------------------------
# attributions vs decisions
ATTR_LABELS = {"ig": f"Integrated Gradients ({attribution_text.IG_STEPS} steps)",
               "saliency": "Saliency (|gradient|)"}
KEPT_MIN_LAYERS = 2  # "kept": the word went on past the first layer (through at least 2)


def _attributions(model, model_key, enc: tk.TextEncoder, res: dict, known, text: str,
                  text_hash: str, name: str) -> None:
    """Attributions vs decisions for this text: the prune-layer strip beside the words coloured
    by attribution, the two agreement numbers with their chance levels, the set over the
    examples, CSV export."""
    L = int(res["layers"])
    st.subheader("Attributions vs decisions: does the model skim what does not matter?")
    st.markdown(
        "An **attribution** method scores how much each word pushes the model towards its "
        "prediction. If the predictors drop what does not matter, the words with the largest "
        f"attribution should be those kept past the first layer (through at least "
        f"{KEPT_MIN_LAYERS} of {L} layers).")
    with st.container(key="controls_tk_attr"):
        method = st.radio(
            "Attribution method", list(attribution_text.METHODS), key="tk_attr_method",
            horizontal=True, format_func=ATTR_LABELS.get,
            help="captum.attr on the word embeddings, towards the predicted class, through the "
                 "masking path (every token computed, the same decisions and logits as the "
                 "pruning path). Integrated Gradients: from the [PAD] embedding ([CLS] kept), "
                 "score = sum over the embedding dimensions; Saliency: L2 norm of the "
                 "gradient. A word's score joins its pieces'.")
    cache = st.session_state.setdefault("_tk_attr", {})
    key = (model_key, text_hash, method)
    r = cache.get(key)
    if r is None:
        try:
            e = enc.encode(text)
            with st.spinner("Computing the attribution…"), _threads(THREADS):
                r = attribution_text.attribute_transkimmer(model, e["ids"], e["words"], method,
                                                           min_layers=KEPT_MIN_LAYERS,
                                                           target=res["label"])
        except Exception as ex:  # attributions are informative only
            st.warning(f"The attribution could not be computed: {ex}")
            return
        if len(cache) > 64:
            cache.clear()
        cache[key] = r
    words = res["words"]
    if len(r["word_attr"]) != len(words):
        st.warning("The attribution does not line up with the words shown; not displayed.")
        return
    size = 1.6 if presenting_on() else 1.15
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
    n_ex = len(EXAMPLES)
    set_key = (model_key, method)
    done = st.session_state.setdefault("_tk_attr_set", {})
    if st.button(f"Compute over the {n_ex} example texts", key="tk_attr_set_run",
                 help="the same two numbers on every example text of this page"):
        try:
            with st.spinner(f"Attributing {n_ex} texts…"), _threads(THREADS):
                done[set_key] = attribution_text.transkimmer_agreement_over_texts(
                    model, [enc.encode(t) for t in EXAMPLES.values()], method,
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
    st.download_button("Attributions as CSV", figures.to_csv(rows),
                       file_name=f"{name}-attributions-{method}.csv", mime="text/csv",
                       key="download_tk_attr", on_click="ignore",
                       help="one row per word: index, word, attribution, share of the "
                            "|attribution|, kept past the first layer (1/0), prune layer, pieces")


def _lambda_section(card: dict) -> None:
    st.header("3 · The λ trade-off")
    sweep = card.get("lambda_sweep") or []
    st.markdown(
        "Training adds λ × Loss_skim (the share of tokens kept, Eq. 6–7) to the task loss: a "
        "larger λ pushes the predictors to skim more, trading accuracy for FLOPs.")
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
        st.info("The λ sweep was not run for this model: its card has no `lambda_sweep`. The "
                "star is the shipped model alone (λ = " + f"{card.get('lambda', '?')}"
                + f"), the crosses the paper's BERT-base points. Run it with `{SWEEP_HELP}`.")


def _export(name: str, card: dict, text: str, res: dict, known) -> None:
    st.header("4 · Export and share")
    view = _view(name)
    meta = {"model": name, "dense_twin": card.get("dense_twin"), "text": text}
    export_row(("Words as CSV", figures.to_csv(figs.word_rows(res, known)),
                f"{name}-words.csv", "download_tk_words",
                "one row per word: index, word, pieces, prune layer, layers run, kept to the end"),
               ("Trace as JSON", figs.trace_json(res, meta), f"{name}-trace.json",
                "download_tk_trace",
                "tokens, prune layers, words, tokens per layer, prediction, FLOPs"),
               text, _share_link(view), "model and the text")


# =============================================================================================
def main() -> None:
    st.title("Transkimmer — layer-wise skimming")
    st.markdown(
        "A **Transkimmer** (Guan et al., ACL 2022) is a BERT-style transformer with a tiny "
        "*skim predictor* in front of every layer. The predictor looks at each token's hidden "
        "state and decides whether the token is still needed; a skimmed token is dropped from "
        "every later layer and leaves the encoder with the state it had, so the later layers "
        "work on fewer tokens. Type a movie review and see before which layer each word is "
        "dropped.")
    directory = _pretrained_dir()
    cards, _dense_cards = _cards(directory)
    _read_url(cards)
    for notice in st.session_state.pop("_tk_url_notices", []):
        st.warning(notice)  # built by skimviz.urlstate: URL text reduced to a safe excerpt
    presentation(PAGE, sync_url=False)

    if not cards:
        st.error("No Transkimmer checkpoint is available: this page needs a model in "
                 f"`pretrained/` whose card has task “{TASK}”. Train one with `{TRAIN_HELP}`.")
        _write_url({"present": presenting_on()})
        return
    names = list(cards)
    if st.session_state.get("tk_model") not in names:
        # MiniLM by default: its words leave at several layers, which is the mechanism
        preferred = [n for n in names if n == MINILM_NAME]
        st.session_state["tk_model"] = (preferred or names)[0]
    has_minilm = any(_kind(c).startswith("MiniLM") for c in cards.values())
    with st.container(key="controls_model"):
        name = st.radio(
            "Model", names, key="tk_model", horizontal=True,
            format_func=lambda n: f"{n} ({_kind(cards[n])})",
            help="Every Transkimmer checkpoint in pretrained/ (dense twins are not listed).")
        if not has_minilm:
            st.caption(f"The MiniLM Transkimmer (`{MINILM_NAME}`, all-MiniLM-L6-v2 fine-tuned "
                       f"with WordPiece) is not shipped; train it with `{MINILM_HELP}`.")
    try:
        model, card, model_key = session_model(name, "_tk_models")
    except CheckpointError as e:
        st.error(f"The checkpoint **{name}** cannot be loaded: {e}\n\nTrain it again with "
                 f"`{TRAIN_HELP}`.")
        _write_url(_view(name))
        return
    metrics = card.get("metrics") or {}
    target = card.get("target") or {}
    cfg = card.get("config") or {}
    training = card.get("training") or {}
    c1, c2, c3, c4 = st.columns(4)
    acc = metrics.get("dev_accuracy")
    c1.metric("Validation accuracy", f"{acc:.1%}" if acc is not None else "—",
              help=f"on {metrics.get('n', '?')} SST-2 dev texts")
    red = metrics.get("flops_reduction")
    c2.metric("Validation FLOP reduction", f"{red:.2f}×" if red is not None else "—",
              help="Σ dense FLOPs / Σ Transkimmer FLOPs on the dev set, no padding")
    twin_acc = target.get("dense_twin_accuracy")
    c3.metric("Dense twin accuracy", f"{twin_acc:.1%}" if twin_acc is not None else "—",
              help=f"`{card.get('dense_twin') or 'none'}` on the same dev set")
    c4.metric("λ (harmony coefficient)", f"{card.get('lambda', '?')}",
              help="weight of the skim loss in training (Eq. 7); the paper uses 0.3 for SST-2")
    if training.get("dry_run"):
        st.warning("This checkpoint comes from a pipeline dry run (two training steps): its "
                   f"predictions are meaningless. Train the real one with `{TRAIN_HELP}`.")
    head = ("the mean of the output rows, skimmed words at the state they left with (our "
            "addition)" if cfg.get("pool") == "mean" else "h_[CLS] (the paper's)")
    stage = (" Trained in two stages: the predictors with λ, then the encoder fine-tuned under "
             "their frozen decisions (`--fixed-policy`, our addition)."
             if training.get("fixed_policy") else "")
    st.caption(f"Checkpoint `{name}`: {cfg.get('layers')} layers, hidden {cfg.get('hidden')}, "
               f"{cfg.get('heads')} heads, {card.get('backbone', '?')}; the classifier reads "
               f"{head}; dense twin: `{card.get('dense_twin') or 'none'}`.{stage} Labels: "
               "1 = positive, 0 = negative.")

    st.header("1 · Your text")
    text = text_input("tk", EXAMPLES,
                      f"Up to {textdata.MAX_CHARS:,} characters are accepted and the model "
                      "reads its first tokens (see below); press Ctrl+Enter to apply.",
                      "which words each layer skims")
    if text is None:
        _lambda_section(card)
        _write_url(_view(name))
        return
    out = _analysis(name, model, card, model_key, text)
    _lambda_section(card)
    if out:
        _export(name, card, text, *out)
    _write_url(_view(name))


main()
