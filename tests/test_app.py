"""Streamlit AppTest tests of the app shell and the "Skip RNN — MNIST pixels" page.

The app is pointed (``SKIMVIZ_PRETRAINED_DIR``) at tiny checkpoints that the training CLI's
``--dry-run`` builds in a temporary folder, so these tests never depend on the long-training
checkpoints in ``pretrained/``.
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests._helpers import APP, TIMEOUT, open_page
from tests._helpers import array as _array
from tests._helpers import chart as _chart
from tests._helpers import metric as _metric
from tests._helpers import no_exception as _no_exception

REPO_ROOT = Path(__file__).resolve().parent.parent
MNIST_PAGE = "views/skip_rnn_mnist.py"


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory) -> Path:
    """skip-gru-mnist and gru-mnist from the CLI's dry run (16 units, two steps), built in
    parallel."""
    out = tmp_path_factory.mktemp("pretrained")
    work = tmp_path_factory.mktemp("work")
    base = [sys.executable, "-m", "skimviz", "train", "mnist", "--dry-run", "--hidden", "16",
            "--out", str(out), "--work", str(work)]
    procs = [subprocess.Popen(base + extra, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for extra in (["--name", "skip-gru-mnist"], ["--dense", "--name", "gru-mnist"])]
    for p in procs:
        log, _ = p.communicate(timeout=300)
        assert p.returncode == 0, log
    assert (out / "skip-gru-mnist" / "card.json").is_file()
    assert (out / "gru-mnist" / "card.json").is_file()
    return out


@pytest.fixture
def pretrained_env(tiny_pretrained, monkeypatch) -> Path:
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(tiny_pretrained))
    return tiny_pretrained


def _mnist(monkeypatch=None) -> AppTest:
    return open_page(MNIST_PAGE)


def _tab(at: AppTest, label: str) -> AppTest:
    """Open one of the MNIST page's tabs (only the open tab's content runs)."""
    at.session_state["mnist_tab"] = label
    at.run()
    _no_exception(at)
    return at


def _errors(at: AppTest) -> str:
    return " | ".join(e.value for e in at.error)


# --- home -----------------------------------------------------------------------------------------
def test_home_page():
    """The front door: a lede, then one card per page of the app, each with one sentence and a
    link to the page; no checkpoint lists or commands."""
    import app_pages
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _no_exception(at)
    assert at.title[0].value.startswith("skimviz")
    pages = [p for p in app_pages.PAGES if not p.default]
    links = at.page_link
    assert sorted(link.proto.page for link in links) == sorted(
        p.url_path for p in pages), [link.proto.page for link in links]
    assert all(link.proto.label == "Open the page →" for link in links)
    assert {link.proto.help for link in links} == {f"Go to {p.title}" for p in pages}
    for p in pages:  # each card: its title and one sentence
        assert any(m.value == f"**{p.title}**" for m in at.markdown), p.title
    text = " ".join(m.value for m in at.markdown)
    assert "conditional computation" in text and "<abbr" in text  # the term has a tooltip
    assert "python -m" not in text and "skip-gru-mnist" not in text
    assert any("Everything runs and is timed on this server" in c.value and "CPU" in c.value
               for c in at.caption)


def test_presentation_mode_on_the_home_page():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.toggle(key="present_toggle_home").set_value(True).run()
    _no_exception(at)
    assert any("Slide 1 of 3" in c.value for c in at.caption)
    assert any("<style>" in m.value and "1.25rem" in m.value for m in at.markdown)
    at.button(key="present_next_home").click().run()
    at.button(key="present_next_home").click().run()
    _no_exception(at)
    assert any("Slide 3 of 3" in c.value for c in at.caption)
    assert len(at.page_link) == 6  # the cards stay, beside the slide
    at.toggle(key="present_toggle_home").set_value(False).run()
    assert not any("Slide" in c.value for c in at.caption)


def test_no_material_icons_or_remote_assets():
    paths = [REPO_ROOT / "app.py", *(REPO_ROOT / "views").glob("*.py"),
             *(REPO_ROOT / "ui").glob("*.py"), *(REPO_ROOT / "skimviz" / "viz").glob("*.py")]
    assert len(paths) > 20
    for path in paths:
        text = path.read_text()
        assert ":material/" not in text, path
        assert "http://" not in text and "https://" not in text, path


# --- MNIST page ---------------------------------------------------------------------------------------
def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


def _summary(at: AppTest) -> str:
    found = [m.value for m in at.markdown if m.value.startswith("The Skip GRU used ")]
    assert len(found) == 1, [m.value[:60] for m in at.markdown]
    return found[0]


def test_first_screen_map_metrics_and_sentence(pretrained_env):
    """The first screen: the digit, its used/skipped map, four metrics and one sentence, all
    about the same numbers; no command lines, equation numbers only in the footnote."""
    at = _mnist()
    assert at.title[0].value == "Skip RNN — MNIST pixels"
    at.number_input(key="digit_index").set_value(1234).run()
    _no_exception(at)
    assert at.session_state["digit"]["index"] == 1234
    assert "#1234" in " ".join(c.value for c in at.caption)
    _chart(at, "digit_input")
    # the used/skipped map: trace 0's z is the model's update mask, as 28×28
    z = _array(_chart(at, "used_skipped_chart")["data"][0]["z"])
    assert z.shape == (28, 28) and set(np.unique(z)) <= {0.0, 1.0}
    used = int(z.sum())
    assert _metric(at, "Pixels used") == str(used)
    assert [m.delta for m in at.metric if m.label == "Pixels used"] == ["of 784"]
    assert _metric(at, "Prediction") in {str(d) for d in range(10)}
    ratio = _metric(at, "FLOP reduction")
    assert ratio.endswith("×") and float(ratio[:-1]) > 0
    skipped_ms = _metric(at, "Time (batch 1)")
    assert skipped_ms.endswith(" ms")
    # the sentence says the same numbers as the metrics beside it
    sentence = _summary(at)
    assert f"used {used} of the 784 pixels and skipped {784 - used}" in sentence
    assert f"{ratio} fewer FLOPs" in sentence or "× more FLOPs" in sentence
    assert f"took {skipped_ms}" in sentence
    dense_ms = [m.delta for m in at.metric if m.label == "Time (batch 1)"][0].split(": ")[1]
    assert f"against {dense_ms} for the dense GRU" in sentence
    s, d = float(skipped_ms[:-3]), float(dense_ms[:-3])
    assert ("faster" in sentence) == (s * 1.1 < d) and ("slower" in sentence) == (s > d * 1.1)
    # plain words: the lede's footnote holds the paper's equations, nothing else does
    text = _text(at)
    assert "python -m" not in text and "Used-AUC" not in text
    footnotes = [c.value for c in at.caption if "Eq. 2–5" in c.value]
    assert len(footnotes) == 1 and "Campos" in footnotes[0]
    assert not [m.value for m in at.markdown if "Eq. " in m.value]
    # the dry-run checkpoint is flagged as such
    assert any("dry run" in w.value for w in at.warning)


def test_time_tab_is_measured_and_matches_the_first_screen(pretrained_env):
    """The Time tab's three times come from the same measurement as the first screen's metric,
    and its sentence is generated from them (no hand-written speed claim)."""
    from skimviz.bench import latency

    at = _mnist()
    _tab(at, "Time")
    times = {k: _metric(at, latency.LABELS[k]) for k in latency.KEYS}
    assert all(v.endswith(" ms") for v in times.values())
    assert times["skipped"] == _metric(at, "Time (batch 1)")
    sentence = [m.value for m in at.markdown if m.value.startswith("Skipping for real ")]
    assert len(sentence) == 1
    assert f"({times['skipped']} vs {times['dense']})" in sentence[0]
    assert any("Dense: the shipped dense GRU" in c.value for c in at.caption)


def test_playback_tab(pretrained_env):
    at = _mnist()
    spec = _chart(at, "pixel_playback")
    assert spec["frames"] and spec["layout"]["sliders"]
    main = _array(_chart(at, "used_skipped_chart")["data"][0]["z"])
    last = _array(spec["frames"][-1]["data"][0]["z"])  # every pixel reached: 1 skipped, 2 used
    np.testing.assert_array_equal(last == 2, main == 1.0)
    _chart(at, "update_prob_chart")
    _chart(at, "probabilities")


def test_paper_tab_fig3_from_the_cards_and_fig4_grid(pretrained_env):
    """Fig. 3: each model's validation accuracy per epoch, from its card; Fig. 4: 20 maps (two
    of each class) with the pixels used under each."""
    import json as _json

    from skimviz.data import mnist
    from ui import digits

    at = _mnist()
    _tab(at, "The paper's Fig. 3 and 4")
    fig3 = _chart(at, "fig3_chart")
    for trace, name in zip(fig3["data"], ("skip-gru-mnist", "gru-mnist")):
        card = _json.loads((pretrained_env / name / "card.json").read_text())
        rows = card["training"]["valid_per_epoch"]
        assert list(_array(trace["y"])) == pytest.approx([r["accuracy"] for r in rows])
    fig4 = _chart(at, "fig4_chart")
    maps = [t for t in fig4["data"] if t.get("name", "").startswith("digit")]
    assert len(maps) == 20
    x, y = mnist.load_bundled()
    titles = [a["text"] for a in fig4["layout"]["annotations"]]
    assert sorted(titles) == sorted(str(c) for c in range(10) for _ in range(2))
    for k, trace in enumerate(maps):
        used = int(_array(trace["z"]).sum())
        axis = fig4["layout"]["xaxis" + ("" if k == 0 else str(k + 1))]
        assert axis["title"]["text"] == f"{used} used"
    assert len(digits.grid_indices(y)) == 20
    assert any("The paper's Fig. 3" in m.value for m in at.markdown)


def test_out_of_range_index_is_an_error_not_a_crash(pretrained_env):
    at = _mnist()
    at.number_input(key="digit_index").set_value(42).run()
    at.number_input(key="digit_index").set_value(5000).run()
    _no_exception(at)
    assert "out of range" in _errors(at)
    assert at.session_state["digit"]["index"] == 42  # the previous digit stays
    _chart(at, "used_skipped_chart")
    at.number_input(key="digit_index").set_value(-3).run()
    _no_exception(at)
    assert "out of range" in _errors(at)
    at.number_input(key="digit_index").set_value(7).run()
    assert "out of range" not in _errors(at)
    assert at.session_state["digit"]["index"] == 7


def test_theta_changes_updates(pretrained_env):
    at = _mnist()
    _tab(at, "Accuracy vs θ")
    before = int(_metric(at, "Pixels used"))
    at.slider(key="theta").set_value(1.0).run()
    _no_exception(at)
    after = int(_metric(at, "Pixels used"))
    assert after < before  # θ = 1 waits for ũ to reach 1: fewer updates
    sweep = _chart(at, "sweep_chart")
    assert "current θ = 1.00" in sweep["data"][1]["name"]
    assert f"used {after} of the 784" in _summary(at)


def test_theta_does_not_leak_between_sessions(pretrained_env):
    """The checkpoint is cached once per process; each session works on its own deep copy, so
    one session's θ never changes what another sees."""
    a = _mnist()
    dense_updates = _metric(a, "Pixels used")
    a.slider(key="theta").set_value(1.0).run()
    assert _metric(a, "Pixels used") != dense_updates
    b = _mnist()
    assert _metric(b, "Pixels used") == dense_updates
    assert a.session_state["_models"]["skip-gru-mnist"][0] is not \
        b.session_state["_models"]["skip-gru-mnist"][0]


