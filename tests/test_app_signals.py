"""AppTest of the "Skip RNN — signals and clips" page: every tab renders without a shipped
checkpoint (and says how to train one), bad input gives a message, a tiny live training run in a
tab produces curve rows, and a shipped checkpoint (a CLI dry run) is picked up."""
from __future__ import annotations

import json
import sys
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
PAGE = "pages/skip_rnn_signals.py"
TIMEOUT = 120


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _page(monkeypatch, pretrained: Path) -> AppTest:
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(pretrained))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _no_exception(at)
    at.switch_page(PAGE).run()
    _no_exception(at)
    return at


def _charts(at: AppTest) -> dict:
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec)
            for c in at.get("plotly_chart")}


def test_every_tab_renders_without_checkpoints(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    assert at.title[0].value == "Skip RNN — signals and clips"
    assert [t.label for t in at.tabs] == ["Adding task", "Frequency discrimination", "Digit clips"]
    infos = " ".join(i.value for i in at.info)
    for name in ("skip-gru-adding", "skip-gru-frequency", "skip-gru-frames"):
        assert f"No shipped checkpoint `{name}` yet" in infos
    assert "python -m skimviz train adding" in infos
    charts = _charts(at)
    assert {"adding_example", "frequency_example", "frames_example", "frames_sawtooth"} <= set(charts)
    names = [t.get("name") for t in charts["adding_example"]["data"]]
    assert "used (state updated)" in names and "marked (marker = 1)" in names
    assert any(n and n.startswith("ũ_t") for n in names)
    # the untrained gate (b_p = 1) uses every sample
    assert "50 of 50 samples used" in str(charts["adding_example"]["layout"]["title"])
    # a caption under every example chart
    captions = " ".join(c.value for c in at.caption)
    assert "Fig. 2" in captions and "sawtooth" in captions and "Used frames are bright" in captions
    assert len(at.button) == 6


def test_seed_and_sampling_period(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    at.radio(key="frequency_sampling").set_value(0.5).run()
    _no_exception(at)
    assert "200 of 200 samples used" in str(_charts(at)["frequency_example"]["layout"]["title"])
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
    assert any("could not be loaded" in e.value and "skip-gru-adding" in e.value
               for e in at.error)
    assert "adding_example" in _charts(at)  # the tab still works, on an untrained model


@pytest.mark.parametrize("task,key", [("adding", "mse"), ("frames", "accuracy")])
def test_tiny_live_training_produces_curves(monkeypatch, tmp_path, task, key):
    at = _page(monkeypatch, tmp_path)
    at.number_input(key=f"{task}_steps").set_value(4)
    at.button(key=f"{task}_start").click().run()
    _no_exception(at)
    live = at.session_state[f"live_{task}"]
    assert live["status"] == "done" and live["step"] == 4
    assert len(live["history"]) == 4 and all(key in r for r in live["history"])
    assert live["metrics"] and f"valid_{key}" in live["metrics"]
    assert f"{task}_curves" in _charts(at)
    assert any("Trained 4 steps" in s.value for s in at.success)
    # the session's model is now selected, and the λ chart has its point
    assert at.radio(key=f"{task}_model").value == "session"
    assert f"{task}_lambda" in _charts(at)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrained")
    r = subprocess.run([sys.executable, "-m", "skimviz", "train", "adding", "--dry-run",
                        "--hidden", "8", "--out", str(out), "--work", str(out / "_work")],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_shipped_checkpoint_is_used(monkeypatch, shipped):
    at = _page(monkeypatch, shipped)
    assert at.radio(key="adding_model").value == "shipped"
    assert any("pipeline dry run" in w.value for w in at.warning)
    assert any(m.label == "Validation mse" for m in at.metric)


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


def test_several_shipped_checkpoints_get_a_picker_per_sampling_period(monkeypatch,
                                                                      frequency_shipped):
    at = _page(monkeypatch, frequency_shipped)
    pick = at.selectbox(key="frequency_checkpoint")
    assert pick.options == ["skip-gru-frequency-lam0 (GRU, λ = 0 (no budget))",
                            "skip-gru-frequency (GRU, λ = 1e-04)"]
    assert pick.value == "skip-gru-frequency"                   # the tab's default
    assert "Shipped: skip-gru-frequency" in at.radio(key="frequency_model").options
    pick.set_value("skip-gru-frequency-lam0").run()
    _no_exception(at)
    assert "Shipped: skip-gru-frequency-lam0" in at.radio(key="frequency_model").options
    assert "skip-gru-frequency-lam0" in str(_charts(at)["frequency_example"]["layout"]["title"])
    # at 0.5 ms only one checkpoint: no picker, that one is used
    at.radio(key="frequency_sampling").set_value(0.5).run()
    _no_exception(at)
    assert not [s for s in at.selectbox if s.key == "frequency_checkpoint"]
    assert "Shipped: skip-gru-frequency-0.5ms" in at.radio(key="frequency_model").options
    title = str(_charts(at)["frequency_example"]["layout"]["title"])
    assert "skip-gru-frequency-0.5ms" in title and "of 200 samples" in title
    # back at 1 ms the picker offers both again
    at.radio(key="frequency_sampling").set_value(1.0).run()
    _no_exception(at)
    assert len(at.selectbox(key="frequency_checkpoint").options) == 2


def test_training_seed_reproduces_the_run(monkeypatch, tmp_path):
    """The "Training seed" input (random once per session) goes into the run: the same seed and
    settings train the same model again."""
    at = _page(monkeypatch, tmp_path)
    drawn = at.number_input(key="adding_train_seed").value
    assert 0 <= drawn <= 2**31 - 1
    at.number_input(key="adding_steps").set_value(3)
    at.number_input(key="adding_train_seed").set_value(11)
    at.button(key="adding_start").click().run()
    _no_exception(at)
    first = at.session_state["live_adding"]
    assert first["config"]["seed"] == 11 and first["status"] == "done"
    assert any("(seed 11)" in s.value for s in at.success)
    at.button(key="adding_start").click().run()
    _no_exception(at)
    again = at.session_state["live_adding"]
    assert again is not first and again["config"]["seed"] == 11
    assert [r["loss"] for r in again["history"]] == [r["loss"] for r in first["history"]]
    # another seed, another run
    at.number_input(key="adding_train_seed").set_value(12)
    at.button(key="adding_start").click().run()
    _no_exception(at)
    assert [r["loss"] for r in at.session_state["live_adding"]["history"]] != \
        [r["loss"] for r in first["history"]]


def test_presentation_mode_steps_through_slides(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    height = _charts(at)["adding_example"]["layout"].get("height") or 400
    assert not any("Slide" in c.value for c in at.caption)
    at.toggle(key="present_toggle_skip-rnn-signals").set_value(True).run()
    _no_exception(at)
    assert any("Slide 1 of 4" in c.value for c in at.caption)
    assert any("<style>" in m.value and "st-key-controls" in m.value for m in at.markdown)
    assert at.query_params.get("present") in ("1", ["1"])
    assert _charts(at)["adding_example"]["layout"]["height"] > height  # figures enlarged
    titles = []
    for n in (2, 3, 4):
        at.button(key="present_next_skip-rnn-signals").click().run()
        _no_exception(at)
        assert any(f"Slide {n} of 4" in c.value for c in at.caption)
        titles += [s.value for s in at.subheader if s.value in
                   ("The ũ sawtooth (Eq. 5)", "Red is used, blue is skipped",
                    "Frames the CNN never saw")]
    assert titles == ["The ũ sawtooth (Eq. 5)", "Red is used, blue is skipped",
                      "Frames the CNN never saw"]
    assert at.button(key="present_next_skip-rnn-signals").disabled
    at.button(key="present_prev_skip-rnn-signals").click().run()
    assert any("Slide 3 of 4" in c.value for c in at.caption)
    at.toggle(key="present_toggle_skip-rnn-signals").set_value(False).run()
    _no_exception(at)
    assert not any("Slide" in c.value for c in at.caption)
    assert "present" not in at.query_params
