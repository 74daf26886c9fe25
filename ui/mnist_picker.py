"""The MNIST page's digit picker and its link: which digit is shown, and the view in the URL.

The class and index boxes follow the digit shown however it was picked (class, index, random,
link), an upload empties both, and an upload's error clears at the next pick. Widget callbacks
set the digit, so the last action wins. An upload's size is checked before its bytes are read
and its name is shown literally (:mod:`skimviz.data.images`, :func:`skimviz.safety.label`).
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from skimviz.data import mnist
from skimviz.data.images import MAX_UPLOAD_BYTES, ImageError, check_size, image_to_digit
from skimviz.safety import human_bytes, label
from ui import urlstate

from . import presentation
from .urls import set_query, share_link

N_DIGITS = mnist.N_BUNDLED
SEED_MAX = urlstate.SEED_MAX


def _rng() -> np.random.Generator:
    if "_rng" not in st.session_state:
        st.session_state["_rng"] = np.random.default_rng()
    return st.session_state["_rng"]


def session_seed() -> int:
    """Live training's seed: the link's (``seed=``), else one drawn at random once per session;
    then whatever the "Seed" input last held."""
    if "_live_seed" not in st.session_state:
        st.session_state["_live_seed"] = int(_rng().integers(SEED_MAX + 1))
    return int(st.session_state["_live_seed"])


# --- digit picking (widget callbacks) -----------------------------------------------------------
def _set_index(i: int, source: str) -> None:
    _, y = mnist.load_bundled()
    st.session_state["digit"] = {"source": source, "index": int(i), "label": int(y[i])}
    st.session_state["digit_index"] = int(i)
    st.session_state["digit_class"] = int(y[i])
    st.session_state["upload_error"] = None


def _on_index() -> None:
    v = st.session_state.get("digit_index")
    if v is not None and 0 <= int(v) < N_DIGITS:
        _set_index(int(v), "index")


def _on_random() -> None:
    _set_index(int(_rng().integers(N_DIGITS)), "random")


def _on_class() -> None:
    c = st.session_state.get("digit_class")
    if c is None:
        return
    _, y = mnist.load_bundled()
    _set_index(int(_rng().choice(np.nonzero(y == int(c))[0])), "class")


def _on_upload() -> None:
    f = st.session_state.get("digit_upload")
    # A file already handled (its change event seen again in a later run) is not a new pick:
    # it must not bring back its error, or the upload, over the digit picked since.
    seen = getattr(f, "file_id", None)
    if f is not None and seen is not None and seen == st.session_state.get("_upload_seen"):
        return
    st.session_state["_upload_seen"] = seen
    st.session_state["upload_error"] = None
    if f is None:
        return
    try:
        check_size(f.size)
        img = image_to_digit(f.getvalue())
    except ImageError as e:  # its message is ours: no Python objects, no user text
        st.session_state["upload_error"] = f"“{label(f.name)}”: {e}"
        return
    st.session_state["digit"] = {"source": "upload", "index": None, "label": None,
                                 "image": img, "name": f.name}
    st.session_state["digit_index"] = None
    st.session_state["digit_class"] = None


def current_digit():
    """(image 28×28 uint8, description, true label or None)."""
    d = st.session_state.setdefault("digit", {"source": "index", "index": 0, "label": None})
    if d["source"] == "upload":
        return d["image"], f"your image “{label(d['name'])}”", None
    x, y = mnist.load_bundled()
    i = d["index"]
    return x[i], f"validation digit #{i} (a {int(y[i])})", int(y[i])


def controls(page: str) -> None:
    """One row: class, index, random / another of this class, upload, presentation toggle; then
    any problem with the index or the upload, in words."""
    d = st.session_state.get("digit") or {}
    if "digit_class" not in st.session_state:  # widget state is dropped off-page
        st.session_state["digit_class"] = d.get("label")
    if "digit_index" not in st.session_state:
        st.session_state["digit_index"] = d.get("index", 0)
    c = st.columns([1.0, 1.3, 1.5, 1.4], vertical_alignment="bottom")
    c[0].selectbox("Digit class", list(range(10)), index=None, key="digit_class",
                   placeholder="any", on_change=_on_class)
    c[1].number_input(f"Digit index (0–{N_DIGITS - 1})", step=1, key="digit_index",
                      on_change=_on_index,
                      help="One of the 5,000 MNIST digits bundled with the app; the shipped "
                           "model never trained on them.")
    c[2].button("Random digit", key="digit_random", on_click=_on_random, width="stretch")
    c[2].button("Another of this class", key="digit_class_again", on_click=_on_class,
                width="stretch", disabled=st.session_state.get("digit_class") is None)
    with c[3].popover("Upload a digit", width="stretch"):
        st.file_uploader(
            f"A photo or drawing of one digit (PNG or JPEG, up to "
            f"{human_bytes(MAX_UPLOAD_BYTES)})", type=["png", "jpg", "jpeg"],
            key="digit_upload", on_change=_on_upload, max_upload_size=MAX_UPLOAD_BYTES // 2**20,
            help=f"PNG or JPEG only, at most {human_bytes(MAX_UPLOAD_BYTES)} and 4096×4096 "
                 "pixels (the server refuses larger files). It is turned into a 28×28 digit the "
                 "way MNIST's were made: grey, uneven light removed, bright ink on black, "
                 "cropped to the ink, scaled to fit 20×20 pixels and centred.")
    presentation.toggle(page, c[3], sync_url=False, label="Present")
    v = st.session_state.get("digit_index")
    if v is None and d.get("source") != "upload":
        st.error(f"The digit index is empty: choose a number from 0 to {N_DIGITS - 1}. The "
                 "page still shows the previous digit.")
    elif v is not None and not 0 <= int(v) < N_DIGITS:
        st.error(f"Digit index {v} is out of range: choose a number from 0 to {N_DIGITS - 1}. "
                 "The page still shows the previous digit.")
    if st.session_state.get("upload_error"):
        st.error(f"That upload cannot be used: {st.session_state['upload_error']}. The page "
                 "still shows the previous digit.")


# --- the view in the URL ------------------------------------------------------------------------
def read_url() -> None:
    """Once per session: the query parameters become the widgets' starting values; every bad
    value falls back to its default with a notice (``ui.urlstate``)."""
    if st.session_state.get("_url_read"):
        return
    st.session_state["_url_read"] = True
    state, notices = urlstate.parse({k: st.query_params.get_all(k) for k in st.query_params})
    if state["model"] == "session":
        notices.append("This link asks for a model trained in another browser session; such a "
                       "model lives only in that session, so the shipped model is shown.")
    st.session_state["_url_notices"] = notices
    _set_index(state["digit"], "index")
    st.session_state["attr_method"] = state["method"]
    st.session_state["_url_theta"] = state["theta"]
    if state["seed"] is not None:
        st.session_state["_live_seed"] = state["seed"]
    st.session_state["live_seed"] = session_seed()


def view(choice: str) -> dict:
    d = st.session_state.get("digit") or {}
    seed = st.session_state.get("live_seed")
    return {"digit": d.get("index") if d.get("source") != "upload" else None,
            "model": choice or "shipped", "theta": st.session_state.get("theta"),
            "method": st.session_state.get("attr_method") or "ig",
            "seed": int(seed) if seed is not None and 0 <= int(seed) <= SEED_MAX
            else session_seed(), "present": presentation.is_on()}


def write_url(choice: str) -> None:
    """Keep the address bar on the current view."""
    set_query(urlstate.encode(view(choice)))


def link(choice: str) -> str:
    """A link that opens this view, through the app's root (works on a fresh server too)."""
    return share_link(urlstate.PAGE, urlstate.share_query(view(choice), via_home=True))
