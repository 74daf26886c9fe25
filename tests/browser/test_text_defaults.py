"""The text pages' default views in Chromium, on the shipped models: the mechanism is visible at
first sight (read and skimmed words; words leaving at several layers), no metric is cut to "…"
at 1280 px, presentation mode keeps the sidebar and the θ slider, and the latency panel's three
numbers agree with its sentence."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SLOW_MS = 180_000


def _need(name: str) -> None:
    if not (REPO_ROOT / "pretrained" / name).is_dir():
        pytest.skip(f"needs the shipped {name}")


def _no_truncated_metrics(page) -> None:
    """Every metric value and label is shown whole (Streamlit cuts long ones with an ellipsis:
    the element is then wider inside than its box)."""
    cut = page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')]
        .filter(e => e.scrollWidth > e.clientWidth + 1 || e.innerText.includes('…'))
        .map(e => e.innerText)""")
    assert cut == [], cut


def test_skim_default_reads_and_skims_and_the_latency_sentence_agrees(app):
    _need("skim-lstm-sst2")
    page = app.open("/?page=skim-rnn-text")
    strip = page.locator(".skimviz-tokens").first
    expect(strip.locator("span").first).to_be_visible(timeout=SLOW_MS)
    app.wait(SLOW_MS)
    read = strip.locator("span.skimviz-read").count()
    skim = strip.locator("span.skimviz-skim").count()
    assert read >= 2 and skim >= 2, (read, skim)            # both states at first sight
    _no_truncated_metrics(page)
    app.screenshot("defaults-skim")

    page.get_by_role("tab", name="Time").click()
    panel = page.locator('[data-testid="stTabPanel"]:visible')
    values = panel.locator('[data-testid="stMetricValue"]')
    expect(values).to_have_count(3)
    dense, masked, skipped = (float(v.inner_text().split()[0]) for v in values.all())
    sentence = panel.get_by_text(re.compile(r"^Skipping for real")).inner_text()
    assert f"({skipped:.2f} ms vs {dense:.2f} ms)" in sentence
    assert f"{masked:.2f} ms" in sentence
    if skipped * 1.1 < dense:
        assert "faster" in sentence
    elif skipped > dense * 1.1:
        assert "slower" in sentence

    page.get_by_text("Present", exact=True).click()
    app.wait(SLOW_MS)
    expect(page.get_by_text(re.compile(r"Slide 1 of \d"))).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_be_visible()       # navigation stays
    expect(page.get_by_role("slider", name=re.compile(r"skim threshold", re.I))).to_be_visible()
    app.screenshot("defaults-skim-present")
    app.assert_clean()


def test_transkimmer_default_drops_words_at_several_layers(app):
    _need("transkimmer-minilm-sst2")
    page = app.open("/?page=transkimmer-text")
    strip = page.locator(".skimviz-tk-tokens").first
    expect(strip.locator("span.skimviz-tk").first).to_be_visible(timeout=SLOW_MS)
    app.wait(SLOW_MS)
    classes = strip.locator("span.skimviz-tk").evaluate_all(
        "els => els.map(e => [...e.classList].find(c => /^skimviz-tk-(L\\d+|kept)$/.test(c)))")
    layers = {c for c in classes if c and c.startswith("skimviz-tk-L")}
    assert len(layers) >= 2, classes                          # words leave at several layers
    _no_truncated_metrics(page)
    app.screenshot("defaults-transkimmer")
    app.assert_clean()
