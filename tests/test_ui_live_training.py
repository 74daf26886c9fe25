"""Live training off the script thread: :class:`skimviz.training.live.LiveRun` (start, stop, the
per-process cap, a closed tab, divergence, a failing evaluation) and the shared Streamlit
component :mod:`ui.live_training` (other clicks do not stop a run, the finished run stays until
the next, a new run asks before replacing it, one run per session)."""
from __future__ import annotations

import threading
import time

import pytest
import torch
from streamlit.testing.v1 import AppTest

from skimviz.models import SequenceClassifier
from skimviz.training import live
from skimviz.training.loop import Trainer, classification_loss


def _data(delay: float = 0.0, nan_at: int | None = None):
    g = torch.Generator().manual_seed(0)
    k = 0
    while True:
        time.sleep(delay)
        k += 1
        x = torch.randn(4, 6, 1, generator=g)
        if nan_at is not None and k >= nan_at:
            x = x * float("nan")
        yield 0, (x, torch.randint(0, 2, (4,), generator=g))


def _run(steps=5, delay=0.0, evaluate=None, alive=None, nan_at=None) -> live.LiveRun:
    torch.manual_seed(0)
    model = SequenceClassifier(1, 4, 2)
    return live.LiveRun(Trainer(model, classification_loss(1e-3)), _data(delay, nan_at), steps,
                        evaluate=evaluate or (lambda m: {"valid_accuracy": 0.5}), alive=alive)


def test_a_run_trains_in_a_thread_and_keeps_its_model():
    run = _run(steps=6)
    assert run.model is None and not run.running
    run.start()
    assert run.join(30) and run.finished
    s = run.snapshot()
    assert s["status"] == live.DONE and s["step"] == 6 and s["fraction"] == 1.0
    assert s["metrics"] == {"valid_accuracy": 0.5} and len(run.history) == 6
    assert run.model is run.trainer.model and not run.model.training
    with pytest.raises(RuntimeError):
        run.start()


def test_stop_keeps_the_model_so_far():
    run = _run(steps=10_000, delay=0.01).start()
    while run.step < 3:
        time.sleep(0.01)
    assert run.model is None            # not handed out while it trains
    run.stop()
    assert run.join(30)
    s = run.snapshot()
    assert s["status"] == live.STOPPED and 3 <= s["step"] < 10_000
    assert s["reason"] == "you stopped it" and s["metrics"] is not None and run.model is not None


def test_the_process_runs_at_most_max_runs(monkeypatch):
    monkeypatch.setattr(live, "_slots", threading.BoundedSemaphore(1))
    first = _run(steps=10_000, delay=0.01).start()
    try:
        with pytest.raises(live.ServerBusy):
            _run().start()
    finally:
        first.stop()
        first.join(30)
    assert _run(steps=2).start().join(30)  # the slot is free again


def test_a_run_whose_page_is_gone_stops(monkeypatch):
    monkeypatch.setattr(live, "ORPHAN_S", 0.05)
    monkeypatch.setattr(live, "ALIVE_EVERY_S", 0.0)
    run = _run(steps=10_000, delay=0.01, alive=lambda: False).start()
    assert run.join(30)
    assert run.status == live.STOPPED and "closed" in run.reason
    assert run.metrics is None and run.model is not None   # not validated: nobody would see it


def test_divergence_and_a_failing_evaluation_are_messages_not_exceptions():
    run = _run(steps=10, nan_at=3).start()
    assert run.join(30)
    assert run.status == live.DIVERGED and "became nan" in run.error and run.step == 2

    def broken(model):
        raise ValueError("no validation data")
    run = _run(steps=2, evaluate=broken).start()
    assert run.join(30)
    assert run.status == live.FAILED and "no validation data" in run.error
    assert run.model is None


# --- the Streamlit component ----------------------------------------------------------------------
def _script():
    import time

    import streamlit as st
    import torch

    from skimviz.models import SequenceClassifier
    from skimviz.training import live
    from skimviz.training.loop import Trainer, classification_loss
    from ui import live_training

    delay, steps = st.session_state.get("delay", 0.0), st.session_state.get("steps", 4)

    def build(alive):
        torch.manual_seed(0)

        def data():
            g = torch.Generator().manual_seed(0)
            while True:
                time.sleep(delay)
                yield 0, (torch.randn(4, 6, 1, generator=g), torch.randint(0, 2, (4,), generator=g))
        return live.LiveRun(Trainer(SequenceClassifier(1, 4, 2), classification_loss(1e-3)),
                            data(), steps, evaluate=lambda m: {"valid_accuracy": 0.5},
                            config={"seed": 0}, alive=alive)

    st.number_input("Something else on the page", key="other", value=0)

    def picker(slot):     # what a page draws above the panel: its model picker
        live_training.model(slot)
        announce = live_training.just_finished(slot, st.session_state.get(f"{slot}_pick") == "new")
        if announce:      # the page sets its picker to the new model
            st.session_state[f"{slot}_pick"] = "new"
        st.radio("Model", ["old", "new"], key=f"{slot}_pick", on_change=live_training.picked,
                 args=(slot,))
        return announce

    for slot in ("live_a", "live_b"):
        if st.session_state.pop(f"{slot}_race", False):   # the run finishes after the picker
            run = st.session_state.pop(slot)
            announce = picker(slot)
            st.session_state[slot] = run
        else:
            announce = picker(slot)
        live_training.panel(slot, f"run {slot[-1].upper()}", build,
                            describe=lambda s: f"Finished {s['step']} steps.")
        st.caption(f"{slot} announced: {announce}")


