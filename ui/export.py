"""The "Export and share" row: downloads and the link to this view."""
from __future__ import annotations

import streamlit as st

from ui import urlstate


def export_row(csv: tuple, trace: tuple, text: str, link: str, what: str) -> None:
    """Section "Export and share" of a text page, below its header: ``csv`` and ``trace``, each
    (label, data, file name, key, help), as download buttons (CSV, JSON), then
    :func:`share_box` and where the charts' PNGs are."""
    e1, e2, e3 = st.columns([1, 1, 2])
    for col, (label, data, file_name, key, help_), mime in (
            (e1, csv, "text/csv"), (e2, trace, "application/json")):
        col.download_button(label, data, file_name=file_name, mime=mime, key=key,
                            on_click="ignore", help=help_)
    with e3:
        share_box(text, link, what)
    st.caption("Every chart's toolbar (top right of the chart, on hover) downloads it as a PNG.")


def share_box(text: str, link: str, what: str) -> None:
    """The link to this view (``what``: what it carries), or why a text this long has none."""
    if len(text) <= urlstate.SKIM_TEXT_MAX:
        st.markdown(f"**Link to this view** ({what}):")
        st.code(link, language=None)
    else:
        st.caption(f"A link carries texts of up to {urlstate.SKIM_TEXT_MAX} characters; "
                   "this one is longer, so the link would open the page without it.")
