"""Constants every page shares, in one place."""
from __future__ import annotations

# Plotly's toolbar: no logo, PNG export at twice the size (for slides).
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}

# CPU threads for one timing or one analysis in a page: one, so that several students on one
# server do not fight over the cores (live training runs elsewhere).
THREADS = 1

# Abbreviations with a glossary tooltip: a dotted underline, the help cursor.
# Metric values a little smaller than Streamlit's 2.25rem, so four fit in a row at 768 px.
ABBR_CSS = ("<style>abbr.skv-term{text-decoration: underline dotted #888; "
            "text-underline-offset: 3px; cursor: help;} "
            "[data-testid='stMetricValue']{font-size: 1.9rem;}</style>")