def test_pick_by_class_and_random(pretrained_env):
    from skimviz.data import mnist

    _, y = mnist.load_bundled()
    at = _mnist()
    at.selectbox(key="digit_class").set_value(3).run()
    _no_exception(at)
    assert at.session_state["digit"]["source"] == "class"
    assert y[at.session_state["digit"]["index"]] == 3
    at.button(key="digit_random").click().run()
    _no_exception(at)
    assert at.session_state["digit"]["source"] == "random"
    at.selectbox(key="digit_class").set_value(None).run()  # clearing the class: no crash
    _no_exception(at)
    assert at.session_state["digit"]["source"] == "random"


def test_uploads(pretrained_env):
    from PIL import Image

    at = _mnist()
    at.file_uploader(key="digit_upload").set_value(("notes.png", b"not an image", "image/png"))
    at.run()
    _no_exception(at)
    assert "cannot be used" in _errors(at)
    assert at.session_state["digit"]["source"] == "index"
    img = np.full((60, 40), 255, np.uint8)  # a dark "1" on white paper
    img[10:50, 18:23] = 0
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    at.file_uploader(key="digit_upload").set_value(("one.png", buf.getvalue(), "image/png"))
    at.run()
    _no_exception(at)
    assert "cannot be used" not in _errors(at)
    assert at.session_state["digit"]["source"] == "upload"
    _chart(at, "used_skipped_chart")


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="digit_upload").set_value((name, data, "image/png"))
    at.run()
    _no_exception(at)
    return at


