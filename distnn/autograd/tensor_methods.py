"""PyTorch's Tensor methods that are compositions of distnn's ops (a mixin of :class:`Tensor`).

Kept apart from ``tensor.py`` (the core: data, gradients, operators, the common methods) so that
each file stays readable; every method here follows PyTorch's name, arguments and meaning.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import unwrap


class TensorMethods:
    __slots__ = ()

    # ------------------------------------------------------------ copies and casts
    def clone(self):
        """A copy that stays in the graph (the gradient passes through)."""
        return _ops.elementwise.Clone.apply(self)

    def contiguous(self):
        return self  # (any memory layout works with every distnn op)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def half(self):
        return self.to(np.float16)

    def long(self):
        return _const(self.data.astype(np.int64))  # (integer tensors carry no gradient)

    def int(self):
        return _const(self.data.astype(np.int32))

    def bool(self):
        return _const(self.data.astype(bool))

    # ------------------------------------------------------------ arithmetic by name
    def add(self, other):
        return self + other

    def sub(self, other):
        return self - other

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def pow(self, exponent):
        return self ** exponent

    def matmul(self, other):
        return self @ other

    def __floordiv__(self, other):
        return _const(self.data // unwrap(other))  # (a step function: no gradient, as in PyTorch)

    def __mod__(self, other):
        """``x - floor(x / y) * y``, as PyTorch's remainder: gradient 1 for ``x`` and, for a Tensor ``y``,
        ``-floor(x / y)`` (the quotient is piecewise constant)."""
        quotient = _const(self.data // unwrap(other))
        return self - quotient * other

    def __rfloordiv__(self, other):
        return _const(unwrap(other) // self.data)

    def __rmod__(self, other):
        """``other % self`` for a number ``other``: ``other - floor(other / self) * self``, as ``__mod__``."""
        quotient = _const(unwrap(other) // self.data)
        return other - quotient * self

    # Python's unary operators and the bitwise ones PyTorch gives tensors (masks: ``(a > 0) & ~b``)
    def __abs__(self):
        return self.abs()

    def __pos__(self):
        return self

    def __invert__(self):
        return _const(~_bits(self, "~"))

    def __and__(self, other):
        return _const(_bits(self, "&") & _bits(other, "&"))

    def __or__(self, other):
        return _const(_bits(self, "|") | _bits(other, "|"))

    def __xor__(self, other):
        return _const(_bits(self, "^") ^ _bits(other, "^"))

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    # ------------------------------------------------------------ in place
    def zero_(self):
        self[...] = 0
        return self

    def fill_(self, value):
        self[...] = value
        return self

    # ------------------------------------------------------------ reductions and masks
    def norm(self, p=2, dim=None, keepdim=False):
        return _ops.reduce.norm(self, p, dim, keepdim)

    def all(self, dim=None, keepdim=False):
        return _const(self.data.all(axis=dim, keepdims=keepdim))

    def any(self, dim=None, keepdim=False):
        return _const(self.data.any(axis=dim, keepdims=keepdim))

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is true, else this tensor (the gradient flows where it is kept; a 0-d
        tensor ``value`` gets the gradient of the filled places)."""
        from .tensor import Tensor

        if not isinstance(value, Tensor):
            value = np.asarray(value, dtype=self.data.dtype)  # (the tensor's dtype, as PyTorch)
        return _ops.elementwise.Where.apply(unwrap(mask).astype(bool), value, self)

    # ------------------------------------------------------------ pieces and copies
    def split(self, split_size_or_sections, dim=0):
        return _ops.shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        """``chunks`` pieces of equal size along ``dim`` (the last one smaller), as PyTorch."""
        if int(chunks) != chunks or chunks < 1:
            raise ValueError(f"chunk: chunks must be an integer >= 1, got {chunks!r}")
        return _ops.shape.split(self, max(1, math.ceil(self.shape[dim] / int(chunks))), dim)

    def repeat(self, *sizes):
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        return _ops.shape.Repeat.apply(self, sizes=sizes)

    def gather(self, dim, index):
        # (a Tensor index stays one: its version is checked, as PyTorch's gather saves it)
        return _ops.shape.Gather.apply(self, index, dim=dim)


def _bits(value, op: str):
    """``value``'s array for a bitwise operator: bool or integer only (a float has no bits to combine; PyTorch
    refuses it too), never one that needs a gradient."""
    array = unwrap(value)
    kind = getattr(array, "dtype", np.asarray(array).dtype).kind
    if kind not in "biu":
        raise TypeError(f"'{op}' needs bool or integer tensors (masks), got dtype "
                        f"{getattr(array, 'dtype', np.asarray(array).dtype)}")
    return array


def _const(array):
    from .tensor import Tensor

    return Tensor(array)


class _Ops:
    """The op modules, imported on first use (they import Tensor, which imports this mixin)."""

    def __getattr__(self, name):
        import importlib

        return importlib.import_module(f"distnn.functional.{name}")


_ops = _Ops()
