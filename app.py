"""skimviz: the Streamlit entry point (`streamlit run app.py`).

Only the shell lives here: page config and navigation. Each page is a thin script under
``pages/``, listed in ``app_pages.py``; all computation is in the ``skimviz`` library and every
figure is built by ``skimviz.figures``. No page loads anything from another host (no material
icons, no CDN assets).
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

import app_pages

st.set_page_config(page_title="skimviz", page_icon="⏭️", layout="wide")

PAGES = [st.Page(p.file, title=p.title, url_path=p.url_path or None, default=p.default)
         for p in app_pages.PAGES]

#: Reloads the browser tab (a constant script: nothing from the request goes into it).
_RELOAD = "<script>window.location.reload()</script>"


def _legacy_deep_link() -> bool:
    """Whether this run is Streamlit's legacy ``pages/`` shim answering a page's own URL.

    Because a folder named ``pages/`` sits next to this script, Streamlit 1.67 treats the first
    session of a fresh server as an old-style multipage app: it lists ``pages/*.py`` by file name
    (``skim_rnn_text``, not ``skim-rnn-text``), fails to find the requested ``url_path``, sends
    the browser a "Page not found" box, and runs this script, whose ``st.navigation`` then shows
    the right page under that box (and turns the legacy mode off for later sessions). Private
    Streamlit attributes: if they change, this says False and the box may come back (the
    first-request tests in ``tests/browser/test_deeplinks.py`` would then fail).
    """
    try:
        ctx = get_script_run_ctx()
        return bool(PagesManager.uses_pages_directory and ctx.pages_manager.intended_page_name)
    except AttributeError:
        return False


stale_not_found = _legacy_deep_link()
page = st.navigation(PAGES)
if stale_not_found and not PagesManager.uses_pages_directory:
    # The box cannot be withdrawn from the server: reload the tab once (same URL, parameters
    # kept); the new session is no longer in legacy mode and opens the page cleanly.
    st.html(_RELOAD, unsafe_allow_javascript=True)
    st.stop()
page.run()
