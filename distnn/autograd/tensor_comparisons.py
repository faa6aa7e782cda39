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

    def __le__(self, o):
        try:
            return Tensor(self.data <= _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise

    def __gt__(self, o):
        try:
            return Tensor(self.data > _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise

    def __ge__(self, o):
        try:
            return Tensor(self.data >= _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise

    def eq(self, o):
        try:
            return Tensor(self.data == _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise

    def ne(self, o):
        try:
            return Tensor(self.data != _raw(o))
        except ValueError:
            _refuse_unbroadcastable(self, o)
            raise

    # Elementwise, as in PyTorch (``(pred == target).mean()``): a tensor is hashed by identity, so
    # sets and dict keys still work; ``x in some_list`` compares elementwise, as in PyTorch (use
    # ``any(x is t for t in some_list)``). None and strings are not values: ``x == None`` is False.
    def __eq__(self, o):
        return NotImplemented if o is None or isinstance(o, (str, bytes)) else self.eq(o)

    def __ne__(self, o):
        return NotImplemented if o is None or isinstance(o, (str, bytes)) else self.ne(o)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _refuse_unbroadcastable(t, o) -> None:
    """PyTorch's RuntimeError where ``t`` and ``o`` do not broadcast together (else the caller re-raises)."""
    from distnn.functional._elementwise_common import _check_broadcast

    _check_broadcast(t.data, _raw(o), "compare")


def _bind_late() -> None:
    """Bind Tensor (``tensor.py`` calls this once the class exists)."""
    global Tensor
    from .tensor import Tensor
