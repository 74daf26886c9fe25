"""Measuring: FLOPs beside measured time.

- :mod:`~skimviz.bench.latency` — one input three ways (dense, masked, skipped for real), timed
  in the same run; the latency panel of every page.
- :mod:`~skimviz.bench.skip_rnn` — ``skimviz bench skip-rnn`` (the shipped MNIST models).
- :mod:`~skimviz.bench.skip_train` — ``skimviz bench skip-train`` (the fused training step).
- :mod:`~skimviz.bench.paper` — ``skimviz bench paper skip-rnn`` (Tables 1 and 2).
- :mod:`~skimviz.bench.transkimmer` — ``skimviz bench transkimmer`` (vs its dense twin).
- :mod:`~skimviz.bench.skim_speed` — Skim-LSTM speed-up against skim rate (Fig. 7 of the paper).
- :mod:`~skimviz.bench.speedlab` and :mod:`~skimviz.bench.speedlab_summary` — the Speed lab's
  grid runner and the sentences about its rows.
"""
