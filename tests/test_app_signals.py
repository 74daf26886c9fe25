"""AppTest of the "Skip RNN — signals and clips" page: it opens on the mechanism (the shipped
frequency model's playback, reads and FLOP reduction, the latency panel, sentences built from the
numbers), every task renders without shipped checkpoints, bad checkpoints and dry runs give
messages, live training runs outside the script (other clicks do not stop it; a new run asks
before replacing the last; beyond the server's slots it waits with its place), shipped checkpoints are offered per λ and sampling period, and
presentation mode steps through the slides."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
PAGE = "views/skip_rnn_signals.py"
TIMEOUT = 120


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _page(monkeypatch, pretrained: Path | None = None) -> AppTest:
    if pretrained is not None:
        monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(pretrained))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _no_exception(at)
    at.switch_page(PAGE).run()
    _no_exception(at)
    return at


def _charts(at: AppTest) -> dict:
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec)
            for c in at.get("plotly_chart")}


def _array(v) -> list:
    """A Plotly array from a figure's JSON (plain, or base64 "bdata" with its dtype)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def _metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def _task(at: AppTest, task: str) -> None:
    at.selectbox(key="signals_task").set_value(task).run()
    _no_exception(at)


def test_opens_on_the_shipped_frequency_model_and_its_numbers(monkeypatch):
    at = _page(monkeypatch)
    assert at.title[0].value == "Skip RNN — signals and clips"
    assert at.selectbox(key="signals_task").value == "frequency"
    assert at.selectbox(key="frequency_model").value == "skip-gru-frequency"
    m = _metrics(at)
    read, total = map(int, m["Samples read"].split(" / "))
    assert total == 100 and 0 < read < total          # both states on screen: read and skipped
    reduction = float(m["FLOP reduction"].rstrip("×"))
    assert reduction > 1.5
    assert m["Validation accuracy"] == "99.2%"
    # the step-by-step playback: animation frames, Play button, the used samples in red
    fig = _charts(at)["frequency_example"]
    assert fig["frames"] and fig["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    assert len(_array(fig["data"][1]["x"])) == read
    # the sentence is made of the same numbers
    text = _text(at)
    assert f"read {read} of the {total} samples" in text and f"{reduction:.1f}× fewer FLOPs" in text
    # the shared latency panel, first tab, with its sentence
    assert [t.label for t in at.tabs] == ["Time it", "Train your own", "Updates against λ"]
    assert {"Dense", "Masked", "Skipped for real"} <= set(m)
    assert "Skipping for real" in text
    # no command lines or training logs on the page
    assert "python -m" not in text + " ".join(i.value for i in at.info)


def test_every_task_renders_without_checkpoints(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    expected = {"frequency": ("Samples read", "100 / 100"), "adding": ("Samples read", "50 / 50"),
                "frames": ("Frames read", "48 / 48")}
    for task, (label, value) in expected.items():
        _task(at, task)
        assert at.selectbox(key=f"{task}_model").value == "untrained"
        assert _metrics(at)[label] == value      # the untrained gate (b_p = 1) reads everything
        assert any("No shipped model" in i.value for i in at.info)
        assert f"{task}_example" in _charts(at)
    _task(at, "adding")
    assert "marked values" in [t.get("name") for t in _charts(at)["adding_example"]["data"]]
    _task(at, "frames")
    assert "never saw the skipped frames" in _text(at)            # no latency panel for clips
    assert "cost no encoder work" in _text(at)


def test_example_seed_changes_the_example(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    _task(at, "adding")
    before = _charts(at)["adding_example"]["data"][0]
    at.number_input(key="adding_seed").set_value(12).run()
    _no_exception(at)
    assert _charts(at)["adding_example"]["data"][0] != before


def test_a_broken_checkpoint_gives_a_message(monkeypatch, tmp_path):
    bad = tmp_path / "skip-gru-adding"
    bad.mkdir()
    (bad / "card.json").write_text("{not json")
    (bad / "model.safetensors").write_bytes(b"pickle? no")
    at = _page(monkeypatch, tmp_path)
    _task(at, "adding")
    assert any("could not be loaded" in e.value and "skip-gru-adding" in e.value
               for e in at.error)
    assert "adding_example" in _charts(at)  # the page still works, on an untrained model


def _train(at: AppTest, task: str, steps: int, seed: int | None = None):
    at.number_input(key=f"{task}_steps").set_value(steps)
    if seed is not None:
        at.number_input(key=f"{task}_train_seed").set_value(seed)
    at.button(key=f"live_{task}_start").click().run()
    _no_exception(at)
    run = at.session_state[f"live_{task}"]
    assert run.join(120)
    at.run()
    _no_exception(at)
    return run


@pytest.mark.parametrize("task,key", [("adding", "mse"), ("frames", "accuracy")])
def test_tiny_live_training_produces_curves(monkeypatch, tmp_path, task, key):
    at = _page(monkeypatch, tmp_path)
    _task(at, task)
    run = _train(at, task, 4)
    s = run.snapshot()
    assert s["status"] == "done" and s["step"] == 4
    assert len(run.history) == 4 and all(key in r for r in run.history)
    assert s["metrics"] and f"valid_{key}" in s["metrics"]
    assert f"live_{task}_curves" in _charts(at)
    assert any("Trained 4 steps" in x.value for x in at.success)
    # the session's model is now shown, and the λ chart has its point
    assert at.selectbox(key=f"{task}_model").value == "session"
    assert f"{task}_lambda" in _charts(at)


def test_clicks_elsewhere_do_not_stop_a_live_run(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    _task(at, "adding")
    at.number_input(key="adding_steps").set_value(60)
    at.button(key="live_adding_start").click().run()
    run = at.session_state["live_adding"]
    at.number_input(key="adding_seed").set_value(3).run()        # the old page stopped here
    _no_exception(at)
    _task(at, "frequency")                                       # so did this
    assert at.session_state["live_adding"] is run
    assert run.join(120) and run.status == "done" and run.step == 60


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrained")
    r = subprocess.run([sys.executable, "-m", "skimviz", "train", "adding", "--dry-run",
                        "--hidden", "8", "--out", str(out), "--work", str(out / "_work")],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_shipped_dry_run_checkpoint_is_used_with_a_warning(monkeypatch, shipped):
    at = _page(monkeypatch, shipped)
    _task(at, "adding")
    assert at.selectbox(key="adding_model").value == "skip-gru-adding"
    assert any("pipeline dry run" in w.value for w in at.warning)
    assert "Validation MSE" in _metrics(at)


@pytest.fixture(scope="module")
def frequency_shipped(tmp_path_factory) -> Path:
    """Three frequency checkpoints (CLI dry runs): two λ at 1 ms, one at 0.5 ms."""
    out = tmp_path_factory.mktemp("pretrained_frequency")
    for name, lam, ms in (("skip-gru-frequency", "1e-4", "1"), ("skip-gru-frequency-lam0", "0", "1"),
                          ("skip-gru-frequency-0.5ms", "1e-4", "0.5")):
        r = subprocess.run([sys.executable, "-m", "skimviz", "train", "frequency", "--dry-run",
                            "--hidden", "8", "--name", name, "--lam", lam, "--sampling-ms", ms,
                            "--out", str(out), "--work", str(out / "_work")],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    return out


def test_shipped_checkpoints_per_lambda_and_sampling_period(monkeypatch, frequency_shipped):
    at = _page(monkeypatch, frequency_shipped)
    pick = at.selectbox(key="frequency_model")
    assert pick.options == ["Shipped GRU, λ = 0 (no budget), 1 ms", "Shipped GRU, λ = 1e-04, 1 ms",
                            "Shipped GRU, λ = 1e-04, 0.5 ms", "Untrained (reads every step)"]
    assert pick.value == "skip-gru-frequency"                   # the page's default
    assert _metrics(at)["Samples read"].endswith("/ 100")
    pick.set_value("skip-gru-frequency-0.5ms").run()
    _no_exception(at)
    assert _metrics(at)["Samples read"].endswith("/ 200")       # its own sampling period
    assert len(_array(_charts(at)["frequency_example"]["data"][0]["y"])) == 200
    pick.set_value("skip-gru-frequency-lam0").run()
    _no_exception(at)
    assert "λ = 0 (no budget)" in _text(at)


def test_training_seed_reproduces_the_run_and_a_new_run_asks_first(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    _task(at, "adding")
    assert at.number_input(key="adding_train_seed").value == 0   # the measured default run
    first = _train(at, "adding", 3, seed=11)
    assert first.config["seed"] == 11 and first.status == "done"
    assert any("(seed 11)" in s.value for s in at.success)
    # starting again asks before replacing the trained model
    at.button(key="live_adding_start").click().run()
    assert at.session_state["live_adding"] is first
    assert any("replaces the model you trained" in m.value for m in at.markdown)
    at.button(key="live_adding_replace").click().run()
    again = at.session_state["live_adding"]
    assert again is not first and again.join(120) and again.config["seed"] == 11
    assert [r["loss"] for r in again.history] == [r["loss"] for r in first.history]
    at.run()
    # another seed, another run
    at.number_input(key="adding_train_seed").set_value(12)
    at.button(key="live_adding_start").click().run()
    at.button(key="live_adding_replace").click().run()
    other = at.session_state["live_adding"]
    assert other.join(120)
    assert [r["loss"] for r in other.history] != [r["loss"] for r in first.history]


def test_stated_training_time_comes_from_the_measured_constant(monkeypatch, tmp_path):
    from skimviz.tasks import frequency
    at = _page(monkeypatch, tmp_path)
    text = _text(at)
    assert f"about {frequency.LIVE_SECONDS:.0f} s" in text
    at.number_input(key="frequency_steps").set_value(2 * frequency.LIVE["steps"]).run()
    assert f"about {2 * frequency.LIVE_SECONDS:.0f} s" in _text(at)
    assert "closing or reloading this tab stops the training" in _text(at)


def test_presentation_mode_steps_through_slides(monkeypatch):
    at = _page(monkeypatch)
    height = _charts(at)["frequency_example"]["layout"].get("height") or 400
    assert not any("Slide" in c.value for c in at.caption)
    at.toggle(key="present_toggle_skip-rnn-signals").set_value(True).run()
    _no_exception(at)
    assert any("Slide 1 of 5" in c.value for c in at.caption)
    assert at.query_params.get("present") in ("1", ["1"])
    assert _charts(at)["frequency_example"]["layout"]["height"] > height  # figures enlarged
    assert at.selectbox(key="signals_task").value == "frequency"
    for n in (2, 3, 4, 5):
        at.button(key="present_next_skip-rnn-signals").click().run()
        _no_exception(at)
        assert any(f"Slide {n} of 5" in c.value for c in at.caption)
    # the last slide is about the clips, and shows them
    assert any(s.value == "Frames the CNN never saw" for s in at.subheader)
    assert at.selectbox(key="signals_task").value == "frames"
    assert "frames_example" in _charts(at)
    assert at.button(key="present_next_skip-rnn-signals").disabled
    at.button(key="present_prev_skip-rnn-signals").click().run()
    assert any("Slide 4 of 5" in c.value for c in at.caption)
    assert at.selectbox(key="signals_task").value == "frequency"
    at.toggle(key="present_toggle_skip-rnn-signals").set_value(False).run()
    _no_exception(at)
    assert not any("Slide" in c.value for c in at.caption)
    assert "present" not in at.query_params


def test_a_run_beyond_the_servers_slots_waits_with_its_place_and_can_be_cancelled(
        monkeypatch, tmp_path):
    from skimviz.training import live, pool
    from ui import signals
    busy = pool.Pool(workers=1, queue_limit=5)
    monkeypatch.setattr(pool, "_shared", busy)
    other = signals.live_run("adding", 0, steps=2000)     # another visitor's training
    busy.submit(other)
    try:
        at = _page(monkeypatch, tmp_path)
        _task(at, "adding")
        at.button(key="live_adding_start").click().run()
        _no_exception(at)
        run = at.session_state["live_adding"]
        assert run.status == live.QUEUED and run.queue_position == 1
        assert any("Waiting for a free training slot: number 1 in the queue" in i.value
                   for i in at.info)
        at.button(key="live_adding_stop").click().run()       # cancel it
        assert run.join(10) and run.status == live.STOPPED and run.step == 0
        assert any("cancelled it while it waited" in w.value for w in at.warning)
    finally:
        other.stop()
        other.join(30)
