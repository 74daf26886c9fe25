"""Presentation mode a teacher can project: the slide beside the figure it talks about.

Nothing is hidden: the sidebar (page navigation) and every control stay, so a slide that says
"move θ" has its slider on screen. The mode enlarges text and figures and puts the page's short
guided sequence (:mod:`ui.lessons`) in a column next to the page's main figure, with
Previous/Next. A slide may set widget values (its ``state``) when it is shown, so what it
describes is what the screen shows. The URL keeps ``present=1`` while it is on.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from skimviz.viz import common
from ui import lessons, urlstate

STATE = "_present"

CSS = """<style>
.stMarkdown p, .stMarkdown li {font-size: 1.25rem !important; line-height: 1.5 !important;}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {
  font-size: 1.05rem !important;}
h1 {font-size: 2.6rem !important;}
[data-testid="stMetricValue"] {font-size: 2.4rem !important;}
[class*="st-key-present_slide"] p {font-size: 1.45rem !important;}
[class*="st-key-present_slide"] button {padding-left: .4rem; padding-right: .4rem;}
[class*="st-key-present_slide"] button p {font-size: .95rem !important;}
</style>"""


def is_on() -> bool:
    return bool(st.session_state.get(STATE, False))


def big(fig):
    """``fig`` enlarged (taller, larger fonts) in presentation mode; unchanged otherwise."""
    return common.enlarge(fig) if is_on() else fig


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


def toggle(page: str, container=None, sync_url: bool = True,
           label: str = "Presentation mode") -> bool:
    """The "Presentation mode" toggle (in ``container``, default the page); returns whether the
    mode is on. It starts from the URL (``present=1``); with ``sync_url`` the URL follows it."""
    if STATE not in st.session_state:
        params = {k: st.query_params.get_all(k) for k in st.query_params}
        st.session_state[STATE] = urlstate.presenting(params)
    (container or st).toggle(
        label, value=is_on(), key=f"present_toggle_{page}", on_change=_toggled,
        args=(page,), help="Larger text and figures, and a short guided sequence of slides "
                           "beside the main figure. Navigation and controls stay.")
    on = is_on()
    if sync_url:
        if on and st.query_params.get("present") != "1":
            st.query_params["present"] = "1"
        elif not on and "present" in st.query_params:
            del st.query_params["present"]
    if on:
        st.markdown(CSS, unsafe_allow_html=True)
    return on


def _slide(page: str) -> None:
    sl = lessons.slides(page)
    if not sl:
        return
    i = lessons.clamp_step(st.session_state.get(f"_present_step_{page}", 0), page)
    with st.container(border=True, key=f"present_slide_{page}"):
        st.caption(f"Slide {i + 1} of {len(sl)}")
        st.subheader(sl[i]["title"])
        st.markdown(sl[i]["text"])
        c1, c2 = st.columns(2)
        c1.button("Previous", key=f"present_prev_{page}", disabled=i == 0,
                  on_click=_apply, args=(page, i - 1), width="stretch")
        c2.button("Next", key=f"present_next_{page}", disabled=i == len(sl) - 1,
                  on_click=_apply, args=(page, i + 1), width="stretch")


@contextmanager
def beside(page: str) -> Iterator[None]:
    """Draw the page's main figure inside this block: in presentation mode the current slide
    sits in a column to its left; otherwise the figure takes the full width."""
    if not is_on() or not lessons.slides(page):
        yield
        return
    left, right = st.columns([1, 2], gap="large")
    with left:
        _slide(page)
    with right:
        yield


def metric_slots(n: int = 4) -> list:
    """Columns for ``n`` metrics: one row normally; two per row in presentation mode, where the
    slide takes a third of the width and four values in a row would be cut to "…"."""
    if not is_on():
        return list(st.columns(n))
    slots: list = []
    for i in range(0, n, 2):
        slots += list(st.columns(min(2, n - i)))
    return slots
