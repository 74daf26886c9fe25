"""Live training: one run that a page starts, watches and stops while the rest of the page stays
usable.

Streamlit reruns a page's script on every click, so a training loop inside the script is cut by
any click (what the old pages did: "any click stops the training"). A :class:`LiveRun` trains
outside the script instead, through the one training loop (:class:`skimviz.training.loop.Trainer`
and its per-step callback); the page only reads :meth:`LiveRun.snapshot` (a copy, safe from any
thread) and calls :meth:`LiveRun.stop`. The model is handed out only once the run has finished
(:attr:`LiveRun.model`), so nothing reads weights that are still changing.

Where it trains: a run built with a ``recipe`` (a :class:`Recipe`: the module-level function
and JSON arguments that build the same run again) trains in a worker process of the server's bounded pool (:mod:`skimviz.training.pool`:
at most one training per core at once, the others queued with their position and wait), so
PyTorch's threads and the GIL never stall page reruns; a run without one trains in a daemon
thread of this process, at most :data:`MAX_RUNS` at once (:class:`ServerBusy` otherwise). Each
trains on :data:`THREADS` torch thread(s); a run stops itself when ``alive()`` has answered False
for :data:`ORPHAN_S` seconds (the browser tab that started it was closed) and after
:data:`MAX_SECONDS` in any case. No streamlit here.
"""
from __future__ import annotations

import importlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

from torch import nn

from skimviz.cost import threads
from skimviz.training.loop import Progress, Trainer, TrainingDiverged

MAX_RUNS = 2          # trainings at once in this process (the server has 2 cores)
THREADS = 1           # torch threads per run
ORPHAN_S = 60.0       # a run whose page is gone for this long stops
MAX_SECONDS = 900.0   # no run trains longer than this
ALIVE_EVERY_S = 2.0   # how often ``alive()`` is asked

#: statuses a run can be in; the last four are final
QUEUED, TRAINING, STOPPING, MEASURING = "queued", "training", "stopping", "measuring"
DONE, STOPPED, DIVERGED, FAILED = "done", "stopped", "diverged", "failed"
FINAL = (DONE, STOPPED, DIVERGED, FAILED)

ORPHANED = "the page that started it was closed"   # no validation then: nobody will see it

_slots = threading.BoundedSemaphore(MAX_RUNS)


class ServerBusy(RuntimeError):
    """No room for another run: :data:`MAX_RUNS` threads train already, or the pool's queue is
    full (the message says which)."""


