"""A classroom on one server: N simulated students, M of them training live, against one app
process, driven at Streamlit's websocket level.

    python deploy/loadtest.py --students 30 --trainings 1 --seconds 90 --settle 300 \
        --json docs/results/classroom.json

Starts `streamlit run app.py` on 127.0.0.1 (the repo's .streamlit/config.toml), then opens one
websocket per student — the protocol the browser speaks (`/_stcore/stream`, protobuf BackMsg /
ForwardMsg), without a browser, so thirty clients cost the cores they measure almost nothing.
Half the students are on the Skim-RNN page and edit the review in the text box (a new token map
each time); half are on the MNIST page and move θ (a new pixel map). Each waits between
inputs (``--think``, default 2–6 s), as a student reading the result would. The training students open the signals page and
press "Start training" (2,000 steps), and again whenever a run ends: a training runs all along. Reported: p50 / p95 / max of the time
from an input to the end of the page's rerun that draws the updated figure, per page; errors
(exceptions on a page, closed sockets); the trainings' state; the server's RSS (app process and
training workers) idle, under load, and ``--settle`` seconds after every tab has closed. With
``--browser``, a real Chromium (Playwright) also opens the MNIST page a third into the load phase
and times one θ move to the changed pixel count, as a spot check of what a student sees.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from serve import healthy   # deploy/serve.py, beside this script

from skimviz.training.distributed import free_port

ROOT = Path(__file__).resolve().parent.parent

TEXTS = ["It is a boring, pointless mess.", "A warm, funny and moving film with a great cast.",
         "The plot is thin but the acting is superb.", "I have never been so bored in a cinema.",
         "An instant classic: clever, tender and beautifully shot."]


# --- the server -------------------------------------------------------------------------------------
def start_server(port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.port", str(port), "--browser.serverPort", str(port),
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def rss_mib(pid: int) -> dict:
    """Resident memory of the server process and of its training workers (its children), MiB."""
    def one(p: int) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0
    kids = []       # children of every thread (the pool's dispatcher thread starts the workers)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return {"server": round(one(pid), 1), "workers": round(sum(one(k) for k in kids), 1),
            "n_workers": len(kids)}


# --- one student ------------------------------------------------------------------------------------
class Student:
    """One browser tab, as the websocket sees it."""

    def __init__(self, port: int, page: str):
        self.port, self.page = port, page
        self.widgets: dict = {}          # label → (kind, id)
        self.latencies: list = []        # input → updated figure, s
        self.reruns: list = []           # input → end of the page's rerun, s
        self.errors: list = []
        self.ws = None
        self.training_status = None
        self.fragments: set = set()      # fragments the page asked to rerun every few seconds
        self.runs = 1                    # trainings started (a training tab)
        self.run_ended = False

    async def open(self) -> None:
        from websockets.asyncio.client import connect
        self.ws = await connect(f"ws://127.0.0.1:{self.port}/_stcore/stream",
                                subprotocols=["streamlit"], max_size=2**26, open_timeout=60)
        await self.rerun()

    async def rerun(self, widget=None, figure=None, fragment: str = "") -> tuple:
        """Send a rerun (with one widget's new value) and read until the script finishes:
        (seconds to the updated figure — the first element for which ``figure(element)`` is
        true —, seconds to the end of the rerun)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        msg = BackMsg()
        cs = msg.rerun_script
        cs.page_name = self.page
        if fragment:
            cs.fragment_id, cs.is_auto_rerun = fragment, True
        if widget is not None:
            cs.widget_states.widgets.append(widget)
        t0 = time.perf_counter()
        if not fragment:
            self.fragments.clear()          # a full rerun says again which fragments poll
        await self.ws.send(msg.SerializeToString())
        try:
            seen = await self.read_until_finished(figure, 3 if fragment else 120)
        except asyncio.TimeoutError:
            if not fragment:
                raise
            self.fragments.discard(fragment)  # a fragment the page no longer has
            return None, time.perf_counter() - t0
        return (None if seen is None else seen - t0), time.perf_counter() - t0

    async def read_until_finished(self, figure=None, timeout: float = 120):
        """Read messages until the rerun ends; when ``figure(element)`` first held (or None)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        seen = None
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = fm.WhichOneof("type")
            if kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                t = el.WhichOneof("type")
                if seen is None and figure is not None and figure(el):
                    seen = time.perf_counter()
                if t == "exception":
                    self.errors.append(f"{el.exception.type}: {el.exception.message}"[:200])
                elif t in ("text_area", "slider", "button", "number_input"):
                    w = getattr(el, t)
                    self.widgets[w.label] = (t, w.id)
                elif t == "alert" and "Waiting for a free training slot" in el.alert.body:
                    self.training_status = "queued"
                elif t == "alert" and el.alert.body.startswith(("Trained ", "Stopped at step",
                                                                "The training")):
                    self.training_status, self.run_ended = el.alert.body[:80], True
                elif t == "progress" and el.progress.text.startswith("Training"):
                    self.training_status = el.progress.text[:80]
            elif kind == "auto_rerun":
                self.fragments.add(fm.auto_rerun.fragment_id)
            elif kind == "stop_auto_rerun":
                self.fragments -= set(fm.stop_auto_rerun.fragment_ids)
            elif kind == "script_finished":
                if fm.script_finished == 1:        # FINISHED_WITH_COMPILE_ERROR
                    self.errors.append("script error")
                return seen

    def widget(self, label_start: str):
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        for label, (kind, wid) in self.widgets.items():
            if label.startswith(label_start):
                w = WidgetState()
                w.id = wid
                return kind, w
        raise KeyError(f"no widget {label_start!r} on {self.page}")

    async def act(self, stop_at: float, rng: random.Random, think: tuple) -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(rng.uniform(*think))
            if time.monotonic() >= stop_at:
                break
            if self.page == "skim-rnn-text":     # a new review: its token map has its words
                _, w = self.widget("Your text")
                mark = f"zq{rng.randint(0, 99999)}"
                w.string_value = rng.choice(TEXTS) + " " + mark

                def figure(el, mark=mark):
                    return el.WhichOneof("type") == "markdown" and mark in el.markdown.body \
                        and "skimviz-" in el.markdown.body
            else:                                  # another θ: the pixel map drawn again
                _, w = self.widget("Inference threshold")
                self.theta = round(rng.choice([v for v in (0.3, 0.4, 0.5, 0.6, 0.7)
                                               if v != getattr(self, "theta", None)]), 2)
                w.double_array_value.data.append(self.theta)

                def figure(el):
                    return el.WhichOneof("type") == "plotly_chart" and \
                        el.plotly_chart.id.endswith("used_skipped_chart")
            to_figure, to_end = await self.rerun(w, figure)
            if to_figure is None:
                self.errors.append(f"{self.page}: the rerun ended without the updated figure")
            else:
                self.latencies.append(to_figure)
            self.reruns.append(to_end)

    async def train(self) -> None:
        _, w = self.widget("Training steps")  # number input: set 2,000 steps first
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        steps = WidgetState()
        steps.id = w.id
        steps.int_value = 2000
        await self.rerun(steps)
        _, b = self.widget("Start training")
        b.trigger_value = True
        await self.rerun(b)

    async def watch(self, stop_at: float) -> None:
        """A training tab: rerun the page's polling fragments every second, as the browser
        does, and look at the whole page every 5 s; when the run has ended, train again."""
        tick = 0
        while time.monotonic() < stop_at:
            await asyncio.sleep(1.0)
            tick += 1
            if tick % 5 == 0 or not self.fragments:
                await self.rerun()
            if self.run_ended:               # the run has ended: the student trains again
                self.runs += 1
                self.run_ended = False
                _, b = self.widget("Start training")
                b.trigger_value = True
                await self.rerun(b)
                if any(k.startswith("Replace it") for k in self.widgets):
                    _, b = self.widget("Replace it")   # "a new run replaces your model"
                    b.trigger_value = True
                    await self.rerun(b)
            for f in list(self.fragments):
                await self.rerun(fragment=f)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


# --- the run ----------------------------------------------------------------------------------------
def _stats(xs: list) -> dict:
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return {"n": len(xs), "p50_s": round(statistics.median(xs), 3), "p95_s": round(p95, 3),
            "max_s": round(xs[-1], 3)}


async def _spot_check_midway(port: int, after_s: float) -> dict:
    await asyncio.sleep(after_s)
    try:
        return await asyncio.to_thread(spot_check, port)
    except Exception as e:   # the spot check is a check, not the load test
        return {"error": f"{type(e).__name__}: {str(e)[:300]}"}


async def _load(port: int, n: int, m: int, seconds: float, seed: int,
                think: tuple = (2.0, 6.0), browser: bool = False) -> dict:
    rng = random.Random(seed)
    students = [Student(port, "skim-rnn-text" if i % 2 == 0 else "skip-rnn-mnist")
                for i in range(n)]
    trainers = [Student(port, "skip-rnn-signals") for _ in range(m)]
    t0 = time.perf_counter()
    for s in trainers + students:       # tabs open one after another, as a class arrives
        await s.open()
    opened = time.perf_counter() - t0
    for t in trainers:
        await t.train()
    stop_at = time.monotonic() + seconds
    checks = [_spot_check_midway(port, seconds / 3)] if browser else []
    done = await asyncio.gather(*checks, *(s.act(stop_at, random.Random(rng.random()), think)
                                           for s in students),
                                *(t.watch(stop_at) for t in trainers))
    out = {"open_all_s": round(opened, 1)}
    if browser:
        out["browser_during_load"] = done[0]
    for page in ("skim-rnn-text", "skip-rnn-mnist"):
        out[page] = {"to_figure": _stats([x for s in students if s.page == page
                                          for x in s.latencies]),
                     "to_end_of_rerun": _stats([x for s in students if s.page == page
                                                for x in s.reruns])}
    out["errors"] = [e for s in students + trainers for e in s.errors]
    out["trainings_seen"] = [t.training_status for t in trainers]
    out["trainings_started"] = sum(t.runs for t in trainers)
    out["_clients"] = students + trainers
    return out


async def _visit(port: int, page: str) -> None:
    s = Student(port, page)
    await s.open()
    await s.close()


async def _close(clients) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def spot_check(port: int) -> dict:
    """One real browser: open the MNIST page, move θ with the keyboard, time the redrawn map."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        exe = os.environ.get("SKIMVIZ_CHROMIUM") or "/usr/bin/chromium"
        browser = p.chromium.launch(executable_path=exe if Path(exe).exists() else None)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/skip-rnn-mnist", timeout=120_000)
        page.get_by_text("Pixels used").first.wait_for(timeout=120_000)
        slider = page.get_by_role("slider", name="Inference threshold θ")
        used = page.get_by_test_id("stMetric").filter(has_text="Pixels used")
        before = used.get_by_test_id("stMetricValue").inner_text()
        t0 = time.perf_counter()
        slider.focus()
        page.keyboard.press("ArrowRight")     # θ one step up: fewer pixels used, a new map
        expect_changed = used.get_by_test_id("stMetricValue")
        t_end = time.monotonic() + 60
        while expect_changed.inner_text() == before and time.monotonic() < t_end:
            time.sleep(0.02)
        dt = time.perf_counter() - t0
        after = expect_changed.inner_text()
        browser.close()
    return {"theta_to_redrawn_pixel_map_s": round(dt, 3), "pixels_used": [before, after]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--trainings", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=90.0, help="load phase length")
    ap.add_argument("--settle", type=float, default=300.0,
                    help="seconds after every tab closed before the last RSS reading")
    ap.add_argument("--browser", action="store_true", help="a Playwright spot check too")
    ap.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                    help="seconds a student waits between inputs (uniform), default 2 6")
    ap.add_argument("--classes", type=int, default=1,
                    help="classes one after another on the same server (each followed by "
                         "--settle): whether memory keeps growing")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args(argv)
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"skimviz-loadtest-{port}.log"
    server = start_server(port, log)
    try:
        t0 = time.monotonic()
        while not healthy(f"http://127.0.0.1:{port}"):
            if server.poll() is not None or time.monotonic() - t0 > 120:
                print(f"error: the server did not start; log: {log}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        # one visit to each page the load uses first (the training page too), so that idle
        # means "warm": models loaded, modules imported, caches full
        warm = asyncio.run(_load(port, 2, 0, 0.0, args.seed))
        asyncio.run(_close(warm.pop("_clients")))
        asyncio.run(_visit(port, "skip-rnn-signals"))
        time.sleep(2)
        idle = rss_mib(server.pid)
        report = {"students": args.students, "trainings": args.trainings,
                  "seconds": args.seconds, "think_time_s": list(args.think), "cores": os.cpu_count(),
                  "rss_idle_mib": idle}

        async def run():
            r = await _load(port, args.students, args.trainings, args.seconds, args.seed,
                            tuple(args.think), args.browser)
            r["rss_loaded_mib"] = rss_mib(server.pid)
            await _close(r.pop("_clients"))
            return r
        report.update(asyncio.run(run()))
        time.sleep(args.settle)
        report["rss_after_close_mib"] = rss_mib(server.pid)
        report["settle_s"] = args.settle
        for _ in range(args.classes - 1):   # another class on the same server: does it grow?
            again = asyncio.run(run())
            time.sleep(args.settle)
            report.setdefault("next_classes", []).append(
                {"errors": len(again["errors"]), "rss_loaded_mib": again["rss_loaded_mib"],
                 "rss_after_close_mib": rss_mib(server.pid),
                 **{page: again[page]["to_figure"] for page in ("skim-rnn-text",
                                                                "skip-rnn-mnist")}})
        base, after = idle["server"] + idle["workers"], (report["rss_after_close_mib"]["server"]
                                                         + report["rss_after_close_mib"]["workers"])
        report["rss_after_vs_idle"] = round(after / base, 3) if base else None
        report["server_log_tracebacks"] = log.read_text(errors="replace").count("Traceback")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
