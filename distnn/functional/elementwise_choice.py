"""Elementwise choices between operands: maximum, minimum, clamp (``clip``) and where, with PyTorch's gradients.

Split out of :mod:`distnn.functional.elementwise`, which still exports every name here.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import Function
from distnn.autograd.half_rounding import half_number
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._elementwise_common import _check_broadcast, _on_device, _shape, torch_broadcast_error
from .clamp_arguments import clamp_bounds, clamp_call

__all__ = ["Maximum", "Minimum", "Clip", "ClampTensor", "Where", "MaskedFill", "MaskedFillTensor", "clamp_node",
           "maximum", "minimum", "clamp", "clip", "clamp_checked", "refuse_bool_clamp", "where"]


class _Select(Function):
    """maximum/minimum: the gradient goes to the chosen operand, split evenly on ties, and to both
    where one is NaN (the output is NaN then), as PyTorch's: each operand gets it except where it lost."""

    reads = ((0, 1), (0, 1))  # (its own masks: the inputs are what PyTorch's saves, so both refuse alike)

    lost_first = None  # (a, b) -> where ``a`` was not chosen (and ``b`` is the other way round)

    def forward(self, a, b):
        _check_broadcast(a, b, type(self).__name__.lower())
        xp = get_array_module(a, b)
        a, b = _on_device(xp, a, b)
        na, nb = self.needs_input_grad or (False, False)
        if na or nb:
            dtype = xp.result_type(a, b)
            tie = a == b
            half = dtype.type(0.5)
            self.wa = xp.where(tie, half, ~self.lost_first(a, b)) if na else None
            self.wb = xp.where(tie, half, ~self.lost_first(b, a)) if nb else None
        return xp.maximum(a, b) if type(self) is Maximum else xp.minimum(a, b)

    def backward(self, g):
        return (g * self.wa if self.wa is not None else None), (g * self.wb if self.wb is not None else None)


class Maximum(_Select):
    torch_name = "MaximumBackward0"

    @staticmethod
    def lost_first(a, b):
        return a < b


class Minimum(_Select):
    torch_name = "MinimumBackward0"

    @staticmethod
    def lost_first(a, b):
        return a > b


class Clip(Function):
    """``clamp(a, lo, hi)``: ``minimum(maximum(a, lo), hi)`` (all ``hi`` where ``lo > hi``), with
    numbers, arrays or Tensors as bounds. The gradient is PyTorch's: to ``a`` where
    ``lo <= a <= hi``; to a Tensor ``lo`` where ``a < lo`` (and ``lo < hi``); to a Tensor ``hi``
    where ``a > hi`` (or ``hi < lo``)."""

    torch_name = "ClampBackward1"  # (clamp with number bounds; Tensor bounds are PyTorch's ClampBackward0)
    reads = ((0, 1, 2),) * 3  # (its own masks: the inputs are what PyTorch's saves, so both refuse alike)

    def forward(self, a, lo=None, hi=None):
        xp = get_array_module(a)
        lo, hi = _on_device(xp, lo, hi)
        if a.dtype == np.float16:  # (a float bound into float16 through float32, as PyTorch's scalar)
            lo, hi = (half_number(b) if isinstance(b, float) else b for b in (lo, hi))
        if xp is np or (lo is None and hi is None):
            out = xp.clip(a, lo, hi)
        else:  # cupy's clip kernel passes over a NaN bound (numpy's clip and PyTorch's clamp give NaN): its parts
            out = a
            if lo is not None:
                out = xp.maximum(out, lo)
            if hi is not None:
                out = xp.minimum(out, hi)
        na, nlo, nhi = self.needs_input_grad or (False, False, False)
        if na:
            self.mask = xp.ones(out.shape, dtype=bool)  # (the bounds may broadcast ``a`` to a larger shape)
            if lo is not None:
                self.mask &= a >= lo
            if hi is not None:
                self.mask &= a <= hi
        if nlo:
            self.mask_lo = (a < lo) if hi is None else (a < lo) & (lo < hi)
        if nhi:
            self.mask_hi = (a > hi) if lo is None else (a > hi) | (hi < lo)
        return out

    def backward(self, g):
        # where, not g * mask: an inf or NaN gradient arriving at a clamped entry gives 0 there, not NaN (inf * 0),
        # as PyTorch's clamp_backward (F.normalize's clamp of a 0 norm meets the inf of x / norm^2 there)
        xp = get_array_module(g)
        na, nlo, nhi = self.needs_input_grad
        return (xp.where(self.mask, g, 0) if na else None, xp.where(self.mask_lo, g, 0) if nlo else None,
                xp.where(self.mask_hi, g, 0) if nhi else None)


