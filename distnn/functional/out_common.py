"""``out=`` on the common ops (``add``, ``sub``, ``mul``, ``div``, ``exp``, ``log``, ``sigmoid``, ``tanh``, ``cat``,
``stack``), with PyTorch's rules, in PyTorch's order:

1. the parser: ``out`` must be a Tensor (``add(): argument 'out' must be Tensor, not list``);
2. autograd: no ``out=`` while grad mode is on and an argument, ``out`` included, requires grad
   (:func:`.clamp_out.refuse_grad_with_out`, each op under its own name);
3. the kernel's overlap checks (:mod:`.out_overlap`), before ``out`` is resized or its dtype checked. The
   pointwise ops (TensorIterator) allow ``out`` to be exactly an input; ``cat`` and ``stack`` refuse any overlap
   of ``out`` with an input, an exact alias included;
4. the dtype: the result (computed in the inputs' common dtype, as PyTorch's) is cast into ``out`` where
   PyTorch's ``canCast`` allows it, else ``result type Float can't be cast to the desired output type Long``
   (``cat``/``stack``: a TypeError, ``torch.cat(): input types can't be cast to the desired output type Long``);
5. the write (:mod:`.out_write`): an ``out`` of another shape resized, with PyTorch's deprecation warning when
   it had elements; ``out`` itself returned.
"""
from __future__ import annotations

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import _can_cast, torch_dtype_name

from .clamp_out import refuse_grad_with_out
from .out_overlap import check_out_overlap
from .out_write import write_into_out

__all__ = ["check_out_argument", "join_into_out", "pointwise_into_out", "unary_into_out"]


def check_out_argument(name: str, out) -> None:
    """The parser's refusal of an ``out`` that is not a Tensor."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")


def pointwise_into_out(name: str, compute, out, *inputs) -> Tensor:
    """``compute()`` (the op on ``inputs``, run without recording) written into ``out``, which is returned: a
    pointwise op's rules (see the module docstring)."""
    check_out_argument(name, out)
    refuse_grad_with_out(name, out, *inputs)
    check_out_overlap(out, *inputs)
    with no_grad():
        result = compute()
    if not _can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"result type {torch_dtype_name(result.dtype)} can't be cast to the desired output "
                           f"type {torch_dtype_name(out.dtype)}")
    write_into_out(out, result.data)
    return out


def join_into_out(name: str, compute, out, tensors) -> Tensor:
    """``compute()`` (``cat`` or ``stack`` of ``tensors``, run without recording) written into ``out``, which is
    returned: no overlap at all between ``out`` and an input, and the dtype refusal worded as ``torch.cat``'s
    (PyTorch's ``stack`` writes through ``cat``)."""
    check_out_argument(name, out)
    tensors = list(tensors)
    refuse_grad_with_out(name, out, *tensors)
    check_out_overlap(out, *tensors, allow_alias=False)
    with no_grad():
        result = compute(tensors)
    if not _can_cast(result.dtype, out.dtype):
        raise TypeError(f"torch.cat(): input types can't be cast to the desired output type "
                        f"{torch_dtype_name(out.dtype)}")
    write_into_out(out, result.data)
    return out


def unary_into_out(name: str, node, x, out) -> Tensor:
    """``node`` (a floating unary Function: exp, log, sigmoid, tanh) of ``x`` written into ``out``."""
    from .elementwise import float_input

    return pointwise_into_out(name, lambda: node.apply(float_input(x)), out, x)
