"""The MNIST page's view in the URL: pure parse/encode of query parameters (no Streamlit here).

A shared link such as ``/skip-rnn-mnist?digit=12&theta=0.7&method=ig&seed=42`` (or, robust on
a fresh server, ``/?page=skip-rnn-mnist&digit=12&theta=0.7``) opens the same view (``seed`` is
live training's seed, so the same settings reproduce the same run). Every parameter is
validated; a bad or hostile value falls back to the default and yields a notice naming the
parameter. Notices never contain raw URL text: values are reduced to a short, safe excerpt
(:func:`safe_excerpt`) so they can be shown as Markdown.
"""
from __future__ import annotations

import math
import re
from functools import partial
from typing import Dict, Iterator, List, Mapping, Tuple, Union

from skimviz.safety import escape_markdown

PAGE = "skip-rnn-mnist"
N_DIGITS = 5000
THETA_MIN, THETA_MAX, THETA_STEP = 0.05, 1.0, 0.05
MODELS = ("shipped", "session")
METHODS = ("ig", "saliency")
#: Live training's seed: a whole number from 0 to SEED_MAX (None: the page draws one per session).
SEED_MAX = 2**31 - 1
DEFAULTS: Dict[str, object] = {"digit": 0, "model": "shipped", "theta": None, "method": "ig",
                               "seed": None}
KEYS = ("digit", "model", "theta", "method", "seed")
#: Parameters other pages or Streamlit itself may put in the URL: ignored silently.
IGNORED = {"page", "embed", "embed_options", "present"}
#: ``present=1`` turns on presentation mode (any page; see :func:`presenting`).
PRESENT_ON = ("1", "true", "yes", "on")
MAX_LEN = 32  # longer values are rejected before any parsing

_SAFE = re.compile(r"[^A-Za-z0-9 ._+-]")
_INT = re.compile(r"^[+-]?\d{1,9}$")
_SEED = re.compile(r"^\+?\d{1,10}$")
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$")

Params = Mapping[str, Union[str, List[str], Tuple[str, ...]]]


def safe_excerpt(value: object, limit: int = 20) -> str:
    """A short, printable excerpt of an untrusted value: only letters, digits and ``._+-``
    survive (everything else becomes ``?``), at most ``limit`` characters (then ``…``)."""
    s = str(value)
    cut = len(s) > limit
    s = _SAFE.sub("?", s[:limit])
    return s + ("…" if cut else "")


def _one(value) -> Tuple[str, bool]:
    """(the last value, whether several were given): ``?digit=1&digit=2`` gives a list."""
    if isinstance(value, (list, tuple)):
        if not value:
            return "", True
        return str(value[-1]), len(value) > 1
    return str(value), False


def _snap(theta: float, step: float, lo: float, hi: float) -> float:
    """θ rounded to a multiple of ``step`` (2 decimals), clipped to [lo, hi]."""
    t = round(round(float(theta) / step) * step, 2)
    return min(hi, max(lo, t))


def _reject(notices: List[str], key: str, raw: str, why: str, quote: bool = True) -> None:
    """Add the notice for a rejected parameter (quoting a safe excerpt of ``raw`` if ``quote``)."""
    shown = f" “{escape_markdown(safe_excerpt(raw))}”" if quote and raw != "" else ""
    notices.append(f"URL parameter `{key}`{shown} ignored: {why}; using the default.")


