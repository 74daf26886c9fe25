"""Streamlit helpers shared by the pages: shipped checkpoints shared between sessions, and
presentation mode.

Not a page (``app.py`` registers its pages explicitly with ``st.navigation``, so nothing here is
ever listed). The slide texts are pure data in ``skimviz.lessons``; this module only draws them.

Presentation mode hides the sidebar and every control wrapped in a container whose key starts
with ``controls`` (local CSS injected with ``st.markdown(..., unsafe_allow_html=True)``; no
remote asset), enlarges fonts and figures (:func:`big`) and shows the page's guided sequence
with Previous/Next buttons. Its state is ``st.session_state["_present"]``; it starts from the
URL (``present=1``) and pages keep ``present=1`` in the URL while it is on.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import streamlit as st

from skimviz import checkpoint, figures, lessons, urlstate


# --- shipped checkpoints ---------------------------------------------------------------------
def pretrained_dir() -> str | None:
    """``SKIMVIZ_PRETRAINED_DIR`` (tests point it at a temporary folder), else None (the default
    ``pretrained/``)."""
    return os.environ.get("SKIMVIZ_PRETRAINED_DIR") or None


def checkpoint_stamp(name: str, directory: str | None = None):
    """Modification times of a checkpoint's files: a re-export (after each training epoch) gives
    a new cache key, so pages pick up the newer weights. None when it is missing."""
    base = Path(directory or pretrained_dir() or checkpoint.PRETRAINED_DIR) / name
    try:
        files = [base / checkpoint.CARD, *checkpoint.weight_files(base)]
        return tuple(f.stat().st_mtime_ns for f in files) if len(files) > 1 else None
    except OSError:
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def load_shared(name: str, directory: str | None, stamp) -> tuple:
    """(model, card), loaded once per process and shared by all sessions: never mutate it —
    pages deep-copy it into the session before touching its threshold."""
    return checkpoint.load(name, directory)


def session_model(name: str, slot: str) -> tuple:
    """This session's own deep copy of a shipped checkpoint: (model, card, key), kept in
    ``st.session_state[slot]`` (name → that triple); a re-exported checkpoint (a new
    :func:`checkpoint_stamp`) is copied again."""
    d = pretrained_dir()
    stamp = checkpoint_stamp(name, d)
    key = (name, d, stamp)
    models = st.session_state.setdefault(slot, {})
    if name not in models or models[name][2] != key:
        model, card = load_shared(name, d, stamp)
        models[name] = (copy.deepcopy(model), card, key)
    return models[name]


# --- URLs ------------------------------------------------------------------------------------
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

# --- the text pages (Skim-RNN, Transkimmer) --------------------------------------------------
def text_cards(task: str, directory: str | None) -> dict:
    """name → card for every shipped checkpoint whose readable card has ``task``."""
    out = {}
    for name in checkpoint.list_pretrained(directory):
        try:
            card = checkpoint.load_card(name, directory)
        except checkpoint.CheckpointError:
            continue
        if card.get("task") == task:
            out[name] = card
    return out


def dense_twin(card: dict, fresh, twin_is: str, fresh_is: str, weights: str):
    """(dense model, sentence for the captions): the card's shipped ``dense_twin`` (``twin_is``
    says what it is), else ``fresh()`` (an untrained model of the same size, ``fresh_is``;
    ``weights`` says how much weights change the time)."""
    d = pretrained_dir()
    twin = card.get("dense_twin")
    if twin:
        try:
            dense, _ = load_shared(twin, d, checkpoint_stamp(twin, d))
            return dense, f"the dense twin `{twin}` ({twin_is})"
        except checkpoint.CheckpointError:
            pass
    return (fresh(), f"{fresh_is}: "
            + (f"the twin `{twin}` is not available" if twin else "the card names no dense twin")
            + f", and weights {weights} the time")


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


def set_example(example_key: str, text_key: str, examples: dict) -> None:
    """``on_change`` of an example picker: the picked example into the text box."""
    label = st.session_state.get(example_key)
    if label in examples:
        st.session_state[text_key] = examples[label]


def text_input(prefix: str, examples: dict, text_help: str, empty_what: str) -> str | None:
    """Section "Your text" of a text page: the example picker (``{prefix}_example``) and the
    text box (``{prefix}_text``, starting on the first example), outside the "controls"
    containers so presentation mode keeps them. Returns the text cut at
    ``textdata.MAX_CHARS`` (with a notice), or None (with a notice) when it is blank;
    ``empty_what`` ends that notice ("see ...")."""
    from skimviz.data import text as textdata

    text_key = f"{prefix}_text"
    with st.container(key=f"{prefix}_text_box"):
        if text_key not in st.session_state:
            st.session_state[text_key] = next(iter(examples.values()))
        st.selectbox("Examples", list(examples), index=None, key=f"{prefix}_example",
                     placeholder="pick an example text…", on_change=set_example,
                     args=(f"{prefix}_example", text_key, examples),
                     help="Short reviews written for this page (not from the training data).")
        st.text_area("Your text (a movie review works best)", key=text_key, height=130,
                     help=text_help)
    raw = st.session_state.get(text_key) or ""
    text = raw
    if len(raw) > textdata.MAX_CHARS:
        text = raw[:textdata.MAX_CHARS]
        st.warning(f"Your text has {len(raw):,} characters; only the first "
                   f"{textdata.MAX_CHARS:,} are read.")
    if not text.strip():
        st.warning("The text box is empty: type or paste a sentence (or pick an example) to "
                   f"see {empty_what}.")
        return None
    return text


def cached_latency(slot: str, key, measure_on, threads: int):
    """This text at batch 1 on every device, cached in ``st.session_state[slot]`` under ``key``
    (at most 64 entries): ``measure_on(device)`` → {"skim", "dense"} (``cost`` latencies as
    dicts), timed with ``threads`` CPU threads; each gets the device's "name". Returns
    (latency, error message or None); a failed measurement is not cached."""
    from skimviz import cost
    from skimviz.speedlab import threads as _threads

    cache = st.session_state.setdefault(slot, {})
    if key in cache:
        return cache[key], None
    out = {}
    try:
        with st.spinner("Timing both models on this text…"), _threads(threads):
            for dev in cost.available_devices():
                out[dev] = measure_on(dev)
                out[dev]["name"] = cost.describe_device(dev)
    except Exception as e:  # timing is informative only
        return out, str(e)
    if len(cache) > 64:
        cache.clear()
    cache[key] = out
    return out, None


def flops_metric(col, label: str, ratio: float, flops: float, dense_flops: float,
                 help: str) -> None:
    """The FLOP-reduction metric of a text page: ``ratio``× with both FLOP counts below."""
    col.metric(label, f"{ratio:.2f}×",
               f"{figures.format_flops(flops)} vs {figures.format_flops(dense_flops)} dense",
               delta_color="off", delta_arrow="off", help=help)


def latency_metrics(col, latency: dict, error: str | None, skim: str, dense: str,
                    cap_s: float) -> None:
    """One metric per device (the first in ``col``, the others in the last of four new
    columns): the skim model's median latency against the dense one's; the error, if any."""
    for i, (dev, lat) in enumerate(latency.items()):
        s, d = lat["skim"]["median_ms"], lat["dense"]["median_ms"]
        c = col if i == 0 else st.columns(4)[3]
        c.metric(f"Latency on {dev.upper()}, batch 1", f"{s:.1f} ms",
                 f"{dense} {d:.1f} ms ({skim} {d / s:.2f}× faster)" if d >= s
                 else f"{dense} {d:.1f} ms ({skim} {s / d:.2f}× slower)",
                 delta_color="off", delta_arrow="off",
                 help=f"{lat['name']}; median of {lat['skim']['repeats']} runs after 2 warm-up "
                      f"runs, at most {cap_s:g} s per model")
    if error:
        st.warning(f"Latency could not be measured: {error}")


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


STATE = "_present"

CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stSidebarNav"], [data-testid="stExpandSidebarButton"] {display: none !important;}
[class*="st-key-controls"] {display: none !important;}
.stMainBlockContainer, .block-container {max-width: 100% !important;
  padding-left: 3rem !important; padding-right: 3rem !important;}
.stMarkdown p, .stMarkdown li {font-size: 1.35rem !important; line-height: 1.55 !important;}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {
  font-size: 1.15rem !important;}
h1 {font-size: 3rem !important;} h2 {font-size: 2.3rem !important;}
h3 {font-size: 1.9rem !important;}
[data-testid="stMetricValue"] {font-size: 2.6rem !important;}
[data-testid="stMetricLabel"] p {font-size: 1.2rem !important;}
[class*="st-key-present_slide"] p {font-size: 1.7rem !important;}
</style>"""


