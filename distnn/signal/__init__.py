"""``distnn.signal``: PyTorch's ``torch.signal``. Its one part, :mod:`distnn.signal.windows`, is SciPy-style
window functions (``hann``, ``kaiser``, ``gaussian``, ...) with ``sym`` in place of ``periodic``."""
from . import windows

__all__ = ["windows"]