def _boxes_show(at: AppTest, index: int) -> None:
    """The class and index boxes show bundled digit ``index`` (the one on screen)."""
    from skimviz.data import mnist

    _, y = mnist.load_bundled()
    assert at.session_state["digit"]["index"] == index
    assert at.number_input(key="digit_index").value == index
    assert at.selectbox(key="digit_class").value == int(y[index])
    assert f"#{index} (a {int(y[index])})" in " ".join(c.value for c in at.caption)


def test_digit_boxes_follow_the_digit_shown(pretrained_env):
    at = _mnist()
    for _ in range(2):  # "Random digit": both boxes show the digit drawn
        at.button(key="digit_random").click().run()
        _no_exception(at)
        _boxes_show(at, at.session_state["digit"]["index"])
    at.selectbox(key="digit_class").set_value(6).run()  # a class: the index follows
    _boxes_show(at, at.session_state["digit"]["index"])
    assert at.selectbox(key="digit_class").value == 6
    at.button(key="digit_class_again").click().run()
    _boxes_show(at, at.session_state["digit"]["index"])
    at.number_input(key="digit_index").set_value(1234).run()  # an index: the class follows
    _boxes_show(at, 1234)
    # an upload has neither: both boxes are emptied, and typing an index brings it back
    one = np.full((60, 40), 255, np.uint8)
    one[10:50, 18:23] = 0
    _upload(at, "one.png", _png(one))
    assert at.session_state["digit"]["source"] == "upload"
    assert at.number_input(key="digit_index").value is None
    assert at.selectbox(key="digit_class").value is None
    assert not _errors(at)
    at.number_input(key="digit_index").set_value(1234).run()
    _boxes_show(at, 1234)


