"""The app process's memory: given back to the system after a class has gone.

Streamlit drops a closed tab's session (its state, its copies of the models) a minute after the
tab closes (``disconnectedSessionTTL``), and Python frees those objects; glibc's malloc would
keep most of that memory in the process. :func:`keep_lean`, called once per process by
``app.py``, has blocks over 128 KiB mapped on their own (given back as soon as they are freed,
:func:`skimviz.cost.return_freed_memory`) and starts one thread that every ``TRIM_EVERY_S``
seconds collects cyclic garbage and trims the heap (:func:`skimviz.cost.trim_memory`). Caches
shared by the sessions (figures, timings) register with :func:`on_idle`: when no page has run for
``IDLE_S`` seconds (the class has gone), they are emptied before the trim.
"""
from __future__ import annotations

import gc
import threading
import time

from skimviz import cost

TRIM_EVERY_S = 30.0
IDLE_S = 120.0
_started = threading.Event()
_lock = threading.Lock()
_last_run = [time.monotonic()]
_on_idle: list = []


def touch() -> None:
    """A page runs now (``app.py`` calls it on every run)."""
    _last_run[0] = time.monotonic()


def on_idle(clear) -> None:
    """Call ``clear()`` when the server has been idle for ``IDLE_S`` seconds."""
    if clear not in _on_idle:
        _on_idle.append(clear)


def tidy(idle_s: float = IDLE_S) -> bool:
    """One round: empty the shared caches if the server is idle, collect, trim. True if the
    caches were emptied."""
    idle = time.monotonic() - _last_run[0] >= idle_s
    if idle:
        for clear in list(_on_idle):
            clear()
    gc.collect()
    cost.trim_memory()
    return idle


def _trim_forever(every: float) -> None:
    while True:
        time.sleep(every)
        tidy()


def keep_lean(every: float = TRIM_EVERY_S) -> bool:
    """Start the trimming thread (once per process); False if it was already running."""
    with _lock:
        if _started.is_set():
            return False
        cost.return_freed_memory()
        threading.Thread(target=_trim_forever, args=(every,), name="skimviz-trim",
                         daemon=True).start()
        _started.set()
        return True
