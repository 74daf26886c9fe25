"""User journeys through the real app in Chromium (fixtures in conftest.py).

Every journey fails on a console error, an uncaught page error or a request to a host other than
127.0.0.1/localhost, and leaves full-page screenshots in ``artifacts/journey-*.png``.
Locators go by role, accessible name and text (what a user sees), not by layout.

What the pages must keep exposing for these journeys:
- home: a heading starting with "skimviz"; a link named "Skip RNN — MNIST pixels" (navigation
  and/or page link);
- MNIST page: an h1 "Skip RNN — MNIST pixels"; a combobox "Digit class" with options "0".."9";
  a figure (``st.plotly_chart(..., alt=...)``) named "the input: ... (a <label>)" and one named
  "map of used (red) and skipped (blue) pixels"; a number input "Training steps"; a button
  "Start training"; a progress bar whose text reads "step <n>/<total> ..."; the message
  "Trained <n> steps ..." when done; a radio "My session's model ...".
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]

REPO_ROOT = Path(__file__).resolve().parents[2]
HOME_TITLE = re.compile(r"^\s*skimviz\b", re.I)
MNIST_PAGE = re.compile(r"Skip\s*RNN\s*[—–-]+\s*MNIST\s+pixels", re.I)
USED_MAP = re.compile(r"map of used .*skipped", re.I)
#: The MNIST page times both models and evaluates on its first run: slow on a busy 2-core box.
SLOW_MS = 180_000
LIVE_STEPS = 30


def _shipped_checkpoint() -> bool:
    base = Path(os.environ.get("SKIMVIZ_PRETRAINED_DIR") or REPO_ROOT / "pretrained")
    return (base / "skip-gru-mnist").is_dir()


def _type_text(app, page, text: str) -> None:
    """Type ``text`` into the page's "Your text" box and submit it (Ctrl+Enter)."""
    box = page.get_by_role("textbox", name=re.compile(r"your text", re.I))
    box.fill(text)
    box.press("Control+Enter")
    app.wait(SLOW_MS)


def _assert_shown_as_text(page, area, *words: str) -> None:
    """Typed ``<script>...</script>`` is shown as text in ``area`` (each of ``words`` visible),
    never as an element, and never ran (``window.pwned`` stays undefined)."""
    for w in words:
        expect(area).to_contain_text(w, timeout=SLOW_MS)
    expect(area.locator("script")).to_have_count(0)
    assert page.evaluate("() => window.pwned === undefined")


def test_home_page(app):
    page = app.open()
    expect(page.get_by_role("heading", name=HOME_TITLE).first).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # The way to the MNIST page is there (sidebar navigation and/or a page link).
    expect(page.get_by_role("link", name=MNIST_PAGE).first).to_be_attached()
    app.screenshot("journey-home")
    app.assert_clean()


