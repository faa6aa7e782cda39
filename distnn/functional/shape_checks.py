"""PyTorch's checks of the shape ops' size and dim arguments, with its error types and messages (torch 2.13).

numpy words its refusals as ValueErrors of its own, and takes some sizes PyTorch refuses (``reshape(-2, 3)`` as
``reshape(-1, 3)``, negative split sizes); these checks run before numpy sees the sizes. Dims out of range are
:func:`._dims.wrap_dim`'s IndexError, sizes that cannot fit are RuntimeErrors, as in PyTorch.
"""
from __future__ import annotations

import numbers

from ._dims import wrap_dim


def expanded_shape(shape, sizes) -> tuple:
    """PyTorch's ``inferExpandGeometry``: ``sizes`` for ``expand`` of a tensor of ``shape`` with each -1 worked
    out (an existing dim kept), refused where a size is neither the existing one nor an expansion of a size 1."""
    shape, sizes = tuple(shape), tuple(sizes)
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand(tensor of shape {list(shape)}, size={list(sizes)}): the number of sizes provided "
                           f"({len(sizes)}) must be greater or equal to the number of dimensions in the tensor "
                           f"({len(shape)})")
    lead = len(sizes) - len(shape)
    out = []
    for i, target in enumerate(sizes):
        size = shape[i - lead] if i >= lead else None
        if target == -1:
            if size is None:
                raise RuntimeError(f"The expanded size of the tensor (-1) isn't allowed in a leading, non-existing "
                                   f"dimension {i}")
            target = size
        if size is not None and size != target and size != 1:
            raise RuntimeError(f"The expanded size of the tensor ({target}) must match the existing size ({size}) at "
                               f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: "
                               f"{list(shape)}")
        if target < 0:  # (PyTorch fails on the product: "numel: integer multiplication overflow")
            raise RuntimeError(f"The expanded size of the tensor ({target}) at dimension {i} must be non-negative. "
                               f"Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}")
        out.append(target)
    return tuple(out)


def permutation(dims, ndim: int) -> tuple:
    """``permute``'s ``dims`` as non-negative axes: one per dim of the tensor, each once."""
    dims = tuple(dims)
    if len(dims) != ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the length "
                           f"of the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal to "
                           f"len(dims) = {len(dims)}")
    out = tuple(wrap_dim(d, ndim, "permute") for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return out


def squeeze_dims(dims, ndim: int) -> tuple:
    """``squeeze``'s dims (an int or a sequence) as distinct non-negative axes."""
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    out = tuple(wrap_dim(d, ndim, "squeeze") for d in dims)
    for i, d in enumerate(out):
        if d in out[:i]:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return out


def split_bounds(shape, split_size_or_sections, dim) -> tuple:
    """PyTorch's ``split`` / ``split_with_sizes``: the wrapped dim and the piece bounds along it. An int is the
    size of each piece (the last one smaller; 0 only for a dim of size 0), a sequence the sizes, which must be
    non-negative and add up to the dim's size."""
    if not shape:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = wrap_dim(dim, len(shape), "split")
    n = shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        step = int(split_size_or_sections)
        if step < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={step}")
        if step == 0 and n != 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        if n == 0:
            return d, [0, 0]  # (one empty piece, as PyTorch's)
        return d, list(range(0, n, step)) + [n]
    sizes = [int(s) for s in split_size_or_sections]
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative entries, but got "
                           f"split_sizes={sizes}")
    if sum(sizes) != n:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                           f"dimension {d}), but got split_sizes={sizes}")
    bounds = [0]
    for s in sizes:
        bounds.append(bounds[-1] + s)
    return d, bounds


def chunk_bounds(shape, chunks, dim) -> tuple:
    """PyTorch's ``chunk``: the wrapped dim and the bounds of ``chunks`` pieces of ``ceil(size / chunks)`` (fewer
    where they run out; ``chunks`` empty pieces of a dim of size 0)."""
    if not isinstance(chunks, numbers.Integral):
        raise TypeError(f"chunk(): argument 'chunks' (position 1) must be int, not {type(chunks).__name__}")
    if not shape:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    chunks = int(chunks)
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = wrap_dim(dim, len(shape), "chunk")
    n = shape[d]
    if n == 0:
        return d, [0] * (chunks + 1)
    return split_bounds(shape, -(-n // chunks), d)
