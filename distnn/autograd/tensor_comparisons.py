"""Tensor's comparisons (``<``, ``==``, ``eq``, ...): a mixin of :class:`~distnn.autograd.tensor.Tensor`.

They give plain boolean tensors (no gradient). Operands that do not broadcast together get PyTorch's
RuntimeError (``The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0``),
made only once numpy has refused, so that a comparison that works pays nothing for it.
"""
from __future__ import annotations


class TensorComparisons:
    """Comparisons of :class:`~distnn.autograd.tensor.Tensor` (no state of its own)."""

    __slots__ = ()

    def __lt__(self, o):
        try:
            return Tensor(self.data < _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise
        except TypeError:
            return _on_one_device(self, o, "less")

    def __le__(self, o):
        try:
            return Tensor(self.data <= _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise
        except TypeError:
            return _on_one_device(self, o, "less_equal")

    def __gt__(self, o):
        try:
            return Tensor(self.data > _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise
        except TypeError:
            return _on_one_device(self, o, "greater")

    def __ge__(self, o):
        try:
            return Tensor(self.data >= _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise
        except TypeError:
            return _on_one_device(self, o, "greater_equal")

    def eq(self, o):
        try:
            return Tensor(self.data == _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise
        except TypeError:
            return _on_one_device(self, o, "equal")

    def ne(self, o):
        try:
            return Tensor(self.data != _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise
        except TypeError:
            return _on_one_device(self, o, "not_equal")

    # Elementwise, as in PyTorch (``(pred == target).mean()``): a tensor is hashed by identity, so
    # sets and dict keys still work; ``x in some_list`` compares elementwise, as in PyTorch (use
    # ``any(x is t for t in some_list)``). None and strings are not values: ``x == None`` is False.
    def __eq__(self, o):
        return NotImplemented if o is None or isinstance(o, (str, bytes)) else self.eq(o)

    def __ne__(self, o):
        return NotImplemented if o is None or isinstance(o, (str, bytes)) else self.ne(o)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _on_one_device(t, o, name: str):
    """The comparison where cupy refused a host array beside GPU data (a CPU 0-d tensor, as PyTorch takes; distnn
    copies any host array over, as its arithmetic does): both on the GPU. Raised again otherwise. Only on that
    error path, so that a comparison on one device pays nothing for it."""
    import numpy as np

    from distnn.backend import get_array_module
    from distnn.functional._elementwise_common import _on_device

    a, b = t.data, _raw(o)
    xp = get_array_module(a, b)
    if xp is np or not (isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
        raise  # (the TypeError being handled: not a host array beside a device one)
    return Tensor(getattr(xp, name)(*_on_device(xp, a, b)))


def _refuse_unbroadcastable(t, o) -> None:
    """PyTorch's RuntimeError where ``t`` and ``o`` do not broadcast together (else the caller re-raises)."""
    from distnn.functional._elementwise_common import _check_broadcast

    _check_broadcast(t.data, _raw(o), "compare")


def _bind_late() -> None:
    """Bind Tensor (``tensor.py`` calls this once the class exists)."""
    global Tensor
    from .tensor import Tensor
