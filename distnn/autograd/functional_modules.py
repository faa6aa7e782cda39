"""distnn.functional's modules for Tensor's methods, looked up when a method runs (those modules import Tensor,
so the mixins that define the methods cannot import them when Tensor is defined)."""
from __future__ import annotations

import importlib
import sys


def functional_module(name: str):
    """``distnn.functional.<name>``: from ``sys.modules`` once imported (a dict lookup, where
    ``importlib.import_module`` costs ~0.6 us a call, a fifth of a small op like ``x.isnan()``)."""
    full = "distnn.functional." + name
    module = sys.modules.get(full)
    return module if module is not None else importlib.import_module(full)
