"""``Tensor.view``, ``is_contiguous`` and ``contiguous`` with PyTorch's stride rules.

A view reinterprets the same memory, so it exists only where the new shape can be laid over the old strides:
PyTorch's ``computeStride`` (aten/src/ATen/TensorUtils.cpp), here on numpy's strides in elements. The old
dims are cut into chunks that are contiguous among themselves (``stride[d-1] == size[d] * stride[d]``); each
chunk must be covered exactly by consecutive new dims. So ``view`` of a diagonal, of a transpose or of a
stepped slice as one dim is refused, as PyTorch refuses it, while splitting or merging within a chunk (and
any view of a contiguous tensor) is allowed. ``reshape`` copies where ``view`` would refuse.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from . import memory_format as MF
from .shape_checks import SizeMismatch, infer_size  # noqa: F401 - (importable from here as before)
from .shape import Reshape
from .strides import cached_view_strides, element_strides, torch_strides, view_strides  # noqa: F401 - (as before)
from .parser_refusal import invalid_combination, keywords_as_listed, marked_type_name, parser_type_name
from .view_dtype import view_dtype

_VIEW_REFUSED = ("view size is not compatible with input tensor's size and stride (at least one dimension spans "
                 "across two contiguous subspaces). Use .reshape(...) instead.")


def is_contiguous_layout(a, memory_format=None) -> bool:
    """PyTorch's ``is_contiguous``: row-major strides, ignoring dims of size 1 (and any empty tensor); with
    ``memory_format=channels_last`` (or ``channels_last_3d``) its stride test for that format instead."""
    fmt = MF.check_memory_format(memory_format, "is_contiguous")
    if fmt in (MF.channels_last, MF.channels_last_3d):
        return MF.is_channels_last(a.shape, torch_strides(a), fmt)
    if a.size == 0:
        return True
    expected = 1
    for size, stride in zip(reversed(a.shape), reversed(element_strides(a))):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def view(t, shape):
    """``Tensor.view``: ``t`` seen with ``shape`` (integers, one of them may be -1), sharing its memory;
    refused, as PyTorch refuses it, where the strides allow no such view (``reshape`` copies there)."""
    a = t.data
    new_shape = infer_size(shape, a.size)
    # (a row-major tensor takes any shape of its size: the stride walk only for the others, whose strides
    # then go to the result, numpy's reshape setting others for its dims of size 1)
    if a.flags.c_contiguous:
        return Reshape.apply(t, shape=new_shape)
    strides = cached_view_strides(a.shape, torch_strides(a), new_shape)
    if strides is None:
        raise RuntimeError(_VIEW_REFUSED)
    return Reshape.apply(t, shape=new_shape, strides=strides)


def _size(s):
    """One size given to ``view``: an integer (Python's, numpy's, or a one-element integer tensor, as PyTorch
    takes them), else None."""
    from distnn.autograd.tensor import Tensor

    if isinstance(s, (bool, np.bool_)):
        return None
    if isinstance(s, (int, np.integer)):
        return int(s)
    if isinstance(s, Tensor) and s.data.size == 1 and s.data.dtype.kind in "iu":
        return int(s.data.reshape(()))
    return None


_VIEW_PARAMETERS = ("dtype", "size")
_VIEW_SIGNATURES = ("(torch.dtype dtype)", "(tuple of ints size)")


def _refused_arguments(args, kwargs):
    """PyTorch's refusal of a ``view`` call fitting neither signature. Each signature takes one argument: a call of
    one argument gets PyTorch's note under each (a keyword that is not the signature's, or the type it refused)."""
    notes = None
    if len(args) + len(kwargs) == 1:
        if args:
            reason = f"didn't match because some of the arguments have invalid types: (!{marked_type_name(args[0])}!)"
            notes = dict.fromkeys(range(len(_VIEW_SIGNATURES)), reason)
        else:
            (key, value), = kwargs.items()
            notes = {index: f"didn't match because some of the arguments have invalid types: "
                            f"(!{key}={marked_type_name(value)}!, )" if key == parameter else
                     f"didn't match because some of the keywords were incorrect: {key}"
                     for index, parameter in enumerate(_VIEW_PARAMETERS)}
    return invalid_combination("view", [parser_type_name(a) for a in args], _VIEW_SIGNATURES,
                               keywords=keywords_as_listed(kwargs.items()), notes=notes)


def view_call(t, args: tuple, kwargs: dict):
    """``Tensor.view(*args, **kwargs)`` as PyTorch's two forms: ``view(*sizes)`` / ``view(sizes)`` / ``view(size=)``
    (the memory seen with another shape), or ``view(dtype)`` / ``view(dtype=)`` (its bytes read as another dtype,
    see :mod:`.view_dtype`). Anything else is refused with a TypeError, as there."""
    given = args, kwargs  # (as PyTorch's refusal lists them)
    if kwargs:
        # (dtype=None: numpy would read it as float64; PyTorch's parser refuses it)
        if args or len(kwargs) != 1 or not set(kwargs) <= {"dtype", "size"} or \
                kwargs.get("dtype", 0) is None:
            raise _refused_arguments(args, kwargs)
        if "dtype" in kwargs:
            return view_dtype(t, kwargs["dtype"])
        args = (kwargs["size"],)
    if len(args) == 1 and isinstance(args[0], (str, type, np.dtype)):
        return view_dtype(t, args[0])
    sizes = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    shape = list(sizes)
    for s in shape:  # (Python ints, the common case, as they are; the other integer forms through _size)
        if type(s) is not int:
            shape = [_size(s) for s in sizes]
            break
    if not args or None in shape:
        raise _refused_arguments(*given)
    return view(t, shape)


class Contiguous(Function):
    """``Tensor.contiguous``: a row-major copy of a tensor that is not laid out so (the gradient passes)."""

    torch_name = "CloneBackward0"
    saves_tensors = False

    def forward(self, a):
        return get_array_module(a).ascontiguousarray(a)

    def backward(self, g):
        return (g,)


def contiguous(t, memory_format=None):
    """``t`` itself when it is contiguous in ``memory_format`` (PyTorch's rule; default row-major), else a copy in
    the graph laid out so (see :mod:`.memory_format` for ``channels_last``)."""
    fmt = MF.check_memory_format(memory_format, "contiguous")
    if fmt in (MF.channels_last, MF.channels_last_3d):
        return MF.to_channels_last(t, fmt, torch_strides(t.data))
    if is_contiguous_layout(t.data):
        return t
    if fmt is MF.preserve_format:  # (PyTorch: the tensor itself where it is contiguous, else this)
        raise RuntimeError("preserve memory format is unsupported by the contiguous operator")
    return Contiguous.apply(t)
