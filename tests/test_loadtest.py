"""The classroom load test (deploy/loadtest.py) runs end to end on a small class: a real server,
students at the websocket level editing text and moving θ, one training all along; it reports
the times, no errors, and the memory readings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_a_small_class_gets_its_figures_and_a_report(tmp_path):
    out = tmp_path / "report.json"
    r = subprocess.run([sys.executable, str(ROOT / "deploy" / "loadtest.py"), "--students", "2",
                        "--trainings", "1", "--seconds", "12", "--settle", "1", "--think", "0.5",
                        "1", "--classes", "2", "--json", str(out)], capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["errors"] == [] and rep["server_log_tracebacks"] == 0, rep
    for page in ("skim-rnn-text", "skip-rnn-mnist"):
        t = rep[page]["to_figure"]
        assert t["n"] >= 1 and 0 < t["p50_s"] <= t["p95_s"] <= t["max_s"] < 60, rep
    assert rep["trainings_started"] >= 1 and rep["trainings_seen"][0], rep
    for k in ("rss_idle_mib", "rss_loaded_mib", "rss_after_close_mib"):
        assert rep[k]["server"] > 50
    assert rep["rss_after_vs_idle"] > 0
    (second,) = rep["next_classes"]                        # a second class on the same server
    assert second["errors"] == 0 and second["skim-rnn-text"]["n"] >= 1, rep
    assert second["rss_after_close_mib"]["server"] > 50
