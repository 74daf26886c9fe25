"""One honest latency panel, shared by every page: dense, masked and skipped for real.

The three are timed in the same run, interleaved (:mod:`skimviz.bench.latency`), at batch 1 on this
server's CPU, with the FLOPs of each beside its time, and one sentence generated from the numbers
says which is faster and why. Results are cached per session and input, so a rerun of the page
does not time again, and a shipped model's timings are shared by the sessions of the server.
One timing runs at a time on the whole server (:data:`_TIMING`): with a class on one server,
timings at once would slow every page and disturb each other's numbers, so
a page that finds the server timing for someone else shows its figures without a time, and its
Time tab offers to wait for a turn.
"""
from __future__ import annotations

import threading

import streamlit as st

from skimviz.bench import latency
from skimviz.cache import BoundedCache, content_key
from skimviz.cost import threads as torch_threads
from skimviz.viz import common

from .glossary import definition
from .session_cache import cached
from .style import THREADS

_CACHE = "_latency_panel"
_TIMING = threading.Lock()     # one timing at a time in this server process
#: the first-screen metric shows these two: the masked run (a Python loop over every step) is
#: the slow one to time, and only the Time tab shows it
QUICK = ("dense", "skipped")
# Timings of shipped models, shared by every session of this server process: one class looking
# at the same digit or review at the same θ times it once. A model trained in a session is
# never shared (``shared=False``). Bounded, least recently used out first.
_SHARED = BoundedCache(256)


class Busy(RuntimeError):
    """Another session is timing now (and this one chose not to wait)."""


def _key(name: str, model_key, inputs, extra) -> str:
    return content_key(f"{name}|{model_key}|{extra}", *inputs)


def _known(base: str, keys: tuple, shared: bool):
    """A timing already made of ``keys`` (or of all three) for this input, in this session or,
    for a shipped model, on this server; else None."""
    store = st.session_state.setdefault(_CACHE, {})
    for k in dict.fromkeys((f"{base}|{','.join(latency.KEYS)}", f"{base}|{','.join(keys)}")):
        if k in store:
            return store[k]
        hit = _SHARED.get(k) if shared else None
        if hit is not None:
            store[k] = hit
            return hit
    return None


def measure(name: str, model, dense, inputs: tuple, model_key=None, extra=None,
            wait: bool = True, keys: tuple = latency.KEYS, shared: bool = False):
    """(result, impl) for ``inputs``: the runs in ``keys`` (dense, masked, skipped) timed once
    per input — per session, and per server when ``shared`` (a shipped model, the same for every
    visitor). ``extra``: anything else the result depends on, e.g. θ. Raises
    :class:`skimviz.bench.latency.LatencyError`, and :class:`Busy` when another session is
    timing and ``wait`` is False."""
    base = _key(name, model_key, inputs, extra)
    found = _known(base, keys, shared)
    if found is not None:
        return found

    def timed():
        with st.spinner("Timing " + " and ".join(latency.LABELS[k].lower() for k in keys)
                        + " runs…"):
            if not _TIMING.acquire(blocking=wait):
                raise Busy("another visitor's timing is running on this server")
            try:
                with torch_threads(THREADS):
                    fns, flops, impl = latency.runners(model, dense, inputs)
                    return latency.measure({k: fns[k] for k in keys}, flops, rounds=9,
                                           max_seconds=1.5), impl
            finally:
                _TIMING.release()

    key = f"{base}|{','.join(keys)}"
    value = cached(_CACHE, key, timed, limit=32)
    if shared:
        _SHARED.put(key, value)
    return value


def panel(name: str, model, dense, inputs: tuple, unit: str, model_key=None, extra=None,
          key: str = "latency", shared: bool = False) -> None:
    """Three metrics (time, with FLOPs below) and the sentence, for one input at batch 1."""
    wait = bool(st.session_state.get(f"{key}_wait"))
    try:
        result, impl = measure(name, model, dense, inputs, model_key, extra, wait=wait,
                               shared=shared)
    except latency.LatencyError as e:
        st.info(f"Latency is not shown for this model: {e}.")
        return
    except Busy:
        st.info("Not timed yet: another visitor's timing is running on this server. Timings "
                "run one at a time, so that they neither slow the pages down nor disturb each "
                "other's numbers.")
        st.button("Wait for a turn and time it", key=f"{key}_wait")
        return
    cols = st.columns(3)
    for col, k in zip(cols, latency.KEYS):
        r = result[k]
        col.metric(latency.LABELS[k], f"{r['ms']:.2f} ms",
                   help=definition({"dense": "dense", "masked": "masked",
                                    "skipped": "skipped for real"}[k]))
        col.caption(f"{common.format_flops(r['flops'])} · {impl[k]}")
    st.markdown(latency.sentence(result, unit, impl))
    st.caption(f"Batch 1 on this server's CPU ({THREADS} "
               f"thread{'s' if THREADS != 1 else ''}), the three timed in turn in one run (median of up to 9 rounds).")


def quick(name: str, model, dense, inputs: tuple, model_key=None, extra=None,
          shared: bool = False, full: bool = False):
    """(result, impl) of the dense and skipped runs, or None when they cannot be timed now (or
    at all): for a page's first-screen metric, which never waits for another visitor's
    timing. ``full``: time all three now (the Time tab is open and will show them: its numbers
    and the first screen's then come from one measurement)."""
    try:
        return measure(name, model, dense, inputs, model_key, extra, wait=False,
                       keys=latency.KEYS if full else QUICK, shared=shared)
    except (latency.LatencyError, Busy):
        return None


def time_metric(col, timing) -> None:
    """One metric: the skipped-for-real time of this input, with the dense time below."""
    if timing is None:
        col.metric("Time (batch 1)", "—")
        return
    result, _ = timing
    s, d = result["skipped"]["ms"], result["dense"]["ms"]
    col.metric("Time (batch 1)", f"{s:.2f} ms", f"dense: {d:.2f} ms", delta_color="off",
               delta_arrow="off", help=definition("latency") + " Details in the Time tab.")