@pytest.mark.slow
def test_skip_rnn_mnist_journey(app):
    page = app.open()
    expect(page.get_by_role("heading", name=HOME_TITLE).first).to_be_visible()

    # Go to the MNIST page through a link, as a user would.
    page.get_by_role("link", name=MNIST_PAGE).filter(visible=True).first.click()
    expect(page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible()
    app.wait(SLOW_MS)

    # Pick a digit: a class, then the page shows one validation digit of it.
    page.get_by_role("combobox", name=re.compile(r"digit class", re.I)).click()
    page.get_by_role("option", name="3", exact=True).click()
    app.wait(SLOW_MS)
    expect(page.get_by_role("figure", name=re.compile(r"the input: .*\(a 3\)", re.I))
           ).to_be_visible(timeout=SLOW_MS)

    # The map of used and skipped pixels, from the shipped model (when it is in the repo).
    if _shipped_checkpoint():
        expect(page.get_by_role("figure", name=USED_MAP)).to_be_visible(timeout=SLOW_MS)
    else:
        expect(page.get_by_role("alert").filter(has_text="not available").first).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-mnist-digit")

    # Train a small model in the session and watch it progress (its own tab).
    tab = page.get_by_role("tab", name=re.compile(r"train your own", re.I))
    if tab.count():  # without the shipped model the training is not in a tab
        tab.click()
    steps = page.get_by_role("spinbutton", name=re.compile(r"training steps", re.I))
    steps.fill(str(LIVE_STEPS))
    steps.press("Enter")
    app.wait(SLOW_MS)
    page.get_by_role("button", name=re.compile(r"start training", re.I)).click()
    progress = page.get_by_test_id("stProgress")
    expect(progress).to_be_visible(timeout=SLOW_MS)
    expect(progress).to_contain_text(re.compile(rf"step [1-9]\d* of {LIVE_STEPS}"),
                                     timeout=SLOW_MS)
    app.screenshot("journey-mnist-training")

    # Done: the session's model is selected and its map is drawn for the picked digit.
    expect(page.get_by_text(re.compile(rf"Trained {LIVE_STEPS} steps"))).to_be_visible(
        timeout=SLOW_MS)
    app.wait(SLOW_MS, started_within_ms=0)
    expect(page.get_by_role("radio", name=re.compile(r"my session's model", re.I))
           ).to_be_checked()
    expect(page.get_by_role("figure", name=USED_MAP)).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-mnist")
    app.assert_clean()


@pytest.mark.slow
def test_shared_link_opens_the_same_view(app):
    """A teacher's link (``/?page=skip-rnn-mnist&digit=12&theta=0.7``, the form the page's
    "Link to this view" gives) opens the MNIST page at digit #12 with θ = 0.70, and the address
    bar keeps the view."""
    page = app.open("/?page=skip-rnn-mnist&digit=12&theta=0.7&method=ig")
    expect(page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible(timeout=SLOW_MS)
    app.wait(SLOW_MS, started_within_ms=0)
    expect(page.get_by_role("spinbutton", name=re.compile(r"digit index", re.I))
           ).to_have_value("12", timeout=SLOW_MS)
    expect(page.get_by_role("figure", name=re.compile(r"the input: validation digit #12 ", re.I))
           ).to_be_visible(timeout=SLOW_MS)
    if _shipped_checkpoint():
        expect(page.get_by_role("slider", name=re.compile(r"inference threshold", re.I))
               ).to_have_attribute("aria-valuetext", "0.70", timeout=SLOW_MS)
        expect(page.get_by_role("figure", name=USED_MAP)).to_be_visible(timeout=SLOW_MS)
        page.get_by_role("tab", name=re.compile(r"^export$", re.I)).click()
        expect(page.get_by_text(re.compile(r"page=skip-rnn-mnist&digit=12&model=shipped"
                                           r"&theta=0\.70&method=ig")).first
               ).to_be_visible(timeout=SLOW_MS)
    expect(page).to_have_url(re.compile(r"/skip-rnn-mnist\?.*digit=12"), timeout=SLOW_MS)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-shared-link")
    app.assert_clean()


@pytest.mark.slow
def test_bad_link_shows_a_notice(app):
    page = app.open("/?page=skip-rnn-mnist&digit=abc&theta=5")
    expect(page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible(timeout=SLOW_MS)
    app.wait(SLOW_MS, started_within_ms=0)
    expect(page.get_by_text(re.compile(r"URL parameter digit .*ignored"))).to_be_visible(
        timeout=SLOW_MS)
    expect(page.get_by_role("spinbutton", name=re.compile(r"digit index", re.I))
           ).to_have_value("0", timeout=SLOW_MS)
    app.assert_clean()


@pytest.mark.slow
def test_deep_link_to_the_page_path(app):
    """The page's own address with parameters (``/skip-rnn-mnist?digit=7&theta=0.6``) works too
    (checked with Streamlit 1.67, also as the first request to a fresh server)."""
    page = app.open("/skip-rnn-mnist?digit=7&theta=0.6")
    expect(page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible(timeout=SLOW_MS)
    app.wait(SLOW_MS, started_within_ms=0)
    expect(page.get_by_role("spinbutton", name=re.compile(r"digit index", re.I))
           ).to_have_value("7", timeout=SLOW_MS)
    if _shipped_checkpoint():
        expect(page.get_by_role("slider", name=re.compile(r"inference threshold", re.I))
               ).to_have_attribute("aria-valuetext", "0.60", timeout=SLOW_MS)
    app.assert_clean()


DASHBOARD = re.compile(r"^\s*Trade-off dashboard\s*$", re.I)
TRADEOFF_CHART = re.compile(r"trade-off chart", re.I)


def test_dashboard_journey(app):
    """Home → the dashboard through its link: the trade-off chart is drawn (from whatever cards
    are in pretrained/); presentation mode shows the first slide and steps to the next."""
    page = app.open()
    expect(page.get_by_role("heading", name=HOME_TITLE).first).to_be_visible()
    page.get_by_test_id("stSidebarNav").get_by_role(
        "link", name=re.compile(r"Trade-off dashboard", re.I)).first.click()
    expect(page.get_by_role("heading", level=1, name=DASHBOARD)).to_be_visible()
    app.wait()
    chart = page.get_by_role("figure", name=TRADEOFF_CHART)
    expect(chart).to_be_visible()
    expect(chart.locator(".main-svg").first).to_be_attached()  # plotly drew it
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-dashboard")

    page.get_by_text("Presentation mode", exact=True).click()
    app.wait()
    expect(page.get_by_text(re.compile(r"Slide 1 of \d"))).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_be_visible()      # navigation stays
    page.get_by_role("button", name="Next").click()
    app.wait()
    expect(page.get_by_text(re.compile(r"Slide 2 of \d"))).to_be_visible()
    expect(page.get_by_role("figure", name=TRADEOFF_CHART)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/dashboard\?.*present=1"))
    app.screenshot("journey-dashboard-present")
    app.assert_clean()


SIGNALS_PAGE = re.compile(r"Skip\s*RNN\s*[—–-]+\s*signals and clips", re.I)
PLAYBACK_CHART = re.compile(r"step-by-step playback: samples read \(red\) and skipped", re.I)


def test_skip_rnn_signals_journey(app):
    """Home → the signals page through its link: the frequency task's step-by-step playback is
    drawn on the first screen with its Play button; the digit clips show their filmstrip."""
    page = app.open()
    expect(page.get_by_role("heading", name=HOME_TITLE).first).to_be_visible()
    page.get_by_role("link", name=SIGNALS_PAGE).filter(visible=True).first.click()
    expect(page.get_by_role("heading", level=1, name=SIGNALS_PAGE)).to_be_visible()
    app.wait(SLOW_MS)
    chart = page.get_by_role("figure", name=PLAYBACK_CHART)
    expect(chart).to_be_visible()
    expect(chart.locator(".main-svg").first).to_be_attached()  # plotly drew it
    expect(chart.get_by_text("▶ Play")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-signals-frequency")
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Digit clips").click()
    app.wait(SLOW_MS)
    film = page.get_by_role("figure", name=re.compile(r"filmstrip", re.I))
    expect(film).to_be_visible()
    expect(page).to_have_url(re.compile(r"/skip-rnn-signals"))
    app.screenshot("journey-signals-clips")
    app.assert_clean()


# --- Skim-RNN page -----------------------------------------------------------------------------
SKIM_PAGE = re.compile(r"Skim-RNN\s*[—–-]+\s*speed reading your text", re.I)
SKIM_LINK = re.compile(r"Skim-RNN", re.I)


@pytest.fixture(scope="module")
def skim_server(streamlit_server, tmp_path_factory):
    """A second ``streamlit run app.py`` whose ``SKIMVIZ_PRETRAINED_DIR`` holds a tiny Skim-LSTM
    text classifier and its dense twin (built like ``tests/test_app_skim.py`` builds them), so
    the journey does not depend on the checkpoints being trained for ``pretrained/``. Same
    command line as the shared server; killed (its process group) at the end."""
    import signal
    import socket
    import subprocess
    import time
    import urllib.request
    from dataclasses import replace

    from tests.test_app_skim import make_skim_checkpoints

    folder = make_skim_checkpoints(tmp_path_factory.mktemp("pretrained_skim"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = list(streamlit_server.process.args)
    for flag in ("--server.port", "--browser.serverPort"):
        cmd[cmd.index(flag) + 1] = str(port)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(PYTHONUNBUFFERED="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
               STREAMLIT_SERVER_HEADLESS="true", SKIMVIZ_PRETRAINED_DIR=str(folder))
    log_path = streamlit_server.log_path.with_name("streamlit-server-skim.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with opener.open(f"{url}/_stcore/health", timeout=3) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Skim-RNN test server did not start; log:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}", pytrace=False)
            time.sleep(0.5)
        yield replace(streamlit_server, url=url, port=port, process=proc, log_path=log_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_skim_rnn_text_journey(app, skim_server):
    """Home → the Skim-RNN page through its link: the example text is coloured (read tokens bold
    and dark, skimmed ones light blue); typed text, ``<script>`` included, is shown as text and
    coloured; θ at its lowest skims more."""
    from dataclasses import replace

    from skimviz.data.text import tokenize

    app = replace(app, server=skim_server)
    page = app.open()
    expect(page.get_by_role("heading", name=HOME_TITLE).first).to_be_visible()
    page.get_by_role("link", name=SKIM_LINK).filter(visible=True).first.click()
    expect(page.get_by_role("heading", level=1, name=SKIM_PAGE)).to_be_visible()
    app.wait(SLOW_MS)
    strip = page.locator(".skimviz-tokens")  # the main strip (not the attribution ones)
    tokens = strip.locator("span")
    expect(tokens.first).to_be_visible(timeout=SLOW_MS)
    expect(strip.locator("span.skimviz-read").first).to_have_css("font-weight", "700")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-skim-example")

    typed = '<script>window.pwned = 1</script> A warm, funny film with gorgeous leads.'
    _type_text(app, page, typed)
    expect(tokens).to_have_count(len(tokenize(typed)), timeout=SLOW_MS)
    _assert_shown_as_text(page, strip, "<", "script", "gorgeous")
    # every token is either read or skimmed; "gorgeous" is unknown to the tiny vocabulary
    n = len(tokenize(typed))
    read = strip.locator("span.skimviz-read").count()
    skim = strip.locator("span.skimviz-skim").count()
    assert read + skim == n
    expect(strip.locator("span.skimviz-unknown", has_text="gorgeous")).to_have_count(1)
    if skim:
        expect(strip.locator("span.skimviz-skim").first).to_have_css("color", "rgb(127, 178, 229)")

    slider = page.get_by_role("slider", name=re.compile(r"skim threshold", re.I))
    slider.focus()
    slider.press("Home")
    app.wait(SLOW_MS)
    expect(slider).to_have_attribute("aria-valuetext", "0.01", timeout=SLOW_MS)
    expect(strip.locator("span.skimviz-skim")).not_to_have_count(skim, timeout=SLOW_MS)
    assert strip.locator("span.skimviz-skim").count() > skim
    expect(page).to_have_url(re.compile(r"/skim-rnn-text\?.*theta=0\.01"))
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-skim-typed")
    app.assert_clean()


TK_PAGE = re.compile(r"Transkimmer\s*[—–-]+\s*layer-wise skimming", re.I)


def test_transkimmer_journey(app):
    """Home → the Transkimmer page: the example's words are coloured by the layer that pruned
    them; typed text, ``<script>`` included, shows as text, one span per word."""
    base = Path(os.environ.get("SKIMVIZ_PRETRAINED_DIR") or REPO_ROOT / "pretrained")
    if not (base / "transkimmer-minilm-sst2").is_dir():
        pytest.skip("needs the shipped transkimmer-minilm-sst2 (the page's default)")
    page = app.open()
    expect(page.get_by_role("heading", name=HOME_TITLE).first).to_be_visible()
    page.get_by_test_id("stSidebarNav").get_by_role(
        "link", name=re.compile(r"Transkimmer", re.I)).first.click()
    expect(page.get_by_role("heading", level=1, name=TK_PAGE)).to_be_visible()
    app.wait(SLOW_MS)
    words = page.locator(".skimviz-tk-tokens").locator("span.skimviz-tk")
    expect(words.first).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-transkimmer-example")

    typed = "<script>window.pwned = 1</script> a gorgeous , witty film ."
    _type_text(app, page, typed)
    _assert_shown_as_text(page, page.locator(".skimviz-tk-tokens"), "script", "witty")
    # every word is either kept to the end or pruned before some layer
    n = words.count()
    strip = page.locator(".skimviz-tk-tokens")  # the main strip (not the attribution one)
    kept = strip.locator("span.skimviz-tk-kept").count()
    pruned = strip.locator("span.skimviz-tk[class*='skimviz-tk-L']").count()
    assert n > 5 and kept + pruned == n
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-transkimmer-typed")
    # MiniLM (the default): WordPiece pieces are joined back into the typed words
    _type_text(app, page, "An unforgettably gorgeous film.")
    expect(strip).to_contain_text("unforgettably", timeout=SLOW_MS)
    assert strip.locator("span.skimviz-tk").count() == 5      # 5 words, not 9 pieces
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-transkimmer-minilm")
    app.assert_clean()
