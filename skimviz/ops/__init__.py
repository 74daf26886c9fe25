"""The Python side of the C++ ops (``skimviz/csrc``): when a built op applies (dispatch), and the
``torch.autograd.Function`` around a forward/backward pair. The build itself is
:mod:`skimviz._ext`; the models import from here and keep their PyTorch code as the reference
and the fallback."""
