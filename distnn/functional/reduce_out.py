"""``out=`` on the reductions ``sum``, ``prod``, ``mean``, ``amax`` and ``amin``, with PyTorch 2.13's rules.

In PyTorch's order: the parser (``out`` must be a Tensor), autograd (no ``out=`` while grad mode is on and an
argument requires grad, the refusal naming the op), the op's dtype rules, the reduction written into ``out``
(resized to the result's shape, with PyTorch's deprecation warning when it had elements; an ``out`` of that shape
keeps its strides) and ``out`` returned. The dtype rules differ by op:

* ``sum``, ``prod``: only beside a ``dim`` (PyTorch's overload without one takes no ``out``: refused in its
  parser's words, :func:`refuse_out_without_dim`); the reduction runs in ``out``'s dtype, the input cast to it
  first (a float tensor summed
  into an int64 ``out`` sums the truncated values; into a bool one it is an ``any``; a complex one into a real
  ``out`` warns PyTorch's discard warning, once a process); a ``dtype=`` other than ``out``'s is refused
  (``Expected out tensor to have dtype double, but got float instead``, C++'s names);
* ``mean``: without dims (PyTorch's ``mean.dtype_out``), an input ``canCast`` cannot cast into ``out``'s dtype is
  refused first (``mean.dtype_out(): input types can't be cast to the desired output type Long``); an integer or
  bool input (or ``dtype=``) is refused as without ``out``; an ``out`` of the result's shape whose elements share
  memory is refused (PyTorch writes the sum into it first); then, as PyTorch's
  ``sum_out(out, ...).div_(n)``: the sum in ``out``'s dtype is written into ``out``, which is divided in place:
  an integer or bool ``out`` keeps the sum and refuses the division
  (``result type Float can't be cast to the desired output type Long``); a complex input into a real ``out``
  warns PyTorch's discard warning (once a process);
* ``amax``, ``amin``: ``out`` must have the input's dtype (``Expected the dtype for input and out to match, but
  got Float for input's dtype and Double for out's dtype.``).

An expanded ``out`` of the result's shape is written by ``sum``, ``prod``, ``amax`` and ``amin`` as PyTorch's
kernels write it: each location it repeats gets the reduction of every result written there (:mod:`.out_shared`).
As PyTorch's reduction kernels, none of these refuses an ``out`` that overlaps the input (PyTorch's values are
then whatever its kernel's order of reads and writes gives; distnn reduces first and writes after).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.complex_discard import discards_imaginary, silently_discarding
from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import _can_cast, torch_dtype_name
from distnn.backend import unwrap

from .clamp_out import refuse_grad_with_out
from .matmul_out import _cpp_name
from .out_common import check_out_argument
from .out_write import write_into_out
from .parser_refusal import invalid_combination, parser_type_name
from .reduce_arguments import _invalid_combination, _missing_dim

__all__ = ["extremum_into_out", "mean_into_out", "refuse_out_without_dim", "sum_like_into_out"]

_MEAN_SIGNATURES = ("(Tensor input, *, torch.dtype dtype = None, Tensor out = None)",
                    "(Tensor input, tuple of ints dim, bool keepdim = False, *, torch.dtype dtype = None, "
                    "Tensor out = None)")


def refuse_out_without_dim(name: str, a, out, dim_left_out: bool, more_given: bool) -> None:
    """The parser's refusal of ``sum``/``prod`` given ``out`` (None included) with ``dim_left_out``: only the
    overload with ``dim`` takes ``out``. With another argument given beside it (``keepdim``, ``dtype``), that
    overload alone could match, and the refusal names the missing ``dim``; else neither matches."""
    if not dim_left_out:
        return
    if more_given:
        raise _missing_dim(name)
    raise _invalid_combination(name, [f"out={parser_type_name(out)}"], method=False,
                               input_name=parser_type_name(a))


def sum_like_into_out(name: str, reduce, a, out, dtype) -> Tensor:
    """``reduce(a_cast, dtype)`` (``sum`` or ``prod`` over the caller's dims, run without recording) written into
    ``out``, which is returned: the reduction in ``out``'s dtype (see the module docstring)."""
    check_out_argument(name, out)
    refuse_grad_with_out(name, out, a)
    _refuse_other_dtype(dtype, out)
    with no_grad():
        result = _reduce_in(reduce, a, out.dtype)
    # (an expanded out: PyTorch's kernel reduces over the dims it repeats too)
    write_into_out(out, unwrap(result), shared=np.add if name == "sum" else np.multiply)
    return out


def _reduce_in(reduce, a, dtype):
    """``reduce(a, dtype)``: a complex ``a`` cast to a real ``dtype`` warns PyTorch's discard warning, once a
    process, as PyTorch's cast of the input does."""
    if discards_imaginary(unwrap(a).dtype, np.dtype(dtype)):
        with silently_discarding():
            return reduce(a, dtype)
    return reduce(a, dtype)


def mean_into_out(reduce_sum, a, out, dim, keepdim, dtype, refuse_integral) -> Tensor:
    """The mean (``reduce_sum(a, dtype)``, the sum over the caller's dims, divided by the number of elements each
    sums) written into ``out`` as PyTorch's ``sum_out`` then ``div_`` (see the module docstring).
    ``refuse_integral(a, dtype)``: ``mean``'s refusal of an integer input or ``dtype=``."""
    if not isinstance(out, Tensor):
        if keepdim:  # (only the dim overload takes keepdim: its own refusal)
            check_out_argument("mean", out)
        raise invalid_combination("mean", ["Tensor"] + ([] if dim is None else [type(dim).__name__]),
                                  _MEAN_SIGNATURES, keywords=[f"out={type(out).__name__}"])
    refuse_grad_with_out("mean", out, a)
    data = unwrap(a)
    if dim is None and not _can_cast(data.dtype, out.dtype):  # (the overload without dims: mean.dtype_out)
        raise RuntimeError(f"mean.dtype_out(): input types can't be cast to the desired output type "
                           f"{torch_dtype_name(out.dtype)}")
    refuse_integral(a, dtype)
    _refuse_other_dtype(dtype, out)
    # (an expanded out of the result's shape: PyTorch's div_ refuses it after the sum is written into it; distnn's
    # write_into_out before. One of another shape is resized, contiguous)
    with no_grad():
        total = unwrap(_reduce_in(reduce_sum, a, out.dtype))
    if out.dtype.kind in "biu":
        write_into_out(out, total)  # (the sum is written before the division refuses)
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{torch_dtype_name(out.dtype)}")
    count = data.size // total.size if total.size else 1
    with np.errstate(divide="ignore", invalid="ignore"):  # (an empty reduction: 0 / 0, NaN as PyTorch's)
        write_into_out(out, (total / count).astype(out.dtype, copy=False))
    return out


def extremum_into_out(name: str, reduce, a, out) -> Tensor:
    """``reduce(a)`` (``amax`` or ``amin``, run without recording) written into ``out``, which must have ``a``'s
    dtype."""
    check_out_argument(name, out)
    refuse_grad_with_out(name, out, a)
    dtype = unwrap(a).dtype
    if dtype != out.dtype:
        raise RuntimeError(f"Expected the dtype for input and out to match, but got {torch_dtype_name(dtype)} for "
                           f"input's dtype and {torch_dtype_name(out.dtype)} for out's dtype.")
    with no_grad():
        result = reduce(a)
    write_into_out(out, unwrap(result), shared=np.maximum if name == "amax" else np.minimum)
    return out


def _refuse_other_dtype(dtype, out) -> None:
    """The refusal of a ``dtype=`` that is not ``out``'s."""
    if dtype is not None and np.dtype(dtype) != out.dtype:
        raise RuntimeError(f"Expected out tensor to have dtype {_cpp_name(dtype)}, but got {_cpp_name(out.dtype)} "
                           "instead")
