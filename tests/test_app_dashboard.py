"""AppTest of the "Trade-off dashboard" page: it renders from whatever checkpoints exist (the real
``pretrained/`` folder, and a temporary one of tiny checkpoints), one task at a time in at most
three columns, a new checkpoint appears as a new point without code changes, measured time covers
every checkpoint of the chosen task, no training status or command reaches the page, and
presentation mode works."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
PAGE = "views/dashboard.py"
TIMEOUT = 120


def _tiny(directory: Path, name: str, skip: bool, accuracy: float) -> Path:
    """A tiny MNIST checkpoint (8 units, 7×7 digits) with a card like a training's: metrics, a
    θ sweep for a skipping model, and a target note with training advice (never shown)."""
    from skimviz.tasks import mnist
    from skimviz.training import checkpoint
    torch.manual_seed(0)
    m = mnist.make_model("gru", 8, skip=skip)
    card = mnist.base_card(name, m, 7)
    dense = float(m.dense_flops(49))
    flops = dense * (0.5 if skip else 1.0)
    card["metrics"] = {"valid_accuracy": accuracy, "valid_updates_mean": 24.5 if skip else 49.0,
                       "flops_per_sequence_mean": flops, "dense_flops_per_sequence": dense}
    if skip:
        card["threshold_sweep"] = [{"threshold": t, "accuracy": accuracy - t / 10,
                                    "updates": 49 * (1 - t), "flops": dense * (1 - t)}
                                   for t in (0.3, 0.5, 0.7)]
    card["target"] = {"goal": "≥ 97 %", "reached": False,
                      "note": "not reached: continue it with --resume, see README"}
    card["training"] = {"dry_run": True}
    return checkpoint.save(m, card, directory / name)


@pytest.fixture(scope="module")
def dry_checkpoints(tmp_path_factory) -> Path:
    """A skip and a dense tiny checkpoint, and a spare third one kept aside (``extra/``) for
    the "new checkpoint" test."""
    base = tmp_path_factory.mktemp("dash")
    _tiny(base / "pretrained", "tiny-skip", True, 0.6)
    _tiny(base / "pretrained", "tiny-dense", False, 0.62)
    _tiny(base / "extra", "tiny-skip-2", True, 0.55)
    return base


def _page(monkeypatch, directory: Path | None, params: dict | None = None) -> AppTest:
    if directory is None:
        monkeypatch.delenv("SKIMVIZ_PRETRAINED_DIR", raising=False)
    else:
        monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(directory))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _chart(at: AppTest) -> dict:
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith("-tradeoff_chart")]
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def _ours(spec: dict) -> dict:
    """name → (kind) for our points in the chart."""
    out = {}
    for t in spec["data"]:
        meta = t.get("meta") or {}
        if meta.get("source") == "ours" and meta.get("kind") in ("skip", "dense"):
            for label in t["text"]:
                out[label.split(" ")[0]] = meta["kind"]
    return out


def _columns(spec: dict) -> int:
    """How many columns of panels the chart has (distinct x-axis domains)."""
    return len({tuple(v["domain"]) for k, v in spec["layout"].items()
                if k.startswith("xaxis") and "domain" in v})


def _text(at: AppTest) -> str:
    """Every text element of the page (markdown, captions, alerts, titles, expander labels)."""
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info",
                                  "warning", "error", "success") for e in at.get(kind)]
    parts += [e.label for e in at.get("expandable")]
    return " | ".join(str(p) for p in parts)


def _groups(directory: Path | None) -> list:
    """The task picker's entries (its values) for the checkpoints in ``directory``."""
    from skimviz.training import checkpoint
    from ui import dashboard
    cards = [checkpoint.load_card(n, directory) for n in checkpoint.list_pretrained(directory)]
    return dashboard.groups(dashboard.points_from_cards(cards) if cards
                            else dashboard.paper_points())


def _pick(at: AppTest, group: str, axis: str = "flops") -> AppTest:
    at.segmented_control(key="dash_task").set_value(group)
    at.segmented_control(key="dash_axis").set_value(axis).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_renders_with_the_real_pretrained_folder(monkeypatch):
    """Each task of the picker draws its checkpoints in at most 3 columns, with a generated
    sentence naming the ringed best trade-off; every shipped checkpoint is in one of them."""
    from skimviz.training import checkpoint
    at = _page(monkeypatch, None)
    assert at.title[0].value == "Trade-off dashboard"
    options = at.segmented_control(key="dash_task").options
    assert len(options) >= 4 and at.segmented_control(key="dash_task").value == "mnist"
    seen = {}
    for group in _groups(None):
        spec = _chart(_pick(at, group))
        assert 1 <= _columns(spec) <= 3, group
        seen.update(_ours(spec))
        sentences = " ".join(m.value for m in at.markdown if "gives the best trade-off" in
                             m.value or "one model only" in m.value)
        at_xy = {(x, y): s.split(" ")[0] for t in spec["data"]
                 if (t.get("meta") or {}).get("kind") in ("skip", "dense")
                 and t["meta"]["source"] == "ours" for s, x, y in zip(t["text"], t["x"], t["y"])}
        rings = [(x, y) for t in spec["data"] if (t.get("meta") or {}).get("kind") == "best"
                 for x, y in zip(t["x"], t["y"])]
        assert rings, group
        for xy in rings:  # each ring sits on a model a sentence names in bold
            assert f"**{at_xy[xy]}**" in sentences, (group, at_xy[xy], sentences)
        if group == "mnist":  # the paper's points, with their table number
            paper = [t for t in spec["data"] if (t.get("meta") or {}).get("source") == "paper"]
            assert paper and all("paper Table 3" in s for t in paper for s in t["text"])
    assert set(checkpoint.list_pretrained()) <= set(seen), seen


