"""The replicated deployment (``deploy/serve.py``): two app processes behind Debian's nginx with
sticky sessions. Through nginx: new browsers spread over both replicas and each stays on its
own; two students (one per replica) each upload a digit and see it classified; when one replica
dies, the other student's session goes on and the first one's next page load is served by the
living replica. Needs nginx (`apt-get install nginx-light`): skipped without it, required in CI
(``SKIMVIZ_REQUIRE_NGINX=1``, set by ``.ci/run``)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect
from test_upload_journeys import MNIST_PAGE, SLOW_MS, _file_input, _seven_png

from skimviz.training.distributed import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def deployment():
    """Two replicas behind nginx, started for one test (a test may kill a replica)."""
    if not Path(NGINX).is_file():
        if os.environ.get("SKIMVIZ_REQUIRE_NGINX") == "1":
            pytest.fail("nginx is required (SKIMVIZ_REQUIRE_NGINX=1) but not installed")
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "deploy" / "serve.py"),
                             "--replicas", "2", "--port", str(free_port()), "--nginx", NGINX],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while not any(line.startswith("ready ") for line in lines):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            pytest.fail("deploy/serve.py did not start:\n" + "".join(lines))
        time.sleep(0.5)
    ready = next(line for line in lines if line.startswith("ready ")).split()
    url = ready[1]
    replicas = ready[3:ready.index("pids")]
    pids = [int(p) for p in ready[ready.index("pids") + 1:ready.index("logs")]]
    yield {"url": url, "replicas": replicas, "pids": pids, "logs": Path(ready[-1]), "proc": proc}
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def _replica(url: str, route=None) -> str:
    cookies = {"skimviz_route": route} if route else None
    r = requests.get(url + "/_stcore/health", cookies=cookies, timeout=10)
    assert r.status_code == 200
    return r.headers["X-Skimviz-Replica"]


def _route_per_replica(url: str) -> dict:
    """A cookie value that nginx sends to each replica (address -> value)."""
    found = {}
    for i in range(200):
        found.setdefault(_replica(url, f"key{i}"), f"key{i}")
        if len(found) == 2:
            return found
    raise AssertionError(f"200 keys all went to {found}")


def test_new_browsers_spread_and_each_stays_on_its_replica(deployment):
    url = deployment["url"]
    r = requests.get(url + "/_stcore/health", timeout=10)
    assert "skimviz_route=" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    want = {u.replace("http://", "") for u in deployment["replicas"]}
    for attempt in range(3):                          # no cookie: a fresh key each time
        seen = {_replica(url) for _ in range(40)}
        if seen == want:
            break
        # a replica nginx saw fail once is left out for fail_timeout (10 s): on a loaded machine
        # a first request can time out; try again after that
        time.sleep(11)
    errors = (deployment["logs"] / "error.log").read_text(errors="replace")[-2000:]
    assert seen == want, f"nginx error.log:\n{errors}"
    for address, route in _route_per_replica(url).items():
        assert {_replica(url, route) for _ in range(10)} == {address}


@dataclass
class _Nginx:
    """What the ``app`` fixture needs of a server: its URL and a log to show on failure."""
    url: str
    logs: Path

    def log_tail(self, lines: int = 40) -> str:
        text = "\n".join(p.read_text(errors="replace") for p in self.logs.glob("*.log"))
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def streamlit_server(deployment):
    """The ``app`` fixture's server here: nginx in front of the replicas."""
    return _Nginx(deployment["url"], deployment["logs"])


def _student(app, route: str, page=None):
    """``app`` (or a second session like it on ``page``) on the MNIST page, routed by ``route``."""
    session = app if page is None else type(app)(page, app.server, app.watch)
    session.page.context.add_cookies([{"name": "skimviz_route", "value": route,
                                       "url": app.server.url}])
    session.open("/?page=skip-rnn-mnist")
    expect(session.page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible(
        timeout=SLOW_MS)
    session.wait(SLOW_MS, started_within_ms=0)
    return session


def _upload_and_see_it(app, name: str) -> None:
    _file_input(app.page).set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": _seven_png()})
    app.wait(SLOW_MS)
    expect(app.page.get_by_role("figure", name=re.compile(r"your uploaded image"))).to_be_visible(
        timeout=SLOW_MS)
    expect(app.page.get_by_text(f"Your image “{name}”")).to_be_visible()
    expect(app.page.get_by_test_id("stException")).to_have_count(0)


@pytest.mark.timeout(600)
def test_two_students_on_two_replicas_and_one_replica_dies(deployment, app, new_context):
    url = deployment["url"]
    (addr_a, route_a), (addr_b, route_b) = sorted(_route_per_replica(url).items())
    a = _student(app, route_a)
    b = _student(app, route_b, new_context(viewport={"width": 1280, "height": 900}).new_page())
    _upload_and_see_it(a, "seven-a.png")
    _upload_and_see_it(b, "seven-b.png")

    # replica A dies: B's session goes on; A's next page load is served by B's replica
    addresses = [r.replace("http://", "") for r in deployment["replicas"]]
    os.killpg(deployment["pids"][addresses.index(addr_a)], signal.SIGKILL)
    b.page.get_by_role("button", name=re.compile(r"^random digit$", re.I)).click()
    b.wait(SLOW_MS)
    expect(b.page.get_by_role("figure", name=re.compile(r"validation digit #\d+"))
           ).to_be_visible(timeout=SLOW_MS)
    assert _replica(url, route_a) == addr_b
    a.open("/?page=skip-rnn-mnist")
    expect(a.page.get_by_role("heading", level=1, name=MNIST_PAGE)).to_be_visible(
        timeout=SLOW_MS)
    a.wait(SLOW_MS, started_within_ms=0)
    expect(a.page.get_by_test_id("stException")).to_have_count(0)
    app.screenshot("deploy-after-a-replica-died")
