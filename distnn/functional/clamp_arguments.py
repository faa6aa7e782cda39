"""The argument rules PyTorch's parser applies to ``clamp``/``clip`` (and their in-place and method forms) and to
``clamp_min``/``clamp_max`` before any kernel runs, with its exceptions and messages.

PyTorch has two overloads of clamp: one whose bounds are both Tensors (or None), one whose bounds are both
numbers (or None). A Tensor bound beside a number bound fits neither, and is a TypeError, except that a 0-d
Tensor that needs no gradient passes as a number (the parser's rule for a Number argument), so it joins the
number overload and gets no gradient. Neither bound at all is a RuntimeError. numpy arrays as bounds are
distnn's own extension (PyTorch refuses them); they are left as they are here.

The messages are PyTorch's for bounds given by position; bounds given by keyword get the same text (PyTorch's
lists them as ``max=float, min=Tensor`` there: distnn's signatures do not tell the two apart).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.tensor import Tensor

__all__ = ["clamp_bounds", "refuse_missing_bound"]

NO_BOUND = "torch.clamp: At least one of 'min' or 'max' must not be None"


def clamp_bounds(name: str, a, lo, hi, *, method: bool = False):
    """``(lo, hi)`` as PyTorch's clamp takes them (a 0-d Tensor beside a number made a number), or its error.
    ``name`` is the op the message names (``clamp``, ``clip_``, ...); ``method``: called as ``a.name(...)``."""
    if type(lo) is str or type(hi) is str:  # (numpy's ufuncs would name only dtypes)
        raise TypeError(_invalid_combination(name, a, [b for b in (lo, hi) if b is not None], ("min = None",
                                                                                            "max = None"), method))
    if lo is None or hi is None:
        if lo is None and hi is None:
            raise RuntimeError(NO_BOUND)
        return lo, hi
    lo_tensor, hi_tensor = isinstance(lo, Tensor), isinstance(hi, Tensor)
    if lo_tensor is hi_tensor:
        return lo, hi
    tensor, other = (lo, hi) if lo_tensor else (hi, lo)
    if not _number(other):  # (a Tensor beside an array: distnn's extension, as two Tensors)
        return lo, hi
    if tensor.ndim == 0 and not tensor.requires_grad:
        value = tensor.item()
        return (value, hi) if lo_tensor else (lo, value)
    raise TypeError(_invalid_combination(name, a, (lo, hi), ("min = None", "max = None"), method))


def refuse_missing_bound(name: str, a, bound, which: str, *, method: bool = False) -> None:
    """PyTorch's TypeError for ``clamp_min(x, None)``/``clamp_max(x, None)``: their one bound is required."""
    if bound is None:
        raise TypeError(_invalid_combination(name, a, (bound,), (which,), method))


def _number(x) -> bool:
    return isinstance(x, (numbers.Number, np.number, np.bool_))


def _type_name(x) -> str:
    """The name PyTorch's parser gives an argument's type (``float``, ``Tensor``, ``numpy.ndarray``)."""
    kind = type(x)
    if isinstance(x, Tensor) or kind.__module__ == "builtins":
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def _invalid_combination(name, a, bounds, parameters, method) -> str:
    """PyTorch's "received an invalid combination of arguments" message for ``name``'s two overloads."""
    names = [_type_name(b) for b in bounds]
    got = ", ".join(names if method else [_type_name(a), *names])
    lines = [f"{name}() received an invalid combination of arguments - got ({got}), but expected one of:"]
    # (the functional forms that take out= list no reasons; the methods and in-place functions mark every bound)
    reason = "      didn't match because some of the arguments have invalid types: (" + ", ".join(
        ([] if method else ["Tensor"]) + [f"!{n}!" for n in names]) + ")"
    for kind in ("Tensor", "Number"):
        listed = ", ".join(([] if method else ["Tensor input"]) + [f"{kind} {p}" for p in parameters])
        lines.append(f" * ({listed})" if method or name.endswith("_") else f" * ({listed}, *, Tensor out = None)")
        if method or name.endswith("_"):
            lines.append(reason)
    return "\n".join(lines) + "\n"
