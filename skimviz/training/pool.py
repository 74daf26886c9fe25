"""The server's live trainings, in worker processes: a bounded pool that every browser session
shares.

Streamlit runs each browser session as a thread of one process, so a training in a thread shares
the GIL and the cores with every page rerun of every visitor. Here each :class:`LiveRun` that has
a ``recipe`` trains in a process of its own (``python -m skimviz.training.pool``: a fresh
interpreter, about 1.5 s of imports, so nothing of the server's threads or of the page script
that Streamlit runs as ``__main__`` is inherited, as it would be by ``multiprocessing``), at most
:data:`WORKERS` at once — one per core unless ``SKIMVIZ_MAX_TRAININGS`` says otherwise. Further runs wait in a first-come queue of at most
:data:`QUEUE_LIMIT` (``SKIMVIZ_TRAINING_QUEUE``), each told its position and an estimated wait;
a full queue raises :class:`~skimviz.training.live.ServerBusy`.

One dispatcher thread serves all runs: it starts queued runs when a worker is free, copies each
worker's progress (step, loss, history rows, status) into the page's :class:`LiveRun`, forwards
Stop, stops runs whose browser tab has gone (``alive()``), and at the end loads the trained
weights into the page's model. Messages are JSON and the weights safetensors bytes: nothing on
the pipes is pickled. A worker that dies (killed, out of memory) fails its run with a message
and frees its slot. The page's process keeps
no thread per run, and a finished worker's memory goes back to the system with the process.
"""
from __future__ import annotations

import heapq
import json
import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Dict, List, Optional

from skimviz.training import live
from skimviz.training.live import LiveRun, ServerBusy

WORKERS = max(1, int(os.environ.get("SKIMVIZ_MAX_TRAININGS") or os.cpu_count() or 1))
QUEUE_LIMIT = max(0, int(os.environ.get("SKIMVIZ_TRAINING_QUEUE") or 30))
POLL_S = 0.25            # the dispatcher's tick
DEFAULT_ESTIMATE_S = 60.0   # a queued run's duration when neither it nor past runs say


def enabled() -> bool:
    """Whether runs with a recipe go to the pool (``SKIMVIZ_LIVE_PROCESSES=0`` keeps every run in
    a thread of this process)."""
    return os.environ.get("SKIMVIZ_LIVE_PROCESSES", "1") != "0"


# --- the worker process -----------------------------------------------------------------------------
def _send(conn: Connection, kind: str, fields=None, extra=None) -> None:
    """One message: JSON (nothing on these pipes is pickled); the weights go as a second,
    raw frame (safetensors bytes) after an "end" whose ``extra`` says so."""
    conn.send_bytes(json.dumps([kind, fields, extra]).encode())


def _recv(conn: Connection) -> list:
    return json.loads(conn.recv_bytes())


def _work(recipe: bytes, control: Connection, out: Connection, n_threads: int) -> None:
    """A worker's whole life: build the run from its recipe (a JSON
    :class:`~skimviz.training.live.Recipe`), train it here, report every step, send the weights
    at the end."""
    import torch
    from safetensors.torch import save

    torch.set_num_threads(n_threads)
    try:
        run: LiveRun = live.Recipe.from_json(recipe).build()
    except Exception as e:   # e.g. the recipe's module does not import here: a message, not a hang
        _send(out, "end", {"status": live.FAILED, "error": f"the training could not be set up "
                                                           f"({type(e).__name__}: {e})"})
        return
    sent = 0

    def report(r: LiveRun) -> None:
        nonlocal sent
        rows = r.trainer.history[sent:]
        sent += len(rows)
        _send(out, "step", {"status": r.status, "step": r.step, "elapsed_s": r.elapsed_s,
                            "loss": r.loss, "stats": dict(r.stats)}, rows)

    def listen() -> None:
        try:
            while True:
                kind, reason, _ = _recv(control)
                if kind == "stop":
                    run.stop(reason)
        except (EOFError, OSError):      # the server went away: stop, nobody will see the result
            run.stop(live.ORPHANED)

    threading.Thread(target=listen, daemon=True).start()
    run.on_step = report
    run.run_here()
    report(run)
    weights = None
    if run.step > 0 and run.status != live.FAILED:
        state = {k: v.detach().contiguous().clone() for k, v in run.trainer.model.state_dict().items()}
        weights = save(state)
    _send(out, "end", {"status": run.status, "step": run.step, "elapsed_s": run.elapsed_s,
                       "metrics": run.metrics, "error": run.error, "reason": run.reason},
          weights is not None)
    if weights is not None:
        out.send_bytes(weights)
    out.close()


