"""Which inputs mattered, next to which ones the model used.

- :mod:`~skimviz.attribution.pixels` — Captum attributions of a Skip RNN's prediction over the
  pixels or samples, and their agreement with the skip decisions.
- :mod:`~skimviz.attribution.text` — the same for Skim-RNN and Transkimmer over tokens.
"""
