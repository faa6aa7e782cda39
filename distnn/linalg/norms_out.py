"""``out=`` on ``linalg.vector_norm``, ``linalg.matrix_norm`` and ``linalg.norm``, with PyTorch 2.13's rules.

``vector_norm`` is a structured kernel: ``out`` must be a Tensor (the parser's refusal), no argument may require
grad while grad mode is on (autograd's refusal, naming ``linalg_vector_norm``), the norm's refusals of the input
come next, then ``out`` must have the result's dtype (``Expected out tensor to have dtype float, but got double
instead``, C++'s names); the norm is written into ``out`` (resized with PyTorch's warning when it had elements).

``matrix_norm`` and ``norm`` are composite (``out.copy_(norm)`` after the check ``linalg.norm expected out tensor
dtype Float but got: Double``): a recording input is taken, and ``out`` becomes a non-leaf whose ``grad_fn`` is
``CopyBackwards``; a leaf ``out`` that requires grad, or an expanded one of the result's shape, is refused by
``copy_`` as PyTorch's. ``norm`` checks under its own name even where it computes a vector norm.
"""
from __future__ import annotations

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import get_array_module, unwrap
from distnn.functional.clamp_out import refuse_grad_with_out
from distnn.functional.matmul_out import _cpp_name
from distnn.functional.out_common import check_out_argument
from distnn.functional.out_write import _write_back, resize_out, write_into_out

__all__ = ["composite_norm_into_out", "vector_norm_into_out"]


def vector_norm_into_out(x, out, ord, dim, keepdim, dtype) -> Tensor:  # noqa: A002
    """``vector_norm(x, ord, dim, keepdim, dtype=dtype)`` (run without recording) written into ``out``, which is
    returned. An expanded ``out`` of the result's shape is written as PyTorch's kernel writes it: the dims it
    repeats (stride 0) folded into the reduction (``vector_norm(x, dim=1, out=zeros(1).expand(2))`` is the norm
    of all of ``x``, twice)."""
    from distnn.functional.reduce_out_more import _repeated_dims

    from ._common import as_tensor
    from .norms import _axes, vector_norm

    x = as_tensor(x)
    check_out_argument("linalg_vector_norm", out)
    refuse_grad_with_out("linalg_vector_norm", out, x)
    with no_grad():
        result = vector_norm(x, ord, dim, keepdim, dtype=dtype)
        if result.dtype != out.dtype:
            raise RuntimeError(f"Expected out tensor to have dtype {_cpp_name(result.dtype)}, but got "
                               f"{_cpp_name(out.dtype)} instead")
        repeated = _repeated_dims(out, result.shape)
        if not repeated:
            write_into_out(out, unwrap(result))
            return out
        axes = _axes(dim, x.ndim)
        kept = list(range(x.ndim)) if keepdim else [i for i in range(x.ndim) if i not in axes]
        folded = vector_norm(x, ord, (*axes, *(kept[r] for r in repeated)), True, dtype=dtype)
        values = unwrap(folded)  # (keepdim: of the result's dims; else the reduced ones dropped)
        values = values if keepdim else values.reshape([values.shape[i] for i in kept])
    write_into_out(out, get_array_module(values).broadcast_to(values, tuple(result.shape)), shared="last")
    return out


def composite_norm_into_out(result: Tensor, out: Tensor, op: str) -> Tensor:
    """``result`` (the norm, recorded where its input requires grad) copied into ``out`` (a Tensor: the parser
    has checked), which is returned; ``op`` names the dtype refusal (``linalg.norm``)."""
    if result.dtype != out.dtype:
        raise RuntimeError(f"{op} expected out tensor dtype {torch_dtype_name(result.dtype)} but got: "
                           f"{torch_dtype_name(out.dtype)}")
    if not (result.requires_grad or out.requires_grad):
        write_into_out(out, unwrap(result))
        return out
    # (as resize_output then copy_: copy_ records CopyBackwards, and refuses a leaf out that requires grad)
    moved_from = resize_out(out, tuple(result.shape))
    out.copy_(result)
    if moved_from is not None:
        _write_back(out.data, moved_from)
    return out
