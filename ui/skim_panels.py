"""The Skim-RNN page's secondary views, each in a tab: attributions against decisions, the
same text at two thresholds, and the measured speed-up against skim rate (the paper's Fig. 7).
"""
from __future__ import annotations

import time

import streamlit as st

from skimviz.attribution import text as attribution_text
from skimviz.bench import skim_speed
from skimviz.cost import threads as torch_threads
from skimviz.viz import common
from skimviz.viz import tokens as figures_text
from ui import urlstate

from .presentation import big, is_on
from .session_cache import cached
from .style import PLOT_CONFIG, THREADS

LABELS = {0: "negative", 1: "positive"}
ATTR_LABELS = {"ig": f"Integrated Gradients ({attribution_text.IG_STEPS} steps)",
               "saliency": "Saliency (|gradient|)"}
SPEED_REPEATS, SPEED_CAP_S = 20, 90.0     # each text at each θ; the whole speed-up measurement


def _size() -> float:
    return 1.6 if is_on() else 1.15


def attributions(model, model_key, vocab, res: dict, text_hash: str, theta: float,
                 examples: dict, max_tokens: int, stem: str) -> None:
    """Does the model skim what does not matter? The decisions beside the tokens coloured by an
    attribution method, two agreement numbers with their chance levels, the same over the
    example texts, CSV export."""
    st.markdown("An **attribution** method scores how much each word pushes the model towards "
                "its prediction. If the decision layer skims what does not matter, the words "
                "with the largest attribution should be the read ones.")
    method = st.radio("Attribution method", list(attribution_text.METHODS),
                      key="skim_attr_method", horizontal=True, format_func=ATTR_LABELS.get)
    try:
        with st.spinner("Computing the attribution…"), torch_threads(THREADS):
            r = cached("_skim_attr", (model_key, text_hash, round(theta, 4), method),
                       lambda: attribution_text.attribute_skim(
                           model, vocab.encode(res["tokens"]), method, target=res["label"]))
    except Exception as e:  # attributions are informative only
        st.warning(f"The attribution could not be computed: {e}")
        return
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Read / skimmed** (the decisions)")
        st.markdown(figures_text.token_html(res["tokens"], res["skim"], res["known"],
                                            res["p_skim"], font_size=_size(),
                                            block_class="skimviz-tokens-decisions"),
                    unsafe_allow_html=True)
    with c2:
        st.markdown(f"**{attribution_text.METHODS[method]}** (towards "
                    f"“{LABELS.get(r['label'], r['label'])}”)")
        st.markdown(figures_text.attribution_html(
            res["tokens"], r["attr"], signed=method == "ig", font_size=_size(),
            tips=["read" if u else "skimmed" for u in r["read"]]), unsafe_allow_html=True)
    auc = r["used_auc"]
    m1, m2 = st.columns(2)
    m1.metric("Attribution on read words",
              "—" if r["mass_on_used"] != r["mass_on_used"] else f"{r['mass_on_used']:.0%}",
              f"chance: {r['used_fraction']:.0%}", delta_color="off", delta_arrow="off",
              help="Share of the total |attribution| on the words the big LSTM read. If the "
                   "decisions ignored importance, it would be the share of words read.")
    m2.metric(f"Read-AUC (top {r['k']})", "—" if auc != auc else f"{auc:.2f}", "chance: 0.5",
              delta_color="off", delta_arrow="off",
              help=f"How well “read” picks out the {r['k']} words with the largest "
                   "|attribution|: 1 = exactly those are read, 0.5 = no better than chance.")
    st.markdown("**In one line:** " + attribution_text.reading(r, "read", "skimmed"))
    n_ex = len(examples)
    if st.button(f"Compute over the {n_ex} example texts", key="skim_attr_set_run"):
        done = st.session_state.setdefault("_skim_attr_set", {})
        try:
            with st.spinner(f"Attributing {n_ex} texts…"), torch_threads(THREADS):
                ids = skim_speed.encode_texts(vocab, list(examples.values()), max_tokens)
                done[(model_key, round(theta, 4), method)] = \
                    attribution_text.skim_agreement_over_texts(model, ids, method)
        except Exception as e:
            st.warning(f"The set could not be computed: {e}")
    s = st.session_state.get("_skim_attr_set", {}).get((model_key, round(theta, 4), method))
    if s is not None:
        st.markdown(
            f"**Over the {s['n']} example texts** (θ = {theta:.2f}): on average "
            f"{s['mass_on_used_mean']:.0%} of the attribution on read words against a chance "
            f"level of {s['used_fraction_mean']:.0%}; above chance in "
            f"{s['share_above_chance']:.0%} of the texts; mean read-AUC "
            + ("undefined (every text all read or all skimmed)" if s["used_auc_n"] == 0 else
               f"{s['used_auc_mean']:.2f} over {s['used_auc_n']} texts") + ".")
    rows = attribution_text.token_rows(res["tokens"], r["attr"], r["read"], "read",
                                       {"p_skim": [round(p, 6) for p in res["p_skim"]]})
    st.download_button("Attributions as CSV", common.to_csv(rows),
                       file_name=f"{stem}-attributions-{method}.csv", mime="text/csv",
                       key="download_skim_attr", on_click="ignore")
    st.caption(f"{attribution_text.METHODS[method]} on the word embeddings (captum), towards "
               f"the predicted class, with the decisions of θ = {theta:.2f} replayed; computed "
               f"in {r['seconds']:.2f} s.")


