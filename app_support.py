"""Streamlit helpers shared by the pages: shipped checkpoints shared between sessions, and
presentation mode.

Not a page (``app.py`` registers its pages explicitly with ``st.navigation``, so nothing here is
ever listed). The slide texts are pure data in ``skimviz.lessons``; this module only draws them.

Presentation mode hides the sidebar and every control wrapped in a container whose key starts
with ``controls`` (local CSS injected with ``st.markdown(..., unsafe_allow_html=True)``; no
remote asset), enlarges fonts and figures (:func:`big`) and shows the page's guided sequence
with Previous/Next buttons. Its state is ``st.session_state["_present"]``; it starts from the
URL (``present=1``) and pages keep ``present=1`` in the URL while it is on.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st

from skimviz import checkpoint, figures, lessons, urlstate


# --- shipped checkpoints ---------------------------------------------------------------------
def pretrained_dir() -> str | None:
    """``SKIMVIZ_PRETRAINED_DIR`` (tests point it at a temporary folder), else None (the default
    ``pretrained/``)."""
    return os.environ.get("SKIMVIZ_PRETRAINED_DIR") or None


def checkpoint_stamp(name: str, directory: str | None = None):
    """Modification times of a checkpoint's files: a re-export (after each training epoch) gives
    a new cache key, so pages pick up the newer weights. None when it is missing."""
    base = Path(directory or pretrained_dir() or checkpoint.PRETRAINED_DIR) / name
    try:
        return tuple((base / f).stat().st_mtime_ns for f in (checkpoint.CARD, checkpoint.WEIGHTS))
    except OSError:
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def load_shared(name: str, directory: str | None, stamp) -> tuple:
    """(model, card), loaded once per process and shared by all sessions: never mutate it —
    pages deep-copy it into the session before touching its threshold."""
    return checkpoint.load(name, directory)


def session_model(name: str, slot: str) -> tuple:
    """This session's own deep copy of a shipped checkpoint: (model, card, key), kept in
    ``st.session_state[slot]`` (name → that triple); a re-exported checkpoint (a new
    :func:`checkpoint_stamp`) is copied again."""
    d = pretrained_dir()
    stamp = checkpoint_stamp(name, d)
    key = (name, d, stamp)
    models = st.session_state.setdefault(slot, {})
    if name not in models or models[name][2] != key:
        model, card = load_shared(name, d, stamp)
        models[name] = (copy.deepcopy(model), card, key)
    return models[name]


# --- URLs ------------------------------------------------------------------------------------
def set_query(params: dict) -> None:
    """Keep the address bar on ``params`` (the query parameters; written only when changed)."""
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


def share_link(page: str, query: str) -> str:
    """A link that opens a view of ``page``: ``<app root>/?<query>`` (the query names the page:
    ``page=...&...``). Through the root, so it also works as the first request to a fresh server;
    a relative ``/?<query>`` when this request's URL is unknown."""
    try:
        parts = urlsplit(st.context.url or "")
    except Exception:
        parts = None
    if not parts or not parts.scheme or not parts.netloc:
        return f"/?{query}"
    path = parts.path.rstrip("/")
    if path.endswith("/" + page) or path == "/" + page:
        path = path[: -len(page) - 1]
    return f"{parts.scheme}://{parts.netloc}{path}/?{query}"

STATE = "_present"

CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stSidebarNav"], [data-testid="stExpandSidebarButton"] {display: none !important;}
[class*="st-key-controls"] {display: none !important;}
.stMainBlockContainer, .block-container {max-width: 100% !important;
  padding-left: 3rem !important; padding-right: 3rem !important;}
.stMarkdown p, .stMarkdown li {font-size: 1.35rem !important; line-height: 1.55 !important;}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {
  font-size: 1.15rem !important;}
h1 {font-size: 3rem !important;} h2 {font-size: 2.3rem !important;}
h3 {font-size: 1.9rem !important;}
[data-testid="stMetricValue"] {font-size: 2.6rem !important;}
[data-testid="stMetricLabel"] p {font-size: 1.2rem !important;}
[class*="st-key-present_slide"] p {font-size: 1.7rem !important;}
</style>"""


def is_on() -> bool:
    return bool(st.session_state.get(STATE, False))


def big(fig):
    """``fig`` enlarged (taller, larger fonts) in presentation mode; unchanged otherwise."""
    return figures.enlarge(fig) if is_on() else fig


def _apply(page: str, i: int) -> None:
    sl = lessons.slides(page)
    i = lessons.clamp_step(i, page)
    st.session_state[f"_present_step_{page}"] = i
    if sl:
        for key, value in (sl[i].get("state") or {}).items():
            st.session_state[key] = value


def _toggled(page: str) -> None:
    on = bool(st.session_state.get(f"present_toggle_{page}"))
    st.session_state[STATE] = on
    if on:
        _apply(page, st.session_state.get(f"_present_step_{page}", 0))


def presentation(page: str, sync_url: bool = True) -> bool:
    """Draw the presentation toggle (and, when on, the CSS and the page's slides) at the top of
    a page; returns whether presentation mode is on. With ``sync_url`` the URL's ``present``
    parameter follows the toggle (pages that write the whole URL themselves pass False and put
    ``present`` in their own view)."""
    if STATE not in st.session_state:
        params = {k: st.query_params.get_all(k) for k in st.query_params}
        # From a link: the slides start at the first one, but the link's own view (e.g. its θ)
        # is kept until the presenter moves to another slide.
        st.session_state[STATE] = urlstate.presenting(params)
    on = is_on()
    _, right = st.columns([3, 1])
    right.toggle("Presentation mode", value=on, key=f"present_toggle_{page}",
                 on_change=_toggled, args=(page,),
                 help="Hides the sidebar and the controls, enlarges text and figures, and steps "
                      "through a short guided sequence of what to look at.")
    on = is_on()
    if sync_url:
        if on and st.query_params.get("present") != "1":
            st.query_params["present"] = "1"
        elif not on and "present" in st.query_params:
            del st.query_params["present"]
    if not on:
        return False
    st.markdown(CSS, unsafe_allow_html=True)
    sl = lessons.slides(page)
    if sl:
        i = lessons.clamp_step(st.session_state.get(f"_present_step_{page}", 0), page)
        with st.container(border=True, key=f"present_slide_{page}"):
            st.caption(f"Slide {i + 1} of {len(sl)}")
            st.subheader(sl[i]["title"])
            st.markdown(sl[i]["text"])
            c1, c2, _ = st.columns([1, 1, 4])
            c1.button("Previous", key=f"present_prev_{page}", disabled=i == 0,
                      on_click=_apply, args=(page, i - 1))
            c2.button("Next", key=f"present_next_{page}", disabled=i == len(sl) - 1,
                      on_click=_apply, args=(page, i + 1))
    return True