def test_digit_boxes_follow_a_link(pretrained_env):
    at = _mnist_from_url({"digit": "12"})
    _boxes_show(at, 12)


def test_upload_error_clears_when_another_digit_is_picked(pretrained_env):
    at = _mnist()
    for pick in (lambda: at.button(key="digit_random").click(),
                 lambda: at.selectbox(key="digit_class").set_value(3),
                 lambda: at.number_input(key="digit_index").set_value(77)):
        _upload(at, f"notes-{len(at.error)}.png", b"not an image")
        assert "cannot be used" in _errors(at)
        pick().run()
        _no_exception(at)
        assert "cannot be used" not in _errors(at)
        assert at.session_state["digit"]["source"] != "upload"


def test_upload_messages_are_plain_and_name_the_file(pretrained_env):
    """The file's name is shown literally (``_`` and ``*`` would otherwise be emphasis), never a
    Python object; an oversized file is refused from its size, in true units."""
    at = _mnist()
    _upload(at, "my_best__digit__*v2*.png", b"GIF89a not really")
    err = _errors(at)
    assert r"my\_best\_\_digit\_\_\*v2\*\.png" in err
    assert "only PNG and JPEG" in err
    assert "BytesIO" not in err and "0x" not in err
    _upload(at, "huge.png", b"\0" * (3 * 2**20))
    assert "3.0 MiB; the limit is 2.0 MiB" in _errors(at)
    assert at.session_state["digit"]["source"] == "index"
    assert "2.0 MiB" in at.file_uploader(key="digit_upload").proto.help


def test_out_of_distribution_upload_gets_a_notice(pretrained_env):
    notice = "does not look like a handwritten digit"
    at = _mnist()
    ten = np.full((120, 170), 235, np.uint8)  # "10": two dark pieces side by side
    ten[20:100, 20:32] = 30
    yy, xx = np.indices(ten.shape)
    ring = np.hypot(yy - 60, (xx - 115) * 1.4)
    ten[(ring > 28) & (ring < 40)] = 30
    _upload(at, "ten.png", _png(ten))
    assert at.session_state["digit"]["source"] == "upload"
    assert notice in " | ".join(w.value for w in at.warning)
    assert "side by side" in " | ".join(w.value for w in at.warning)
    seven = np.full((120, 90), 235, np.uint8)  # a dark 7 on light paper: no notice
    seven[15:27, 15:75] = 30
    for r in range(27, 110):
        c = 75 - (r - 27) * 40 // 83
        seven[r, max(c - 6, 0):c + 6] = 30
    _upload(at, "seven.png", _png(seven))
    assert at.session_state["digit"]["name"] == "seven.png"
    assert notice not in " | ".join(w.value for w in at.warning)
    at.number_input(key="digit_index").set_value(5).run()  # bundled digits are never flagged
    assert notice not in " | ".join(w.value for w in at.warning)


