"""Helpers shared by the Streamlit AppTest files (test_app*.py): open a page of app.py, read its
metrics, charts and warnings, decode plotly's typed arrays."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
TIMEOUT = 120  # seconds per script run: a 2-core machine shared with trainings


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def open_page(page: str) -> AppTest:
    """The app run once (home), then switched to ``page`` (a path under pages/), both without
    an exception."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    at.switch_page(page).run()
    no_exception(at)
    return at


def use_pretrained(monkeypatch, folder: Path) -> Path:
    """Point the app (``SKIMVIZ_PRETRAINED_DIR``) at ``folder`` for one test."""
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(folder))
    return folder


def block(at: AppTest, cls: str) -> str:
    """The one Markdown element holding an HTML block ``class="<cls>"`` (a page's coloured
    text)."""
    found = [m.value for m in at.markdown if f'class="{cls}"' in m.value]
    assert len(found) == 1, [m.value[:80] for m in at.markdown]
    return found[0]


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; metrics: {[m.label for m in at.metric]}"
    return found[0]


def chart(at: AppTest, key: str) -> dict:
    """The plotly spec of the one chart whose element id ends with ``-key``."""
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(charts) == 1, f"chart {key!r}: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(charts[0].proto.spec)


def array(v) -> np.ndarray:
    """A plotly JSON array: a plain list or a typed array {dtype, bdata, shape}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")])
        return a
    return np.asarray(v, dtype=float)


def warnings(at: AppTest) -> str:
    return " | ".join(w.value for w in at.warning)
