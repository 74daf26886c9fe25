"""A page's opening, the same on every page: title, one plain paragraph, what to try, sources.

The paragraph may hold glossary terms as ``{term}`` or ``{term|shown words}``: each becomes an
underlined word with its definition as a tooltip (:mod:`ui.glossary`). Paper references go in
small footnotes below, never in the running text.
"""
from __future__ import annotations

import re
from typing import Sequence

import streamlit as st

from skimviz.safety import escape_html

from .glossary import term
from .style import ABBR_CSS

_TERM = re.compile(r"\{([^{}|]+)(?:\|([^{}]+))?\}")


def with_terms(text: str) -> str:
    """``text`` as HTML with every ``{term}`` / ``{term|shown}`` marked up (the rest escaped)."""
    out, last = [], 0
    for m in _TERM.finditer(text):
        out.append(escape_html(text[last:m.start()]))
        out.append(term(m.group(1), m.group(2)))
        last = m.end()
    out.append(escape_html(text[last:]))
    return "".join(out)


def paragraph(text: str) -> None:
    """One paragraph with glossary tooltips."""
    st.markdown(ABBR_CSS + f"<p>{with_terms(text)}</p>", unsafe_allow_html=True)


def lede(title: str, text: str, try_this: str, sources: Sequence[str] = ()) -> None:
    """The page's title, its one-paragraph explanation, a "Try:" line and the paper footnotes."""
    st.title(title)
    paragraph(text)
    st.markdown(ABBR_CSS + f"<p><b>Try:</b> {with_terms(try_this)}</p>", unsafe_allow_html=True)
    if sources:
        st.caption(" · ".join(sources))
