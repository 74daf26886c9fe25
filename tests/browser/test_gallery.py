"""The page gallery (``scripts/gallery.py``) in CI: every page's default view at 1280 px, plus one
page at 768 px (presentation mode, which ``make gallery`` also shoots, is covered in CI by each
page's AppTests and the journeys: shooting it here doubled this test's time); any Streamlit exception, error alert or "Page not
found" fails. Runs the script as a subprocess (it serves the app itself). The screenshots stay in
``artifacts/gallery-ci/`` (open its ``index.html``; the 768 px one in ``768/``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app_pages import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
GALLERY = REPO_ROOT / "scripts" / "gallery.py"
OUT = REPO_ROOT / "artifacts" / "gallery-ci"


def _gallery(chromium: str, *args: str, app: str | None = None, timeout: int = 1500):
    env = dict(os.environ, SKIMVIZ_CHROMIUM=chromium)
    if app:
        env["SKIMVIZ_APP"] = app
    return subprocess.run([sys.executable, str(GALLERY), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(1800)
def test_every_page_renders_without_errors(chromium_executable):
    shutil.rmtree(OUT, ignore_errors=True)  # no screenshot from an earlier run may count
    wide = _gallery(chromium_executable, "--out", str(OUT), "--widths", "1280", "--no-present")
    assert wide.returncode == 0, f"gallery failed:\n{wide.stdout}\n{wide.stderr}"
    narrow = _gallery(chromium_executable, "--out", str(OUT / "768"), "--widths", "768",
                      "--pages", "skip-rnn-mnist", "--no-present")
    assert narrow.returncode == 0, f"gallery failed:\n{narrow.stdout}\n{narrow.stderr}"
    expected = [f"{p.name}-1280.png" for p in PAGES] + ["768/skip-rnn-mnist-768.png"]
    missing = [n for n in expected if not (OUT / n).is_file()]
    assert not missing, f"no screenshot for {missing}"
    index = (OUT / "index.html").read_text(encoding="utf-8")
    assert all(f'src="{p.name}-1280.png"' in index for p in PAGES)


@pytest.mark.timeout(600)
def test_gallery_fails_on_a_broken_page(chromium_executable, tmp_path):
    """The gallery must notice a page that raises or shows an error (else it proves nothing)."""
    app = tmp_path / "broken_app.py"
    app.write_text('import streamlit as st\nst.title("Broken")\nst.error("no data")\n'
                   'raise RuntimeError("boom")\n')
    res = _gallery(chromium_executable, "--out", str(tmp_path / "out"), "--widths", "800",
                   "--pages", "home", "--no-present", app=str(app), timeout=500)
    assert res.returncode == 1, f"expected a failure:\n{res.stdout}\n{res.stderr}"
    assert "a Streamlit exception" in res.stderr and "an error alert" in res.stderr
    assert (tmp_path / "out" / "home-800.png").is_file()
