"""The skeleton the two text pages share (Skim-RNN, Transkimmer): the top row of pickers, the
text box, and the export tab.

The text box strips bidi and control characters (a U+202E would display every following word
reversed) and cuts the text at the library's limit, saying so.
"""
from __future__ import annotations

from typing import Callable, Dict

import streamlit as st

from skimviz.data import text as textdata
from skimviz.safety import clean_text, strip_controls

from . import presentation
from .export import export_row


def set_example(example_key: str, text_key: str, examples: dict) -> None:
    """``on_change`` of the example picker: the picked example into the text box."""
    label = st.session_state.get(example_key)
    if label in examples:
        st.session_state[text_key] = examples[label]


def top_row(page: str, prefix: str, names: list, default: str,
            format_name: Callable[[str], str], examples: Dict[str, str]) -> str:
    """Example picker | model picker | presentation toggle, in one row. Returns the model name
    (``{prefix}_model`` in the session, ``default`` the first time)."""
    if st.session_state.get(f"{prefix}_model") not in names:
        st.session_state[f"{prefix}_model"] = default
    text_key = f"{prefix}_text"
    if text_key not in st.session_state:
        st.session_state[text_key] = next(iter(examples.values()))
    c1, c2, c3 = st.columns([3.6, 5.4, 2], vertical_alignment="bottom")
    c1.selectbox("Example reviews", list(examples), index=None, key=f"{prefix}_example",
                 placeholder="pick an example review…", on_change=set_example,
                 args=(f"{prefix}_example", text_key, examples),
                 help="Short reviews written for this page (not from the training data).")
    name = c2.selectbox("Model", names, key=f"{prefix}_model", format_func=format_name)
    presentation.toggle(page, c3, sync_url=False, label="Present")
    return name


def text_box(prefix: str, empty_what: str, card: dict | None = None) -> str | None:
    """The text area (``{prefix}_text``), after a notice when ``card`` is a pipeline dry run.
    Returns the cleaned text, or None (with a notice) when it is blank."""
    if ((card or {}).get("training") or {}).get("dry_run"):
        st.warning("This model was trained for only two steps (a dry run of the training "
                   "pipeline): its predictions are meaningless.")
    key = f"{prefix}_text"
    value = st.session_state.get(key)
    if isinstance(value, str) and strip_controls(value) != value:
        # bidi overrides (U+202E …) would display the following words reversed, here and in
        # the token map; remove them before the box is drawn
        st.session_state[key] = strip_controls(value)
    st.text_area("Your text (a movie review works best)", key=key, height=90,
                 help=f"Up to {textdata.MAX_CHARS:,} characters; press Ctrl+Enter to apply.")
    raw = st.session_state.get(f"{prefix}_text") or ""
    text, cut = clean_text(raw, textdata.MAX_CHARS)
    if cut:
        st.warning(f"Your text has {len(raw):,} characters; only the first "
                   f"{textdata.MAX_CHARS:,} are read.")
    if not text.strip():
        st.warning(f"The text box is empty: type a sentence (or pick an example) to see "
                   f"{empty_what}.")
        return None
    return text


def export_tab(csv: tuple, trace: tuple, text: str, link: str, what: str) -> None:
    """Downloads (``csv`` and ``trace``: label, data, file name, key, help) and the link to
    this view."""
    export_row(csv, trace, text, link, what)
