"""Tensor methods named as PyTorch names them in Python's own TypeErrors.

A method that takes no ``out`` refuses ``x.amax(0, out=o)`` with Python's ``unexpected keyword argument``
TypeError, which names the function by its ``__qualname__``: distnn's mixins would say
``TensorMethods.amax()``, PyTorch says ``amax()`` (its C++ methods) or ``Tensor.norm()`` (``norm`` is Python in
PyTorch's ``Tensor`` class). Only the name in those messages changes.
"""
from __future__ import annotations

__all__ = ["name_methods_as_torch"]

# (method: the name PyTorch 2.13's refusal of an unknown keyword gives it)
TORCH_METHOD_NAMES = {"amax": "amax", "amin": "amin", "logsumexp": "logsumexp", "norm": "Tensor.norm",
                      "matmul": "matmul", "max": "max"}


def name_methods_as_torch(cls) -> None:
    """Give ``cls``'s methods of :data:`TORCH_METHOD_NAMES` PyTorch's names in Python's argument errors."""
    for name, torch_name in TORCH_METHOD_NAMES.items():
        getattr(cls, name).__qualname__ = torch_name
