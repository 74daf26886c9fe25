"""The app's pages as plain data: one ``(file, title, url_path, default)`` row per page.

``app.py`` builds its ``st.navigation`` from this list, and tools that visit every page (the
page gallery, ``scripts/gallery.py``; the first-request deep-link tests) read it from here, so a
page added to the app is visited without editing them. No Streamlit import: importable anywhere.
The default page has no path of its own (``""``): it is served at the app's root.
"""
from __future__ import annotations

from typing import NamedTuple


class AppPage(NamedTuple):
    file: str
    title: str
    url_path: str
    default: bool = False

    @property
    def name(self) -> str:
        """A short name for files and test ids: the URL path, or ``home`` for the root page."""
        return self.url_path or "home"


PAGES = (
    AppPage("views/home.py", "Home", "", default=True),
    AppPage("views/skip_rnn_mnist.py", "Skip RNN — MNIST pixels", "skip-rnn-mnist"),
    AppPage("views/skip_rnn_signals.py", "Skip RNN — signals and clips", "skip-rnn-signals"),
    AppPage("views/skim_rnn_text.py", "Skim-RNN — your own text", "skim-rnn-text"),
    AppPage("views/transkimmer_text.py", "Transkimmer — layer-wise skimming", "transkimmer-text"),
    AppPage("views/speed_lab.py", "Speed lab — SRU and skipping", "speed-lab"),
    AppPage("views/dashboard.py", "Trade-off dashboard", "dashboard"),
)
