"""The argument rules PyTorch's parser applies to ``clamp``/``clip`` (and their in-place and method forms) and to
``clamp_min``/``clamp_max`` before any kernel runs, with its exceptions and messages.

PyTorch has two overloads of clamp: one whose bounds are both Tensors (or None), one whose bounds are both
numbers (or None). A Tensor bound beside a number bound fits neither, and is a TypeError, except that a 0-d
Tensor that needs no gradient passes as a number (the parser's rule for a Number argument), so it joins the
number overload and gets no gradient. Neither bound at all is a RuntimeError. numpy arrays as bounds are
distnn's own extension (PyTorch refuses them); they are left as they are here.

The messages are PyTorch's, for bounds given by position or by keyword: the clamp/clip entry points take
``*args, **kwargs`` and :func:`clamp_call` records how each argument came, as PyTorch's parser lists them
(``got (Tensor, max=int, min=Tensor)``: keywords last given first). clamp_min/clamp_max's (:func:`one_bound_call`) list
their bound as given too.

A number bound is then range-checked as PyTorch's Scalar argument, against the result's dtype (the tensor's, or
the default float dtype for a float bound of an integer tensor): ``uint8.clamp(300)`` and ``float32.clamp(1e40)``
are refused in its words, ``uint8.clamp(-1)`` wraps to 255 (:func:`.number_range.scalar_for_dtype`).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.number_range import REAL_NUMBERS, scalar_for_dtype
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype

from .parser_refusal import invalid_combination, keywords_as_listed, parser_type_name

__all__ = ["checked_bounds", "clamp_call", "clamp_bounds", "one_bound_call", "refuse_number_bounds_cast"]

NO_BOUND = "torch.clamp: At least one of 'min' or 'max' must not be None"
_BOUNDS, _WITH_OUT = frozenset(("min", "max")), frozenset(("min", "max", "out"))  # (the keywords clamp takes)


def clamp_call(name: str, a, args: tuple, kwargs: dict, *, method: bool = False, out_allowed: bool = False):
    """``(lo, hi, call)`` of a call ``name(a, *args, **kwargs)`` (``min``, ``max`` by position or keyword, and
    ``out`` where ``out_allowed``), or PyTorch's TypeError for a call that fits no signature (too many arguments,
    an unknown keyword, a bound given twice). ``call`` is ``(args, keyword items)``: what PyTorch's messages list,
    for :func:`clamp_bounds`."""
    if not kwargs and len(args) <= 2:  # (the common calls first: clamp is a hot op)
        return (args[0] if args else None), (args[1] if len(args) == 2 else None), (args, ())
    keywords = tuple(kwargs.items())
    if (len(args) > 2 or not kwargs.keys() <= (_WITH_OUT if out_allowed else _BOUNDS)
            or (args and "min" in kwargs) or (len(args) == 2 and "max" in kwargs)):  # (a bound given twice)
        raise _invalid_combination(name, a, args, ("min = None", "max = None"), method, keywords)
    lo = args[0] if args else kwargs.get("min")
    hi = args[1] if len(args) > 1 else kwargs.get("max")
    return lo, hi, (args, keywords)


def clamp_bounds(name: str, a, lo, hi, *, method: bool = False, call=None):
    """``(lo, hi)`` as PyTorch's clamp takes them (a 0-d Tensor beside a number made a number), or its error.
    ``name`` is the op the message names (``clamp``, ``clip_``, ...); ``method``: called as ``a.name(...)``;
    ``call``: :func:`clamp_call`'s record of the arguments as given (by position or keyword, ``out`` among them),
    which PyTorch's message lists (without it: the bounds given, by position)."""
    args, keywords = call if call is not None else ([b for b in (lo, hi) if b is not None], ())
    if type(lo) is str or type(hi) is str or keywords and _not_a_tensor_out(keywords):  # (numpy's ufuncs would
        # name only dtypes)
        raise _invalid_combination(name, a, args, ("min = None", "max = None"), method, keywords)
    if lo is None or hi is None:
        if lo is None and hi is None:
            raise RuntimeError(NO_BOUND)
        return checked_bounds(name, a, lo, hi)
    lo_tensor, hi_tensor = isinstance(lo, Tensor), isinstance(hi, Tensor)
    if lo_tensor is hi_tensor:
        return (lo, hi) if lo_tensor else checked_bounds(name, a, lo, hi)
    tensor, other = (lo, hi) if lo_tensor else (hi, lo)
    if not _number(other):  # (a Tensor beside an array: distnn's extension, as two Tensors)
        return lo, hi
    if tensor.ndim == 0 and not tensor.requires_grad:
        value = tensor.item()
        return checked_bounds(name, a, value, hi) if lo_tensor else checked_bounds(name, a, lo, value)
    raise _invalid_combination(name, a, args if call is not None else (lo, hi), ("min = None", "max = None"),
                               method, keywords)


