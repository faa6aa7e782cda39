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
from .out_common import check_out_argument
from .out_overlap import check_out_overlap
from .out_write import write_into_out
from .parser_refusal import invalid_combination, keywords_as_listed
from .parser_refusal import parser_type_name as _type_name

__all__ = ["where_into_out", "where_condition_only", "where_method_arguments"]


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


_WHERE_SIGNATURES = ("(Tensor condition)", "(Tensor condition, Tensor input, Tensor other, *, Tensor out = None)",
                     "(Tensor condition, Number self, Tensor other)", "(Tensor condition, Tensor input, Number other)",
                     "(Tensor condition, Number self, Number other)")
_NUMBER_OVERLOADS = (2, 3, 4)  # (the indices of the overloads of three arguments without out)


def where_condition_only(condition, a, b, out, not_given) -> tuple:
    """``torch.where(condition)``: ``nonzero(condition, as_tuple=True)``, the indices of its non-zero elements, one
    int64 vector per dim. A call with one of ``input``/``other`` but not both, or ``out=`` without them, fits none
    of torch's overloads: its parser's TypeError (``not_given``: the marker of an argument left out)."""
    if a is not_given and b is not_given and out is None:
        if not isinstance(condition, Tensor):
            raise TypeError(f"where(): argument 'condition' (position 1) must be Tensor, not {_type_name(condition)}")
        from .element_select import nonzero

        return nonzero(condition, as_tuple=True)
    given = [_type_name(x) for x in (condition, a, b) if x is not not_given]
    # (PyTorch's note under each overload that takes as many arguments, out not among them)
    notes = None if out is None else {index: "didn't match because some of the keywords were incorrect: out"
                                      for index in _NUMBER_OVERLOADS if len(given) == 2}
    raise invalid_combination("where", given, _WHERE_SIGNATURES, keywords=[] if out is None else
                              [f"out={_type_name(out)}"], notes=notes)


_METHOD_PARAMETERS = ("condition", "other")
_METHOD_SIGNATURES = ("(Tensor condition, Tensor other)", "(Tensor condition, Number other)")


def where_method_arguments(args: tuple, kwargs: dict) -> tuple:
    """``(condition, other)`` of a call ``x.where(*args, **kwargs)``; a keyword the method does not take (``out``:
    PyTorch's methods take none) or a count of arguments other than two is refused in its parser's words, with
    its note under each signature where the call has as many arguments as the signatures."""
    unknown = [key for key in kwargs if key not in _METHOD_PARAMETERS]
    if not unknown and len(args) + len(kwargs) == len(_METHOD_PARAMETERS):
        return _bind_where(*args, **kwargs)
    notes = None
    if unknown and len(args) + len(kwargs) == len(_METHOD_PARAMETERS):
        notes = dict.fromkeys(range(len(_METHOD_SIGNATURES)), "didn't match because some of the keywords were "
                              "incorrect: " + ", ".join(reversed(unknown)))
    raise invalid_combination("where", [_type_name(a) for a in args], _METHOD_SIGNATURES,
                              keywords=keywords_as_listed(kwargs.items()), notes=notes)


def _bind_where(condition, other):
    return condition, other


_bind_where.__qualname__ = "where"  # (Python's errors for a missing or repeated argument name the method)
