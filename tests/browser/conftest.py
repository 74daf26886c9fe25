"""Real-browser test infrastructure: the app served by ``streamlit run`` and driven by Debian's
Chromium through Playwright's sync API.

Fixtures
--------
``streamlit_server`` (session)
    Starts ``python -m streamlit run app.py`` on a free 127.0.0.1 port (its own process group),
    waits for ``/_stcore/health``, yields a :class:`StreamlitServer` (``.url``, ``.log_path``,
    ``.log_tail()``) and kills the process group at the end. Server output goes to
    ``artifacts/streamlit-server.log``. The same start is :func:`launch_app` / :func:`stop_app`
    (``scripts/gallery.py`` serves the app through them).
``fresh_streamlit_server`` (function)
    The same, started for one test (log ``artifacts/streamlit-server-<test>.log``): for what only
    happens on a server's first request. Override ``streamlit_server`` with it in a test module
    and ``app`` uses it.
``pretrained_unchanged`` (session, autouse)
    Hashes every file under ``pretrained/`` before the browser tests and fails the session if
    any was added, removed or changed after them (shipped checkpoints are read-only).
``app_page`` (function)
    A fresh browser context + page, whose console errors, page errors and requests to any host
    other than 127.0.0.1/localhost are recorded (outside requests are also aborted, so nothing
    leaves the machine). The test fails if any were seen: call ``page_watch.assert_clean()`` at
    the end of a journey; the fixture checks again at teardown. A failing test also leaves
    ``artifacts/<test>-FAILED.png`` and prints the server log's tail.
``page_watch`` (function)
    The :class:`PageWatch` of ``app_page``.
``app`` (function)
    An :class:`AppSession` over ``app_page``: ``app.open(path)``, ``app.wait()`` (for the rerun
    an action triggered), ``app.screenshot(name)`` (full-page ``artifacts/<name>.png``),
    ``app.assert_clean()``; locators through ``app.page``.

Browser
-------
``/usr/bin/chromium`` (Debian's package; override with ``SKIMVIZ_CHROMIUM``) is launched through
pytest-playwright's ``browser`` fixture, whose launch arguments are set here
(``browser_type_launch_args``); Playwright never downloads a browser. Each launch gets a fresh,
temporary user data dir (Playwright creates one per ``launch()`` and deletes it at close; it
refuses a ``--user-data-dir`` argument) and every test a fresh incognito context.
pytest-playwright's options still apply: ``--headed``, ``--slowmo``, ``--tracing on``,
``--video on``, ``--screenshot on``, ``--output DIR``.

When Chromium is missing the browser tests are skipped, unless ``SKIMVIZ_REQUIRE_BROWSER=1``
(set by ``.ci/run``): then they fail.

Environment: ``SKIMVIZ_APP`` (the app script, default ``app.py``), ``SKIMVIZ_CHROMIUM``,
``SKIMVIZ_REQUIRE_BROWSER``.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Request, expect

from skimviz.training.distributed import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts"
APP_SCRIPT = os.environ.get("SKIMVIZ_APP", "app.py")  # relative to the repo root, or absolute
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Generous: the CI machine has 2 cores, often shared with trainings.
TIMEOUT_S = 60
TIMEOUT_MS = TIMEOUT_S * 1000
SERVER_START_TIMEOUT_S = 180

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--disable-dev-shm-usage",
]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: URLs the browser may load without leaving the machine.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "devtools"}
#: Matches every http(s)/ws(s) URL whose host is not local; sent to Playwright as a regex so
#: local traffic is not routed through Python at all.
OUTSIDE_URL = re.compile(
    r"^(?:https?|wss?|ftp)://(?!(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:[/?#]|$))"
)

#: Streamlit's base-path discovery: http://127.0.0.1:PORT/<page>/_stcore/(health|host-config).
BASE_PATH_PROBE = re.compile(r"^https?://[^/]+/[^?#]+/_stcore/(?:health|host-config)(?:[?#]|$)")

expect.set_options(timeout=TIMEOUT_MS)


def require_browser() -> bool:
    return os.environ.get("SKIMVIZ_REQUIRE_BROWSER", "").strip().lower() not in (
        "", "0", "false", "no", "off")


def browser_unavailable(reason: str) -> None:
    """Skip locally; fail when the run requires the browser tests (CI)."""
    if require_browser():
        pytest.fail(f"{reason} (SKIMVIZ_REQUIRE_BROWSER is set, so this is a failure; "
                    "install it with `apt-get install -y chromium`)", pytrace=False)
    pytest.skip(f"{reason}; install it with `apt-get install -y chromium` "
                "(or set SKIMVIZ_CHROMIUM) to run the browser tests")


def is_local_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


# --------------------------------------------------------------------------------------------
# Browser: Debian's Chromium through pytest-playwright's fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("SKIMVIZ_CHROMIUM") or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        browser_unavailable(f"Chromium not found at {path}")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: Dict, browser_name: str,
                             chromium_executable: str) -> Dict:
    """pytest-playwright's launch arguments, pointed at Debian's Chromium."""
    if browser_name != "chromium":
        pytest.skip("the skimviz browser tests drive Debian's Chromium only")
    headless = browser_type_launch_args.get("headless", True)
    args = [a for a in CHROMIUM_ARGS if headless or not a.startswith("--headless")]
    return {
        **browser_type_launch_args,
        "executable_path": chromium_executable,
        "args": args,
        "headless": headless,
        "chromium_sandbox": False,
        "timeout": TIMEOUT_MS,
        # Chromium must not pick up a proxy from the environment (it only talks to 127.0.0.1).
        "env": {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
    }


# --------------------------------------------------------------------------------------------
# The app: `streamlit run app.py` on a free local port
# --------------------------------------------------------------------------------------------

@dataclass
class StreamlitServer:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the server if pytest dies without running its teardown."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _health_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{url}/_stcore/health", timeout=3) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServerStartError(RuntimeError):
    """`streamlit run` exited or did not answer in time (the message ends with its log)."""


def launch_app(log_path: Path, script: str = APP_SCRIPT,
               timeout_s: float = SERVER_START_TIMEOUT_S) -> StreamlitServer:
    """Start ``python -m streamlit run <script>`` on a free 127.0.0.1 port, headless, without
    usage statistics, file watcher or run-on-save, in its own process group (stop it with
    :func:`stop_app`), and wait for ``/_stcore/health``. Output goes to ``log_path``.
    Also used by ``scripts/gallery.py``, so the gallery serves the app exactly as the tests do.
    """
    path = Path(script)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        raise ServerStartError(f"app script {path} does not exist")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(PYTHONUNBUFFERED="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
               STREAMLIT_SERVER_HEADLESS="true")
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(path),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", "127.0.0.1",
        "--browser.serverPort", str(port),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    server = StreamlitServer(url=url, port=port, process=proc, log_path=log_path)
    deadline = time.monotonic() + timeout_s
    while not _health_ok(url):
        problem = None
        if proc.poll() is not None:
            problem = (f"`streamlit run` exited with code {proc.returncode} before answering "
                       "/_stcore/health")
        elif time.monotonic() > deadline:
            problem = f"{url}/_stcore/health did not answer within {timeout_s:.0f}s"
        if problem:
            stop_app(server)
            raise ServerStartError(f"{problem}; log:\n{server.log_tail()}")
        time.sleep(0.5)
    return server


def stop_app(server: StreamlitServer) -> None:
    _kill_group(server.process)


@contextmanager
def _served(log_name: str) -> Iterator[StreamlitServer]:
    try:
        server = launch_app(ARTIFACTS / log_name)
    except ServerStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        stop_app(server)


@pytest.fixture(scope="session")
def streamlit_server() -> Iterator[StreamlitServer]:
    """The app, served once for the whole browser session (once per pytest-xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    with _served(f"streamlit-server-{worker}.log" if worker else "streamlit-server.log") as server:
        yield server


@pytest.fixture
def fresh_streamlit_server(request: pytest.FixtureRequest) -> Iterator[StreamlitServer]:
    """A server started for this test alone (for what only happens on a server's first
    request). A test module uses it for ``app`` by overriding ``streamlit_server`` with it."""
    with _served(f"streamlit-server-{_slug(request.node.name)}.log") as server:
        yield server


# --------------------------------------------------------------------------------------------
# pretrained/ is read-only: the browser suite must leave it exactly as it found it
# --------------------------------------------------------------------------------------------

PRETRAINED = REPO_ROOT / "pretrained"


def _tree_hashes(root: Path) -> Dict[str, str]:
    """sha256 of every file under ``root``, by path relative to it."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out[path.relative_to(root).as_posix()] = digest.hexdigest()
    return out


@pytest.fixture(scope="session", autouse=True)
def pretrained_unchanged() -> Iterator[None]:
    """Shipped checkpoints are never written by the app: fail the session if any file under
    ``pretrained/`` was added, removed or changed while the browser tests ran."""
    before = _tree_hashes(PRETRAINED) if PRETRAINED.is_dir() else {}
    yield
    after = _tree_hashes(PRETRAINED) if PRETRAINED.is_dir() else {}
    changed = sorted(
        [f"changed: {k}" for k in before.keys() & after.keys() if before[k] != after[k]]
        + [f"removed: {k}" for k in before.keys() - after.keys()]
        + [f"added: {k}" for k in after.keys() - before.keys()])
    if changed:
        pytest.fail("the browser tests modified pretrained/:\n  " + "\n  ".join(changed),
                    pytrace=False)


# --------------------------------------------------------------------------------------------
# Pages that watch for console errors and outside requests
# --------------------------------------------------------------------------------------------

@dataclass
class PageWatch:
    console_errors: List[str] = field(default_factory=list)
    page_errors: List[str] = field(default_factory=list)
    outside_requests: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)  # known-harmless console errors
    _reported: int = 0

    def problems(self) -> List[str]:
        return ([f"console error: {m}" for m in self.console_errors]
                + [f"page error: {m}" for m in self.page_errors]
                + [f"request to an outside host: {u}" for u in self.outside_requests])

    def assert_clean(self) -> None:
        """Fail if the page logged a console error, threw, or tried to reach another host."""
        problems = self.problems()
        new, self._reported = problems[self._reported:], len(problems)
        if new:
            pytest.fail("the page was not clean:\n  " + "\n  ".join(new), pytrace=False)

    # event handlers
    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        loc = msg.location or {}
        url = loc.get("url") or ""
        if msg.text.startswith("Failed to load resource") and BASE_PATH_PROBE.search(url):
            # Opened at a page URL (/some-page), Streamlit's frontend first looks for the server
            # under that path (/some-page/_stcore/health, .../host-config), gets a 404 and falls
            # back to the root. Expected, and local.
            self.ignored.append(f"{msg.text} ({url})")
            return
        where = f" ({url}:{loc.get('lineNumber')})" if url else ""
        self.console_errors.append(f"{msg.text}{where}")

    def on_page_error(self, exc: Error) -> None:
        self.page_errors.append(f"{exc.name}: {exc.message}" if exc.name else str(exc))

    def on_request(self, request: Request) -> None:
        if not is_local_url(request.url) and request.url not in self.outside_requests:
            self.outside_requests.append(request.url)

    def on_websocket(self, ws) -> None:
        if not is_local_url(ws.url) and ws.url not in self.outside_requests:
            self.outside_requests.append(ws.url)


def _watch(context: BrowserContext, watch: PageWatch) -> None:
    def block(route, request):
        watch.on_request(request)
        route.abort("blockedbyclient")

    context.route(OUTSIDE_URL, block)
    context.on("request", watch.on_request)
    context.on("console", watch.on_console)

    def on_page(page: Page) -> None:
        page.on("pageerror", watch.on_page_error)
        page.on("websocket", watch.on_websocket)

    context.on("page", on_page)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def wait_for_script(page: Page, timeout_ms: int = TIMEOUT_MS, started_within_ms: int = 1500
                    ) -> None:
    """Wait until the app is connected and its script run has finished.

    Streamlit marks its root ``[data-testid="stApp"]`` with ``data-test-connection-state``
    (``CONNECTED``) and ``data-test-script-state`` (``initial``/``running``/``notRunning``/...);
    the status widget (``[data-testid="stStatusWidget"]``, top right) shows a running icon
    meanwhile. A rerun triggered by the last action may not have started yet, so first give it
    ``started_within_ms`` to leave ``notRunning``.
    """
    app = page.locator('[data-testid="stApp"]')
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout_ms)
    if started_within_ms:
        try:
            expect(app).not_to_have_attribute("data-test-script-state", "notRunning",
                                              timeout=started_within_ms)
        except AssertionError:
            pass  # the run was too quick to see (or nothing reran)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout_ms)
    expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0, timeout=timeout_ms)


def save_screenshot(page: Page, name: str, quiet: bool = False, path: Optional[Path] = None
                    ) -> Optional[Path]:
    """Full-page PNG in ``artifacts/<name>.png`` (or ``path``).

    Streamlit scrolls inside its own container, not the document, so ``full_page=True`` alone
    would stop at the viewport: grow the viewport to the content's height first.
    """
    path = path or ARTIFACTS / f"{_slug(name)}.png"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size or {"width": 1280, "height": 900}
        height = page.evaluate(
            """() => Math.max(document.documentElement.scrollHeight,
                ...[...document.querySelectorAll(
                    '[data-testid="stMain"], [data-testid="stAppViewContainer"], section.main')]
                   .map(e => e.scrollHeight))"""
        )
        height = max(size["height"], min(int(height or 0) + 40, 10000))
        if height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": height})
            page.wait_for_timeout(300)
        page.screenshot(path=str(path), full_page=True, animations="disabled",
                        timeout=TIMEOUT_MS)
        if height > size["height"]:
            page.set_viewport_size(size)
        return path
    except Error:
        if not quiet:
            raise
        return None


@dataclass
class AppSession:
    """What a journey drives: ``page`` (a Playwright page), the ``server`` and the ``watch``."""
    page: Page
    server: StreamlitServer
    watch: PageWatch

    def open(self, path: str = "/") -> Page:
        """Load the app (``path`` relative to its root) and wait for its first script run."""
        self.page.goto(self.server.url + path, wait_until="domcontentloaded")
        expect(self.page.locator('[data-testid="stApp"]')).to_be_visible()
        wait_for_script(self.page, started_within_ms=0)
        return self.page

    def wait(self, timeout_ms: int = TIMEOUT_MS, started_within_ms: int = 1500) -> None:
        """After an action: wait for the rerun it triggered to finish."""
        wait_for_script(self.page, timeout_ms, started_within_ms)

    def screenshot(self, name: str) -> Path:
        """Full-page PNG ``artifacts/<name>.png``."""
        return save_screenshot(self.page, name)

    def assert_clean(self) -> None:
        self.watch.assert_clean()


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def app_page(new_context, streamlit_server: StreamlitServer, page_watch: PageWatch,
             request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context and page, watched for console/page errors and outside requests; any of
    them fails the test at teardown (if the test did not already call ``assert_clean``)."""
    context = new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                          timezone_id="UTC", color_scheme="light", reduced_motion="reduce")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    _watch(context, page_watch)
    page = context.new_page()
    yield page
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        shot = save_screenshot(page, f"{_slug(request.node.name)}-FAILED", quiet=True)
        print(f"screenshot: {shot}\nstreamlit server log (tail):\n{streamlit_server.log_tail()}")
    page_watch.assert_clean()


@pytest.fixture
def app(app_page: Page, streamlit_server: StreamlitServer, page_watch: PageWatch) -> AppSession:
    """The app in a watched page, with helpers: ``app.open()``, ``app.wait()``,
    ``app.screenshot(name)``, ``app.assert_clean()``; locators go through ``app.page``."""
    return AppSession(app_page, streamlit_server, page_watch)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report as ``item.rep_<phase>`` (pytest-playwright does too; this keeps
    ``app_page``'s failure screenshot working without relying on that)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
