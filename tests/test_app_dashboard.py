"""AppTest of the "Trade-off dashboard" page: it renders from whatever checkpoints exist (the real
``pretrained/`` folder, and a temporary one of dry-run checkpoints), a new checkpoint appears as a
new point without code changes, latency is measured on demand, and presentation mode works."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
PAGE = "pages/dashboard.py"
TIMEOUT = 120


def _dry_run(out: Path, work: Path, name: str, dense: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "skimviz", "train", "mnist", "--dry-run", "--hidden", "8",
           "--side", "7", "--name", name, "--out", str(out), "--work", str(work)]
    return subprocess.Popen(cmd + (["--dense"] if dense else []), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def dry_checkpoints(tmp_path_factory) -> Path:
    """A skip and a dense dry-run checkpoint (8 units, 7×7 digits) and a spare third one kept
    aside (``extra/``) for the "new checkpoint" test."""
    base = tmp_path_factory.mktemp("dash")
    out, extra, work = base / "pretrained", base / "extra", base / "work"
    procs = [_dry_run(out, work, "tiny-skip"), _dry_run(out, work, "tiny-dense", dense=True),
             _dry_run(extra, work, "tiny-skip-2")]
    for p in procs:
        log, _ = p.communicate(timeout=300)
        assert p.returncode == 0, log
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


def test_renders_with_the_real_pretrained_folder(monkeypatch):
    at = _page(monkeypatch, None)
    assert at.title[0].value == "Trade-off dashboard"
    spec = _chart(at)
    from skimviz import checkpoint
    shipped = checkpoint.list_pretrained()
    ours = _ours(spec)
    for name in shipped:
        assert name in ours, (name, ours)
    # the paper's points are there, with their table number
    paper = [t for t in spec["data"] if (t.get("meta") or {}).get("source") == "paper"]
    assert paper and all("paper Table 3" in s for t in paper for s in t["text"])
    assert len(at.caption) >= 2  # the chart's and the table's captions


def test_a_new_checkpoint_appears_as_a_new_point(monkeypatch, dry_checkpoints):
    out = dry_checkpoints / "pretrained"
    at = _page(monkeypatch, out)
    ours = _ours(_chart(at))
    assert ours == {"tiny-dense": "dense", "tiny-skip": "skip"}
    # dry-run cards state a target that is not reached: its note is shown
    infos = " ".join(i.value for i in at.info)
    assert "tiny-skip" in infos and "not reached" in infos
    assert any("dry run" in w.value for w in at.warning)
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


def test_latency_on_demand(monkeypatch, dry_checkpoints):
    at = _page(monkeypatch, dry_checkpoints / "pretrained")
    at.button(key="dash_measure").click().run()
    assert not at.exception
    at.radio(key="dash_axis").set_value("latency_ms").run()
    assert not at.exception
    spec = _chart(at)
    xs = [x for t in spec["data"] if (t.get("meta") or {}).get("source") == "ours"
          for x in t["x"]]
    assert len(xs) == 2 and all(x > 0 for x in xs)
    assert any("measured latency" in c.value for c in at.caption)


def test_latency_axis_without_measurement_falls_back(monkeypatch, dry_checkpoints):
    at = _page(monkeypatch, dry_checkpoints / "pretrained")
    at.radio(key="dash_axis").set_value("latency_ms").run()
    assert not at.exception
    assert any("No latency measured yet" in i.value for i in at.info)


def test_empty_folder_shows_the_paper_alone(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    assert any("No checkpoint is shipped yet" in i.value for i in at.info)
    spec = _chart(at)
    assert {(t.get("meta") or {}).get("source") for t in spec["data"]} == {"paper"}


def test_presentation_mode_from_the_url(monkeypatch, dry_checkpoints):
    at = _page(monkeypatch, dry_checkpoints / "pretrained", {"present": "1"})
    assert at.toggle(key="present_toggle_dashboard").value is True
    assert any("Slide 1 of" in c.value for c in at.caption)
    assert any("<style>" in m.value for m in at.markdown)
    at.button(key="present_next_dashboard").click().run()
    assert any("Slide 2 of" in c.value for c in at.caption)
    at.button(key="present_prev_dashboard").click().run()
    assert any("Slide 1 of" in c.value for c in at.caption)
    at.toggle(key="present_toggle_dashboard").set_value(False).run()
    assert not any("Slide" in c.value for c in at.caption)
    assert not any("<style>" in m.value for m in at.markdown)
