"""``torch.where(condition, input, other, out=t)``: the choice written into ``out``, with PyTorch 2.13's rules,
in its order (ATen's ``where_self_out``):

1. the parser: ``condition``, ``input`` and ``other`` must be Tensors (a number operand has no ``out=``
   overload: ``where(): argument 'other' (position 3) must be Tensor, not float``), and ``out`` too;
2. autograd: no ``out=`` while grad mode is on and an argument, ``out`` included, requires grad;
3. ``out`` must have the operands' promoted dtype exactly (``Expected out type to be Float but got Long``), checked
   before the condition's dtype;
4. the overlap checks of a pointwise op (:mod:`.out_overlap`: ``out`` may be exactly an operand);
5. the write (:mod:`.out_write`): ``out`` resized to the broadcast shape when it differs (with PyTorch's warning
   when it had elements), ``out`` returned.
"""
from __future__ import annotations

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name

from .clamp_out import refuse_grad_with_out
from .matmul_out import _type_name
from .out_common import check_out_argument
from .out_overlap import check_out_overlap
from .out_write import write_into_out

__all__ = ["where_into_out"]


def where_into_out(where, condition, a, b, out) -> Tensor:
    """``where(condition, a, b)`` (run without recording) written into ``out``, which is returned (see the module
    docstring)."""
    from distnn.dtypes import result_type

    from .elementwise_choice import check_condition

    for position, (argument, name) in enumerate(zip((condition, a, b), ("condition", "input", "other"))):
        if not isinstance(argument, Tensor):
            raise TypeError(f"where(): argument '{name}' (position {position + 1}) must be Tensor, not "
                            f"{_type_name(argument)}")
    check_out_argument("where", out)
    refuse_grad_with_out("where", out, condition, a, b)
    dtype = result_type(a, b)
    if dtype != out.dtype:
        raise RuntimeError(f"Expected out type to be {torch_dtype_name(dtype)} but got {torch_dtype_name(out.dtype)}")
    check_condition(condition.dtype)
    check_out_overlap(out, condition, a, b)
    with no_grad():
        result = where(condition, a, b)
    write_into_out(out, result.data)
    return out
