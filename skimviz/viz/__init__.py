"""Figure builders: pure functions from numbers to Plotly figures or HTML (no Streamlit).

- :mod:`~skimviz.viz.figures` — pixels, signals and clips, speed and trade-off charts.
- :mod:`~skimviz.viz.tokens` — Skim-RNN token maps (read / skimmed) and the accuracy–Flop-R curve.
- :mod:`~skimviz.viz.layers` — Transkimmer token maps (the layer each word left at).
- :mod:`~skimviz.viz.playback` — step-by-step playback (Plotly animation frames).
"""
