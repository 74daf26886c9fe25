"""skimviz: see and measure conditional computation in neural networks.

The library never imports streamlit; the app (``app.py``, ``views/``) is a thin layer on top.
"""
__version__ = "0.1.0"