def _not_a_tensor_out(keywords) -> bool:
    """Whether the keyword items give an ``out`` that is neither None nor a Tensor (a loop: calls by keyword are
    common, and a generator costs more than the check)."""
    for key, value in keywords:
        if key == "out":
            return value is not None and not isinstance(value, Tensor)
    return False


def one_bound_call(name: str, a, args: tuple, kwargs: dict, which: str, *, method: bool = False,
                   out_allowed: bool = False):
    """``(bound, out)`` of a call ``name(a, *args, **kwargs)`` of clamp_min/clamp_max (``which``: "min" or "max";
    ``out`` by keyword where ``out_allowed``, else None), or PyTorch's TypeError: a call that fits no signature, or
    a None bound, whose message lists the bound as given (by position, or ``min=NoneType`` by keyword)."""
    if len(args) == 1 and not kwargs:  # (the common call first)
        bound, keywords = args[0], ()
    else:
        keywords = tuple(kwargs.items())
        allowed = {which, "out"} if out_allowed else {which}
        if len(args) + (which in kwargs) != 1 or not kwargs.keys() <= allowed or (
                out_allowed and not isinstance(kwargs.get("out"), (Tensor, type(None)))):
            raise _invalid_combination(name, a, args, (which,), method, keywords, listed_only=True)
        bound = args[0] if args else kwargs[which]
    if type(bound) is str:  # (numpy's ufuncs would name only dtypes)
        raise _invalid_combination(name, a, args, (which,), method, keywords,
                                   keyword_bound=bool(keywords) and not (out_allowed and "out" in kwargs))
    if bound is None:
        matched = tuple((key, value) for key, value in keywords if key == which)
        raise _invalid_combination(name, a, args, (which,), method, keywords,
                                   keyword_bound=bool(matched) and not (out_allowed and "out" in kwargs))
    bound = checked_bounds(name, a, bound, None)[0]
    return bound, kwargs.get("out") if out_allowed else None


