"""Speed lab — SRU and skipping: a live benchmark of recurrent cells on this machine.

A thin page: the runner is :func:`skimviz.speedlab.run_grid` (hard time caps per point and in
total), the charts come from :mod:`skimviz.figures`. One benchmark runs at a time in the whole
server (a process-wide lock), because two at once would time each other.
"""
from __future__ import annotations

import threading
import time

import pandas as pd
import streamlit as st

from app_support import big, presentation
from skimviz import cost, figures, speedlab

THREADS = 1                 # torch threads while timing (restored afterwards)
MAX_SEQ, MAX_BATCH = 2000, 256
HIDDEN_MIN, HIDDEN_MAX = 8, 512
MAX_POINT_S = 3.0           # timed runs per grid point
MAX_TOTAL_S = 60.0          # the whole benchmark
MAX_POINTS = 40
RATES = [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 20]
DEFAULT_CELLS = ["lstm", "gru", "sru", "skip-gru"]
BUILD_CMD = "python -m skimviz._ext build"


@st.cache_resource(show_spinner=False)
def _bench_lock() -> threading.Lock:
    return threading.Lock()


def _fmt_rate(p: float) -> str:
    return "1 (dense)" if p == 1.0 else f"1/{round(1 / p)} = {p:.3g}"


st.title("Speed lab — SRU and skipping")
st.markdown(
    "FLOPs count arithmetic, but wall-clock time also pays for per-step overheads (a Python "
    "loop, kernel launches, memory traffic, synchronisation) that do not shrink with the "
    "arithmetic, so skipping half of the steps rarely halves the time. And parallel hardware "
    "(SIMD units, many cores, a GPU) runs a large matrix product nearly as fast as a small "
    "one, so a cell whose work is one big product over all steps (SRU) can beat a cell with "
    "fewer FLOPs that must wait for the previous step (as the Skim-RNN paper notes for its own "
    "speed-ups).")
# Presentation mode (app_support): the toggle, and when on the CSS and this page's slides; the
# benchmark's settings sit in a "controls" container (hidden then), "Run benchmark" stays.
presentation("speed-lab")

backend = speedlab.sru_backend("sru", "cpu")
if backend == "cpp":
    st.success("SRU backend on the CPU: **cpp** — the fused C++ extension "
               "(`skimviz/csrc/sru_cpu.cpp`) is built and loaded.")
else:
    st.info("SRU backend on the CPU: **python** — the PyTorch-loop fallback, because the C++ "
            f"extension is not built. Build it once with `{BUILD_CMD}` and restart the app.")
skim_backend = speedlab.row_backend("skim-rnn", "cpu", "inference", 1)
st.caption(f"Skim-RNN (Skim-LSTM, small cell d' = hidden // 10): batch-1 CPU inference runs "
           f"the **{skim_backend}** loop"
           + ("" if skim_backend == "cpp" else f" (build the C++ extension with `{BUILD_CMD}`)")
           + ". Machine: " + speedlab.describe_machine("cpu"))

# --- controls --------------------------------------------------------------------------------
devices = cost.available_devices()
_controls = st.container(key="controls_speedlab")
c1, c2 = _controls.columns(2)
with c1:
    cells = st.multiselect("Cells", list(speedlab.CELLS), default=DEFAULT_CELLS,
                           format_func=lambda c: speedlab.CELLS[c], key="sl_cells")
    seq_text = st.text_input(f"Sequence lengths (comma-separated, 1–{MAX_SEQ})",
                             "49, 196, 784", key="sl_seq")
    batch_text = st.text_input(f"Batch sizes (comma-separated, 1–{MAX_BATCH})", "1, 32",
                               key="sl_batch")
    hidden = st.number_input(f"Hidden size ({HIDDEN_MIN}–{HIDDEN_MAX})", value=128,
                             step=16, key="sl_hidden")
with c2:
    device = st.selectbox("Device", devices, key="sl_device",
                          help="cuda is offered only when PyTorch sees a GPU.")
    mode = st.radio("Mode", list(speedlab.MODES), horizontal=True, key="sl_mode",
                    help="inference: forward under torch.inference_mode; train: forward + "
                         "backward of output.sum().")
    if "sl_rate" not in st.session_state:  # no value= below: slides may set it (lessons.py)
        st.session_state["sl_rate"] = 1 / 4
    rate = st.select_slider("Update rate p (Skip GRU: fraction of steps that update; Skim-RNN: "
                            "fraction of tokens read by the big cell, skim rate 1 − p)", RATES,
                            format_func=_fmt_rate, key="sl_rate",
                            help="Skip GRU: the gate's weights are zeroed and its bias set so "
                                 "that the state updates every 1/p steps. Skim-RNN: the decision "
                                 "layer reads only the first input feature, thresholded at its "
                                 "quantile, so exactly p·T tokens are read (random positions). "
                                 "A dense run (p = 1) of the same model is added for the "
                                 "speed-up charts.")
    st.caption(f"Limits: each point gets at most {MAX_POINT_S:g} s of timed runs and the whole "
               f"benchmark stops starting new points after {MAX_TOTAL_S:g} s (points that do not "
               f"fit, predicted from the previous point of the same cell, are listed as skipped; "
               f"one forward/backward call cannot be interrupted, so the first, smallest point of "
               f"a cell may overrun); at most {MAX_POINTS} points; timing uses "
               f"{THREADS} CPU thread. Input: 1 feature per step (pixel sequences).")


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
    st.error(f"Cannot run this benchmark: {problem}")

