"""Home: what conditional computation is, one card per system, and the device in use."""
from __future__ import annotations

import os

import streamlit as st

from app_support import presentation
from skimviz import checkpoint, cost, urlstate

# A shared link `/?page=skip-rnn-mnist&digit=…` opens that page with the rest of its parameters
# (the root URL always resolves, even on the first request to a fresh server).
_link_page = urlstate.page_of({k: st.query_params.get_all(k) for k in st.query_params})
if _link_page:
    st.switch_page("pages/skim_rnn_text.py" if _link_page == urlstate.SKIM_PAGE
                   else "pages/skip_rnn_mnist.py",
                   query_params={k: v for k, v in st.query_params.to_dict().items()
                                 if k != "page"})
elif st.query_params.get_all("page") == ["transkimmer-text"]:
    # the Transkimmer page's links: `/?page=transkimmer-text&model=…&text=…`
    st.switch_page("pages/transkimmer_text.py",
                   query_params={k: v for k, v in st.query_params.to_dict().items()
                                 if k != "page"})

st.title("skimviz — conditional computation you can see")
st.markdown(
    "A recurrent network or a transformer normally spends the same work on every input step. "
    "**Conditional computation** lets the model decide, step by step, how much work an input "
    "deserves: it can *skip* a state update, *skim* a word with a small network, or *drop* tokens "
    "it no longer needs. Each page below shows one such system on real data: which steps the "
    "model used and which it skipped, what that saves in FLOPs, and what it saves (or not) in "
    "measured time on this machine.")
# Presentation mode (app_support): the toggle, and when on the CSS and the home page's slides.
presentation("home")

SYSTEMS = [
    ("Skip RNN — MNIST pixels",
     "Campos et al., ICLR 2018. A GRU reads a digit pixel by pixel (784 steps) and a learned "
     "binary gate decides at every pixel whether to update its state or copy it. See which pixels "
     "it reads, move the inference threshold, and train your own small model live.",
     "pages/skip_rnn_mnist.py"),
    ("Skip RNN — signals and clips",
     "The same gate on the paper's adding task and sine-wave frequency discrimination, and on "
     "short digit clips read by a small CNN: see which samples and frames are used (red) or "
     "skipped (blue), the ũ sawtooth, and train each task live in about a minute.",
     "pages/skip_rnn_signals.py"),
    ("Skim-RNN",
     "Seo et al., ICLR 2018. A big and a small LSTM share the state; each word is either read by "
     "the big one or skimmed by the small one. Type your own text, see which words are read and "
     "which skimmed, move the threshold, and time it against the dense LSTM.",
     "pages/skim_rnn_text.py"),
    ("Transkimmer",
     "Guan et al., ACL 2022. A transformer learns, layer by layer, which tokens to skim so that "
     "later layers process fewer of them. Type your own text, see before which layer each word "
     "is dropped, and time it against the dense encoder.",
     "pages/transkimmer_text.py"),
    ("SRU / speed lab",
     "Lei et al., EMNLP 2018. Simple Recurrent Units move the heavy matrix products out of the "
     "recurrence; measured latency next to FLOP counts. Benchmark nn.LSTM, nn.GRU, SRU and a "
     "Skip GRU live on this machine.", "pages/speed_lab.py"),
    ("Trade-off dashboard",
     "Every shipped checkpoint as a point: task metric against FLOPs (or measured latency), "
     "the dense baselines and the papers' reported points beside ours.", "pages/dashboard.py"),
]

cols = st.columns(2)
for i, (title, text, page) in enumerate(SYSTEMS):
    with cols[i % 2], st.container(border=True):
        st.subheader(title)
        st.markdown(text)
        if page:
            st.page_link(page, label=f"Open {title}")
        else:
            st.caption("Coming soon — not built yet.")

st.divider()
devices = cost.available_devices()
st.markdown("**Device in use:** " + "; ".join(cost.describe_device(d) for d in devices))
if "cuda" not in devices:
    st.caption("No CUDA GPU is visible to PyTorch, so every model runs and is timed on the CPU.")

shipped = checkpoint.list_pretrained(os.environ.get("SKIMVIZ_PRETRAINED_DIR") or None)
st.caption("Shipped checkpoints found: " + (", ".join(shipped) if shipped else
           "none yet (see the README for the training commands)."))