def is_on() -> bool:
    return bool(st.session_state.get(STATE, False))


def big(fig):
    """``fig`` enlarged (taller, larger fonts) in presentation mode; unchanged otherwise."""
    return figures.enlarge(fig) if is_on() else fig


def _apply(page: str, i: int) -> None:
    sl = lessons.slides(page)
    i = lessons.clamp_step(i, page)
    st.session_state[f"_present_step_{page}"] = i
    if sl:
        for key, value in (sl[i].get("state") or {}).items():
            st.session_state[key] = value


def _toggled(page: str) -> None:
    on = bool(st.session_state.get(f"present_toggle_{page}"))
    st.session_state[STATE] = on
    if on:
        _apply(page, st.session_state.get(f"_present_step_{page}", 0))


def presentation(page: str, sync_url: bool = True) -> bool:
    """Draw the presentation toggle (and, when on, the CSS and the page's slides) at the top of
    a page; returns whether presentation mode is on. With ``sync_url`` the URL's ``present``
    parameter follows the toggle (pages that write the whole URL themselves pass False and put
    ``present`` in their own view)."""
    if STATE not in st.session_state:
        params = {k: st.query_params.get_all(k) for k in st.query_params}
        # From a link: the slides start at the first one, but the link's own view (e.g. its θ)
        # is kept until the presenter moves to another slide.
        st.session_state[STATE] = urlstate.presenting(params)
    on = is_on()
    _, right = st.columns([3, 1])
    right.toggle("Presentation mode", value=on, key=f"present_toggle_{page}",
                 on_change=_toggled, args=(page,),
                 help="Hides the sidebar and the controls, enlarges text and figures, and steps "
                      "through a short guided sequence of what to look at.")
    on = is_on()
    if sync_url:
        if on and st.query_params.get("present") != "1":
            st.query_params["present"] = "1"
        elif not on and "present" in st.query_params:
            del st.query_params["present"]
    if not on:
        return False
    st.markdown(CSS, unsafe_allow_html=True)
    sl = lessons.slides(page)
    if sl:
        i = lessons.clamp_step(st.session_state.get(f"_present_step_{page}", 0), page)
        with st.container(border=True, key=f"present_slide_{page}"):
            st.caption(f"Slide {i + 1} of {len(sl)}")
            st.subheader(sl[i]["title"])
            st.markdown(sl[i]["text"])
            c1, c2, _ = st.columns([1, 1, 4])
            c1.button("Previous", key=f"present_prev_{page}", disabled=i == 0,
                      on_click=_apply, args=(page, i - 1))
            c2.button("Next", key=f"present_next_{page}", disabled=i == len(sl) - 1,
                      on_click=_apply, args=(page, i + 1))
    return True
