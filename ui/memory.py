"""The app process's garbage collection, closed tabs' sessions and free memory.

Streamlit's own full collection after every script run is off (``runner.postScriptGC`` in
``.streamlit/config.toml``: with a class on one server it was most of the server's work), so
:func:`keep_lean`, called once per process by ``app.py``, starts one thread that every
``TRIM_EVERY_S`` seconds shuts down the sessions of tabs closed longer ago than
``server.disconnectedSessionTTL`` (:func:`reap_closed_sessions`), collects cyclic garbage and
hands free heap memory back to the system (:func:`skimviz.cost.trim_memory`); blocks over
128 KiB are mapped on their own and given back as soon as they are freed
(:func:`skimviz.cost.return_freed_memory`). What a class leaves behind all the same is measured
in docs/results/classroom.md.
"""
from __future__ import annotations

import gc
import logging
import threading
import time

from skimviz import cost

TRIM_EVERY_S = 30.0
SHUTDOWN_WAIT_S = 10.0
_started = threading.Event()
_lock = threading.Lock()


def _server():
    """(session manager, event loop) of the running Streamlit server, or (None, None)."""
    from streamlit import runtime
    if not runtime.exists():
        return None, None
    rt = runtime.get_instance()
    return getattr(rt, "_session_mgr", None), getattr(getattr(rt, "_async_objs", None),
                                                      "eventloop", None)


def reap_closed_sessions(manager=None, loop=None) -> int:
    """Shut down the sessions whose tab closed more than ``server.disconnectedSessionTTL`` ago;
    returns how many.

    Streamlit keeps a closed tab's session (its state: here the session's own copies of the
    models, its live training, its uploads) so that a tab that reconnects within the TTL gets it
    back. Its store only drops an expired session when the next tab connects, and then without
    shutting it down (uploaded files stay registered): a server a class has just left holds every
    student's session until someone new arrives (streamlit/streamlit#12506). This drops them on time, under the session
    manager's own lock, and shuts each down on the server's event loop (as Streamlit does when a
    stored session is closed). Streamlit's private attributes are read with ``getattr``: with a
    Streamlit that lacks them this does nothing (``tests/test_ui_components.py`` checks the
    pinned one has them)."""
    if manager is None:
        manager, loop = _server()
    cache = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    lock = getattr(manager, "_storage_lock", None)
    if lock is None or not callable(getattr(cache, "expire", None)):
        return 0
    with lock:
        sessions = [info.session for _, info in cache.expire()]
    if not sessions:
        return 0
    done = threading.Event()

    def shut_down() -> None:
        try:
            for s in sessions:
                s.shutdown()
        finally:
            done.set()
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(shut_down)
        done.wait(SHUTDOWN_WAIT_S)
    else:
        shut_down()
    return len(sessions)


def tidy() -> None:
    """One round: closed tabs' sessions, then collect, then trim."""
    reap_closed_sessions()
    gc.collect()
    cost.trim_memory()


def _trim_forever(every: float) -> None:
    while True:
        time.sleep(every)
        try:
            tidy()
        except Exception:   # one bad round must not end the thread (it would stop collecting)
            logging.getLogger(__name__).exception("skimviz: a memory round failed")


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