def _train(at: AppTest, **settings) -> object:
    """Start a live training with ``settings`` (widget suffix → value), wait for it (it runs in a
    worker process) and rerun the page; returns the run."""
    if at.session_state["mnist_tab"] != "Train your own":
        _tab(at, "Train your own")
    for name, value in settings.items():
        w = at.number_input(key=f"live_{name}") if name in ("steps", "seed") else \
            at.select_slider(key=f"live_{name}")
        w.set_value(value)
    at.button(key="live_mnist_start").click().run()
    _no_exception(at)
    if "_live_mnist_confirm" in at.session_state:  # a model exists: confirm the replace
        at.button(key="live_mnist_replace").click().run()
    run = at.session_state["live_mnist"]
    assert run.join(120)
    at.run()
    _no_exception(at)
    return run


def test_short_training_run(pretrained_env):
    at = _mnist()
    # a random seed drawn once per session, in range, in the URL
    drawn = _tab(at, "Train your own").number_input(key="live_seed").value
    assert 0 <= drawn <= 2**31 - 1 and at.query_params["seed"] == str(drawn)
    run = _train(at, hidden=16, steps=3, seed=7)
    assert run.status == "done" and run.step == 3 and run.config["seed"] == 7
    assert at.query_params["seed"] == "7"
    first = [(r["loss"], r["update_rate"]) for r in run.history]
    assert [r["step"] for r in run.history] == [1, 2, 3]
    curves = _chart(at, "live_mnist_curves")
    assert list(_array(curves["data"][0]["x"])) == [1, 2, 3]
    assert any("Trained 3 steps (seed 7)" in s.value for s in at.success)
    # the session's model is now selected and read at 14×14
    assert at.session_state["model_choice"] == "session"
    assert [m.delta for m in at.metric if m.label == "Pixels used"] == ["of 196"]
    z = _array(_chart(at, "used_skipped_chart")["data"][0]["z"])
    assert z.shape == (14, 14) and _metric(at, "Pixels used") == str(int(z.sum()))
    assert "of the 196 pixels" in _summary(at)
    assert not any("page=skip-rnn-mnist" in c.value for c in at.code)  # no link for it
    # the same seed and settings train the same model again (after confirming the replace)
    again = _train(at)
    assert again is not run and again.config["seed"] == 7
    assert [(r["loss"], r["update_rate"]) for r in again.history] == first
    # the shipped model is still one click away, unchanged
    at.radio(key="model_choice").set_value("shipped").run()
    _no_exception(at)
    assert [m.delta for m in at.metric if m.label == "Pixels used"] == ["of 784"]


def test_training_nan_shows_message(pretrained_env, monkeypatch):
    from skimviz.training import loop as train

    def diverge(self, *args, **kwargs):
        raise train.TrainingDiverged("the loss became nan at step 1; lower the learning rate")

    monkeypatch.setattr(train.Trainer, "fit", diverge)
    monkeypatch.setenv("SKIMVIZ_LIVE_PROCESSES", "0")   # the patch lives in this process only
    at = _mnist()
    _train(at, steps=2)
    assert "training diverged" in _errors(at)
    at.slider(key="theta").set_value(0.7).run()  # the session goes on
    _no_exception(at)
    assert "training diverged" in _errors(at)


def test_missing_checkpoint_says_so_in_plain_words(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(tmp_path))
    at = _mnist()
    errors = _errors(at)
    assert "skip-gru-mnist" in errors and "Train your own" in errors
    assert "python -m" not in errors + _text(at)
    _chart(at, "digit_input")  # the digit picker still works
    at.number_input(key="digit_index").set_value(3).run()
    _no_exception(at)
    assert at.session_state["digit"]["index"] == 3
    assert at.button(key="live_mnist_start")  # and a model can be trained here


