"""PyTorch's argument parser for ``linalg.matrix_norm`` and ``linalg.norm``: the call bound to its parameters, or
the parser's TypeError where an argument fits neither overload's type (``dim=1``: an int is no "tuple of ints" for
``matrix_norm``; an ``out`` that is no Tensor, for both), refused before the op runs, naming the types given:
positional ones in order, then the keywords, last given first."""
from __future__ import annotations

import numbers

from distnn.functional.parser_refusal import invalid_combination, keywords_as_listed, parser_type_name

__all__ = ["matrix_norm_arguments", "norm_arguments"]

_SIGNATURES = (
    "(Tensor input, Number ord, tuple of ints dim = {-2,-1}, bool keepdim = False, *, torch.dtype dtype = None, "
    "Tensor out = None)",
    '(Tensor input, str ord = "fro", tuple of ints dim = {-2,-1}, bool keepdim = False, *, torch.dtype dtype = '
    'None, Tensor out = None)',
)
_NORM_SIGNATURES = (
    "(Tensor input, Number ord = None, tuple of ints dim = None, bool keepdim = False, *, torch.dtype dtype = None, "
    "Tensor out = None)",
    "(Tensor input, str ord, tuple of ints dim = None, bool keepdim = False, *, torch.dtype dtype = None, "
    "Tensor out = None)",
)


def _int_sequence(dim) -> bool:
    """Whether PyTorch's parser reads ``dim`` as a "tuple of ints" (a tuple or list of integers; bools are not)."""
    return isinstance(dim, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) or hasattr(d, "__index__") and
        getattr(d, "ndim", 1) == 0 and not isinstance(d, bool) for d in dim)


def matrix_norm_arguments(A, args, kwargs) -> tuple:
    """``(A, ord, dim, keepdim, dtype, out)`` of a ``matrix_norm`` call; PyTorch's TypeError for a ``dim`` or an
    ``out`` of another type. Python's own TypeErrors for too many positional arguments and unknown or repeated
    keywords."""
    bound = _bind("matrix_norm", args, kwargs, {"ord": "fro", "dim": (-2, -1), "keepdim": False, "dtype": None})
    dim = bound["dim"]
    if ("dim" in kwargs or len(args) > 1) and not _int_sequence(dim) or not _tensor_or_none(bound["out"]):
        raise invalid_combination("linalg_matrix_norm", [parser_type_name(x) for x in (A, *args)], _SIGNATURES,
                                  keywords=keywords_as_listed(kwargs.items()))
    return A, bound["ord"], dim, bound["keepdim"], bound["dtype"], bound["out"]


def norm_arguments(A, args, kwargs) -> tuple:
    """``(A, ord, dim, keepdim, dtype, out)`` of a ``linalg.norm`` call; PyTorch's TypeError for an ``out`` that is
    no Tensor (other types are left to the op's own checks, as before)."""
    bound = _bind("norm", args, kwargs, {"ord": None, "dim": None, "keepdim": False, "dtype": None})
    if not _tensor_or_none(bound["out"]):
        raise invalid_combination("linalg_norm", [parser_type_name(x) for x in (A, *args)], _NORM_SIGNATURES,
                                  keywords=keywords_as_listed(kwargs.items()))
    return A, bound["ord"], bound["dim"], bound["keepdim"], bound["dtype"], bound["out"]


def _bind(name: str, args, kwargs, defaults: dict) -> dict:
    """``defaults`` (the parameters after the input, in order) updated with the call's arguments; ``dtype`` and
    ``out`` are keyword-only, as PyTorch's."""
    positional = tuple(defaults)[:3]
    if len(args) > len(positional):
        raise TypeError(f"{name}() takes from 1 to {len(positional) + 1} positional arguments but {len(args) + 1} "
                        "were given")
    bound = {**defaults, "out": None}
    bound.update(zip(positional, args))
    for key, value in kwargs.items():
        if key not in bound:
            raise TypeError(f"{name}() got an unexpected keyword argument '{key}'")
        if key in positional and positional.index(key) < len(args):
            raise TypeError(f"{name}() got multiple values for argument '{key}'")
        bound[key] = value
    return bound


def _tensor_or_none(out) -> bool:
    from distnn.autograd.tensor import Tensor

    return out is None or isinstance(out, Tensor)