def _main(argv) -> None:
    """``python -m skimviz.training.pool CONTROL_FD OUT_FD THREADS``: one worker."""
    control = Connection(int(argv[0]), writable=False)
    out = Connection(int(argv[1]), readable=False)
    _work(control.recv_bytes(), control, out, int(argv[2]))


def _wait(proc: subprocess.Popen, timeout: float):
    """The worker's exit code, waiting up to ``timeout`` s (killed after that)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# --- the server side --------------------------------------------------------------------------------
class _Job:
    def __init__(self, run: LiveRun):
        self.run = run
        self.proc = None
        self.control: Optional[Connection] = None
        self.out: Optional[Connection] = None
        self.stop_sent = False
        self.ended = False     # its "end" message arrived
        self.eof = False       # its pipe closed (the worker has ended or died)
        self.started = 0.0


class Pool:
    """At most ``workers`` runs training at once, in processes; at most ``queue_limit`` waiting."""

    def __init__(self, workers: int = WORKERS, queue_limit: int = QUEUE_LIMIT,
                 threads_per_job: int = live.THREADS):
        self.workers, self.queue_limit, self.threads = int(workers), int(queue_limit), threads_per_job
        self._lock = threading.Lock()
        self._queue: List[_Job] = []
        self._active: List[_Job] = []
        self._durations: List[float] = []    # of finished runs, for the waits
        self._thread: Optional[threading.Thread] = None
        self._last_alive = 0.0

    # --- what pages call ---------------------------------------------------------------------
    def submit(self, run: LiveRun) -> None:
        """Queue ``run`` (it starts as soon as a worker is free). Raises :class:`ServerBusy` when
        the queue is full."""
        with self._lock:
            free = max(0, self.workers - len(self._active))    # queued runs about to start
            if len(self._queue) >= self.queue_limit + free:
                raise ServerBusy(f"the training queue is full ({len(self._queue)} waiting for "
                                 f"{self.workers} training slot{'s' * (self.workers != 1)})")
            run.status = live.QUEUED
            self._queue.append(_Job(run))
            self._update_waits()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._dispatch, name="skimviz-pool",
                                                daemon=True)
                self._thread.start()

    def counts(self) -> Dict[str, int]:
        """Runs training and waiting now."""
        with self._lock:
            return {"training": len(self._active), "queued": len(self._queue),
                    "workers": self.workers}

    # --- the dispatcher thread ---------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._drop_cancelled()
                while self._queue and len(self._active) < self.workers:
                    self._launch(self._queue.pop(0))
                self._update_waits()
                outs = [j.out for j in self._active]
                if not outs and not self._queue:
                    self._thread = None
                    return
            for conn in wait(outs, timeout=POLL_S) if outs else []:
                self._read(self._job_of(conn))
            with self._lock:
                for job in list(self._active):
                    self._forward_stop(job)
                    gone = job.eof or job.proc.poll() is not None
                    if gone and not job.ended:
                        self._read(job)           # what it sent before it ended
                    if job.ended or gone:
                        self._finish(job)
            if not outs:
                time.sleep(POLL_S)
            self._check_pages()

    def _job_of(self, conn: Connection) -> _Job:
        return next(j for j in self._active if j.out is conn)

    def _launch(self, job: _Job) -> None:
        control_r, control_w = os.pipe()     # server → worker: the recipe, then "stop"
        out_r, out_w = os.pipe()             # worker → server: progress, the end, the weights
        paths = [os.path.abspath(p or ".") for p in sys.path]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if os.path.isdir(p))}
        try:
            job.proc = subprocess.Popen(
                [sys.executable, "-m", "skimviz.training.pool", str(control_r), str(out_w),
                 str(self.threads)], pass_fds=(control_r, out_w), env=env,
                stdin=subprocess.DEVNULL)
        finally:
            os.close(control_r)
            os.close(out_w)
        job.control = Connection(control_w, readable=False)
        job.out = Connection(out_r, writable=False)
        job.started = time.monotonic()
        try:
            job.control.send_bytes(job.run.recipe.to_json())
        except OSError:
            pass                 # the worker died at once: _dispatch sees its exit code
        run = job.run
        run.status, run.started_at = live.TRAINING, time.time()
        run.queue_position = run.wait_s = None
        self._active.append(job)

    def _read(self, job: _Job) -> None:
        """Apply every message waiting from ``job``'s worker to its run."""
        run = job.run
        try:
            while job.out.poll():
                kind, fields, payload = _recv(job.out)
                if kind == "step":
                    stopping = run.status == live.STOPPING and fields["status"] == live.TRAINING
                    fields = {k: v for k, v in fields.items() if not (k == "status" and stopping)}
                    for k, v in fields.items():
                        setattr(run, k, v)
                    run.trainer.history.extend(payload)
                    run.trainer.step = run.step
                elif kind == "end":
                    if payload:                   # the weights follow as their own frame
                        from safetensors.torch import load
                        run.trainer.model.load_state_dict(load(job.out.recv_bytes()))
                        run.trainer.model.eval()
                    for k, v in fields.items():
                        setattr(run, k, v)
                    job.ended = True
        except (EOFError, OSError):
            job.eof = True      # the worker is gone; _dispatch finishes its run

    def _forward_stop(self, job: _Job) -> None:
        if job.run._stop.is_set() and not job.stop_sent and not job.ended:
            try:
                _send(job.control, "stop", job.run.reason)
            except (BrokenPipeError, OSError):
                pass
            job.stop_sent = True

    def _finish(self, job: _Job) -> None:
        """The worker has ended (or died): finish its run, free its slot."""
        run = job.run
        if not job.ended:
            code = _wait(job.proc, 1.0)
            how = (f"was killed (signal {-code})" if code is not None and code < 0
                   else f"ended with exit code {code}")
            run.status = live.FAILED
            run.error = (f"the training process {how} before it finished, so there is no model; "
                         "its slot on the server is free again, so you can start it again")
        else:
            _wait(job.proc, 5.0)
            self._durations = (self._durations + [time.monotonic() - job.started])[-20:]
        for c in (job.control, job.out):
            c.close()
        self._active.remove(job)
        run._finished.set()

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._queue if j.run._stop.is_set()]:
            self._queue.remove(job)
            run = job.run
            run.status = live.STOPPED
            run.reason = (run.reason if run.reason == live.ORPHANED
                          else "you cancelled it while it waited for a free slot")
            run.queue_position = run.wait_s = None
            run._finished.set()

    def _check_pages(self) -> None:
        """Stop (or take out of the queue) runs whose page is gone."""
        now = time.monotonic()
        if now - self._last_alive < live.ALIVE_EVERY_S:
            return
        self._last_alive = now
        with self._lock:
            runs = [j.run for j in self._active + self._queue]
        for run in runs:
            if run._page_gone():
                run.stop(live.ORPHANED)

    def _estimate(self, run: LiveRun) -> float:
        if run.estimate_s:
            return float(run.estimate_s)
        if self._durations:
            return sum(self._durations) / len(self._durations)
        return DEFAULT_ESTIMATE_S

    def _update_waits(self) -> None:
        """Each queued run's position and estimated wait: the workers' remaining times, then the
        runs ahead of it, each on the first worker to come free."""
        free = [0.0] * (self.workers - len(self._active))
        for job in self._active:
            run = job.run
            eta = run.eta_s()
            if eta is None:
                eta = max(0.0, self._estimate(run) - (time.monotonic() - job.started))
            free.append(eta)
        heapq.heapify(free)
        for i, job in enumerate(self._queue):
            t = heapq.heappop(free) if free else 0.0
            job.run.queue_position, job.run.wait_s = i + 1, t
            heapq.heappush(free, t + self._estimate(job.run))


_shared: Optional[Pool] = None
_shared_lock = threading.Lock()


def shared() -> Pool:
    """The server process's pool (made on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Pool()
        return _shared


if __name__ == "__main__":
    _main(sys.argv[1:])
