"""``out=`` on the common ops (``add``, ``sub``, ``mul``, ``div`` and their aliases ``subtract``, ``multiply``,
``divide``; ``exp``, ``log``, ``sigmoid``, ``tanh``, ``neg``/``negative``, ``pow``, ``maximum``, ``minimum``;
``cat``/``concat``, ``stack``), with PyTorch's rules, in PyTorch's order:

1. the parser: ``out`` must be a Tensor (``add(): argument 'out' must be Tensor, not list``);
2. autograd: no ``out=`` while grad mode is on and an argument, ``out`` included, requires grad
   (:func:`.clamp_out.refuse_grad_with_out`, each op under its own name);
3. the kernel's overlap checks (:mod:`.out_overlap`), before ``out`` is resized or its dtype checked. The
   pointwise ops (TensorIterator) allow ``out`` to be exactly an input; ``cat`` and ``stack`` refuse any overlap
   of ``out`` with an input, an exact alias included;
4. the dtype (``cat``/``stack``: before their overlap check; a pointwise op's before its kernel's own errors):
   the result (computed in the inputs' common dtype, as PyTorch's) is cast into ``out`` where PyTorch's
   ``canCast`` allows it, else ``result type Float can't be cast to the desired output type Long`` (``neg``:
   ``out`` of the result's dtype only; ``cat``/``stack``: a TypeError, ``torch.cat(): input types can't be cast
   to the desired output type Long``);
5. the write (:mod:`.out_write`): an ``out`` of another shape resized, with PyTorch's deprecation warning when
   it had elements (a pointwise op casting into ``out`` warns twice, as PyTorch's); ``out`` itself returned.
"""
from __future__ import annotations

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.mutation_guard import will_write
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import _can_cast, torch_dtype_name
from distnn.backend import get_array_module

from .clamp_out import refuse_grad_with_out
from .out_overlap import check_out_overlap
from .out_write import resize_out, warn_resized, write_into_out, write_resized

__all__ = ["check_out_argument", "join_into_out", "pointwise_into_out", "refuse_cast", "unary_into_out"]


def check_out_argument(name: str, out) -> None:
    """The parser's refusal of an ``out`` that is not a Tensor."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")


def pointwise_into_out(name: str, op, out, *inputs, grad_name: str | None = None, exact_dtype=False,
                       result_dtype=None) -> Tensor:
    """``op(*inputs)`` (run without recording) written into ``out``, which is returned: a pointwise op's rules
    (see the module docstring). ``grad_name``: the name autograd's refusal gives, where it is not ``name`` (an
    alias's: ``multiply``'s is ``mul``). ``exact_dtype``: ``out`` must have the result's dtype (``neg``'s
    structured kernel casts nothing: ``Found dtype Float but expected Long``). ``result_dtype``: the result's
    dtype where ``op`` refuses the inputs' (``abs`` of bool), for ``out``'s dtype check, which comes first."""
    check_out_argument(name, out)
    refuse_grad_with_out(grad_name or name, out, *inputs)
    check_out_overlap(out, *inputs)
    with no_grad():
        try:
            result = op(*inputs)
        except Exception:
            # (PyTorch checks out's dtype before its kernel runs: an integer division by zero, say, comes after)
            refuse_cast(result_dtype or _result_dtype(op, inputs), out.dtype, exact_dtype)
            raise
    refuse_cast(result.dtype, out.dtype, exact_dtype)
    if result.dtype != out.dtype and tuple(out.shape) != tuple(result.shape):
        warn_resized(out, result.shape)  # (PyTorch's TensorIterator warns twice where it casts into out)
    write_into_out(out, result.data)
    return out


def refuse_cast(dtype, out_dtype, exact=False) -> None:
    """PyTorch's refusal of a result of ``dtype`` into an ``out`` of ``out_dtype`` that ``canCast`` forbids (with
    ``exact``: of any other dtype)."""
    if dtype is not None and exact and dtype != out_dtype:
        raise RuntimeError(f"Found dtype {torch_dtype_name(out_dtype)} but expected {torch_dtype_name(dtype)}")
    if dtype is not None and not _can_cast(dtype, out_dtype):
        raise RuntimeError(f"result type {torch_dtype_name(dtype)} can't be cast to the desired output type "
                           f"{torch_dtype_name(out_dtype)}")


def _result_dtype(op, inputs):
    """The dtype ``op`` gives ``inputs``, from ones of their dtypes and ranks (the dtype rules see nothing more);
    None where that refuses too."""
    stand_ins = [Tensor(get_array_module(t.data).ones((1,) * t.ndim, dtype=t.dtype)) if isinstance(t, Tensor)
                 else t for t in inputs]
    try:
        return op(*stand_ins).dtype
    except Exception:  # noqa: BLE001 - the op's own refusal is raised by the caller
        return None


def join_into_out(name: str, compute, out, tensors, *, grad_name: str | None = None,
                  stacked_shape=None) -> Tensor:
    """``compute(tensors)`` (``cat`` or ``stack``, run without recording) written into ``out``, which is
    returned: no overlap at all between ``out`` and an input, and the dtype refusal worded as ``torch.cat``'s.
    ``grad_name``: the name autograd's refusal gives (``concat``'s is ``cat``). ``stacked_shape(tensors)``:
    ``stack`` along an existing dim, which PyTorch runs as checking the inputs' shapes, resizing ``out`` (so an
    input that is ``out`` changes shape with it), then ``cat`` into a view of ``out``."""
    check_out_argument(name, out)
    tensors = list(tensors)
    refuse_grad_with_out(grad_name or name, out, *tensors)
    moved_from = None
    shape = stacked_shape(tensors) if stacked_shape is not None else None
    if shape is not None:
        will_write(out)
        moved_from = resize_out(out, shape)
        if any(t is out for t in tensors):  # (resized with out: PyTorch's shape check then refuses it)
            stacked_shape(tensors)
    with no_grad():
        result = compute(tensors)
    if not _can_cast(result.dtype, out.dtype):  # (cat's dtype check comes before its overlap check)
        raise TypeError(f"torch.cat(): input types can't be cast to the desired output type "
                        f"{torch_dtype_name(out.dtype)}")
    will_write(out)
    if moved_from is None:  # (resized before the overlap checks, as PyTorch's: an expanded out is contiguous after)
        moved_from = resize_out(out, tuple(result.shape))
    check_out_overlap(out, *tensors, allow_alias=False)
    write_resized(out, result.data, moved_from)
    return out


def unary_into_out(name: str, node, x, out) -> Tensor:
    """``node`` (a floating unary Function: exp, log, sigmoid, tanh) of ``x`` written into ``out``."""
    from .elementwise import float_input

    return pointwise_into_out(name, lambda a: node.apply(float_input(a)), out, x)
