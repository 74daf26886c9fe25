"""The app process's garbage collection and free memory.

Streamlit's own full collection after every script run is off (``runner.postScriptGC`` in
``.streamlit/config.toml``: with a class on one server it was most of the server's work), so
:func:`keep_lean`, called once per process by ``app.py``, starts one thread that every
``TRIM_EVERY_S`` seconds collects cyclic garbage and hands free heap memory back to the system
(:func:`skimviz.cost.trim_memory`); blocks over 128 KiB are mapped on their own and given back
as soon as they are freed (:func:`skimviz.cost.return_freed_memory`). What a class leaves behind
all the same is measured in docs/results/classroom.md.
"""
from __future__ import annotations

import gc
import threading
import time

from skimviz import cost

TRIM_EVERY_S = 30.0
_started = threading.Event()
_lock = threading.Lock()


def tidy() -> None:
    """One round: collect, then trim."""
    gc.collect()
    cost.trim_memory()


def _trim_forever(every: float) -> None:
    while True:
        time.sleep(every)
        tidy()


def keep_lean(every: float = TRIM_EVERY_S) -> bool:
    """Start the collecting thread (once per process); False if it was already running."""
    with _lock:
        if _started.is_set():
            return False
        cost.return_freed_memory()
        threading.Thread(target=_trim_forever, args=(every,), name="skimviz-trim",
                         daemon=True).start()
        _started.set()
        return True
