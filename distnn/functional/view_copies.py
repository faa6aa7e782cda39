"""PyTorch's ``*_copy`` functions (``torch.t_copy``, ``torch.diagonal_copy``, ...), ``narrow_copy`` and the
``unsafe_*`` splits.

A ``*_copy`` function does what its view op does, but returns a fresh row-major tensor that shares no memory with
its input (PyTorch's functionalization uses them); it is in the graph, its gradient that of the view op. Each takes
``out=`` as PyTorch's: the values written into ``out`` (resized, with PyTorch's warning, when it has elements and
another shape; refused when its dtype differs), a list of tensors for the functions that return several.

The ``unsafe_*`` splits return the pieces as views of the input's memory that the version counters do not track
(PyTorch's: no ``_base``, ``_is_view()`` False), so an in-place change of a piece while recording is allowed, and
nothing checks what it does to other users of that memory: the caller vouches for it.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .out_write import write_into_out


class FreshCopy(Function):
    """A new row-major array with the values of ``a`` (always a copy: never ``a``'s memory); the gradient passes."""

    saves_tensors = False

    def forward(self, a):
        return get_array_module(a).array(a, order="C", copy=True)

    def backward(self, g):
        return (g,)


def _fresh(t: Tensor) -> Tensor:
    return FreshCopy.apply(t)


def write_out(result: Tensor, out, name: str) -> Tensor:
    """``out=``: ``result``'s values written into ``out`` (PyTorch's resize of a tensor of another shape, with
    its warning when ``out`` had elements; a dtype other than the result's is refused), or ``result`` itself."""
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if out.dtype != result.dtype:
        raise RuntimeError(f"Expected out tensor to have dtype {_torch_name(result.dtype)}, but got "
                           f"{_torch_name(out.dtype)} instead")
    write_into_out(out, result.data)
    return out


def _write_outs(results, out, name: str):
    if out is None:
        return results
    if not isinstance(out, (list, tuple)) or len(out) != len(results):
        raise RuntimeError(f"{name}(): out= must be a list of {len(results)} tensors, got "
                           f"{len(out) if isinstance(out, (list, tuple)) else type(out).__name__}")
    for r, o in zip(results, out):
        write_out(r, o, name)
    return None  # (PyTorch's out= forms of the list functions return nothing)


def _torch_name(dtype) -> str:
    names = {"float32": "float", "float64": "double", "float16": "half", "int64": "long", "int32": "int",
             "int16": "short", "int8": "signed char", "uint8": "unsigned char", "bool": "bool",
             "complex64": "complex<float>", "complex128": "complex<double>"}
    return names.get(np.dtype(dtype).name, np.dtype(dtype).name)


# ------------------------------------------------------------------ one result
def alias_copy(input, *, out=None):  # noqa: A002
    """``torch.alias_copy``: a fresh copy of ``input`` (in the graph)."""
    return write_out(_fresh(input), out, "alias_copy")


def detach_copy(input, *, out=None):  # noqa: A002
    """``torch.detach_copy``: a fresh copy of ``input``, cut from the graph (torch's result has a node whose
    backward raises "not implemented"; distnn's requires no grad, as ``detach()``'s)."""
    return write_out(_fresh(input.detach()), out, "detach_copy")


def diagonal_copy(input, offset=0, dim1=0, dim2=1, *, out=None):  # noqa: A002
    from .shape_more import diagonal

    return write_out(_fresh(diagonal(input, offset, dim1, dim2)), out, "diagonal_copy")


def expand_copy(input, size, *, implicit=False, out=None):  # noqa: A002
    """``torch.expand_copy``: the expanded values written out (every element its own memory)."""
    return write_out(_fresh(input.expand(*size)), out, "expand_copy")


def permute_copy(input, dims, *, out=None):  # noqa: A002
    return write_out(_fresh(input.permute(*dims)), out, "permute_copy")


def select_copy(input, dim, index, *, out=None):  # noqa: A002
    from .slice_scatter import select

    return write_out(_fresh(select(input, dim, index)), out, "select_copy")


def slice_copy(input, dim=0, start=None, end=None, step=1, *, out=None):  # noqa: A002
    """``torch.slice_copy``: ``input[..., start:end:step, ...]`` along ``dim``, copied (a non-positive step is
    refused, as PyTorch's)."""
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    if not -max(input.ndim, 1) <= dim < max(input.ndim, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(input.ndim, 1)}, "
                         f"{max(input.ndim, 1) - 1}], but got {dim})")
    index = (slice(None),) * (dim % input.ndim) + (slice(start, end, step),)
    return write_out(_fresh(input[index]), out, "slice_copy")


def squeeze_copy(input, dim=None, *, out=None):  # noqa: A002
    return write_out(_fresh(input.squeeze(dim)), out, "squeeze_copy")


