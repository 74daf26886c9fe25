"""Results kept in one browser session: computed once per key, a bounded number per slot."""
from __future__ import annotations

from typing import Callable, Hashable

import streamlit as st


def cached(slot: str, key: Hashable, compute: Callable[[], object], limit: int = 64):
    """``st.session_state[slot][key]``, computed by ``compute()`` the first time; the slot is
    emptied when it holds more than ``limit`` results. ``compute``'s exceptions propagate (and
    nothing is stored)."""
    store = st.session_state.setdefault(slot, {})
    if key not in store:
        value = compute()
        if len(store) >= limit:
            store.clear()
        store[key] = value
    return store[key]


def keep_widget_state(keys) -> None:
    """Keep these widgets' values through reruns that do not draw them (a closed lazy tab):
    Streamlit drops the state of a widget that a rerun does not draw, unless the script has
    set it itself, which this does (call it before any of them is drawn)."""
    for k in keys:
        if k in st.session_state:
            st.session_state[k] = st.session_state[k]
