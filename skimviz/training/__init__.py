"""Training and what it produces.

- :mod:`~skimviz.training.loop` — the one training loop (:class:`~skimviz.training.loop.Trainer`,
  progress callback, divergence and collapse checks).
- :mod:`~skimviz.training.live` — one live run in a worker thread (what the app's pages start).
- :mod:`~skimviz.training.checkpoint` — safetensors + JSON card, save and load.
- :mod:`~skimviz.training.card_schema` — the card schema checked before anything is built.
"""
