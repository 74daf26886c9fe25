"""The app layer's shared components (Streamlit): every piece used by more than one page.

``views/*.py`` are layout only and call these; the computation they show lives in the
``skimviz`` library, which never imports streamlit.

* :mod:`ui.style` — constants every page shares (plot config, CPU threads, CSS);
* :mod:`ui.glossary` — plain-words definitions of every term, shown as tooltips;
* :mod:`ui.lede` — a page's opening: title, one paragraph, "what to try", paper footnotes;
* :mod:`ui.latency_panel` — dense / masked / skipped for real, measured in one run, with the
  sentence generated from the numbers;
* :mod:`ui.live_training` — Start/Stop, progress and curves of a training in a worker thread
  (:class:`skimviz.training.live.LiveRun`): other clicks do not stop it, the finished run stays until the
  next one, which asks before replacing it; one run per session.
"""