def _app(**state) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=60)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _wait(run, until) -> None:
    t0 = time.time()
    while not until(run) and time.time() - t0 < 30:
        time.sleep(0.02)


def test_other_clicks_do_not_stop_a_run_and_its_result_stays():
    at = _app(delay=0.05, steps=30)
    at.button(key="live_a_start").click().run()
    run = at.session_state["live_a"]
    assert run.running
    assert any("step" in p.proto.text and "of 30" in p.proto.text for p in at.get("progress"))
    assert at.button(key="live_a_stop").disabled is False
    # another control reruns the whole page: the run goes on
    at.number_input(key="other").set_value(5).run()
    assert not at.exception
    assert at.session_state["live_a"] is run and run.status in (live.TRAINING, live.MEASURING,
                                                                  live.DONE)
    assert run.join(30) and run.status == live.DONE and run.step == 30
    at.run()
    assert [s.value for s in at.success] == ["Finished 30 steps."]
    assert "live_a_curves" in [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]
    assert any(c.value == "live_a announced: True" for c in at.caption)
    assert at.radio(key="live_a_pick").value == "new"
    at.number_input(key="other").set_value(6).run()       # the browser showed it: announced once
    assert [s.value for s in at.success] == ["Finished 30 steps."]
    assert any(c.value == "live_a announced: False" for c in at.caption)
    at.radio(key="live_a_pick").set_value("old").run()    # from now on the user's pick stays
    assert at.radio(key="live_a_pick").value == "old"


def test_a_run_finishing_between_the_picker_and_the_panel_is_offered_by_one_more_rerun():
    at = _app()
    at.button(key="live_a_start").click().run()
    assert at.session_state["live_a"].join(30)
    at.session_state["live_a_race"] = True   # this rerun's picker does not see the model yet
    at.run()
    assert not at.exception
    assert at.radio(key="live_a_pick").value == "new"
    assert any(c.value == "live_a announced: True" for c in at.caption)


def test_a_new_run_asks_before_replacing_the_trained_model():
    at = _app()
    at.button(key="live_a_start").click().run()
    first = at.session_state["live_a"]
    assert first.join(30)
    at.run()
    at.button(key="live_a_start").click().run()
    assert at.session_state["live_a"] is first                 # not replaced yet
    assert any("replaces the model you trained" in m.value for m in at.markdown)
    at.button(key="live_a_keep").click().run()
    assert at.session_state["live_a"] is first
    assert not any("replaces the model" in m.value for m in at.markdown)
    assert [s.value for s in at.success] == ["Finished 4 steps."]
    at.button(key="live_a_start").click().run()
    at.button(key="live_a_replace").click().run()
    second = at.session_state["live_a"]
    assert second is not first and second.join(30)


def test_one_run_at_a_time_per_session():
    at = _app(delay=0.05, steps=200)
    at.button(key="live_a_start").click().run()
    run = at.session_state["live_a"]
    assert at.button(key="live_b_start").disabled
    assert any("One training at a time: run A is still training" in c.value for c in at.caption)
    at.button(key="live_a_stop").click().run()
    assert run.finished and run.status == live.STOPPED
    assert any("Stopped at step" in w.value and "you stopped it" in w.value for w in at.warning)
    assert not at.button(key="live_b_start").disabled


def test_a_full_server_gives_a_message(monkeypatch):
    monkeypatch.setattr(live, "_slots", threading.BoundedSemaphore(1))
    assert live._slots.acquire(blocking=False)
    try:
        at = _app()
        at.button(key="live_a_start").click().run()
        assert "live_a" not in at.session_state
        assert any("No room for another training" in w.value and "threads are busy" in w.value
                   for w in at.warning)
    finally:
        live._slots.release()


def _announce_script():
    import streamlit as st

    from ui import live_training

    class Run:   # what just_finished reads of a run: its model
        model = object()

    st.session_state.setdefault("live_a", Run())
    for shown in st.session_state["shown"]:
        st.caption(str(live_training.just_finished("live_a", shown)))
    if st.session_state.get("pick"):
        live_training.picked("live_a")
        st.caption(str(live_training.just_finished("live_a", False)))


def _announced(**state) -> list[str]:
    at = AppTest.from_function(_announce_script, default_timeout=30)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return [c.value for c in at.caption]


def test_a_finished_model_is_announced_until_the_picker_shows_it_or_the_user_picks():
    # a rerun that set the picker but was cut short by a click elsewhere comes back with the
    # picker's old value (shown False): the page is told again to switch
    assert _announced(shown=[False, False, True, False, True]) == \
        ["True", "True", "False", "False", "False"]
    assert _announced(shown=[False], pick=True) == ["True", "False"]
