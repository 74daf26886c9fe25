"""Home: the classroom's front door — one paragraph on conditional computation, then one card per
page (what you will see there, in one sentence, and a link to it).

The cards follow ``app_pages.PAGES``, so a page added to the app gets a card here (with a
generic sentence until it has its own in ``SEE``).
"""
from __future__ import annotations

import streamlit as st

import app_pages
from skimviz import cost
from ui import presentation, urlstate
from ui.lede import lede

PAGE = "home"

# A shared link `/?page=skip-rnn-mnist&digit=…` opens that page with the rest of its parameters
# (the root URL always resolves, even on the first request to a fresh server).
_link_page = urlstate.page_of({k: st.query_params.get_all(k) for k in st.query_params})
if _link_page:
    st.switch_page("views/skim_rnn_text.py" if _link_page == urlstate.SKIM_PAGE
                   else "views/skip_rnn_mnist.py",
                   query_params={k: v for k, v in st.query_params.to_dict().items()
                                 if k != "page"})
elif st.query_params.get_all("page") == ["transkimmer-text"]:
    # the Transkimmer page's links: `/?page=transkimmer-text&model=…&text=…`
    st.switch_page("views/transkimmer_text.py",
                   query_params={k: v for k, v in st.query_params.to_dict().items()
                                 if k != "page"})

#: What each page shows, in one sentence (keyed by its URL path).
SEE = {
    "skip-rnn-mnist": "A GRU reads a handwritten digit pixel by pixel and learns to skip "
                      "pixels: see which ones it read, and move the threshold θ.",
    "skip-rnn-signals": "The same skipping gate on a sine wave, the adding task and short "
                        "digit clips: see which samples and frames it used.",
    "skim-rnn-text": "Type a sentence: a big LSTM reads the words that matter, a tiny one "
                     "skims the rest.",
    "transkimmer-text": "Type a sentence: a transformer drops words layer by layer, so later "
                        "layers work on fewer of them.",
    "speed-lab": "Time an LSTM, a GRU, an SRU and a skipping GRU on this server: fewer FLOPs "
                 "do not always mean less time.",
    "dashboard": "Every model shipped with the app as one point: accuracy against FLOPs or "
                 "measured time, beside the papers' own numbers.",
}

presenting = presentation.toggle(PAGE, st.columns([2.5, 1])[1])  # top right
lede("skimviz — conditional computation you can see",
     "A neural network normally does the same work on every pixel, sample or word. With "
     "{conditional computation} it decides, step by step, how much work each input deserves: "
     "it can skip a step, skim a word with a small network, or drop a word it no longer needs. "
     "Each page shows one such model on real data: what it used (red), what it skipped (blue), "
     "and what that saved in {FLOPs} and in measured {latency|time}.",
     "open “Skip RNN — MNIST pixels” and move θ up: fewer pixels turn red.",
     ["Skip RNN: Campos et al., ICLR 2018 · Skim-RNN: Seo et al., ICLR 2018 · Transkimmer: "
      "Guan et al., ACL 2022 · SRU: Lei et al., EMNLP 2018"])

pages = [p for p in app_pages.PAGES if not p.default]
with presentation.beside(PAGE):
    n = 2 if presenting else 3  # beside a slide, two cards a row
    cols = st.columns(n)
    for i, page in enumerate(pages):
        with cols[i % n], st.container(border=True, key=f"card_{page.name}"):
            st.markdown(f"**{page.title}**")
            st.markdown(SEE.get(page.url_path, f"Open {page.title}."))
            st.page_link(page.file, label="Open the page →", help=f"Go to {page.title}")

st.caption("Everything runs and is timed on this server: "
           + "; ".join(cost.describe_device(d) for d in cost.available_devices()) + ".")
