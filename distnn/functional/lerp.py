"""``torch.lerp``: ``start + weight (end - start)`` with a number weight (PyTorch's lerp.Scalar, ``LerpBackward0``)
or a tensor one (lerp.Tensor, ``LerpBackward1``), computed as PyTorch's kernel computes it, with its gradients,
real or complex (the conjugated factors, PyTorch's convention), and its dtype rules and messages.

Split out of :mod:`.pointwise_binary`, which still exports these names.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._elementwise_common import _on_device

__all__ = ["Lerp", "LerpTensorWeight", "lerp", "lerp_array"]


class Lerp(Function):
    """``start + weight (end - start)``, as PyTorch computes it (from ``end`` when ``|weight| >= 0.5``, so that
    ``weight = 1`` gives ``end`` exactly). Gradients: ``g (1 - w)``, ``g w``, ``g (end - start)``."""

    torch_name = "LerpBackward0"  # (a number weight: PyTorch's lerp.Scalar)
    reads = ((2,), (2,), (0, 1))
    supports_complex = True  # (holomorphic in each operand: the real formulas with conjugated factors, PyTorch's
    conj_saved = ("weight", "start", "end")  # grad (1 - w)^*, grad w^*, grad (end - start)^*; a number weight's
    # conjugate is _number_weight_grads')

    def forward(self, start, end, weight):
        xp = get_array_module(start, end, weight)
        start, end, weight = _on_device(xp, start, end, weight)
        given = weight  # (a number weight: float16's is taken to float32 from the number, not from its float16)
        self.given = given
        if hasattr(weight, "shape"):
            self.start, self.end, self.weight = start, end, weight
        else:  # (PyTorch's lerp.Scalar saves no tensor: its gradients are g (1 - w) and g w, from the number)
            self.start = self.end = self.weight = None
            self.conj_saved = ()  # (the number's conjugate is _number_weight_grads')
        return lerp_array(start, end, given)

    def backward(self, g):
        w = self.weight
        if not hasattr(self.given, "shape"):
            return (*_number_weight_grads(g, self.given), None)
        return g * (1 - w), g * w, g * (self.end - self.start)


def _number_weight_grads(g, weight):
    """PyTorch's lerp.Scalar gradients ``g * (1 - weight)`` and ``g * weight``: ``1 - weight`` taken in double
    from the number, each factor then the float ``g`` is computed in (float32 for float16: one rounding)."""
    xp = get_array_module(g)
    compute = xp.float32 if g.dtype == xp.float16 else g.dtype
    rest = 1 - (weight.conjugate() if isinstance(weight, complex) else weight)
    weight = weight.conjugate() if isinstance(weight, complex) else weight
    wide = g.astype(compute, copy=False)
    return ((wide * xp.asarray(rest, dtype=compute)).astype(g.dtype, copy=False),
            (wide * xp.asarray(weight, dtype=compute)).astype(g.dtype, copy=False))


def lerp_array(start, end, weight):
    """``Lerp.forward``'s arithmetic on arrays (``weight`` an array, or a number: taken in ``start``'s dtype).
    float16 is computed in float32 and rounded once, as PyTorch's kernel computes it (in its "opmath" type):
    rounding each step is up to 2 % off where ``end - start`` cancels."""
    xp = get_array_module(start, end, weight)
    dtype = xp.result_type(start, end)
    compute = xp.float32 if dtype == xp.float16 else dtype
    if not hasattr(weight, "shape") or compute != dtype:
        start, end = start.astype(compute, copy=False), end.astype(compute, copy=False)
        weight = xp.asarray(weight, dtype=compute)
    diff = end - start
    return xp.where(abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight)).astype(dtype, copy=False)


class LerpTensorWeight(Lerp):
    """``lerp`` with a Tensor ``weight``: PyTorch's other overload (lerp.Tensor), so another node name."""

    torch_name = "LerpBackward1"


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def lerp(input, end, weight):  # noqa: A002
    """``torch.lerp``: ``input + weight * (end - input)``; ``weight`` a number or a tensor. As PyTorch's,
    ``input`` and ``end`` (and a tensor ``weight``) must be floating tensors of one dtype; a numpy scalar
    ``weight`` is a number, as PyTorch's Scalar argument takes it."""
    if isinstance(weight, np.generic):
        weight = weight.item()
    dtypes = [_raw(x).dtype for x in (input, end, weight) if hasattr(_raw(x), "dtype")]
    if any(d.kind not in "fc" for d in dtypes):
        raise NotImplementedError(f'"lerp" not implemented for {dtypes[0]} (PyTorch\'s takes floating tensors)')
    for name, d in zip(("end", "weight"), dtypes[1:]):
        if d != dtypes[0]:
            raise RuntimeError(f"expected dtype {_c10_name(dtypes[0])} for `{name}` but got dtype {_c10_name(d)}")
    if isinstance(weight, complex) and dtypes[0].kind != "c":  # (PyTorch's Scalar conversion refuses it)
        raise RuntimeError(f"value cannot be converted to type {_c10_name(dtypes[0])} without overflow")
    return (Lerp if isinstance(weight, numbers.Number) else LerpTensorWeight).apply(input, end, weight)


def _c10_name(dtype) -> str:
    """The name PyTorch's C++ messages give a dtype (``float``, ``c10::complex<float>``)."""
    return {"float32": "float", "float64": "double", "float16": "c10::Half", "complex64": "c10::complex<float>",
            "complex128": "c10::complex<double>"}.get(np.dtype(dtype).name, np.dtype(dtype).name)
