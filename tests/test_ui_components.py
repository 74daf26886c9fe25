"""AppTests of the shared app components (ui/): each in a tiny script of its own."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import glossary, lede


def _lede_script():
    from ui.lede import lede
    lede("Skip RNN", "The {update gate} decides; {FLOPs|work} falls.", "Move {θ}.",
         ["Campos et al. 2018, Eq. 2–5"])


def test_lede_renders_terms_with_tooltips():
    at = AppTest.from_function(_lede_script).run()
    assert not at.exception
    assert at.title[0].value == "Skip RNN"
    html = " ".join(m.value for m in at.markdown)
    assert 'title="' in html and ">update gate</abbr>" in html and ">work</abbr>" in html
    assert "<b>Try:</b>" in html
    assert at.caption[0].value == "Campos et al. 2018, Eq. 2–5"


def test_with_terms_escapes_text_and_rejects_unknown_terms():
    assert "&lt;b&gt;" in lede.with_terms("<b>{dense}")
    with pytest.raises(KeyError):
        lede.with_terms("{no such term}")


def test_every_glossary_entry_is_plain_and_short():
    for word, text in glossary.GLOSSARY.items():
        assert 20 <= len(text) <= 220, word
        assert "`" not in text and "--" not in text, word   # no code or command lines


def _panel_script():
    import torch

    from skimviz.models.classifier import SequenceClassifier
    from ui.latency_panel import panel
    torch.manual_seed(0)
    model = SequenceClassifier(1, 16, 10)
    with torch.no_grad():
        model.rnn.gate.bias.fill_(-0.5)
    dense = SequenceClassifier(1, 16, 10, skip=False)
    panel("tiny", model, dense, (torch.rand(1, 60, 1),), "pixels")


def test_latency_panel_numbers_and_sentence_agree():
    at = AppTest.from_function(_panel_script).run(timeout=60)
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["Dense", "Masked", "Skipped for real"]
    ms = {m.label: float(m.value.split()[0]) for m in at.metric}
    sentence = next(m.value for m in at.markdown if "Skipping for real" in m.value)
    # the sentence quotes the same two times the metrics show, and its verdict follows them
    s, d = re.search(r"\((\d+\.\d+) ms vs (\d+\.\d+) ms\)", sentence).groups()
    assert float(s) == pytest.approx(ms["Skipped for real"], abs=0.006)
    assert float(d) == pytest.approx(ms["Dense"], abs=0.006)
    if ms["Skipped for real"] * 1.1 < ms["Dense"]:
        assert "faster" in sentence
    elif ms["Skipped for real"] > ms["Dense"] * 1.1:
        assert "slower" in sentence
    assert f"{ms['Masked']:.2f} ms" in sentence
    # a rerun does not time again: the same numbers
    at.run()
    assert [m.value for m in at.metric] == [f"{v:.2f} ms" for v in ms.values()]


def _present_script():
    import streamlit as st

    from ui import presentation
    on = presentation.toggle("skim-rnn-text")
    st.slider("θ", 0.0, 1.0, 0.5, key="skim_theta")
    with presentation.beside("skim-rnn-text"):
        st.markdown("THE FIGURE")


def test_presentation_puts_the_slide_beside_the_figure_and_keeps_controls():
    at = AppTest.from_function(_present_script).run()
    assert not at.exception and not at.columns            # off: the figure alone
    at.toggle(key="present_toggle_skim-rnn-text").set_value(True).run()
    assert at.query_params.get("present") in ("1", ["1"])
    assert len(at.columns) == 2 + 2                        # slide | figure, and Previous | Next
    assert any("THE FIGURE" in [m.value for m in c.markdown] for c in at.columns)
    assert at.slider(key="skim_theta")                     # the control a slide mentions stays
    assert "display: none" not in " ".join(m.value for m in at.markdown)
    # a slide's state is applied when it is shown
    from ui import lessons
    slides = lessons.slides("skim-rnn-text")
    at.button(key="present_next_skim-rnn-text").click().run()
    want = (slides[1].get("state") or {}).get("skim_theta")
    if want is not None:
        assert at.slider(key="skim_theta").value == want


def test_figures_are_shared_by_what_they_are_drawn_from():
    """ui.figure_cache: the same arrays and θ give the figure built the first time; another θ,
    other values of the same shape or another type build anew; the cache stays bounded."""
    import numpy as np

    from ui import figure_cache
    figure_cache.clear()
    built = []

    def build():
        built.append(object())
        return built[-1]

    a = np.arange(6.0)
    first = figure_cache.shared("f", build, a, 0.5)
    assert figure_cache.shared("f", build, a.copy(), 0.5) is first and len(built) == 1
    assert figure_cache.shared("f", build, a, 0.55) is not first
    assert figure_cache.shared("f", build, a[::-1].copy(), 0.5) is not first
    assert figure_cache.shared("f", build, a.astype(np.float32), 0.5) is not first
    assert figure_cache.shared("g", build, a, 0.5) is not first
    assert len(built) == 5
    for i in range(figure_cache.MAX_FIGURES + 5):
        figure_cache.shared("f", build, a, float(i))
    assert len(figure_cache._FIGURES) == figure_cache.MAX_FIGURES


def test_a_shared_figure_gives_its_dict_form_made_once():
    import numpy as np

    from skimviz.viz import playback
    from ui import figure_cache
    figure_cache.clear()
    rng = np.random.default_rng(0)
    args = (rng.random((28, 28)), (rng.random(784) < 0.4) * 1.0, rng.random(784))
    fig = figure_cache.shared("p", lambda: playback.pixel_playback(*args), *args)
    assert fig.to_dict() is fig.to_dict()
    assert fig.to_dict()["frames"] and fig.to_dict() == playback.pixel_playback(*args).to_dict()


def test_the_app_collects_garbage_in_one_thread_of_its_own():
    """Streamlit's collection after every run is off (.streamlit/config.toml); ui.memory starts
    one collecting thread per process, however many times app.py runs."""
    import threading

    from ui import memory
    memory.keep_lean()
    assert memory.keep_lean() is False
    assert sum(t.name == "skimviz-trim" for t in threading.enumerate()) == 1
    assert "postScriptGC = false" in (Path(__file__).resolve().parent.parent / ".streamlit"
                                      / "config.toml").read_text()


def _stored_session_manager(ttl_s: float):
    """Streamlit's own session manager and store (the pinned version's classes), as a server
    builds them."""
    from streamlit.runtime.memory_session_storage import MemorySessionStorage
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.runtime.websocket_session_manager import WebsocketSessionManager
    return WebsocketSessionManager(session_storage=MemorySessionStorage(ttl_seconds=ttl_s),
                                   uploaded_file_manager=MemoryUploadedFileManager("/upload"),
                                   script_cache=ScriptCache(), message_enqueued_callback=None)


class _ClosedTab:
    """A closed tab's session as the store keeps it: an id, state, and shutdown()."""

    def __init__(self, sid):
        import threading
        self.id, self.state, self.shut_in = sid, bytearray(1 << 20), None
        self._threading = threading

    def shutdown(self):
        self.shut_in = self._threading.current_thread().name