def compare(model, analyse, res: dict, text_hash: str, model_key, theta: float) -> None:
    """The same text at a second θ (B) beside the current one (A)."""
    theta_b = st.slider("θ for B", urlstate.SKIM_THETA_MIN, urlstate.SKIM_THETA_MAX,
                        step=urlstate.SKIM_THETA_STEP, key="skim_compare_theta",
                        value=0.95 if abs(theta - 0.95) > 1e-9 else 0.5,
                        help="A is the view above (the main θ slider).")
    cache = st.session_state.setdefault("_skim_compare", {})
    key = (model_key, text_hash, round(theta_b, 4))
    if key not in cache:
        try:
            model.set_threshold(theta_b)
            cache[key] = analyse()
        except Exception as e:  # the comparison is informative only
            st.warning(f"The second view could not be computed: {e}")
            return
        finally:
            model.set_threshold(theta)
    res_b = cache[key]
    for col, (tag, th, r) in zip(st.columns(2), (("A", theta, res), ("B", theta_b, res_b))):
        with col:
            st.markdown(f"**{tag}: θ = {th:.2f}** — {int(sum(r['skim']))} of {len(r['skim'])} "
                        f"words skimmed, {r['flop_r']:.2f}× fewer FLOPs, "
                        f"{LABELS.get(r['label'], r['label'])} ({r['probability']:.0%})")
            st.markdown(figures_text.token_html(r["tokens"], r["skim"], r["known"], r["p_skim"],
                                                font_size=_size(),
                                                block_class=f"skimviz-tokens-{tag.lower()}"),
                        unsafe_allow_html=True)
    diff = sum(int(a != b) for a, b in zip(res["skim"], res_b["skim"]))
    st.caption(f"The two thresholds differ on {diff} of {len(res['skim'])} words; the "
               f"predictions {'agree' if res['label'] == res_b['label'] else 'disagree'}.")


@st.cache_resource(show_spinner=False)
def _speed_store() -> dict:
    """Speed-up measurements shared by the sessions of this process."""
    return {}


def speedup(model, dense, vocab, model_key, examples: dict, max_tokens: int) -> None:
    """The paper's Fig. 7, measured here: speed-up against skim rate as θ moves."""
    st.markdown("As θ goes down the model skims more words and needs fewer FLOPs. Does the "
                "clock follow? The Skim-LSTM is timed on the example texts at several θ, "
                "against itself with every word read (the same code) and against the dense "
                "LSTM (a different implementation).")
    store = _speed_store()
    if st.button("Measure the speed-up", key="speed_run", type="primary",
                 help=f"{len(skim_speed.THRESHOLDS)} thresholds × {len(examples)} texts, at "
                      f"most {SPEED_CAP_S:.0f} s"):
        bar = st.progress(0.0, text="starting…")

        def progress(fraction: float, message: str) -> bool:
            bar.progress(min(1.0, max(0.0, fraction)), text=message)
            return False

        try:
            ids = skim_speed.encode_texts(vocab, list(examples.values()), max_tokens)
            with torch_threads(THREADS):
                res = skim_speed.speedup_vs_skim(model, dense, ids, device="cpu",
                                                 thresholds=skim_speed.THRESHOLDS,
                                                 repeats=SPEED_REPEATS, max_seconds=SPEED_CAP_S,
                                                 progress=progress)
            res["when"] = time.strftime("%H:%M:%S")
            store[model_key] = res
        except Exception as e:  # the measurement must never take the page down
            st.error(f"The speed-up could not be measured: {e}")
        bar.empty()
    res = store.get(model_key)
    if res is None:
        st.caption(f"Not measured yet: press the button (at most {SPEED_CAP_S:.0f} s).")
        return
    if not res["rows"]:
        st.warning("The measurement stopped before any threshold was timed.")
        return
    st.plotly_chart(big(figures_text.speedup_skim_figure(res["rows"], height=380)),
                    key="speedup_chart", config=PLOT_CONFIG,
                    alt="measured speed-up against skim rate, with FLOP reduction as the bound")
    best = max(res["rows"], key=lambda r: r["speedup_vs_dense"])
    st.caption(f"Measured at {res['when']}: {res['texts']} texts, {res['tokens']} words, batch "
               f"1, {THREADS} CPU thread. Best speed-up over the dense LSTM: "
               f"{best['speedup_vs_dense']:.2f}× at θ = {best['threshold']:g} (skim rate "
               f"{best['skim_rate']:.0%}, {best['flop_r']:.2f}× fewer FLOPs).")
