"""Live training on a page: Start/Stop, a progress bar and live curves, the finished run kept.

The training runs outside the page's script (:class:`skimviz.training.live.LiveRun`, in a worker
process of the server's pool, :mod:`skimviz.training.pool`), so clicking anything else on the
page (another control, another task, presentation mode) does not stop it; when every slot is
busy the run waits in the pool's queue and the panel shows its place and the expected wait. Fragments (``st.fragment(run_every=…)``) redraw the progress bar every
:data:`POLL_S` while the run trains; when it ends, the whole page reruns once so the page can
offer the trained model (:func:`just_finished`, :func:`model`).

Rules, the same on every page: one run trains at a time per browser session (any page); the
last run of each slot stays, with its curves and result, until the user starts another one in
that slot — and the Start button then asks first, since a new run replaces the model; a run
stops when its browser tab has been closed for a minute (:data:`skimviz.training.live.ORPHAN_S`).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import streamlit as st

from skimviz.training import live
from skimviz.training.live import LiveRun
from skimviz.training.loop import summarize_history
from skimviz.viz import curves as curves_figs

from .style import PLOT_CONFIG

POLL_S = 1.0        # the progress bar's refresh while a run trains
CURVES_S = 5.0      # the curves' (drawing them every second halved the training's pace)
LIVE_POINTS = 100   # points per curve while a run trains
_ACTIVE = "_live_active"   # (slot key, label) of the run training in this session


def current(key: str) -> Optional[LiveRun]:
    """The last run started in slot ``key`` (training or finished), or None."""
    return st.session_state.get(key)


def model(key: str):
    """The model of the slot's finished run (None while it trains or when there is none).

    Noted as what the page offers in this rerun: a run that finishes later in the same rerun
    (after the page's picker, before :func:`panel`) keeps the panel polling, so that the page
    reruns once more and offers it."""
    run = current(key)
    found = None if run is None else run.model
    st.session_state[f"_{key}_offered"] = None if found is None else run
    return found


def just_finished(key: str, shown: bool) -> bool:
    """True while the slot's run has finished with a model that the page's picker has not shown
    yet: the page then sets its picker to the new model (before drawing it).

    ``shown``: whether the picker's value, as this rerun received it from the browser, already is
    the session's model. That, or the user's own pick (:func:`picked`), ends the announcement: a
    click elsewhere that interrupts the rerun which set the picker makes Streamlit rerun with the
    browser's old value, so the page sets it again.
    """
    run = current(key)
    if run is None or run.model is None or st.session_state.get(f"_{key}_announced") is run:
        return False
    if shown:
        st.session_state[f"_{key}_announced"] = run
        return False
    return True


def picked(key: str) -> None:
    """The picker's ``on_change``: the user chose a model, which ends the slot's announcement."""
    run = current(key)
    if run is not None and run.model is not None:
        st.session_state[f"_{key}_announced"] = run


def _running_elsewhere(key: str) -> Optional[str]:
    """The label of a run training in this session in another slot, if any."""
    other = st.session_state.get(_ACTIVE)
    if other and other[0] != key:
        run = st.session_state.get(other[0])
        if run is not None and run.running:
            return other[1]
    return None


def _alive() -> Optional[Callable[[], bool]]:
    """Whether this browser session is still connected (None outside a Streamlit server)."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    rt, sid = runtime.Runtime.instance(), ctx.session_id
    return lambda: rt.is_active_session(sid)


def _start(key: str, label: str, build: Callable[..., LiveRun], confirmed: bool) -> None:
    st.session_state.pop(f"_{key}_message", None)
    old = current(key)
    if old is not None and old.running:
        return
    if old is not None and old.model is not None and not confirmed:
        st.session_state[f"_{key}_confirm"] = True
        return
    st.session_state.pop(f"_{key}_confirm", None)
    try:
        run = build(_alive()).start()
    except live.ServerBusy as e:
        st.session_state[f"_{key}_message"] = (
            f"No room for another training on this server: {e}. Try again in a few minutes.")
        return
    st.session_state[key] = run
    st.session_state[_ACTIVE] = (key, label)


def _stop(key: str) -> None:
    run = current(key)
    if run is not None:
        run.stop()
        run.join(timeout=2.0)   # usually ends within a step: the rerun shows it stopped


def _progress_text(s: dict) -> str:
    stats = s["stats"]
    parts = [f"step {s['step']} of {s['total']}", f"{s['elapsed_s']:.0f} s"]
    if s["eta_s"] is not None:
        parts.append(f"about {s['eta_s']:.0f} s left")
    if "update_rate" in stats:
        parts.append(f"this batch used {stats['update_rate']:.0%} of the steps")
    if "mse" in stats:
        parts.append(f"batch MSE {stats['mse']:.4f}")
    elif "accuracy" in stats:
        parts.append(f"batch accuracy {stats['accuracy']:.0%}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    """A wait in words: "under 10 s", "40 s", "3 min"."""
    if seconds < 10:
        return "under 10 s"
    if seconds < 90:
        return f"{round(seconds / 5) * 5:.0f} s"
    return f"{round(seconds / 60):.0f} min"


def _show(key: str, was_running: bool, describe: Callable[[dict], str]) -> None:
    """The run's progress bar (while it trains) or its result; kept until the next run."""
    run = current(key)
    if run is None:
        return
    if run.finished and was_running:   # the fragment saw it end: rerun the page once
        st.rerun()
    s = run.snapshot()
    if s["status"] == live.QUEUED:
        wait = s["wait_s"]
        st.info(f"Waiting for a free training slot: number {s['queue_position']} in the queue"
                + ("" if wait is None else f", about {_duration(wait)} to wait") + ". It starts "
                "by itself; you can keep using the page, or cancel it with Stop.")
    elif not run.finished:
        word = {"stopping": "Stopping", "measuring": "Measuring the trained model"}.get(
            s["status"], "Training")
        st.progress(s["fraction"], text=f"{word}… {_progress_text(s)}")
    elif s["status"] == live.DONE:
        st.success(describe(s))
    elif s["status"] == live.STOPPED:
        st.warning(f"Stopped at step {s['step']} of {s['total']} ({s['reason']}); the model so "
                   "far is kept." + (f" {describe(s)}" if s["metrics"] else ""))
    elif s["status"] == live.DIVERGED:
        st.error(f"The training diverged: {s['error']}. The model keeps its last good weights.")
    else:
        st.error(f"The training failed: {s['error']}.")


def _curves(key: str, curves) -> None:
    """Loss, batch metric and update rate so far; while the run trains, averaged over at most
    :data:`LIVE_POINTS` windows (drawing every step each time would slow the training)."""
    run = current(key)
    history = [] if run is None else run.history
    if not history:
        return
    if not run.finished and len(history) > LIVE_POINTS:
        history = summarize_history(history, -(-len(history) // LIVE_POINTS))
    st.plotly_chart(curves_figs.training_curves_figure(history, curves=curves),
                    key=f"{key}_curves", config=PLOT_CONFIG, alt="training curves")


def panel(key: str, label: str, build: Callable[..., LiveRun], *, curves=curves_figs.CURVES,
          describe: Callable[[dict], str], problems: Sequence[str] = ()) -> None:
    """Start/Stop for the slot ``key`` and its run's progress or result.

    ``build(alive)`` returns the run to start (not started; ``alive`` goes to
    :class:`~skimviz.training.live.LiveRun`); ``label`` names it in messages; ``describe(snapshot)`` is
    the sentence about a finished run's numbers; ``problems`` (the page's invalid inputs) keep
    Start from running and are shown."""
    run = current(key)
    unoffered = (run is not None and run.model is not None   # finished after the page's picker
                 and st.session_state.get(f"_{key}_offered", run) is not run)
    running = run is not None and (run.running or unoffered)
    elsewhere = _running_elsewhere(key)
    b1, b2, note = st.columns([1, 1, 3], vertical_alignment="center")
    b1.button("Start training", key=f"{key}_start", type="primary",
              disabled=running or bool(elsewhere) or bool(problems),
              on_click=_start, args=(key, label, build, False),
              help="Starts a new run. If you already trained a model here, you are asked "
                   "first: a new run replaces it.")
    b2.button("Stop", key=f"{key}_stop", disabled=not running, on_click=_stop, args=(key,),
              help="Stops after the current step; the model trained so far is kept. A run "
                   "still waiting for a free slot is cancelled.")
    if elsewhere:
        note.caption(f"One training at a time: {elsewhere} is still training in this session.")
    if problems:
        st.error("Cannot start: " + "; ".join(problems) + ".")
    if st.session_state.get(f"_{key}_message"):
        st.warning(st.session_state[f"_{key}_message"])
    if st.session_state.get(f"_{key}_confirm") and run is not None and not running:
        with st.container(border=True):
            st.markdown("A new run **replaces the model you trained** (its curves and result "
                        "below go too). Start anyway?")
            c1, c2, _ = st.columns([1, 1, 3])
            c1.button("Replace it", key=f"{key}_replace", type="primary", on_click=_start,
                      args=(key, label, build, True))
            c2.button("Keep it", key=f"{key}_keep",
                      on_click=lambda: st.session_state.pop(f"_{key}_confirm", None))
    st.fragment(run_every=POLL_S if running else None)(_show)(key, running, describe)
    st.fragment(run_every=CURVES_S if running else None)(_curves)(key, curves)