def test_a_closed_tabs_session_is_shut_down_and_freed_once_its_ttl_is_over():
    """Streamlit's store drops an expired session only when the next tab connects, and without
    shutting it down; the app's memory round does both on time (and not before the TTL)."""
    import gc
    import time
    import weakref

    from streamlit.runtime.session_manager import SessionInfo

    from ui import memory
    mgr = _stored_session_manager(ttl_s=0.3)
    tab = _ClosedTab("s1")
    mgr._session_storage.save(SessionInfo(client=None, session=tab))
    assert memory.reap_closed_sessions(mgr) == 0 and mgr.get_session_info("s1") is not None
    time.sleep(0.4)
    assert memory.reap_closed_sessions(mgr) == 1 and tab.shut_in is not None
    assert mgr.get_session_info("s1") is None and mgr.list_sessions() == []
    gone = weakref.ref(tab)
    del tab
    gc.collect()
    assert gone() is None                                   # nothing else holds its state
    assert memory.reap_closed_sessions(mgr) == 0


def test_expired_sessions_are_shut_down_on_the_servers_event_loop():
    import asyncio
    import threading
    import time

    from streamlit.runtime.session_manager import SessionInfo

    from ui import memory
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, name="server-loop", daemon=True)
    t.start()
    try:
        mgr = _stored_session_manager(ttl_s=0.05)
        tabs = [_ClosedTab(f"s{i}") for i in range(3)]
        for tab in tabs:
            mgr._session_storage.save(SessionInfo(client=None, session=tab))
        time.sleep(0.1)
        assert memory.reap_closed_sessions(mgr, loop) == 3
        assert [tab.shut_in for tab in tabs] == ["server-loop"] * 3
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()


def test_without_a_running_server_there_is_nothing_to_reap():
    from ui import memory
    assert memory.reap_closed_sessions() == 0
    assert memory.reap_closed_sessions(object()) == 0       # not a session manager: no error
