"""Live training in a real browser (what AppTest cannot show: the fragment that polls the worker
thread): on the signals page a run's progress bar advances by itself, another control changed
meanwhile does not stop it, and the finished model is offered under "Model"."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLOW_MS = 180_000
DONE = re.compile(r"Trained 200 steps \(seed 0\)")


def _progress(page) -> str:
    """The progress bar's text, or "done" once the run's result is shown."""
    if page.get_by_text(DONE).count():
        return "done"
    bar = page.get_by_test_id("stProgress")
    return bar.inner_text(timeout=2_000) if bar.count() else ""


def test_a_live_run_progresses_by_itself_and_survives_other_clicks(app):
    page = app.open("/skip-rnn-signals")
    app.wait(SLOW_MS)
    page.get_by_role("tab", name="Train your own").click()
    steps = page.get_by_role("spinbutton", name="Training steps")
    steps.fill("200")
    steps.press("Enter")
    app.wait(SLOW_MS)
    page.get_by_role("tab", name="Train your own").click()
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_test_id("stProgress").or_(page.get_by_text(DONE))).to_be_visible(
        timeout=SLOW_MS)
    first = _progress(page)
    t0 = time.monotonic()    # no click from here: only the polling fragment can change the page
    while first != "done" and _progress(page) == first and time.monotonic() - t0 < 60:
        time.sleep(0.3)
    assert first == "done" or _progress(page) != first, first
    example = page.get_by_role("spinbutton", name="Example")       # the old page stopped here
    example.fill("4")
    example.press("Enter")
    expect(page.get_by_text(DONE)).to_be_visible(timeout=SLOW_MS)   # finished, not stopped
    app.wait(SLOW_MS)
    # the page switched to the new model: the sentence under the figure is about it
    expect(page.get_by_text(re.compile(r"Your model read \d+ of the 100 samples"))).to_be_visible()
    app.screenshot("live-training-finished")
    app.assert_clean()
