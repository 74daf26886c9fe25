"""Speed lab — SRU and skipping: recurrent cells timed live on this server, time beside FLOPs.

A thin page: the runner is :mod:`skimviz.bench.speedlab` (hard time caps per point and in total), what
is said about its rows (the quick look, each cell against nn.LSTM, the sentences, plain tables)
is :mod:`skimviz.bench.speedlab_summary`, the charts come from :mod:`skimviz.viz.figures`. One benchmark
runs at a time in the whole server (a process-wide lock), because two at once would time each
other.
"""
from __future__ import annotations

import threading
import time

import pandas as pd
import streamlit as st

from skimviz import cost
from skimviz.bench import speedlab
from skimviz.bench import speedlab_summary as summary
from skimviz.viz import common
from skimviz.viz import speed as speed_figs
from ui import presentation
from ui.glossary import definition
from ui.lede import lede
from ui.style import PLOT_CONFIG, THREADS

PAGE = "speed-lab"
MAX_SEQ, MAX_BATCH = 2000, 256
HIDDEN_MIN, HIDDEN_MAX = 8, 512
MAX_POINT_S = 3.0           # timed runs per grid point
MAX_TOTAL_S = 60.0          # the whole benchmark
MAX_POINTS = 40
RATES = [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 20]
DEFAULT_CELLS = ["lstm", "gru", "sru", "skip-gru"]


@st.cache_resource(show_spinner=False)
def _bench_lock() -> threading.Lock:
    return threading.Lock()


@st.cache_resource(show_spinner=False)
def _quick_look() -> dict:
    """The quick look, measured once per server process (under the benchmark lock)."""
    lock = _bench_lock()
    if not lock.acquire(timeout=90):
        raise RuntimeError("another benchmark is running")
    try:
        with cost.threads(THREADS):
            rows = summary.quick_look()
    finally:
        lock.release()
    q = summary.QUICK
    return {"rows": rows, "grid": {"mode": "inference", "hidden": q["hidden"]},
            "machine": speedlab.describe_machine("cpu"), "quick": True,
            "when": time.strftime("%H:%M UTC", time.gmtime())}


# --- opening -------------------------------------------------------------------------------------
presentation.toggle(PAGE, st.columns([2.5, 1])[1])  # top right
lede("Speed lab — SRU and skipping",
     "An LSTM or a GRU must finish one step before it starts the next, because every step "
     "multiplies the previous state by a matrix. The {SRU} has no such product: its matrix "
     "products read only the inputs, so they run for all steps at once, and what is left step "
     "by step is cheap. This lab times recurrent cells on this server, beside the {FLOPs} they "
     "need: fewer FLOPs do not always mean less time.",
     "set {update rate p|p} to 1/10 and press Run benchmark: does the Skip GRU get 10× faster?",
     ["SRU: Lei et al., EMNLP 2018 · Skip RNN: Campos et al., ICLR 2018 · Skim-RNN: Seo et "
      "al., ICLR 2018"])

# --- controls ------------------------------------------------------------------------------------
c1, c2, c3 = st.columns([3.4, 2.6, 1.3], vertical_alignment="bottom")
cells = c1.multiselect("Cells", list(speedlab.CELLS), default=DEFAULT_CELLS,
                       format_func=lambda c: speedlab.CELLS[c], key="sl_cells")
if "sl_rate" not in st.session_state:  # no value= below: slides set it (ui.lessons)
    st.session_state["sl_rate"] = 1 / 4
rate = c2.select_slider("Update rate p of the skipping cells", RATES, key="sl_rate",
                        format_func=lambda p: "1 (no skipping)" if p == 1 else
                        summary.fraction(p), help=definition("update rate p"))