if st.button("Run benchmark", type="primary", disabled=grid is None, key="sl_run"):
    lock = _bench_lock()
    if not lock.acquire(blocking=False):
        st.warning("Another session is running a benchmark right now (two at once would time "
                   "each other). Try again in a minute.")
    else:
        bar = st.progress(0.0, text="starting…")
        try:
            def progress(frac: float, msg: str) -> None:
                bar.progress(min(max(frac, 0.0), 1.0), text=msg)

            t0 = time.perf_counter()
            with speedlab.threads(THREADS):
                rows = speedlab.run_grid(
                    grid["cells"], grid["seq_lens"], grid["batches"], grid["hidden"],
                    device=grid["device"], mode=grid["mode"], update_rate=grid["update_rate"],
                    progress=progress, max_seconds_per_point=MAX_POINT_S,
                    max_seconds_total=MAX_TOTAL_S)
                for c in [c for c in grid["cells"] if c in speedlab.RATE_CELLS]:
                    if grid["update_rate"] >= 1.0:
                        continue
                    rows += speedlab.run_grid(
                        [c], grid["seq_lens"], grid["batches"], grid["hidden"],
                        device=grid["device"], mode=grid["mode"], update_rate=1.0,
                        progress=lambda f, m, c=c: progress(
                            f, f"{speedlab.CELLS[c]} dense reference: " + m),
                        max_seconds_per_point=MAX_POINT_S,
                        max_seconds_total=max(1e-9, MAX_TOTAL_S - (time.perf_counter() - t0)))
            st.session_state["sl_result"] = {"rows": rows, "grid": grid,
                                            "machine": speedlab.describe_machine(grid["device"])}
        except (RuntimeError, ValueError, MemoryError) as e:  # e.g. out of memory
            st.error(f"The benchmark stopped: {e}")
        finally:
            lock.release()
            bar.empty()

# --- results ---------------------------------------------------------------------------------
res = st.session_state.get("sl_result")
if res is None:
    st.info("Pick the cells and sizes, then press **Run benchmark**. Small grids take seconds.")
else:
    rows, g = res["rows"], res["grid"]
    measured = [r for r in rows if not str(r["status"]).startswith("skipped")]
    skipped = len(rows) - len(measured)
    st.subheader("Results")
    st.caption(f"{res['machine']}; mode {g['mode']}, hidden {g['hidden']}, "
               f"{len(measured)} points measured" + (f", {skipped} skipped by the time cap"
                                                      if skipped else "") +
               ". Timings on a shared machine vary from run to run.")
    a, b = st.columns(2)
    with a:
        st.plotly_chart(big(figures.latency_figure(rows, "seq_len",
                                                   title="Latency vs sequence length")),
                        key="sl_fig_seq")
    with b:
        st.plotly_chart(big(figures.latency_figure(rows, "batch",
                                                   title="Latency vs batch size")),
                        key="sl_fig_batch")
    st.plotly_chart(big(figures.gflops_figure(rows,
                                              title="Achieved GFLOP/s (analytic FLOPs / time)")),
                    key="sl_fig_gflops")
    pts = figures.skip_speedup_points(rows)
    if pts:
        st.plotly_chart(big(figures.speedup_figure(
            pts, title="Skip GRU: measured speed-up vs the 1/p bound")), key="sl_fig_speedup")
    skim = speedlab.own_dense_speedups(rows, "skim-rnn")
    if skim:
        st.markdown("**Skim-RNN: speed-up over its own run reading every token (p = 1) — "
                    "FLOPs (theory, Flop-R) vs time (measured)**")
        st.dataframe(pd.DataFrame(skim), hide_index=True, key="sl_skim")
    rel = speedlab.relative_speedups(rows, "lstm")
    if rel:
        st.markdown("**Speed-up over nn.LSTM at the same point: FLOPs (theory) vs time "
                    "(measured)**")
        st.dataframe(pd.DataFrame(rel), hide_index=True, key="sl_rel")
    cols = ["label", "backend", "device", "mode", "seq_len", "batch", "hidden", "update_rate",
            "ms", "p10_ms", "p90_ms", "repeats", "flops", "gflops_per_s", "status"]
    st.dataframe(pd.DataFrame(rows)[cols], hide_index=True, key="sl_table")
    st.download_button("Download results (CSV)", figures.to_csv(rows),
                       file_name="speed_lab.csv", mime="text/csv", key="sl_csv")
    st.caption("The issue's fixed targets (SRU vs nn.LSTM at 784 steps, Skip GRU at p = 1, ½, ¼, "
               "1/10, Skim-RNN d = 100, d' = 10 at skim rates ½, ¾, 0.9) are measured side by "
               "side by `python -m skimviz bench kernels`.")
