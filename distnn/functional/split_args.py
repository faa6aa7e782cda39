"""A Tensor given as the size or count of ``split``, ``chunk``, ``unsafe_split``, ``unsafe_chunk`` and ``tensor_split``,
read as PyTorch 2.13 reads it, with its refusals (message and type) for the others.

Each op reads a Tensor argument its own way there:

* ``split`` (``Tensor.split``, Python): ``int(t)`` of a one-element tensor of any dtype (``tensor(2.5)`` is 2,
  ``tensor(True)`` 1); a tensor of another size goes on to ``split_with_sizes``, which refuses it;
* ``chunk`` / ``unsafe_chunk`` (an ``int`` argument): a 0-d integer tensor only (``Tensor.__index__``);
* ``unsafe_split`` (a ``SymInt`` argument): a one-element integer tensor, of any number of dims;
* ``tensor_split``: an int64 tensor of 0 dims (the number of sections) or 1 (the indices);
* ``hsplit`` / ``vsplit`` / ``dsplit`` (an ``int sections`` and an ``int[] indices`` overload): a 0-d integer tensor
  is the number of sections; the method form (``x.hsplit(t)``) also takes any other one-element integer or bool
  tensor, as the single index; a list's elements may be one-element integer or bool tensors.

``position`` is the argument's position in PyTorch's message: 1 for the method (``x.chunk(t)``), 2 for the function
(``torch.chunk(x, t)``); ``split``'s is 2 in both, as its Python method calls the function's binding.
"""
from __future__ import annotations

import numbers

from distnn.autograd.tensor import Tensor

_INTEGER_KINDS = "iu"


def _type_name(value) -> str:
    return "Tensor" if isinstance(value, Tensor) else type(value).__name__


class _TypeName(str):
    """A type's name written bare in a tuple's repr: ``(float, int)``, ``(float,)``."""

    def __repr__(self):
        return str(self)


def split_size(value):
    """``split``'s ``split_size_or_sections``: a one-element Tensor is its value as an int; an int or a sequence as
    given; anything else refused."""
    if not isinstance(value, Tensor):
        if isinstance(value, numbers.Integral) or hasattr(value, "__iter__"):
            return value
    elif value.numel() == 1:
        return int(value.data.reshape(()).item())
    raise TypeError("split_with_sizes(): argument 'split_sizes' (position 2) must be tuple of ints, not "
                    f"{_type_name(value)}")


def chunk_count(value, op: str = "chunk", position: int = 1):
    """``chunk``'s (``op``'s) ``chunks``: an int, or a 0-d integer Tensor's value."""
    if isinstance(value, Tensor) and value.ndim == 0 and value.data.dtype.kind in _INTEGER_KINDS:
        return int(value.data.item())
    if isinstance(value, numbers.Integral) and not isinstance(value, Tensor):
        return value
    raise TypeError(f"{op}(): argument 'chunks' (position {position}) must be int, not {_type_name(value)}")


def unsafe_split_size(value, position: int = 1) -> int:
    """``unsafe_split``'s ``split_size``: an int, or a one-element integer Tensor's value (PyTorch's SymInt)."""
    if isinstance(value, Tensor):
        if value.numel() == 1 and value.data.dtype.kind in _INTEGER_KINDS:
            return int(value.data.reshape(()).item())
    elif isinstance(value, numbers.Integral):
        return value
    raise TypeError(f"unsafe_split(): argument 'split_size' (position {position}) must be int, not "
                    f"{_type_name(value)}")


def tensor_split_spec(value):
    """``tensor_split``'s ``indices_or_sections`` given as a Tensor: an int (0 dims) or a list of ints (1 dim) of
    an int64 tensor, as PyTorch's; an int or a sequence as given; anything else refused."""
    if not isinstance(value, Tensor):
        if isinstance(value, numbers.Integral) or hasattr(value, "__iter__"):
            return value
        raise TypeError("tensor_split(): argument 'indices_or_sections' must be an int, a tuple of ints or a "
                        f"Tensor, not {type(value).__name__}")  # (PyTorch's: "received an invalid combination")
    dtype = value.data.dtype
    if dtype.name != "int64":
        from distnn.autograd.tensor_inplace_methods import torch_dtype_name

        raise RuntimeError("tensor_split expected tensor_indices_or_sections to have dtype of long, but got "
                           f"{torch_dtype_name(dtype)}")
    if value.ndim > 1:
        raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                           f"one-dimensional tensor, but got a tensor with {value.ndim} dims")
    return int(value.data.item()) if value.ndim == 0 else [int(i) for i in value.data.tolist()]


def _is_index_tensor(value) -> bool:
    """A Tensor PyTorch's parser reads as one int of an ``int[]``: one element, integer or bool."""
    return isinstance(value, Tensor) and value.numel() == 1 and value.data.dtype.kind in _INTEGER_KINDS + "b"


def _is_plain_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, Tensor))


def directional_split_spec(value, op: str, method: bool):
    """``hsplit``'s (``op``'s) ``indices_or_sections``: an int (the number of sections) or a list of ints (the
    indices), read as PyTorch's two overloads read it in the method form (``method``) or the function form."""
    if _is_plain_int(value):
        return value
    if isinstance(value, Tensor):
        if value.ndim == 0 and value.data.dtype.kind in _INTEGER_KINDS:
            return int(value.data.item())
        if method and _is_index_tensor(value):
            return [int(value.data.reshape(()).item())]
    elif isinstance(value, (list, tuple)) and (not value or _is_plain_int(value[0]) or _is_index_tensor(value[0])):
        return _indices(value, op)  # (PyTorch's parser picks the overload by the first element alone)
    raise TypeError(_invalid_combination(op, value, method))


def _indices(values, op: str) -> list:
    """The ints of ``values``, each a Python or numpy int (a bool too, past the first) or a one-element integer or
    bool Tensor; anything else refused as PyTorch's parser refuses it when it unpacks the list."""
    out = []
    for position, v in enumerate(values, 1):
        if isinstance(v, numbers.Integral) and not isinstance(v, Tensor):
            out.append(int(v))
        elif _is_index_tensor(v):
            out.append(int(v.data.reshape(()).item()))
        else:
            raise TypeError(f"{op}(): argument 'indices' failed to unpack the object at pos {position} with error "
                            f"\"type must be tuple of ints,but got {_type_name(v)}\"")
    return out


def _invalid_combination(op: str, value, method: bool) -> str:
    """PyTorch's parser's refusal of ``value`` for both overloads of ``op``, in the method or function form."""
    got = _type_name(value)
    given = got
    if isinstance(value, list):  # (its elements' types, as PyTorch lists them: a tuple's written as a tuple)
        given = f"list of [{', '.join(_type_name(v) for v in value)}]"
    elif isinstance(value, tuple):
        given = f"tuple of {tuple(_TypeName(_type_name(v)) for v in value)!r}"
    me, head = ("", "") if method else ("Tensor, ", "Tensor input, ")
    return (f"{op}() received an invalid combination of arguments - got ({me}{got}), but expected one of:\n"
            f" * ({head}int sections)\n"
            f"      didn't match because some of the arguments have invalid types: ({me}!{given}!)\n"
            f" * ({head}tuple of ints indices)\n"
            f"      didn't match because some of the arguments have invalid types: ({me}!{given}!)\n")