# --- attributions, URL state, export ------------------------------------------------------------
def _mnist_from_url(params: dict) -> AppTest:
    """Open the MNIST page as a shared link does: ``/?page=skip-rnn-mnist&...`` (the home page
    switches to the MNIST page, carrying the other parameters)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["page"] = "skip-rnn-mnist"
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    _no_exception(at)
    assert at.title[0].value == "Skip RNN — MNIST pixels"
    return at


def test_attribution_section_renders_numbers(pretrained_env):
    at = _mnist()
    _tab(at, "Skips what matters?")
    mass = _metric(at, "Attribution on used pixels")
    assert mass.endswith("%") and 0 <= int(mass[:-1]) <= 100
    top = _metric(at, "Top pixels used")
    assert top.endswith("%") and 0 <= int(top[:-1]) <= 100
    spec = _chart(at, "attribution_chart")
    z = _array(spec["data"][0]["z"])
    assert z.shape == (28, 28) and np.isfinite(z).all()
    # "top pixels used" is the share of the squared (top-k) pixels that are used
    used = _array(_chart(at, "used_skipped_chart")["data"][0]["z"]).reshape(-1)
    k = len(_array(spec["data"][1]["x"]))
    rows, cols = _array(spec["data"][1]["y"]).astype(int), _array(spec["data"][1]["x"]).astype(int)
    assert int(top[:-1]) == round(100 * used[rows * 28 + cols].mean())
    assert k == 78 and not any("AUC" in m.label for m in at.metric)
    assert any(m.value.startswith("**In one line:** ") and mass in m.value for m in at.markdown)
    # Saliency: 0 on every skipped pixel, so 100 % on the used ones, and the page says why
    at.radio(key="attr_method").set_value("saliency").run()
    _no_exception(at)
    assert _metric(at, "Attribution on used pixels") == "100%"
    assert any("by construction" in i.value for i in at.info)
    assert at.query_params["method"] == "saliency"
    # the validation summary, on demand
    at.button(key="attr_set_run").click().run()
    _no_exception(at)
    assert _metric(at, "Mean attribution on used").endswith("%")
    assert _metric(at, "Digits above chance").endswith("%")
    pts = _chart(at, "agreement_chart")["data"][0]
    assert len(_array(pts["x"])) == 100


def test_url_opens_the_view(pretrained_env):
    at = _mnist_from_url({"digit": "12", "theta": "0.7", "seed": "424242"})
    _tab(at, "Train your own")
    assert not at.warning or all("dry run" in w.value for w in at.warning)
    assert at.number_input(key="live_seed").value == 424242
    assert at.number_input(key="digit_index").value == 12
    assert at.session_state["digit"]["index"] == 12
    assert at.slider(key="theta").value == pytest.approx(0.7)
    assert "#12 (a " in " ".join(c.value for c in at.caption)
    _tab(at, "Accuracy vs θ")
    assert "current θ = 0.70" in _chart(at, "sweep_chart")["data"][1]["name"]
    # the URL follows the widgets, and the share link carries the view
    assert at.query_params["digit"] == "12" and at.query_params["theta"] == "0.70"
    at.number_input(key="digit_index").set_value(42).run()
    assert at.query_params["digit"] == "42"
    link = [c.value for c in _tab(at, "Export").code if "page=skip-rnn-mnist" in c.value]
    assert link and "digit=42" in link[0] and "theta=0.70" in link[0]
    assert "seed=424242" in link[0] and at.query_params["seed"] == "424242"
    _tab(at, "Train your own").number_input(key="live_seed").set_value(5).run()
    assert at.query_params["seed"] == "5"
    _tab(at, "Step by step")               # the seed stays while its tab is closed
    assert at.query_params["seed"] == "5"
    assert _tab(at, "Train your own").number_input(key="live_seed").value == 5


def test_url_on_the_page_path(pretrained_env):
    """``/skip-rnn-mnist?digit=12&theta=0.7``: the page reads its own query parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # views/ are known after a run
    at.query_params["digit"] = "12"
    at.query_params["theta"] = "0.7"
    at.switch_page(MNIST_PAGE).run()
    _no_exception(at)
    assert at.title[0].value == "Skip RNN — MNIST pixels"
    assert at.session_state["digit"]["index"] == 12
    assert at.slider(key="theta").value == pytest.approx(0.7)