run_slot = c3.empty()          # the button, once the settings below are read
notes, results = st.container(), st.container()  # drawn above the settings
with st.expander("More settings: lengths, batch sizes, hidden size, device, mode"):
    e1, e2 = st.columns(2)
    seq_text = e1.text_input(f"Sequence lengths (comma-separated, 1–{MAX_SEQ})", "49, 196, 784",
                             key="sl_seq")
    batch_text = e1.text_input(f"Batch sizes (comma-separated, 1–{MAX_BATCH})", "1, 32",
                               key="sl_batch")
    hidden = e1.number_input(f"Hidden size ({HIDDEN_MIN}–{HIDDEN_MAX})", value=128, step=16,
                             key="sl_hidden")
    device = e2.selectbox("Device", cost.available_devices(), key="sl_device",
                          help="cuda is offered only when PyTorch sees a GPU.")
    mode = e2.radio("Mode", list(speedlab.MODES), horizontal=True, key="sl_mode",
                    help="inference: the forward pass only. train: forward and backward.")
    e2.caption(f"Each point gets at most {MAX_POINT_S:g} s of timed runs; the benchmark stops "
               f"starting new points after {MAX_TOTAL_S:g} s (those are listed as skipped); at "
               f"most {MAX_POINTS} points; {THREADS} CPU thread; one input feature per step.")


def _validated():
    """(grid dict, None) or (None, message)."""
    try:
        seqs = speedlab.parse_int_list(seq_text, "sequence length", 1, MAX_SEQ)
        batches = speedlab.parse_int_list(batch_text, "batch size", 1, MAX_BATCH)
        if not HIDDEN_MIN <= int(hidden) <= HIDDEN_MAX or int(hidden) != hidden:
            raise ValueError(f"hidden size must be a whole number from {HIDDEN_MIN} to "
                             f"{HIDDEN_MAX}, got {hidden}")
        if not cells:
            raise ValueError("pick at least one cell")
        n = len(cells) * len(seqs) * len(batches)
        if n > MAX_POINTS:
            raise ValueError(f"{n} points ({len(cells)} cells × {len(seqs)} lengths × "
                             f"{len(batches)} batches) is more than {MAX_POINTS}: shorten a list")
        speedlab.validate(cells, seqs, batches, int(hidden), device, mode, rate)
    except ValueError as e:
        return None, str(e)
    return {"cells": cells, "seq_lens": seqs, "batches": batches, "hidden": int(hidden),
            "device": device, "mode": mode, "update_rate": float(rate)}, None


grid, problem = _validated()
if problem:
    notes.error(f"Cannot run this benchmark: {problem}")
if run_slot.button("Run benchmark", type="primary", disabled=grid is None, key="sl_run"):
    lock = _bench_lock()
    if not lock.acquire(blocking=False):
        notes.warning("Another session is running a benchmark right now (two at once would time "
                   "each other). Try again in a minute.")
    else:
        bar = notes.progress(0.0, text="starting…")
        try:
            with cost.threads(THREADS):
                rows = summary.run_with_references(
                    grid, lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m),
                    MAX_POINT_S, MAX_TOTAL_S)
            st.session_state["sl_result"] = {"rows": rows, "grid": grid, "quick": False,
                                            "machine": speedlab.describe_machine(grid["device"])}
        except (RuntimeError, ValueError, MemoryError) as e:  # e.g. out of memory
            notes.error(f"The benchmark stopped: {e}")
        finally:
            lock.release()
            bar.empty()

# --- the result: each cell against nn.LSTM ----------------------------------------------------
def _result() -> dict | None:
    """This session's benchmark, else the quick look (None while another benchmark runs)."""
    res = st.session_state.get("sl_result")
    if res is None:
        try:
            with st.spinner("Timing four cells on one 784-step sequence…"):
                res = _quick_look()
        except RuntimeError:
            st.info("Another benchmark is running on this server; press **Run benchmark** in "
                    "a minute.")
    return res