def _given(params: Params, keys: Tuple[str, ...], notices: List[str],
           unquoted: Tuple[str, ...] = ()) -> Iterator[Tuple[str, str]]:
    """(key, raw value) of each parameter in ``keys`` given once, in the URL's order. A repeated
    one adds a notice instead (its value not quoted if the key is in ``unquoted``); parameters
    in :data:`IGNORED` are passed over, and after the last one any others add one notice that
    names up to five of them."""
    unknown = []
    for key, value in dict(params).items():
        key = str(key)
        if key in IGNORED:
            continue
        if key not in keys:
            unknown.append(key)
            continue
        raw, repeated = _one(value)
        if repeated:
            _reject(notices, key, raw, "given more than once", quote=key not in unquoted)
            continue
        yield key, raw
    if unknown:
        names = ", ".join(f"`{safe_excerpt(k, 16)}`" for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        notices.append(f"Unknown URL parameters ignored: {names}{more}.")


def snap_theta(theta: float) -> float:
    """θ on the slider's grid (multiples of 0.05 in [0.05, 1])."""
    return _snap(theta, THETA_STEP, THETA_MIN, THETA_MAX)


def parse(params: Params) -> Tuple[Dict[str, object], List[str]]:
    """Query parameters → (state, notices).

    ``state`` has every key of :data:`KEYS`; a missing parameter takes its default (``theta``
    None means "the model's own θ", ``seed`` None "the session's own random seed"). Each
    rejected parameter adds one notice (plain text that names the parameter; safe to render as
    Markdown).
    """
    state = dict(DEFAULTS)
    notices: List[str] = []
    bad = partial(_reject, notices)
    for key, raw in _given(params, KEYS, notices):
        raw = raw.strip()
        if len(raw) > MAX_LEN:
            bad(key, raw, f"longer than {MAX_LEN} characters")
            continue
        if key == "digit":
            if not _INT.match(raw):
                bad(key, raw, f"not a whole number from 0 to {N_DIGITS - 1}")
                continue
            v = int(raw)
            if not 0 <= v < N_DIGITS:
                bad(key, raw, f"out of range, 0 to {N_DIGITS - 1}")
                continue
            state["digit"] = v
        elif key == "seed":
            if not _SEED.match(raw) or int(raw) > SEED_MAX:
                bad(key, raw, f"not a whole number from 0 to {SEED_MAX}")
                continue
            state["seed"] = int(raw)
        elif key == "theta":
            if not _FLOAT.match(raw):
                bad(key, raw, "not a number between 0 and 1")
                continue
            v = float(raw)
            if not math.isfinite(v) or not 0.0 < v <= 1.0:
                bad(key, raw, "out of range, it must be above 0 and at most 1")
                continue
            state["theta"] = snap_theta(v)
        elif key == "model":
            if raw.lower() not in MODELS:
                bad(key, raw, f"must be one of {', '.join(MODELS)}")
                continue
            state["model"] = raw.lower()
        elif key == "method":
            if raw.lower() not in METHODS:
                bad(key, raw, f"must be one of {', '.join(METHODS)}")
                continue
            state["method"] = raw.lower()
    return state, notices


def encode(state: Mapping[str, object]) -> Dict[str, str]:
    """State → query parameters (strings). ``theta`` and ``seed`` None are left out (the model's
    θ, the session's seed); keys equal to their default are kept, so a link always states the
    full view."""
    out: Dict[str, str] = {}
    digit = state.get("digit", DEFAULTS["digit"])
    if digit is not None:
        out["digit"] = str(int(digit))
    out["model"] = str(state.get("model") or DEFAULTS["model"])
    theta = state.get("theta")
    if theta is not None:
        out["theta"] = f"{snap_theta(float(theta)):.2f}"
    out["method"] = str(state.get("method") or DEFAULTS["method"])
    seed = state.get("seed")
    if seed is not None:
        out["seed"] = str(int(seed))
    if state.get("present"):
        out["present"] = "1"
    return out


def presenting(params: Params) -> bool:
    """Whether the query parameters ask for presentation mode (``present=1``; also true/yes/on).
    Anything else, a repeated or an overlong value, means no."""
    if "present" not in params:
        return False
    raw, repeated = _one(params["present"])
    raw = raw.strip().lower()
    return not repeated and len(raw) <= MAX_LEN and raw in PRESENT_ON


def page_of(params: Params) -> str | None:
    """The ``page`` parameter when it names a page this app knows (for ``/?page=...`` links)."""
    if "page" not in params:
        return None
    raw, repeated = _one(params["page"])
    raw = raw.strip().strip("/")
    return raw if not repeated and raw in (PAGE, SKIM_PAGE) else None


def share_query(state: Mapping[str, object], via_home: bool = True) -> str:
    """The query string of a shareable link (``page=...&digit=...``), URL-encoded."""
    from urllib.parse import urlencode

    q = encode(state)
    if via_home:
        q = {"page": PAGE, **q}
    return urlencode(q)


# --- the Skim-RNN text page -----------------------------------------------------------------
#: ``/skim-rnn-text?model=skim-lstm-sst2&theta=0.40&text=...``: the model, θ and the text itself
#: (texts longer than :data:`SKIM_TEXT_MAX` characters stay out of links).
SKIM_PAGE = "skim-rnn-text"
SKIM_KEYS = ("model", "theta", "text")
SKIM_TEXT_MAX = 500
SKIM_THETA_MIN, SKIM_THETA_MAX, SKIM_THETA_STEP = 0.01, 0.99, 0.01
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def snap_skim_theta(theta: float) -> float:
    """θ on the Skim-RNN page's slider grid (multiples of 0.01 in [0.01, 0.99])."""
    return _snap(theta, SKIM_THETA_STEP, SKIM_THETA_MIN, SKIM_THETA_MAX)


def parse_skim(params: Params, models: Tuple[str, ...] | List[str] = ()
               ) -> Tuple[Dict[str, object], List[str]]:
    """The Skim-RNN page's query parameters → ({"model", "theta", "text"}, notices).

    ``model`` must be one of ``models`` (the page's checkpoints), ``theta`` a number in (0, 1)
    (snapped to the slider), ``text`` at most :data:`SKIM_TEXT_MAX` characters. Missing or
    rejected values are None (the page's defaults). Notices never quote the text."""
    state: Dict[str, object] = {"model": None, "theta": None, "text": None}
    notices: List[str] = []
    bad = partial(_reject, notices)
    for key, raw in _given(params, SKIM_KEYS, notices, unquoted=("text",)):
        if key == "text":
            if len(raw) > SKIM_TEXT_MAX:
                bad(key, raw, f"longer than {SKIM_TEXT_MAX} characters", quote=False)
            elif raw.strip():
                state["text"] = raw
            continue
        raw = raw.strip()
        if len(raw) > MAX_LEN + 32:
            bad(key, raw, "too long")
        elif key == "model":
            if not _MODEL_NAME.match(raw) or raw not in tuple(models):
                bad(key, raw, "not one of this page's models"
                    + (f" ({', '.join(escape_markdown(m) for m in models)})" if models else ""))
            else:
                state["model"] = raw
        elif key == "theta":
            v = float(raw) if _FLOAT.match(raw) else math.nan
            if not math.isfinite(v) or not 0.0 < v < 1.0:
                bad(key, raw, "not a number between 0 and 1")
            else:
                state["theta"] = snap_skim_theta(v)
    return state, notices


def encode_skim(state: Mapping[str, object]) -> Dict[str, str]:
    """The Skim-RNN page's view → query parameters; a text longer than :data:`SKIM_TEXT_MAX`
    is left out."""
    out: Dict[str, str] = {}
    if state.get("model"):
        out["model"] = str(state["model"])
    if state.get("theta") is not None:
        out["theta"] = f"{snap_skim_theta(float(state['theta'])):.2f}"
    text = state.get("text")
    if isinstance(text, str) and text.strip() and len(text) <= SKIM_TEXT_MAX:
        out["text"] = text
    if state.get("present"):
        out["present"] = "1"
    return out
