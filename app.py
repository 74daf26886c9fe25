"""skimviz: the Streamlit entry point (`streamlit run app.py`).

Only the shell lives here: page config and navigation. Each page is a thin script under
``views/``, listed in ``app_pages.py``; shared pieces are in ``ui/``, all computation in the
``skimviz`` library. No page loads anything from another host (no material icons, no CDN
assets). The pages' folder is not called ``pages/``: Streamlit would then answer a fresh
server's first request with its legacy file-name pages ("Page not found" over deep links).
"""
from __future__ import annotations

import streamlit as st

import app_pages
from ui import memory

memory.keep_lean()   # once per process: collect garbage every 30 s (not after every run)
st.set_page_config(page_title="skimviz", page_icon="⏭️", layout="wide")

PAGES = [st.Page(p.file, title=p.title, url_path=p.url_path or None, default=p.default)
         for p in app_pages.PAGES]

st.navigation(PAGES).run()