def checked_bounds(name: str, a, lo, hi):
    """``(lo, hi)`` of a clamp of ``a`` as PyTorch takes them: numbers range-checked against the result's dtype (see
    the module docstring), anything else as it is. An in-place form (``name`` ending in ``_``) of an integer
    tensor with a float bound is left to refuse its float result first, as PyTorch's."""
    if (lo is None or type(lo) is float and -65504.0 <= lo <= 65504.0 or type(lo) is int and 0 <= lo <= 127) and \
            (hi is None or type(hi) is float and -65504.0 <= hi <= 65504.0 or type(hi) is int and 0 <= hi <= 127):
        return lo, hi  # (the common case: floats that fit every float dtype, ints that fit every dtype)
    dtype = getattr(a, "dtype", None)
    if dtype is None:
        return lo, hi
    dtype = np.dtype(dtype)
    if dtype.kind in "biu" and any(isinstance(b, (float, np.floating)) for b in (lo, hi)):
        if name.endswith("_"):
            return lo, hi
        dtype = np.dtype(default_dtype())  # (an integer tensor's float clamp: a float result, of the default dtype)
    elif dtype.kind == "b":  # (a bool tensor's int clamp: an int64 result)
        dtype = np.dtype(np.int64)
    return tuple(scalar_for_dtype(dtype, b) if isinstance(b, REAL_NUMBERS) and not isinstance(b, (bool, np.bool_))
                 else b for b in (lo, hi))


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def refuse_number_bounds_cast(a, lo, hi) -> None:
    """The in-place clamp's refusal of number bounds (PyTorch's Scalar overload: ``lo``/``hi`` numbers or None, as
    :func:`clamp_bounds` gives them) whose result dtype ``a`` cannot hold: ``int64.clamp_(0.5)``. That overload's
    kernel names ``a``'s dtype as C++ does (``result type Float can't be cast to the desired output type long
    int``), unlike the Tensor overload's check (``... output type Long``), left to the in-place write."""
    from distnn.autograd.tensor_inplace_methods import _can_cast, torch_dtype_name
    from distnn.dtypes import result_type

    from .matmul_out import _cpp_name

    numbers_given = [b for b in (lo, hi) if type(b) in (bool, int, float, complex)]
    # (a floating tensor refuses only a complex bound, in other words, converting it: left as it was)
    if np.dtype(a.dtype).kind not in "biu" or not numbers_given or any(b is not None and type(b) not in (bool, int, float, complex) for b in (lo, hi)):
        return
    dtype = max((np.dtype(result_type(a, b)) for b in numbers_given), key=lambda d: _KIND_RANK.get(d.kind, 2))
    if dtype != a.dtype and not _can_cast(dtype, a.dtype):
        raise RuntimeError(f"result type {torch_dtype_name(dtype)} can't be cast to the desired output type "
                           f"{_cpp_name(a.dtype)}")


def _number(x) -> bool:
    return isinstance(x, (numbers.Number, np.number, np.bool_))


def _invalid_combination(name, a, args, parameters, method, keywords=(), *, keyword_bound=False,
                         listed_only=False) -> TypeError:
    """PyTorch's "received an invalid combination of arguments" refusal for ``name``'s two overloads: what was
    given (positional ``args``, then the keyword items ``keywords``, which its parser lists last given first) and
    the signatures, with the methods' and in-place functions' line under each where the call has as many
    arguments as the signature (PyTorch's parser writes it only then). ``keyword_bound``: the one keyword names the
    signature's parameter and its type is wrong (clamp_min's ``min=None``: the line marks ``!min=NoneType!``);
    ``listed_only``: the call fits no signature's parameters, so no line is written."""
    given = [] if method else [parser_type_name(a)]
    given += [parser_type_name(b) for b in args]
    named = keywords_as_listed(keywords)
    # (the functional forms that take out= list no reasons; the methods and in-place functions mark every bound,
    # or, with an argument by keyword, name every keyword: PyTorch's parser reads the name of ``Tensor min = None``
    # as "None", so it matches no keyword of these signatures)
    reasons = (method or name.endswith("_")) and len(given) + len(named) == len(parameters) + (not method) \
        and not listed_only
    if keyword_bound:
        marked = ([] if method else ["Tensor"]) + [f"!{parser_type_name(b)}!" for b in args]
        marked += [f"!{entry}!" for entry in named]
        reason = ("didn't match because some of the arguments have invalid types: (" + ", ".join(marked)
                  + (", " if named and not given else "") + ")")
    elif keywords:
        reason = ("didn't match because some of the keywords were incorrect: "
                  + ", ".join(key for key, _ in reversed(keywords)))
    else:
        reason = "didn't match because some of the arguments have invalid types: (" + ", ".join(
            ([] if method else ["Tensor"]) + [f"!{parser_type_name(b)}!" for b in args]) + ")"
    signatures = []
    for kind in ("Tensor", "Number"):
        listed = ", ".join(([] if method else ["Tensor input"]) + [f"{kind} {p}" for p in parameters])
        signatures.append(f"({listed})" if method or name.endswith("_") else f"({listed}, *, Tensor out = None)")
    notes = {index: reason for index in range(len(signatures))} if reasons else None
    return invalid_combination(name, given, signatures, keywords=named, notes=notes)