def test_bad_url_gives_defaults_and_a_notice(pretrained_env):
    at = _mnist_from_url({"digit": "abc", "theta": "5", "method": "<script>alert(1)</script>",
                          "seed": "-3"})
    notices = " | ".join(w.value for w in at.warning)
    assert "`digit`" in notices and "`theta`" in notices and "`method`" in notices
    assert "`seed`" in notices
    _tab(at, "Train your own")
    seed = at.number_input(key="live_seed").value  # the session's random one
    assert 0 <= seed <= 2**31 - 1 and at.query_params["seed"] == str(seed)
    assert "<script>" not in notices and "<" not in notices
    assert at.number_input(key="digit_index").value == 0
    assert at.slider(key="theta").value == pytest.approx(0.5)
    _tab(at, "Skips what matters?")
    assert at.radio(key="attr_method").value == "ig"
    _chart(at, "used_skipped_chart")
    # the address bar is corrected to the defaults
    assert at.query_params["digit"] == "0" and at.query_params["method"] == "ig"
    # the notice is shown once, not on every rerun
    at.slider(key="theta").set_value(0.6).run()
    assert not any("`digit`" in w.value for w in at.warning)


def test_exports(pretrained_env):
    at = _mnist()
    _tab(at, "Export")
    buttons = {b.proto.label: b for b in at.get("download_button")}
    assert {"Pixels as CSV", "Trace as JSON"} <= set(buttons)
    links = [c for c in at.code if "page=skip-rnn-mnist" in c.value]
    assert len(links) == 1 and links[0].proto.wrap_lines  # the whole link stays visible


# --- compare and presentation mode ------------------------------------------------------------
def test_compare_dense_and_second_theta(pretrained_env):
    at = _mnist()
    _tab(at, "Compare")
    at.number_input(key="digit_index").set_value(7).run()
    _no_exception(at)
    # B defaults to the dense baseline: it reads every pixel, on the same digit and scale
    assert at.radio(key="compare_view").value == "dense"
    a, b = _chart(at, "compare_map_a"), _chart(at, "compare_map_b")
    za, zb = _array(a["data"][0]["z"]), _array(b["data"][0]["z"])
    assert za.shape == zb.shape == (28, 28)
    assert zb.sum() == 784 and _metric(at, "Pixels used (B)") == "784"
    assert a["data"][0]["colorscale"] == b["data"][0]["colorscale"]
    assert a["layout"]["height"] == b["layout"]["height"]
    # A is exactly the main map
    np.testing.assert_array_equal(za, _array(_chart(at, "used_skipped_chart")["data"][0]["z"]))
    assert _metric(at, "Pixels used (A)") == _metric(at, "Pixels used")
    assert _metric(at, "FLOP reduction (A)") == _metric(at, "FLOP reduction")
    assert _metric(at, "FLOP reduction (B)") == "1.00×"
    # the same model at a second θ: B changes, A and the slider's θ do not
    at.radio(key="compare_view").set_value("theta").run()
    _no_exception(at)
    at.slider(key="compare_theta").set_value(1.0).run()
    _no_exception(at)
    assert at.slider(key="theta").value == pytest.approx(0.5)
    zb = _array(_chart(at, "compare_map_b")["data"][0]["z"])
    np.testing.assert_array_equal(za, _array(_chart(at, "compare_map_a")["data"][0]["z"]))
    assert zb.sum() <= za.sum()
    assert any(c.value.startswith(f"B uses {int(zb.sum())} pixels against A's {int(za.sum())}")
               for c in at.caption)


def test_compare_without_the_dense_checkpoint(tiny_pretrained, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_pretrained / "skip-gru-mnist", tmp_path / "skip-gru-mnist")
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(tmp_path))
    at = _mnist()
    _tab(at, "Compare")
    assert at.radio(key="compare_view").options == ["the same model at another θ"]
    assert any("only another θ" in c.value for c in at.caption)
    _chart(at, "compare_map_b")


