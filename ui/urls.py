"""The address bar: a page's view kept in its query parameters, and links that reopen it."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

from ui import urlstate


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


def read_text_url(prefix: str, names, ignore=()) -> dict | None:
    """Once per session: the URL's model and text (``urlstate.parse_skim``, parameters in
    ``ignore`` left out) into ``{prefix}_model`` / ``{prefix}_text``, its notices into
    ``_{prefix}_url_notices``; returns the parsed state (None when already read)."""
    if st.session_state.get(f"_{prefix}_url_read"):
        return None
    st.session_state[f"_{prefix}_url_read"] = True
    params = {k: st.query_params.get_all(k) for k in st.query_params if k not in ignore}
    state, notices = urlstate.parse_skim(params, list(names))
    st.session_state[f"_{prefix}_url_notices"] = notices
    if state["model"]:
        st.session_state[f"{prefix}_model"] = state["model"]
    if state["text"]:
        st.session_state[f"{prefix}_text"] = state["text"]
    return state


def text_share_link(page: str, view: dict) -> str:
    """A link that opens this view of a text page: ``<app root>/?page=<page>&model=…&text=…``
    (through the root, which the home page switches to ``page``)."""
    return share_link(page, urlencode({"page": page, **urlstate.encode_skim(view)}))