def _main(res: dict) -> None:
    """Each cell against nn.LSTM: the chart, up to four metrics and one sentence per cell."""
    rows, g = res["rows"], res["grid"]
    entries = summary.headline(rows)
    with presentation.beside(PAGE):
        st.plotly_chart(presentation.big(speed_figs.speed_dumbbell_figure(
            entries, font_size=15 if presentation.is_on() else 12)), key="sl_fig_main",
            config=PLOT_CONFIG, alt="each cell's FLOP saving and measured speed-up over nn.LSTM")
        metrics = summary.summary_metrics(entries)
        n = 2 if presentation.is_on() else 4  # the slide takes a third of the width
        for i in range(0, len(metrics), n):
            for col, m in zip(st.columns(n), metrics[i:i + n]):
                col.metric(m["label"], m["value"], m["delta"], delta_color="off",
                           delta_arrow="off")
        for e in entries[1:]:
            st.markdown(summary.cell_sentence(e))
    if entries:
        what = (f"Quick look, measured when this server first showed the page ({res['when']})"
                if res["quick"] else "Your benchmark")
        loops = summary.backends_sentence(
            speedlab.sru_backend("sru", "cpu"),
            speedlab.row_backend("skip-gru", "cpu", "inference", 1),
            speedlab.row_backend("skim-rnn", "cpu", "inference", 1))
        st.caption(f"{what}: {entries[0]['seq_len']} steps, batch {entries[0]['batch']}, hidden "
                   f"size {g['hidden']}, {g['mode']}, {THREADS} CPU thread; {res['machine']}. "
                   f"{loops} Timings on a shared machine vary from run to run.")


def _views(rows: list, mode: str) -> None:
    """The other views, one tab each, each with its sentence; the numbers last."""
    measured = [r for r in rows if not str(r["status"]).startswith("skipped")]
    pts = speed_figs.skip_speedup_points(rows)
    skim = summary.plain_skim(rows)
    names = (["Time vs length", "Time vs batch", "Arithmetic per second"]
             + (["Skipping vs its bound"] if pts else []) + (["Skim-RNN"] if skim else [])
             + ["All numbers"])
    tabs = dict(zip(names, st.tabs(names)))
    for x, tab in (("seq_len", "Time vs length"), ("batch", "Time vs batch")):
        with tabs[tab]:
            st.markdown(summary.growth_sentence(rows, x))
            if len({r[x] for r in measured}) > 1:  # one value draws no line
                st.plotly_chart(speed_figs.latency_figure(rows, x), config=PLOT_CONFIG,
                                key="sl_fig_seq" if x == "seq_len" else "sl_fig_batch")
    with tabs["Arithmetic per second"]:
        st.markdown(summary.gflops_sentence(rows))
        st.plotly_chart(speed_figs.gflops_figure(rows), key="sl_fig_gflops", config=PLOT_CONFIG)
    if pts:
        with tabs["Skipping vs its bound"]:
            st.markdown(summary.skip_sentence(pts, mode))
            st.plotly_chart(speed_figs.speedup_figure(pts), key="sl_fig_speedup",
                            config=PLOT_CONFIG)
    if skim:
        with tabs["Skim-RNN"]:
            st.markdown(summary.skim_sentence(rows))
            st.dataframe(pd.DataFrame(skim), hide_index=True, key="sl_skim")
    with tabs["All numbers"]:
        rel = summary.plain_speedups(rows)
        if rel:
            st.dataframe(pd.DataFrame(rel), hide_index=True, key="sl_rel")
        st.dataframe(pd.DataFrame(summary.plain_rows(rows)), hide_index=True, key="sl_table")
        skipped = len(rows) - len(measured)
        st.caption(f"{len(measured)} points measured"
                   + (f", {skipped} skipped by the time cap." if skipped else "."))
        st.download_button("Download results (CSV)", common.to_csv(rows),
                           file_name="speed_lab.csv", mime="text/csv", key="sl_csv")


with results:
    if (result := _result()) is not None:
        _main(result)
        _views(result["rows"], result["grid"]["mode"])