def unsqueeze_copy(input, dim, *, out=None):  # noqa: A002
    return write_out(_fresh(input.unsqueeze(dim)), out, "unsqueeze_copy")


def t_copy(input, *, out=None):  # noqa: A002
    from .shape_more import t

    return write_out(_fresh(t(input)), out, "t_copy")


def transpose_copy(input, dim0, dim1, *, out=None):  # noqa: A002
    return write_out(_fresh(input.transpose(dim0, dim1)), out, "transpose_copy")


def unfold_copy(input, dimension, size, step, *, out=None):  # noqa: A002
    return write_out(_fresh(input.unfold(dimension, size, step)), out, "unfold_copy")


def view_copy(input, size, *, out=None):  # noqa: A002
    """``torch.view_copy``: ``input.view(size)`` copied; ``size`` a sequence of ints, or a dtype (its bytes
    read as that dtype)."""
    return write_out(_fresh(input.view(size)), out, "view_copy")


def view_as_real_copy(input, *, out=None):  # noqa: A002
    from .complex_numbers import view_as_real

    return write_out(_fresh(view_as_real(input)), out, "view_as_real_copy")


def view_as_complex_copy(input, *, out=None):  # noqa: A002
    from .complex_numbers import view_as_complex

    return write_out(_fresh(view_as_complex(input)), out, "view_as_complex_copy")


def narrow_copy(input, dim, start, length, *, out=None):  # noqa: A002
    """``torch.narrow_copy``: ``narrow(input, dim, start, length)`` copied."""
    from .select import narrow

    return write_out(_fresh(narrow(input, dim, start, length)), out, "narrow_copy")


# ------------------------------------------------------------------ several results
def split_copy(input, split_size, dim=0, *, out=None):  # noqa: A002
    """``torch.split_copy``: ``torch.split``'s pieces, each copied (``out=``: a list of tensors, filled)."""
    from .join import split

    return _write_outs(tuple(_fresh(p) for p in split(input, split_size, dim)), out, "split_copy")


def split_with_sizes_copy(input, split_sizes, dim=0, *, out=None):  # noqa: A002
    from .slice_scatter import split_with_sizes

    pieces = split_with_sizes(input, split_sizes, dim)
    return _write_outs(tuple(_fresh(p) for p in pieces), out, "split_with_sizes_copy")


def unbind_copy(input, dim=0, *, out=None):  # noqa: A002
    from .shape_more import unbind

    return _write_outs(tuple(_fresh(p) for p in unbind(input, dim)), out, "unbind_copy")


def _untracked(pieces):
    """The pieces as PyTorch's ``unsafe_*`` give them: the same memory and graph, but no view of the input for the
    version counters (a fresh counter each, not marked as a view), and PyTorch's node (``UnsafeSplitBackward0``)."""
    from .piece_nodes import UNSAFE_PIECE_NODES

    for p in pieces:
        p._vc = None
        p.__dict__.pop("_is_view", None)
        p.__dict__.pop("_view_of", None)
        p.__dict__.pop("_multi_output", None)
        node = p._node
        if node is not None:
            node.viewed_input = None
            # (the safe op's piece node, just made and seen by no one yet, becomes the unsafe op's: the same
            # slice, another name)
            node.__class__ = UNSAFE_PIECE_NODES.get(type(node), type(node))
    return tuple(pieces)


def unsafe_split(input, split_size, dim=0, *, _position=2):  # noqa: A002
    """``torch.unsafe_split``: ``split``'s pieces, not tracked as views (see the module's docstring). ``split_size``
    an int (or a one-element integer tensor), as PyTorch's."""
    from .join import split
    from .split_args import unsafe_split_size

    return _untracked(split(input, unsafe_split_size(split_size, _position), dim))


def unsafe_split_with_sizes(input, split_sizes, dim=0):  # noqa: A002
    from .slice_scatter import split_with_sizes

    return _untracked(split_with_sizes(input, split_sizes, dim))


def unsafe_chunk(input, chunks, dim=0, *, _position=2):  # noqa: A002
    """``torch.unsafe_chunk``: ``chunk``'s pieces, not tracked as views."""
    from .split_args import chunk_count

    return _untracked(input.chunk(chunk_count(chunks, "unsafe_chunk", _position), dim))


__all__ = ["alias_copy", "detach_copy", "diagonal_copy", "expand_copy", "permute_copy", "select_copy", "slice_copy",
           "squeeze_copy", "unsqueeze_copy", "t_copy", "transpose_copy", "unfold_copy", "view_copy",
           "view_as_real_copy", "view_as_complex_copy", "narrow_copy", "split_copy", "split_with_sizes_copy",
           "unbind_copy", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk"]
