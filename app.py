"""skimviz: the Streamlit entry point (`streamlit run app.py`).

Only the shell lives here: page config and navigation. Each page is a thin script under
``pages/``; all computation is in the ``skimviz`` library and every figure is built by
``skimviz.figures``. No page loads anything from another host (no material icons, no CDN assets).
"""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="skimviz", page_icon="⏭️", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", default=True),
    st.Page("pages/skip_rnn_mnist.py", title="Skip RNN — MNIST pixels",
            url_path="skip-rnn-mnist"),
    st.Page("pages/skip_rnn_signals.py", title="Skip RNN — signals and clips",
            url_path="skip-rnn-signals"),
    st.Page("pages/skim_rnn_text.py", title="Skim-RNN — your own text", url_path="skim-rnn-text"),
    st.Page("pages/transkimmer_text.py", title="Transkimmer — layer-wise skimming",
            url_path="transkimmer-text"),
    st.Page("pages/speed_lab.py", title="Speed lab — SRU and skipping", url_path="speed-lab"),
    st.Page("pages/dashboard.py", title="Trade-off dashboard", url_path="dashboard"),
]

st.navigation(PAGES).run()
