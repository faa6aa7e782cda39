"""``torch.clamp(input, min, max, out=t)`` (and ``clip``): the result written into ``out``, with PyTorch's rules.

PyTorch checks in this order, and so does this: the parser (``out`` must be a Tensor; a Tensor bound beside a
number bound is a TypeError: :mod:`.clamp_arguments`), then autograd (no ``out=`` while grad mode is on and an
argument, ``out`` included, requires grad), then the op's own checks (at least one bound; ``out``'s dtype), and
last the kernel (no clamp of bool). The dtype rule depends on the overload:

* number bounds (clamp.out's Scalar overload, ``ClampBackward1``'s): ``out`` must have the result's dtype
  exactly: ``Found dtype Double but expected Float``;
* Tensor bounds (the Tensor overload): the result is cast into ``out`` where PyTorch's ``canCast`` allows it
  (float32 into float64, float16 or complex64), else ``result type Float can't be cast to the desired output
  type Long``.

An ``out`` of another shape is resized (with PyTorch's deprecation warning when it had elements), an ``out`` of
the result's shape is written in place (its strides kept) and returned. ``out`` may be ``input`` itself.
"""
from __future__ import annotations

from distnn.autograd.grad_mode import is_grad_enabled, no_grad
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import _can_cast, torch_dtype_name

from .out_write import write_into_out

__all__ = ["refuse_grad_with_out", "write_clamp_out"]


def refuse_grad_with_out(name: str, out, *arguments) -> None:
    """PyTorch's refusal of ``out=`` while recording: grad mode on and any Tensor argument (``out`` too) requires
    grad."""
    # (getattr: a sparse COO operand, not a Tensor, requires grad too)
    if is_grad_enabled() and any(getattr(t, "requires_grad", False) is True for t in (*arguments, out)):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")


def write_clamp_out(compute, out: Tensor, tensor_overload: bool) -> Tensor:
    """``compute()``'s result (the clamp, run without recording) written into ``out``, which is returned.
    ``tensor_overload``: a bound is a Tensor (the result is cast into ``out``), else ``out``'s dtype must be the
    result's. The kernel's refusal of bool (a NotImplementedError from ``compute``) comes after the dtype check,
    as PyTorch's: its result dtype is bool."""
    refusal = None
    with no_grad():
        try:
            result = compute()
            dtype = result.dtype
        except NotImplementedError as error:  # (bool bounds on a bool tensor: bool would be the result)
            refusal, dtype = error, bool
    if not tensor_overload and out.dtype != dtype:
        raise RuntimeError(f"Found dtype {torch_dtype_name(out.dtype)} but expected {torch_dtype_name(dtype)}")
    if tensor_overload and not _can_cast(dtype, out.dtype):
        raise RuntimeError(f"result type {torch_dtype_name(dtype)} can't be cast to the desired output type "
                           f"{torch_dtype_name(out.dtype)}")
    if refusal is not None:
        raise refusal
    write_into_out(out, result.data)  # (cast to out's dtype: the Tensor overload's rule, checked above)
    return out