@dataclass(frozen=True)
class Recipe:
    """How a worker process builds a run again: ``module:function`` (a module-level function
    returning a :class:`LiveRun`, not started) and JSON arguments. It crosses to the worker as
    JSON, so nothing is unpickled there."""
    function: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    @classmethod
    def of(cls, fn: Callable[..., "LiveRun"], *args, **kwargs) -> "Recipe":
        return cls(f"{fn.__module__}:{fn.__qualname__}", tuple(args), dict(kwargs))

    def to_json(self) -> bytes:
        return json.dumps({"function": self.function, "args": list(self.args),
                           "kwargs": self.kwargs}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Recipe":
        d = json.loads(data)
        return cls(str(d["function"]), tuple(d["args"]), dict(d["kwargs"]))

    def build(self) -> "LiveRun":
        module, _, name = self.function.partition(":")
        fn = getattr(importlib.import_module(module), name)
        run = fn(*self.args, **self.kwargs)
        if not isinstance(run, LiveRun):
            raise TypeError(f"{self.function} did not return a LiveRun")
        return run


class LiveRun:
    """``steps`` steps of ``trainer`` on ``data`` in a worker thread (:meth:`start`), then
    ``evaluate(model)`` (a dict of validation numbers, kept in :attr:`metrics`).

    ``config`` is whatever the page wants to remember about the run (λ, seed, …); ``alive`` is
    asked every few seconds whether the page that started the run still exists. ``recipe``, a
    :class:`Recipe` that builds this same run (not started), sends it to the worker pool; ``estimate_s``, its expected
    duration, goes into the waits the queue announces."""

    def __init__(self, trainer: Trainer, data: Iterator, steps: int, *,
                 evaluate: Optional[Callable[[nn.Module], Dict[str, Any]]] = None,
                 config: Optional[dict] = None, alive: Optional[Callable[[], bool]] = None,
                 max_seconds: float = MAX_SECONDS, recipe: Optional["Recipe"] = None,
                 estimate_s: Optional[float] = None):
        if int(steps) < 1:
            raise ValueError("a run needs at least one step")
        self.trainer, self.total, self.config = trainer, int(steps), dict(config or {})
        self._data, self._evaluate, self._alive = data, evaluate, alive
        self.max_seconds = float(max_seconds)
        self.recipe, self.estimate_s = recipe, estimate_s
        self.queue_position: Optional[int] = None   # 1 = next to start (while queued)
        self.wait_s: Optional[float] = None         # estimated seconds until it starts
        self.on_step: Optional[Callable[["LiveRun"], None]] = None   # the worker's reporter
        self._started = False
        self.status: str = TRAINING
        self.step, self.elapsed_s, self.started_at = 0, 0.0, None
        self.loss: Optional[float] = None
        self.stats: Dict[str, float] = {}
        self.metrics: Optional[Dict[str, Any]] = None
        self.error: Optional[str] = None
        self.reason: Optional[str] = None     # why a run stopped early, in words
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._checked, self._gone_since = 0.0, None

    # --- control ----------------------------------------------------------------------------
    def start(self) -> "LiveRun":
        """Start training: in the worker pool when the run has a recipe and the pool is on
        (:func:`skimviz.training.pool.enabled`), else in a daemon thread. Raises
        :class:`ServerBusy` when there is no room (queue full / :data:`MAX_RUNS` threads)."""
        if self._started:
            raise RuntimeError("this run was already started")
        from skimviz.training import pool
        if self.recipe is not None and pool.enabled():
            pool.shared().submit(self)       # QUEUED until a worker is free
            self._started = True
            return self
        if not _slots.acquire(blocking=False):
            raise ServerBusy(f"all {MAX_RUNS} of its training threads are busy")
        self._started = True
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run_in_thread, name="skimviz-live",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, reason: str = "you stopped it") -> None:
        """Ask the run to stop after the current step (the model so far is kept); a run still
        waiting in the pool's queue is taken out of it."""
        if not self.finished and not self._stop.is_set():
            self.reason = reason
            self.status = STOPPING if self.status == TRAINING else self.status
            self._stop.set()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait until the run has finished (validation included); True when it has."""
        return self._finished.wait(timeout)

    # --- state ------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        """Started and not finished (queued in the pool counts)."""
        return self._started and not self.finished

    @property
    def model(self) -> Optional[nn.Module]:
        """The trained model once the run has finished with at least one step, else None."""
        if self.finished and self.status != FAILED and self.step > 0:
            return self.trainer.model
        return None

    @property
    def history(self) -> List[Dict[str, float]]:
        """A copy of the per-step rows (loss, batch metric, update rate)."""
        return list(self.trainer.history)

    def eta_s(self) -> Optional[float]:
        """Seconds left at the pace so far (None before the first step)."""
        if self.step == 0 or self.finished:
            return None
        return self.elapsed_s / self.step * (self.total - self.step)

    def snapshot(self) -> Dict[str, Any]:
        """Everything a page shows, copied: safe to read while the run trains."""
        return {"status": self.status, "step": self.step, "total": self.total,
                "fraction": min(1.0, self.step / self.total), "elapsed_s": self.elapsed_s,
                "eta_s": self.eta_s(), "loss": self.loss, "stats": dict(self.stats),
                "metrics": None if self.metrics is None else dict(self.metrics),
                "error": self.error, "reason": self.reason, "config": dict(self.config),
                "queue_position": self.queue_position, "wait_s": self.wait_s}

    # --- the worker -------------------------------------------------------------------------
    def _page_gone(self) -> bool:
        """True once ``alive()`` has said False for :data:`ORPHAN_S` seconds (asked every
        :data:`ALIVE_EVERY_S`)."""
        now = time.monotonic()
        if self._alive is None or now - self._checked < ALIVE_EVERY_S:
            return False
        self._checked = now
        try:
            ok = bool(self._alive())
        except Exception:
            ok = True   # cannot tell: keep going (MAX_SECONDS still bounds the run)
        if ok:
            self._gone_since = None
            return False
        self._gone_since = self._gone_since or now
        return now - self._gone_since >= ORPHAN_S

    def _on_step(self, p: Progress) -> bool:
        self.step, self.elapsed_s, self.loss, self.stats = p.step, p.elapsed_s, p.loss, p.stats
        if self.on_step is not None:
            self.on_step(self)
        if self._page_gone():
            self.stop(ORPHANED)
        elif p.elapsed_s > self.max_seconds:
            self.stop(f"it reached the time limit of {self.max_seconds:.0f} s")
        return self._stop.is_set()

    def _run_in_thread(self) -> None:
        try:
            self.run_here()
        finally:
            _slots.release()
            self._finished.set()

    def run_here(self) -> None:
        """Train, then measure, in the calling thread (the thread's or the worker's body); the
        final status is set, never an exception raised."""
        try:
            with threads(THREADS):
                try:
                    self.trainer.fit(self._data, self.total, callback=self._on_step,
                                     log_every=1)
                    final = STOPPED if self._stop.is_set() and self.step < self.total else DONE
                except TrainingDiverged as e:
                    final, self.error = DIVERGED, str(e)
                if self.step > 0 and self._evaluate is not None and self.reason != ORPHANED:
                    self.status = MEASURING
                    if self.on_step is not None:
                        self.on_step(self)
                    self.metrics = self._evaluate(self.trainer.model)
                    self.trainer.model.eval()
            self.status = final
        except Exception as e:  # shown as a message, never a traceback
            self.status, self.error = FAILED, f"{type(e).__name__}: {e}"
