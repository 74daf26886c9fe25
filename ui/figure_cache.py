"""Figures shared by every session of the server: a class looking at the same digit at the same θ
builds its step-by-step playback once.

A figure is keyed by what it is drawn from (its arrays' bytes, θ, presentation mode), never by
which model or session asked, so a figure found here is the one the asker would have built.
Figures handed out are shared: callers pass them to ``st.plotly_chart`` (which only reads them,
through their dict form, made once) and never change them. Bounded, least recently used out first.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from . import memory

MAX_FIGURES = 32
_FIGURES: "OrderedDict[str, object]" = OrderedDict()
_LOCK = threading.Lock()


def key_of(kind: str, *parts) -> str:
    """A key for a figure of ``kind`` drawn from ``parts`` (arrays by their bytes, shape and
    type; anything else by its ``repr``)."""
    h = hashlib.sha256(kind.encode())
    for p in parts:
        if isinstance(p, np.ndarray) or hasattr(p, "numpy"):
            a = np.ascontiguousarray(p.numpy() if hasattr(p, "numpy") else p)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return f"{kind}:{h.hexdigest()[:24]}"


def shared(kind: str, build: Callable[[], object], *parts):
    """The figure ``build()`` returns for ``parts``, built once per server."""
    key = key_of(kind, *parts)
    with _LOCK:
        if key in _FIGURES:
            _FIGURES.move_to_end(key)
            return _FIGURES[key]
    fig = _frozen(build())   # outside the lock: two sessions may build one figure once each
    with _LOCK:
        _FIGURES[key] = fig
        while len(_FIGURES) > MAX_FIGURES:
            _FIGURES.popitem(last=False)
    return fig


def _frozen(fig):
    """``fig``, its dict form computed once: ``st.plotly_chart`` asks every rerun for
    ``fig.to_dict()``, which copies the whole figure and encodes its arrays again (17 ms for a
    digit's playback). The figure is never changed after it is built, so its dict is the same."""
    to_dict = getattr(fig, "to_dict", None)
    if to_dict is None:
        return fig
    d = to_dict()
    object.__setattr__(fig, "to_dict", lambda: d)
    return fig


def clear() -> None:
    with _LOCK:
        _FIGURES.clear()


memory.on_idle(clear)    # a server nobody uses keeps no figures