def test_no_training_status_or_commands_anywhere(monkeypatch, dry_checkpoints):
    """Neither the shipped cards' target notes ("continue it with --resume, see README") nor
    the dry run's status reach the page, in any task or cost."""
    from skimviz.training import checkpoint
    assert any("--resume" in str(checkpoint.load_card(n).get("target"))
               for n in checkpoint.list_pretrained())  # the cards do hold such notes
    for directory in (None, dry_checkpoints / "pretrained"):
        at = _page(monkeypatch, directory)
        for group in _groups(directory):
            for axis in ("flops", "latency_ms"):
                text = _text(_pick(at, group, axis))
                for bad in ("--resume", "python -m", "README", "not reached", "dry run",
                            "target"):
                    assert bad not in text, (group, axis, bad)


def test_a_new_checkpoint_appears_as_a_new_point(monkeypatch, dry_checkpoints):
    out = dry_checkpoints / "pretrained"
    at = _page(monkeypatch, out)
    ours = _ours(_chart(at))
    assert ours == {"tiny-dense": "dense", "tiny-skip": "skip"}
    # drop a third checkpoint in: it appears without any code change
    shutil.copytree(dry_checkpoints / "extra" / "tiny-skip-2", out / "tiny-skip-2")
    try:
        at = _page(monkeypatch, out)
        assert _ours(_chart(at)) == {"tiny-dense": "dense", "tiny-skip": "skip",
                                     "tiny-skip-2": "skip"}
        sweeps = [t for t in _chart(at)["data"] if (t.get("meta") or {}).get("kind") == "sweep"]
        assert {t["meta"]["name"] for t in sweeps} == {"tiny-skip", "tiny-skip-2"}
    finally:
        shutil.rmtree(out / "tiny-skip-2")


def test_latency_times_every_checkpoint_of_the_task(monkeypatch, dry_checkpoints):
    at = _page(monkeypatch, dry_checkpoints / "pretrained")
    spec = _chart(_pick(at, "mnist", "latency_ms"))
    xs = {t["text"][i].split(" ")[0]: x for t in spec["data"]
          if (t.get("meta") or {}).get("source") == "ours"
          and t["meta"]["kind"] in ("skip", "dense") for i, x in enumerate(t["x"])}
    assert set(xs) == {"tiny-skip", "tiny-dense"} and all(x > 0 for x in xs.values())
    assert "time per input (ms)" == spec["layout"]["xaxis"]["title"]["text"]
    assert not any((t.get("meta") or {}).get("source") == "paper" for t in spec["data"])
    assert any("Median time per input at batch 1" in c.value for c in at.caption)
    sentence = " ".join(m.value for m in at.markdown if "best trade-off" in m.value)
    assert " ms" in sentence and "FLOPs" not in sentence, sentence


def test_latency_of_every_shipped_task(monkeypatch):
    """Every shipped checkpoint, task by task, gets a measured time (text models read their own
    vocabulary, signals and clips their own generated input)."""
    from skimviz.training import checkpoint
    at = _page(monkeypatch, None)
    timed = {}
    for group in _groups(None):
        spec = _chart(_pick(at, group, "latency_ms"))
        for t in spec["data"]:
            if (t.get("meta") or {}).get("kind") in ("skip", "dense"):
                assert t["meta"]["source"] == "ours"
                timed.update({s.split(" ")[0]: x for s, x in zip(t["text"], t["x"])})
        assert not any("could not be timed" in c.value for c in at.caption), group
    assert set(timed) == set(checkpoint.list_pretrained())
    assert all(x > 0 for x in timed.values())


def test_empty_folder_shows_the_paper_alone(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    assert any("No model is installed" in i.value for i in at.info)
    spec = _chart(at)
    assert {(t.get("meta") or {}).get("source") for t in spec["data"]} == {"paper"}
    at.segmented_control(key="dash_axis").set_value("latency_ms").run()
    assert not at.exception


def test_presentation_mode_from_the_url(monkeypatch, dry_checkpoints):
    at = _page(monkeypatch, dry_checkpoints / "pretrained", {"present": "1"})
    assert at.toggle(key="present_toggle_dashboard").value is True
    assert any("Slide 1 of" in c.value for c in at.caption)
    assert any("<style>" in m.value for m in at.markdown)
    at.button(key="present_next_dashboard").click().run()
    assert any("Slide 2 of" in c.value for c in at.caption)
    at.button(key="present_prev_dashboard").click().run()
    assert any("Slide 1 of" in c.value for c in at.caption)
    for _ in range(3):  # the last slide switches the cost to measured time
        at.button(key="present_next_dashboard").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.segmented_control(key="dash_axis").value == "latency_ms"
    assert "time per input (ms)" == _chart(at)["layout"]["xaxis"]["title"]["text"]
    at.toggle(key="present_toggle_dashboard").set_value(False).run()
    assert not any("Slide" in c.value for c in at.caption)
    assert not any("<style>" in m.value and "font-size: 1.25rem" in m.value for m in at.markdown)
