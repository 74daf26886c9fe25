"""Input safety for every string a user gives the app or the CLI: one place for the rules.

A user string may reach a page as Markdown (``st.markdown``, ``st.caption``, ``st.warning``), as
HTML inside Markdown (token maps, ``unsafe_allow_html=True``), or as a label in a figure. These
helpers make it inert in each, and remove what could change how *other* text is shown:

* **bidi controls** (U+202A–U+202E embeddings/overrides, U+2066–U+2069 isolates, U+200E/U+200F
  marks, U+061C): a U+202E in a review would display every following word reversed;
* **Markdown's active characters** (``* _ [ ] ( ) ` # ~ | $ : !`` …): a file name ``__x__`` would
  render bold, ``[a](b)`` a link, ``:smile:`` an emoji, ``$x$`` maths;
* **HTML** (``< > & " '``).

Nothing here imports streamlit; pages and the CLI call these helpers.
"""
from __future__ import annotations

import html
import re
import unicodedata

# Bidirectional formatting characters (Unicode TR9): embeddings, overrides, isolates and marks.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"     # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"           # LRI RLI FSI PDI
    "\u200e\u200f\u061c"                 # LRM RLM ALM
)
_BIDI_RE = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")

# Markdown (CommonMark + GitHub/Streamlit extensions: math, emoji and icon short codes, tables,
# strikethrough, directives) characters that can start or end markup.
MARKDOWN_ACTIVE = "\\`*_{}[]()<>#+-.!|~$:=^&\"'"
_MD_ENTITY = {c: f"&#{ord(c)};" for c in "$:*_`[]\\~#|{}!"}

# Longest user string shown in a notice (file names, URL values): longer ones are cut with "…".
MAX_LABEL_CHARS = 80


class InputError(ValueError):
    """A user input the project rejects, with a message meant for the user (no traceback)."""


def strip_bidi(text: str) -> str:
    """``text`` without bidi formatting characters, so no user string reorders what follows it."""
    return _BIDI_RE.sub("", str(text))


def strip_controls(text: str) -> str:
    """``text`` without bidi controls and without C0/C1 control characters other than tab and
    newline (NUL, escape sequences, …)."""
    text = strip_bidi(text)
    return "".join(c for c in text
                   if c in "\t\n" or unicodedata.category(c) != "Cc")


def escape_markdown(text: str) -> str:
    """``text`` shown literally by Streamlit's Markdown: every active character backslash-escaped
    (CommonMark escapes any ASCII punctuation), bidi controls removed, newlines kept as spaces."""
    text = strip_controls(text).replace("\n", " ").replace("\t", " ")
    return "".join("\\" + c if c in MARKDOWN_ACTIVE else c for c in text)


def escape_html(text: str) -> str:
    """``text`` inert inside HTML that Markdown renders (``unsafe_allow_html=True``):
    ``html.escape`` then Markdown's active characters as numeric character references, one
    character at a time (escaping the entities ``html.escape`` writes would show them as text);
    bidi controls removed."""
    return "".join(_MD_ENTITY.get(c) or html.escape(c, quote=True) for c in strip_bidi(text))


def shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a trailing "…" when it was longer."""
    text = str(text)
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def label(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A user string (file name, URL value) as a short, inert piece of a Markdown notice."""
    return escape_markdown(shorten(strip_controls(text), limit))


def clean_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Typed or uploaded text made safe to analyse and display: bidi and control characters
    removed (newlines and tabs kept), cut to ``max_chars``. Returns (text, was_cut)."""
    if not isinstance(text, str):
        raise InputError("text must be a string")
    text = strip_controls(text)
    if len(text) > max_chars:
        return text[:max_chars], True
    return text, False


def human_bytes(n: int) -> str:
    """A byte count as a person reads it: "512 B", "3.4 KiB", "27.0 MiB" (never rounded down to
    a limit: 20–50 MB files must not read "16.0 MiB")."""
    n = int(n)
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError  # unreachable
