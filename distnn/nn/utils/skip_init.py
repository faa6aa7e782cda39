"""``skip_init``: build a module without drawing its initial values from distnn's stream, as
``torch.nn.utils.skip_init``."""
from __future__ import annotations

import inspect

import numpy as np

from distnn import random as drandom

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` whose parameters and buffers hold arbitrary values, to be overwritten
    (loaded from a checkpoint, or initialized by hand), as PyTorch's.

    PyTorch builds the module on its "meta" device and allocates memory without filling it; distnn has no
    such device, so the module is built as usual with its draws taken from a throwaway generator: distnn's
    own stream (``distnn.manual_seed``) is not advanced, so the draws that follow are those of a run that
    built nothing. As in PyTorch, the class must take a ``device`` argument.
    """
    from ..module import Module

    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    with drandom.use_generator(np.random.default_rng()):
        return module_cls(*args, **kwargs)
