"""PyTorch's argument parser's refusals of ``sum``, ``prod`` and ``mean`` calls that match none of their overloads
(``sum``/``prod`` with ``out=``: :func:`.reduce_out.refuse_out_without_dim`, built by this module's messages).

PyTorch gives each two overloads, one without ``dim`` (taking only ``dtype``, and ``mean``'s ``out`` too) and one
with it. A call matching neither is refused by the parser as follows: where the number of arguments given fits
only the overload with ``dim``, in that overload's words (``missing 1 required positional arguments: "dim"``, or
``unexpected keyword argument 'out'`` when ``dim`` is there), else as an invalid combination naming both. So:

* ``keepdim`` without ``dim`` matches neither: ``torch.sum(x, keepdim=True)`` is refused as an invalid
  combination of arguments, or, with ``dtype=`` beside it, as ``missing 1 required positional arguments: "dim"``
  (``torch.mean``'s overload without ``dim`` takes one argument more, ``out``: its invalid combination runs to
  ``keepdim`` with ``dtype`` or ``out``);
* ``prod``'s ``dim`` is an int: ``torch.prod(x, None)`` is refused (``sum``'s, a tuple of ints, takes None);
* the methods take no ``out``: ``x.sum(0, out=o)`` is Python's ``unexpected keyword argument 'out'``, and
  ``x.sum(out=o)`` an invalid combination of arguments.
* ``keepdim`` is a bool: None beside a ``dim`` is refused (``torch.mean``'s function as an invalid combination).

Called only once such an argument is seen, so that a plain ``x.sum()`` pays nothing more than a comparison.
"""
from __future__ import annotations

from distnn.autograd.unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT

from .parser_refusal import invalid_combination, parser_type_name

__all__ = ["refuse_function_keepdim", "refuse_keepdim_none", "refuse_keepdim_without_dim", "refuse_logsumexp_dim",
           "refuse_method_call", "refuse_method_out", "refuse_prod_dim_none"]

_DIM_TYPES = {"sum": "tuple of ints", "prod": "int", "mean": "tuple of ints"}
# (the arguments, the input included, that each function's overload without dim takes)
_MOST_WITHOUT_DIM = {"sum": 2, "prod": 2, "mean": 3}


def refuse_method_call(name: str, dim, keepdim, dtype, out) -> None:
    """``x.sum(...)``/``x.prod(...)``/``x.mean(...)`` (``dim``, ``keepdim``, ``out``: the methods' defaults where
    left out): PyTorch's refusal of an ``out``, of ``prod``'s ``dim`` of None, of ``keepdim`` without ``dim``;
    nothing otherwise."""
    dim_given, keepdim_given = dim is not EVERY_DIM, keepdim is not NOT_KEPT
    if out is not NO_OUT:
        refuse_method_out(name, dim_given, keepdim_given, dtype, out)
    if name == "prod" and dim is None:
        refuse_prod_dim_none(keepdim_given, dtype, method=True)
    if keepdim_given and not dim_given:
        refuse_keepdim_without_dim(name, keepdim, dtype, method=True)
    if keepdim is None:
        refuse_keepdim_none(name)


def refuse_keepdim_none(name: str) -> None:
    """``keepdim=None`` beside a ``dim``: PyTorch's parser takes no None for a bool (numpy's would be falsy). Its
    keyword form's words (``x.sum(0, None)`` names the position, which a Python signature cannot tell apart);
    ``sum``, ``prod``, ``median``, ``mode`` and the ``mean`` method (the ``mean`` function's overloads differ:
    :func:`refuse_keepdim_without_dim`'s invalid combination)."""
    raise TypeError(f"{name}(): argument 'keepdim' must be bool, not NoneType")


def refuse_keepdim_without_dim(name: str, keepdim, dtype, method: bool, out=NO_OUT, a=None) -> None:
    """``name(a, keepdim=k)`` (``a.name(keepdim=k)`` where ``method``) without ``dim``, ``dtype`` and ``out`` as
    given (``out``: only ``mean``'s function takes one there): refused as PyTorch's parser refuses it."""
    given = [f"keepdim={parser_type_name(keepdim)}"]
    if dtype is not None:
        given.insert(0, "dtype=torch.dtype")
    if out is not NO_OUT:
        given.insert(0, f"out={parser_type_name(out)}")
    if len(given) + (not method) > (1 if method else _MOST_WITHOUT_DIM[name]):
        raise _missing_dim(name)
    # (PyTorch lists the keywords last given first: these are listed as if given in the signature's order)
    raise _invalid_combination(name, given, method, _input_name(a))


