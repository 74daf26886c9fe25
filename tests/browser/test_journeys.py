"""User journeys through the real app in Chromium (fixtures in conftest.py).

Every journey fails on a console error, an uncaught page error or a request to a host other than
127.0.0.1/localhost, and leaves a full-page screenshot in ``artifacts/journey-*.png``.
Locators go by role, label and text (what a user sees), not by layout.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]

HOME_TITLE = re.compile(r"^\s*skimviz\b", re.I)
MNIST_PAGE = re.compile(r"Skip\s*RNN\s*[—–-]+\s*MNIST\s+pixels", re.I)


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
    app.wait()
    expect(page.get_by_role("heading", name=MNIST_PAGE).first).to_be_visible()

    # Pick a digit.
    digit = page.get_by_label(re.compile(r"digit", re.I)).first
    expect(digit).to_be_visible()
    digit.click()
    page.get_by_role("option").nth(3).click()
    app.wait()

    # The map of what the model read and skipped is drawn.
    chart = page.locator('[data-testid="stPlotlyChart"], [data-testid="stVegaLiteChart"],'
                         ' [data-testid="stImage"], [data-testid="stPyplot"]').first
    expect(chart).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)

    # Start training and see it progress.
    page.get_by_role("button", name=re.compile(r"start training|train", re.I)).first.click()
    expect(page.get_by_test_id("stProgress").first).to_be_visible()
    app.screenshot("journey-mnist")
    app.assert_clean()
