"""Digit uploads on the MNIST page, in Chromium against a real ``streamlit run`` server.

* The server itself refuses an oversized upload: the uploader's 2 MiB is otherwise only checked
  in the browser. The test uploads a small PNG through the page as a user does, records the PUT
  the frontend sends (``/_stcore/upload_file/<session>/<file>``, its XSRF header and cookie), then
  sends its own PUTs to that endpoint with ``requests``, the way the frontend does (one multipart
  file): 3 MiB and just over 2 MiB are refused (413), a small one is accepted (204, so the
  refusal is the size and not the session or the XSRF token).
* A bad upload's message names the file literally and clears when another digit is picked; the
  class and index boxes then show that digit.
"""
from __future__ import annotations

import io
import re
import uuid

import numpy as np
import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MNIST_PAGE = re.compile(r"Skip\s*RNN\s*[—–-]+\s*MNIST\s+pixels", re.I)
SLOW_MS = 180_000  # the MNIST page's first run evaluates and times models: slow on 2 cores
MIB = 2**20


def _seven_png() -> bytes:
    """A dark 7 on light paper."""
    img = np.full((120, 90), 235, np.uint8)
    img[15:27, 15:75] = 30
    for r in range(27, 110):
        c = 75 - (r - 27) * 40 // 83
        img[r, max(c - 6, 0):c + 6] = 30
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _open_mnist(app):
    page = app.open("/?page=skip-rnn-mnist")  # through the root, as the share links do
    expect(page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible(timeout=SLOW_MS)
    app.wait(SLOW_MS, started_within_ms=0)
    return page


def _file_input(page):
    """The uploader's file input, inside the "Upload a digit" popover (opened first)."""
    uploader = page.get_by_test_id("stFileUploader")
    if not uploader.count():
        page.get_by_role("button", name=re.compile(r"upload a digit", re.I)).click()
    return uploader.locator("input[type=file]")


def test_server_refuses_an_oversized_upload(app):
    page = _open_mnist(app)
    with page.expect_request(lambda r: r.method == "PUT" and "/_stcore/upload_file/" in r.url,
                             timeout=SLOW_MS) as put:
        _file_input(page).set_input_files(
            {"name": "seven.png", "mimeType": "image/png", "buffer": _seven_png()})
    app.wait(SLOW_MS)
    expect(page.get_by_role("figure", name=re.compile(r"the input: your uploaded image", re.I))
           ).to_be_visible(timeout=SLOW_MS)

    sent = put.value
    assert sent.response() is not None and sent.response().status == 204
    base = sent.url.rsplit("/", 1)[0]  # .../_stcore/upload_file/<session id>
    headers = {k: v for k, v in sent.all_headers().items() if k.lower() == "x-xsrftoken"}
    assert headers, "the frontend sent no XSRF header"
    cookies = {c["name"]: c["value"] for c in page.context.cookies(app.server.url)}
    http = requests.Session()
    http.trust_env = False  # never through a proxy: the server is on 127.0.0.1

    def upload(n_bytes: int) -> int:
        resp = http.put(f"{base}/{uuid.uuid4()}", headers=headers, cookies=cookies, timeout=120,
                        files={"file": ("big.png", b"\0" * n_bytes, "image/png")})
        return resp.status_code

    assert upload(3 * MIB) == 413             # refused from its Content-Length
    assert upload(2 * MIB + 200_000) == 413   # within the multipart margin: refused by size
    assert upload(1024) == 204                # same session and token: only the size differs
    app.assert_clean()


def test_bad_upload_message_clears_and_boxes_follow_the_digit(app):
    page = _open_mnist(app)
    _file_input(page).set_input_files(
        {"name": "my_best__digit__.png", "mimeType": "image/png", "buffer": b"not an image"})
    app.wait(SLOW_MS)
    alert = page.get_by_role("alert").filter(has_text="cannot be used")
    expect(alert).to_be_visible(timeout=SLOW_MS)
    expect(alert).to_contain_text("“my_best__digit__.png”")  # literally: no emphasis
    expect(alert).to_contain_text("only PNG and JPEG")
    expect(alert.locator("em, strong")).to_have_count(0)
    assert "BytesIO" not in alert.inner_text()

    page.get_by_role("button", name=re.compile(r"^random digit$", re.I)).click()
    app.wait(SLOW_MS)
    expect(page.get_by_role("alert").filter(has_text="cannot be used")).to_have_count(0)
    figure = page.get_by_role("figure", name=re.compile(r"the input: validation digit #\d+"))
    expect(figure).to_be_visible(timeout=SLOW_MS)
    m = re.search(r"#(\d+) \(a (\d)\)", figure.get_attribute("aria-label") or "")
    assert m, figure.get_attribute("aria-label")
    expect(page.get_by_role("spinbutton", name=re.compile(r"digit index", re.I))
           ).to_have_value(m.group(1))
    expect(page.get_by_role("combobox", name=re.compile(r"digit class", re.I))
           ).to_have_value(m.group(2))
    expect(page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("journey-upload-error-cleared")
    app.assert_clean()