def refuse_function_keepdim(name: str, keepdim, dim, dtype, a, out=NO_OUT) -> None:
    """``torch.sum``/``prod``/``mean`` given ``keepdim`` without ``dim``, or ``keepdim=None``: refused as PyTorch's
    parser refuses them (``mean``'s ``torch.mean(x, 0, keepdim=None)`` as an invalid combination)."""
    if dim is EVERY_DIM:
        refuse_keepdim_without_dim(name, keepdim, dtype, method=False, out=out, a=a)
    if name == "mean":
        given = [parser_type_name(dim)] + (["dtype=torch.dtype"] if dtype is not None else []) + ["keepdim=NoneType"]
        raise _invalid_combination(name, given, False, _input_name(a))
    refuse_keepdim_none(name)


def refuse_prod_dim_none(keepdim_given: bool, dtype, method: bool, a=None) -> None:
    """``prod(x, None)`` (``x.prod(None)`` where ``method``): ``dim`` must be an int. With nothing else given the
    call matches neither overload; otherwise the overload with ``dim`` is named. (PyTorch words ``dim=None`` by
    keyword otherwise, which a Python signature cannot tell apart: the positional form's words are given.)"""
    if not keepdim_given and dtype is None:
        raise _invalid_combination("prod", ["NoneType"], method, _input_name(a))
    raise TypeError(f"prod(): argument 'dim' (position {1 if method else 2}) must be int, not NoneType")


def refuse_method_out(name: str, dim_given: bool, keepdim_given: bool, dtype, out) -> None:
    """``x.name(..., out=o)``: the methods take no ``out``."""
    if dim_given:
        raise TypeError(f"{name}() got an unexpected keyword argument 'out'")
    if keepdim_given or dtype is not None:
        raise _missing_dim(name)
    raise _invalid_combination(name, [f"out={parser_type_name(out)}"], True)


def _input_name(a) -> str:
    """The input's type as the parser lists it (``Parameter``); ``Tensor`` where the caller gave none."""
    return "Tensor" if a is None else parser_type_name(a)


def _missing_dim(name: str) -> TypeError:
    return TypeError(f'{name}() missing 1 required positional arguments: "dim"')


def _invalid_combination(name: str, given: list, method: bool, input_name: str = "Tensor") -> TypeError:
    """The parser's message: what was given (a method lists only its arguments; a function's list starts with
    ``input_name``, the input's type as the parser names it) and both overloads."""
    positional = [] if method else [input_name]
    positional += [entry for entry in given if "=" not in entry]
    keywords = [entry for entry in given if "=" in entry]
    if method:
        signatures = ("(*, torch.dtype dtype = None)",
                      f"({_DIM_TYPES[name]} dim, bool keepdim = False, *, torch.dtype dtype = None)")
    else:
        signatures = ("(Tensor input, *, torch.dtype dtype = None" + (", Tensor out = None)" if name == "mean"
                                                                      else ")"),
                      f"(Tensor input, {_DIM_TYPES[name]} dim, bool keepdim = False, *, torch.dtype dtype = None, "
                      "Tensor out = None)")
    return invalid_combination(name, positional, signatures, keywords=keywords)


def refuse_logsumexp_dim(dim, method: bool) -> None:
    """``logsumexp``'s ``dim`` is a required int or tuple of ints: left out (``EVERY_DIM``, the caller's default),
    it is missing; None is refused (PyTorch names the position when given by position, which a Python signature
    cannot tell from ``dim=None``: the positional form's words are given), as PyTorch's parser words them."""
    if dim is EVERY_DIM:
        raise _missing_dim("logsumexp")
    if dim is None:
        raise TypeError(f"logsumexp(): argument 'dim' (position {1 if method else 2}) must be tuple of ints, "
                        "not NoneType")
