"""The worker pool of live trainings (skimviz.training.pool): runs train in processes, a bounded
number at once, the others queued with a position and a wait; Stop, cancel, a closed tab and a
killed worker all end a run with a clear status and free its slot."""
from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from skimviz.training import live, pool
from ui import signals

pytestmark = pytest.mark.slow


def _run(steps: int, seed: int = 0, alive=None) -> live.LiveRun:
    r = signals.live_run("frequency", seed, steps=steps)
    r._alive = alive
    return r


def _until(cond, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    assert cond(), "timed out"


@pytest.fixture
def one_slot():
    p = pool.Pool(workers=1, queue_limit=2)
    yield p
    for job in list(p._active):
        job.run.stop()
    for job in list(p._active):
        job.run.join(30)


def test_a_process_run_trains_the_same_model_as_a_thread_run(monkeypatch):
    monkeypatch.setenv("SKIMVIZ_LIVE_PROCESSES", "0")
    in_thread = _run(20).start()
    assert in_thread.join(60) and in_thread.status == live.DONE
    monkeypatch.setenv("SKIMVIZ_LIVE_PROCESSES", "1")
    in_process = _run(20).start()
    assert in_process._thread is None                 # no thread of this process trains it
    assert in_process.join(90) and in_process.status == live.DONE, in_process.error
    assert in_process.step == 20 and len(in_process.history) == 20
    assert [r["loss"] for r in in_process.history] == [r["loss"] for r in in_thread.history]
    a, b = in_thread.model.state_dict(), in_process.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert in_process.metrics == in_thread.metrics


def test_runs_beyond_the_workers_wait_in_order_and_can_be_cancelled(one_slot):
    first, second, third = _run(400, 0), _run(10, 1), _run(10, 2)
    for r in (first, second, third):
        one_slot.submit(r)
    _until(lambda: first.status == live.TRAINING and first.step > 0)
    assert (second.status, second.queue_position) == (live.QUEUED, 1)
    assert (third.status, third.queue_position) == (live.QUEUED, 2)
    assert 0 < second.wait_s < third.wait_s          # the third waits for the second too
    snap = third.snapshot()
    assert snap["queue_position"] == 2 and snap["wait_s"] == third.wait_s
    second.stop()                                     # cancel while waiting
    assert second.join(10) and second.status == live.STOPPED and second.model is None
    assert "cancelled" in second.reason
    _until(lambda: third.queue_position == 1)
    first.stop()
    assert first.join(30) and first.status == live.STOPPED and first.model is not None
    assert third.join(60) and third.status == live.DONE and third.model is not None
    assert one_slot.counts() == {"training": 0, "queued": 0, "workers": 1}


def test_a_full_queue_says_so(one_slot):
    runs = [_run(400, i) for i in range(3)]
    for r in runs:                    # one training, two waiting: the queue's limit
        one_slot.submit(r)
    with pytest.raises(live.ServerBusy, match="queue is full"):
        one_slot.submit(_run(10, 9))
    for r in runs:
        r.stop()
    assert all(r.join(30) for r in runs)


def test_a_killed_worker_fails_its_run_and_frees_its_slot(one_slot):
    doomed, after = _run(2000, 0), _run(10, 1)
    one_slot.submit(doomed)
    one_slot.submit(after)
    _until(lambda: doomed.step > 0)
    os.kill(one_slot._active[0].proc.pid, signal.SIGKILL)
    assert doomed.join(30) and doomed.status == live.FAILED
    assert "killed" in doomed.error and "free again" in doomed.error and doomed.model is None
    assert after.join(60) and after.status == live.DONE           # the slot went to the next run


def test_a_run_whose_tab_closed_stops_in_the_worker_and_in_the_queue(one_slot, monkeypatch):
    monkeypatch.setattr(live, "ORPHAN_S", 0.0)
    monkeypatch.setattr(live, "ALIVE_EVERY_S", 0.1)
    gone = lambda: False  # noqa: E731
    training, waiting = _run(2000, 0, alive=gone), _run(10, 1, alive=gone)
    one_slot.submit(training)
    one_slot.submit(waiting)
    assert training.join(60) and training.status == live.STOPPED
    assert training.reason == live.ORPHANED
    assert waiting.join(30) and waiting.status == live.STOPPED and waiting.step == 0


def test_a_recipe_that_fails_in_the_worker_is_a_message(one_slot):
    run = _run(10)
    run.recipe = live.Recipe.of(signals.live_run, "no-such-task", 0)
    one_slot.submit(run)
    assert run.join(60) and run.status == live.FAILED and run.model is None
    assert "could not be set up" in run.error and "no-such-task" in run.error


def test_a_recipe_crosses_to_the_worker_as_json_not_pickle():
    r = live.Recipe.of(signals.live_run, "adding", 0, steps=3)
    data = r.to_json()
    assert data.startswith(b"{") and live.Recipe.from_json(data) == r
    assert isinstance(live.Recipe.from_json(data).build(), live.LiveRun)
    with pytest.raises(TypeError, match="did not return a LiveRun"):
        live.Recipe("ui.signals:new_model", ("adding",)).build()