class ClampTensor(Clip):
    """``clamp`` with a Tensor bound: PyTorch's clamp.Tensor node (a number bound is :class:`Clip`'s)."""

    torch_name = "ClampBackward0"


def clamp_node(lo, hi):
    """The node of ``clamp(x, lo, hi)``, as PyTorch tells its overloads apart: by a Tensor bound."""
    return ClampTensor if isinstance(lo, Tensor) or isinstance(hi, Tensor) else Clip


class Where(Function):
    torch_name = "WhereBackward0"
    reads = ((), (0,), (0,))  # (the condition only)
    supports_complex = True  # (its backward routes g, reading no operand: right for complex as written)

    def forward(self, cond, a, b):
        xp = get_array_module(cond, a, b)
        cond, a, b = _on_device(xp, cond, a, b)
        self.cond = cond
        try:
            return xp.where(cond, a, b)
        except ValueError:
            error = torch_broadcast_error(_shape(cond), _shape(a), _shape(b))
            if error is None:
                raise
            raise error from None

    def backward(self, g):
        xp = get_array_module(g)
        _, na, nb = self.needs_input_grad
        zero = xp.zeros((), dtype=g.dtype)
        return None, (xp.where(self.cond, g, zero) if na else None), (xp.where(self.cond, zero, g) if nb else None)


class MaskedFill(Where):
    """``x.masked_fill(mask, number)``: ``where(mask, value, x)``, PyTorch's masked_fill node."""

    torch_name = "MaskedFillBackward0"


class MaskedFillTensor(Where):
    """``x.masked_fill(mask, tensor)``: PyTorch's other masked_fill node."""

    torch_name = "MaskedFillBackward1"


def maximum(a, b, *, out=None):
    """``torch.maximum``; ``out``: PyTorch's rules (:mod:`.out_common`)."""
    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("maximum", maximum, out, a, b)
    return Maximum.apply(*torch_operands(a, b))


def minimum(a, b, *, out=None):
    """``torch.minimum``; ``out``: PyTorch's rules (:mod:`.out_common`)."""
    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("minimum", minimum, out, a, b)
    return Minimum.apply(*torch_operands(a, b))


def clamp(input, *args, **kwargs):  # noqa: A002
    """``torch.clamp(input, min=None, max=None, *, out=None)``: ``input`` limited to ``[min, max]``; either bound
    may be None, a number, an array or a Tensor, not both None, and a Tensor bound beside a number only if it is
    0-d and needs no gradient (PyTorch's rules and messages, for bounds by position or keyword:
    :mod:`.clamp_arguments`). ``out``: the result written into that tensor, PyTorch's rules (:mod:`.clamp_out`)."""
    return _clamp_function("clamp", input, args, kwargs)


def clip(input, *args, **kwargs):  # noqa: A002
    """``torch.clip(input, min=None, max=None, *, out=None)``: :func:`clamp`."""
    return _clamp_function("clip", input, args, kwargs)


def _clamp_function(name, a, args, kwargs):
    lo, hi, call = clamp_call(name, a, args, kwargs, out_allowed=True)
    out = kwargs.get("out")
    if out is not None:
        return _clamp_into(name, a, lo, hi, out, call)
    return clamp_checked(a, *clamp_bounds(name, a, lo, hi, call=call))


def _clamp_into(name, a, lo, hi, out, call, op="clamp"):
    """``clamp(a, lo, hi, out=out)``: PyTorch's checks in its order (parser, autograd, op, kernel). ``op``: the
    name autograd's refusal gives (clip's is clamp's: PyTorch's clip calls clamp; clamp_min and clamp_max their
    own)."""
    from .clamp_out import refuse_grad_with_out, write_clamp_out
    from .out_overlap import check_out_overlap

    if lo is not None or hi is not None or not isinstance(out, Tensor):  # (the parser's TypeErrors come first;
        clamp_bounds(name, a, lo, hi, call=call)  # no bound at all is the op's, after autograd's)
    refuse_grad_with_out(op, out, a, lo, hi)
    lo, hi = clamp_bounds(name, a, lo, hi, call=call)
    check_out_overlap(out, a, lo, hi)  # (the kernel's checks, before out's resize and dtype)
    return write_clamp_out(lambda: clamp_checked(a, lo, hi), out, clamp_node(lo, hi) is ClampTensor)


