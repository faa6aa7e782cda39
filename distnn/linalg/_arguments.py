"""PyTorch's argument parser for ``linalg.matrix_norm``: the call bound to its parameters, or the parser's
TypeError where an argument fits neither overload's type (``dim=1``: an int is no "tuple of ints" there, and
PyTorch refuses it before the op runs, naming the types given: positional ones in order, then the keywords,
last given first)."""
from __future__ import annotations

import numbers

from distnn.functional.parser_refusal import invalid_combination, keywords_as_listed, parser_type_name

__all__ = ["matrix_norm_arguments"]

_PARAMETERS = ("ord", "dim", "keepdim", "dtype")
_SIGNATURES = (
    "(Tensor input, Number ord, tuple of ints dim = {-2,-1}, bool keepdim = False, *, torch.dtype dtype = None, "
    "Tensor out = None)",
    '(Tensor input, str ord = "fro", tuple of ints dim = {-2,-1}, bool keepdim = False, *, torch.dtype dtype = '
    'None, Tensor out = None)',
)


def _int_sequence(dim) -> bool:
    """Whether PyTorch's parser reads ``dim`` as a "tuple of ints" (a tuple or list of integers; bools are not)."""
    return isinstance(dim, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) or hasattr(d, "__index__") and
        getattr(d, "ndim", 1) == 0 and not isinstance(d, bool) for d in dim)


def matrix_norm_arguments(A, args, kwargs) -> tuple:
    """``(A, ord, dim, keepdim, dtype)`` of a ``matrix_norm`` call; PyTorch's TypeError for a ``dim`` of another
    type. Python's own TypeErrors for too many positional arguments and unknown or repeated keywords."""
    if len(args) > 3:
        raise TypeError(f"matrix_norm() takes from 1 to 4 positional arguments but {len(args) + 1} were given")
    bound = {"ord": "fro", "dim": (-2, -1), "keepdim": False, "dtype": None}
    bound.update(zip(_PARAMETERS, args))
    for key, value in kwargs.items():
        if key not in _PARAMETERS:
            raise TypeError(f"matrix_norm() got an unexpected keyword argument '{key}'")
        if _PARAMETERS.index(key) < len(args):
            raise TypeError(f"matrix_norm() got multiple values for argument '{key}'")
        bound[key] = value
    dim = bound["dim"]
    if ("dim" in kwargs or len(args) > 1) and not _int_sequence(dim):
        raise invalid_combination("linalg_matrix_norm", [parser_type_name(x) for x in (A, *args)], _SIGNATURES,
                                  keywords=keywords_as_listed(kwargs.items()))
    return A, bound["ord"], dim, bound["keepdim"], bound["dtype"]