def test_presentation_mode_on_the_mnist_page(pretrained_env):
    at = _mnist()
    assert not any("Slide" in c.value for c in at.caption)
    at.toggle(key="present_toggle_skip-rnn-mnist").set_value(True).run()
    _no_exception(at)
    assert any("Slide 1 of 4" in c.value for c in at.caption)
    assert any("<style>" in m.value and "1.25rem" in m.value for m in at.markdown)
    assert not any("stSidebar" in m.value for m in at.markdown)  # navigation stays
    assert at.query_params.get("present") in ("1", ["1"])
    # figures are enlarged; the controls the slides name stay on screen
    assert _chart(at, "used_skipped_chart")["layout"]["height"] > 300
    assert at.slider(key="theta") and at.number_input(key="digit_index")
    # a slide can move θ, and every slide names only what is on the screen
    for _ in range(2):
        at.button(key="present_next_skip-rnn-mnist").click().run()
        _no_exception(at)
    assert any("Slide 3 of 4" in c.value for c in at.caption)
    assert at.slider(key="theta").value == pytest.approx(0.8)
    from ui import lessons

    shown = {m.label for m in at.metric} | {t.label for t in at.tabs} | {"use", "skip"}
    for slide in lessons.slides("skip-rnn-mnist"):
        for bold in re.findall(r"\*\*(.+?)\*\*", slide["text"]):
            assert bold in shown, (slide["title"], bold)
    at.toggle(key="present_toggle_skip-rnn-mnist").set_value(False).run()
    assert not any("Slide" in c.value for c in at.caption)
    assert "present" not in at.query_params


def test_presentation_mode_from_a_link(pretrained_env):
    at = _mnist_from_url({"digit": "5", "theta": "0.7", "present": "1"})
    _no_exception(at)
    assert not [w.value for w in at.warning if "URL" in w.value]  # present is a known parameter
    assert at.toggle(key="present_toggle_skip-rnn-mnist").value is True
    assert any("Slide 1 of 4" in c.value for c in at.caption)
    assert at.slider(key="theta").value == pytest.approx(0.7)  # the link's θ is kept


def test_timings_run_one_at_a_time_on_the_server(pretrained_env):
    """While another session times (the server-wide lock is held), the page draws its figures
    without a time and offers to wait for a turn; it never times two at once."""
    from ui import latency_panel
    latency_panel._SHARED.clear()                  # no other session's timing to reuse
    assert latency_panel._TIMING.acquire(timeout=60)
    try:
        at = _tab(_mnist(), "Time")
        assert [m.value for m in at.metric if m.label == "Time (batch 1)"] == ["—"]
        assert any("another visitor's timing is running" in i.value for i in at.info)
        assert "used_skipped_chart" in [c.proto.id.rsplit("-", 1)[-1]
                                        for c in at.get("plotly_chart")]
    finally:
        latency_panel._TIMING.release()
    at.button(key="latency_wait").click().run()          # a turn: timed now
    _no_exception(at)
    assert not any("another visitor's timing" in i.value for i in at.info)
    assert any(m.label == "Skipped for real" or "ms" in str(m.value) for m in at.metric)


def test_a_shipped_models_timing_is_shared_by_the_sessions_of_the_server(pretrained_env):
    """A class looking at the same digit at the same θ times it once: a second session finds the
    first one's timing even while timings are locked; a session's own model is never shared."""
    from ui import latency_panel
    latency_panel._SHARED.clear()
    first = _mnist()
    times = [m.value for m in first.metric if m.label == "Time (batch 1)"]
    assert times and times != ["—"]
    assert latency_panel._TIMING.acquire(timeout=60)
    try:
        second = _mnist()                          # another session, the same view
        assert [m.value for m in second.metric if m.label == "Time (batch 1)"] == times
    finally:
        latency_panel._TIMING.release()
    assert all("skip-gru-mnist" in k for k in latency_panel._SHARED)


def test_only_the_open_tab_runs(pretrained_env):
    """A θ move redraws the first screen and the open tab only: the paper's figures, the
    attributions and the comparison wait until their tab is opened (a class on one server)."""
    at = _mnist()
    at.slider(key="theta").set_value(0.6).run()
    charts = [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]
    assert {"used_skipped_chart", "pixel_playback"} <= set(charts)
    assert not {"sweep_chart", "fig4_chart", "attribution_chart", "compare_map_b"} & set(charts)
    assert not at.session_state["_attr"] if "_attr" in at.session_state else True
    _tab(at, "Skips what matters?")
    assert "attribution_chart" in [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]
    assert len(at.session_state["_attr"]) == 1