def clamp_checked(a, lo, hi):
    """``clamp(a, lo, hi)`` of bounds :func:`.clamp_arguments.clamp_bounds` has taken."""
    refuse_bool_clamp(a, lo, hi)
    return clamp_node(lo, hi).apply(*torch_operands(a, lo, hi))


def refuse_bool_clamp(a, lo, hi):
    """PyTorch's refusal of a clamp whose result is bool (a bool tensor, bool bounds): its clamp kernels have no
    bool loop. A lone tensor bound is taken (clamp_min/clamp_max of a tensor are maximum/minimum, which have one);
    a tensor beside a number bound is left to the other rules."""
    if _kind(a) != "b" or (lo is None and hi is None) or any(b is not None and _kind(b) != "b" for b in (lo, hi)):
        return
    tensors = [hasattr(b, "shape") for b in (lo, hi) if b is not None]
    if all(tensors) and len(tensors) == 2:
        kernel = "clamp"
    elif any(tensors):
        return
    else:
        kernel = "clamp_scalar" if lo is not None and hi is not None else \
            "clamp_min_scalar" if lo is not None else "clamp_max_scalar"
    device = "cpu" if get_array_module(a.data if isinstance(a, Tensor) else a) is np else "cuda"
    raise NotImplementedError(f"\"{kernel}_{device}\" not implemented for 'Bool'")


def _kind(x) -> str:
    """The dtype kind of a tensor, array or number ("b" for a bool)."""
    if isinstance(x, (bool, np.bool_)):
        return "b"
    dtype = getattr(x, "dtype", None)
    return "f" if dtype is None else np.dtype(dtype).kind


_UINT8_WARNED = []  # (PyTorch warns of a uint8 condition once a process)


def check_condition(dtype) -> None:
    """PyTorch's rule for ``where``'s condition of ``dtype``: bool, or uint8 (deprecated: warned once a process);
    any other is refused."""
    if dtype.kind == "b":
        return
    if dtype == np.uint8:
        if not _UINT8_WARNED:
            import warnings

            from distnn._stacklevel import caller_stacklevel

            _UINT8_WARNED.append(True)
            warnings.warn("where received a uint8 condition tensor. This behavior is deprecated and will be removed "
                          "in a future version of PyTorch. Use a boolean condition instead.", UserWarning,
                          stacklevel=caller_stacklevel())
        return
    from distnn.autograd.tensor_inplace_methods import torch_dtype_name

    raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                       f"{torch_dtype_name(dtype)}")


_NOT_GIVEN = object()  # (where's ``a`` and ``b`` when left out: ``where(cond)``)


def where(cond, a=_NOT_GIVEN, b=_NOT_GIVEN, *, out=None):
    """Elementwise ``a`` where ``cond`` else ``b``; ``cond`` carries no gradient (a Tensor ``cond`` is
    version-checked like the other inputs: changing it in place before backward is an error). A MaskedTensor
    operand gives a MaskedTensor, as torch's (distnn.masked.maskedtensor_ops.where). ``out``: PyTorch's rules
    (:func:`.where_out.where_into_out`). ``where(cond)`` alone is ``nonzero(cond, as_tuple=True)``, as torch's."""
    if a is _NOT_GIVEN or b is _NOT_GIVEN:
        from .where_out import where_condition_only

        return where_condition_only(cond, a, b, out, _NOT_GIVEN)
    if out is not None:
        from .where_out import where_into_out

        return where_into_out(where, cond, a, b, out)
    dtype = getattr(cond, "dtype", None)
    if dtype is not None and dtype.kind != "b":
        check_condition(dtype)
    if getattr(a, "_is_masked_tensor", False) or getattr(b, "_is_masked_tensor", False):
        from distnn.masked.maskedtensor_ops import where as masked_where

        return masked_where(cond, a, b)
    a, b = torch_operands(a, b)
    if _number(a) and _number(b):
        # two Python numbers: torch's result is a number's dtype (a float gets the default dtype), where
        # numpy's would be float64
        from distnn.dtypes import result_type

        dtype = result_type(a, b)
        a, b = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    return Where.apply(cond, a, b)


def _number(o) -> bool:
    return isinstance(o, (bool, int, float, complex))
