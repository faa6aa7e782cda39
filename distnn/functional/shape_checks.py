"""PyTorch's checks of the shape ops' size and dim arguments, with its error types and messages (torch 2.13).

numpy words its refusals as ValueErrors of its own, and takes some sizes PyTorch refuses (``reshape(-2, 3)`` as
``reshape(-1, 3)``, negative split sizes); these checks run before numpy sees the sizes. Dims out of range are
:func:`._dims.wrap_dim`'s IndexError, sizes that cannot fit are RuntimeErrors, as in PyTorch.
"""
from __future__ import annotations

import numbers

from ._dims import wrap_dim


class ShapeError(RuntimeError, ValueError):
    """Tensors whose shapes an op cannot take (``cat``, ``stack``, ``matmul``, ``x[i] = v``): PyTorch's
    RuntimeError, and the ValueError distnn always raised there (as numpy's AxisError is both an IndexError and a
    ValueError)."""


class SizeMismatch(RuntimeError):
    """``infer_size``'s refusal of sizes whose product is not the number of elements (``unflatten`` words it as
    its own, as PyTorch's does)."""


def infer_size(shape, numel: int) -> tuple:
    """``shape`` with its -1 worked out for ``numel`` elements, refused as PyTorch's ``infer_size`` refuses it
    (in its order: a negative size other than -1, a second -1, an ambiguous -1 of an empty tensor, a product
    that is not ``numel``)."""
    shape, infer, known = list(shape), None, 1
    for i, s in enumerate(shape):
        if s == -1:
            if infer is not None:
                raise RuntimeError("only one dimension can be inferred")
            infer = i
        elif s >= 0:
            known *= s
        else:
            raise RuntimeError(f"invalid shape dimension {s} at index {i} of shape {shape}")
    if numel == known or (infer is not None and known > 0 and numel % known == 0):
        if infer is not None:
            if known == 0:
                raise RuntimeError(f"cannot reshape tensor of 0 elements into shape {shape} because the "
                                   "unspecified dimension size -1 can be any value and is ambiguous")
            shape[infer] = numel // known
        return tuple(shape)
    raise SizeMismatch(f"shape '{shape}' is invalid for input of size {numel}")


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
    if sorted(dims) == list(range(ndim)):  # (the common case, checked at once)
        return dims
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
    if type(dims) is int and 0 <= dims < ndim:  # (the common case, checked at once)
        return (dims,)
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


def _is_legacy_empty(shape) -> bool:
    """PyTorch's ``cat`` skips 1-D empty tensors (``torch.tensor([])``) whatever the others' shapes."""
    return len(shape) == 1 and shape[0] == 0


def cat_dim(shapes, dim) -> tuple:
    """PyTorch's ``cat`` checks of the operands' ``shapes`` (in its order): a non-empty list, no 0-d tensor, ``dim``
    in range of the first tensor that is not a skipped 1-D empty one, the same rank and the same sizes off ``dim``.
    Returns the wrapped dim (``None`` when every tensor is skipped) and the positions of the skipped tensors."""
    if not shapes:
        raise ShapeError("torch.cat(): expected a non-empty list of Tensors")
    for i, shape in enumerate(shapes):
        if not shape:
            raise ShapeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    skipped = tuple(i for i, shape in enumerate(shapes) if _is_legacy_empty(shape))
    kept = [(i, shape) for i, shape in enumerate(shapes) if i not in skipped]
    if not kept:
        return None, skipped
    first = kept[0][1]
    dim = wrap_dim(dim, len(first), "cat")
    for i, shape in kept[1:]:
        if len(shape) != len(first):
            raise ShapeError(f"Tensors must have same number of dimensions: got {len(first)} and {len(shape)}")
        for d, (want, got) in enumerate(zip(first, shape)):
            if d != dim and want != got:
                raise ShapeError(f"Sizes of tensors must match except in dimension {dim}. Expected size {want} but "
                                 f"got size {got} for tensor number {i} in the list.")
    return dim, skipped


def stack_dim(shapes, dim) -> int:
    """PyTorch's ``stack`` checks: a non-empty list, ``dim`` in range for the result (one more dim than the
    inputs), every tensor of the first one's shape. Returns the wrapped dim."""
    if not shapes:
        raise ShapeError("stack expects a non-empty TensorList")
    dim = wrap_dim(dim, len(shapes[0]) + 1, "stack")
    for i, shape in enumerate(shapes[1:], 1):
        if tuple(shape) != tuple(shapes[0]):
            raise ShapeError(f"stack expects each tensor to be equal size, but got {list(shapes[0])} at entry 0 and "
                             f"{list(shape)} at entry {i}")
    return dim
