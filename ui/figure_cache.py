"""Figures shared by every session of the server: a class looking at the same digit at the same θ
builds its step-by-step playback once.

A figure is keyed by what it is drawn from (its arrays' bytes, θ, presentation mode), never by
which model or session asked, so a figure found here is the one the asker would have built.
Figures handed out are shared: callers pass them to ``st.plotly_chart`` (which only reads them,
through their dict form, made once) and never change them. Bounded, least recently used out first.
"""
from __future__ import annotations

from typing import Callable

from skimviz.cache import BoundedCache, content_key

MAX_FIGURES = 32
_FIGURES = BoundedCache(MAX_FIGURES)


def shared(kind: str, build: Callable[[], object], *parts):
    """The figure ``build()`` returns for ``parts`` (:func:`skimviz.cache.content_key`), built
    once per server."""
    key = content_key(kind, *parts)
    fig = _FIGURES.get(key)
    if fig is None:         # built outside any lock: two sessions may build one figure once each
        fig = _frozen(build())
        _FIGURES.put(key, fig)
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


clear = _FIGURES.clear
