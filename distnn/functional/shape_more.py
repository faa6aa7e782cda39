"""More of PyTorch's shape ops: triangles and diagonals, dim moves, tiling, repeat_interleave, rot90, unflatten,
ravel (and, re-exported from their own modules, the splits, ``shape_split.py``, and the broadcasting helpers,
meshgrid and atleast_nd, ``shape_broadcast.py``).

Most are compositions of recorded ops (indexing, transpose, reshape, where), so their gradients are those ops'
gradients; ``diag_embed`` has a node of its own. ``diagonal`` is a view, as PyTorch's (an in-place change of it writes
its base); PyTorch returns views for some others (movedim, t, unbind): these are views or copies here, with
the same values and gradients.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.autograd.versions import _share
from distnn.backend import device_of, get_array_module, to_device

from ._dims import wrap_dim, wrap_dims
from ._tensor_args import _ints, as_tensor  # noqa: F401  (as_tensor: importable from here as before)
from .elementwise_choice import Where
from .indexing import DiagonalView, GetItem
from .select import flip
from .shape import Repeat, TransposeT
from .shape_broadcast import (  # noqa: F401  (importable from here as before)
    atleast_1d, atleast_2d, atleast_3d, broadcast_shapes, broadcast_tensors, meshgrid,
)
from .shape_split import dsplit, hsplit, tensor_split, unbind, vsplit  # noqa: F401  (as before)


# ---------------------------------------------------------------- triangles and diagonals
class Tril(Where):
    """tril's node: a Where with the triangle as its condition, named as PyTorch's. As PyTorch's, it keeps no
    array for backward: ``cond`` is made again from the shape and ``diagonal`` (so checkpoint's early stop counts
    it as an op that saves nothing, as PyTorch's)."""

    torch_name = "TrilBackward0"
    lower = True

    def forward(self, cond, a, b, diagonal):
        self.shape, self.diagonal, self.device = a.shape, diagonal, device_of(a)
        return get_array_module(a).where(cond, a, b)

    @property
    def cond(self):  # (read by Where's backward and its create_graph form)
        return to_device(_triangle_mask(np, self.shape, self.diagonal, self.lower), self.device)


class Triu(Tril):
    torch_name = "TriuBackward0"
    lower = False


def _triangle_mask(xp, shape, diagonal: int, lower: bool):
    """Where tril (``lower``) or triu keeps the values of an array of ``shape`` (its last two dims)."""
    rows, cols = shape[-2:]
    if lower:
        return xp.tri(rows, cols, diagonal, dtype=bool)
    return ~xp.tri(rows, cols, diagonal - 1, dtype=bool)


def _triangle(input, diagonal, lower, op):  # noqa: A002
    x = as_tensor(input)
    if x.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions")
    xp = get_array_module(x.data)
    keep = _triangle_mask(xp, x.shape, int(diagonal), lower)
    # (where, not a product with the mask: a NaN or inf outside the triangle becomes 0, as in PyTorch)
    return (Tril if lower else Triu).apply(keep, x, xp.zeros((), dtype=x.dtype), diagonal=int(diagonal))


def tril(input, diagonal=0):  # noqa: A002
    """``torch.tril``: the lower triangle of the last two dims (``diagonal`` > 0 keeps more), zeros elsewhere."""
    return _triangle(input, diagonal, True, "tril")


def triu(input, diagonal=0):  # noqa: A002
    """``torch.triu``: the upper triangle of the last two dims (``diagonal`` > 0 keeps less), zeros elsewhere."""
    return _triangle(input, diagonal, False, "triu")


def _diagonal_places(xp, rows, cols, offset):
    first_row, first_col = max(-offset, 0), max(offset, 0)
    n = max(0, min(rows - first_row, cols - first_col))
    steps = xp.arange(n)
    return steps + first_row, steps + first_col


def diagonal(input, offset=0, dim1=0, dim2=1):  # noqa: A002
    """``torch.diagonal``: the diagonal ``offset`` (above the main one when > 0) of the matrices in dims
    ``dim1``, ``dim2``, as a new last dim."""
    x = as_tensor(input)
    d1, d2 = wrap_dim(dim1, x.ndim, "diagonal"), wrap_dim(dim2, x.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    index = DiagonalView(int(offset), d1, d2)
    t = GetItem.apply(x, index=index)
    if t._vc is None or t._vc is not x._vc:  # (an empty diagonal shares no bytes with x: a view all the same)
        _share(x, t)
    t.__dict__["_view_of"] = (x, index)  # a view, as PyTorch's: an in-place change of it writes x
    return t


_diagonal = diagonal  # (for diag, whose argument of that name hides it)


class DiagEmbed(Function):
    """The last dim of ``a`` written on diagonal ``offset`` of new matrices in dims ``dim1``, ``dim2`` (zeros
    elsewhere); backward reads that diagonal back."""

    torch_name = "DiagEmbedBackward0"
    saves_tensors = False

    def forward(self, a, offset, dim1, dim2):
        xp = get_array_module(a)
        m = a.shape[-1] + abs(offset)
        out = xp.zeros(a.shape[:-1] + (m, m), dtype=a.dtype)
        self.places = _diagonal_places(xp, m, m, offset)
        out[(Ellipsis,) + self.places] = a
        self.dims = (dim1, dim2)
        return xp.moveaxis(out, (-2, -1), self.dims)

    def backward(self, g):
        xp = get_array_module(g)
        return (xp.moveaxis(g, self.dims, (-2, -1))[(Ellipsis,) + self.places],)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):  # noqa: A002
    """``torch.diag_embed``: matrices (in dims ``dim1``, ``dim2`` of the result) whose diagonal ``offset``
    holds the last dim of ``input``."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("diag_embed: input must have at least 1 dimension")  # (PyTorch: an IndexError-like)
    d1, d2 = wrap_dim(dim1, x.ndim + 1, "diag_embed"), wrap_dim(dim2, x.ndim + 1, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return DiagEmbed.apply(x, offset=int(offset), dim1=d1, dim2=d2)


def diag(input, diagonal=0):  # noqa: A002 - PyTorch's names
    """``torch.diag``: a vector becomes a square matrix with it on diagonal ``diagonal``; a matrix gives
    that diagonal as a vector."""
    x = as_tensor(input)
    if x.ndim == 1:
        return DiagEmbed.apply(x, offset=int(diagonal), dim1=0, dim2=1)
    if x.ndim == 2:
        return _diagonal(x, diagonal).clone()  # (PyTorch's diag is a copy, not a view)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D")


def diagflat(input, offset=0):  # noqa: A002
    """``torch.diagflat``: the flattened input on diagonal ``offset`` of a square matrix."""
    x = as_tensor(input)
    return DiagEmbed.apply(x.reshape(-1), offset=int(offset), dim1=0, dim2=1)


def trace(input):  # noqa: A002
    """``torch.trace``: the sum of a matrix's main diagonal (integers sum in int64, as PyTorch)."""
    x = as_tensor(input)
    if x.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {x.ndim}")
    d = diagonal(x)
    if d.dtype.kind in "biu":
        d = Tensor(d.data.astype(np.int64))
    return d.sum()


# ---------------------------------------------------------------- moving dims
def movedim(input, source, destination):  # noqa: A002
    """``torch.movedim``: dims ``source`` moved to ``destination`` (ints or sequences of equal length), the
    others keeping their order."""
    x = as_tensor(input)
    src, dst = _ints(source), _ints(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} dims) should contain "
                           f"the same number of dims as destination ({list(dst)} dims)")
    src = tuple(wrap_dim(d, x.ndim, "movedim") for d in src)
    dst = tuple(wrap_dim(d, x.ndim, "movedim") for d in dst)
    for name, dims in (("source", src), ("destination", dst)):
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(dims)})")
    order = [d for d in range(x.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return x.permute(*order) if x.ndim else x[...]  # (a view of its own, as PyTorch's: see ``t``)


moveaxis = movedim


def swapaxes(input, axis0, axis1):  # noqa: A002
    """``torch.swapaxes`` (``swapdims``, ``transpose``): two dims exchanged."""
    if getattr(input, "is_sparse", False) is True:  # (a sparse COO tensor: distnn.sparse.transpose)
        return input.transpose(axis0, axis1)
    x = as_tensor(input)
    a, b = wrap_dim(axis0, x.ndim, "swapaxes"), wrap_dim(axis1, x.ndim, "swapaxes")
    return x.transpose(a, b) if x.ndim else x[...]  # (a view of its own, as PyTorch's: see ``t``)


swapdims = swapaxes


def t(input):  # noqa: A002
    """``torch.t``: a matrix transposed; a vector or 0-d tensor as it is, in a view of its own (as PyTorch's: not
    the tensor itself, so that ``x.t().squeeze_()`` leaves ``x``'s shape alone)."""
    if getattr(input, "is_sparse", False) is True:  # (a sparse COO tensor: distnn.sparse.transpose)
        return input.t()
    x = as_tensor(input)
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return TransposeT.apply(x, axes=None)  # (a vector or 0-d tensor: a view of itself, as PyTorch's)


# ---------------------------------------------------------------- repeating and rotating
def tile(input, dims):  # noqa: A002
    """``torch.tile``: ``repeat`` with ``dims`` padded with leading 1s to the tensor's number of dims."""
    x = as_tensor(input)
    dims = _ints(dims)
    return Repeat.apply(x, sizes=(1,) * (x.ndim - len(dims)) + dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):  # noqa: A002
    """``torch.repeat_interleave``: each element (slice along ``dim``; of the flattened tensor without ``dim``)
    repeated ``repeats`` times (an int, or one count per element). With only a tensor of counts, the
    indices ``0..n-1`` repeated by them."""
    if repeats is None:  # torch.repeat_interleave(counts)
        counts = as_tensor(input).data
        xp = get_array_module(counts)
        return Tensor(xp.repeat(xp.arange(counts.shape[0], dtype=np.int64), counts))
    x = as_tensor(input)
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = wrap_dim(dim, x.ndim, "repeat_interleave")
    if x.ndim == 0:
        x = x.reshape(1)
    xp = get_array_module(x.data)
    n = x.shape[d]
    counts = repeats.data if isinstance(repeats, Tensor) else repeats
    if not isinstance(counts, numbers.Integral):
        counts = xp.asarray(counts).reshape(-1)
        if counts.size == 1:
            counts = int(counts[0])
        elif counts.shape[0] != n:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{counts.shape[0]} and input.size({d}) = {n}")
    # (any() rather than min(initial=0), which cupy's ndarray.min lacks; no element: no negative one)
    if (int(counts) < 0) if isinstance(counts, numbers.Integral) else bool((counts < 0).any()):
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    index = xp.repeat(xp.arange(n, dtype=np.int64), counts)
    return x[(slice(None),) * d + (index,)]


def rot90(input, k=1, dims=(0, 1)):  # noqa: A002
    """``torch.rot90``: rotated ``k`` quarter turns from dim ``dims[0]`` towards ``dims[1]``."""
    x = as_tensor(input)
    dims = _ints(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {x.ndim}")
    a, b = wrap_dims(dims, x.ndim, "rot90") if dims[0] % x.ndim != dims[1] % x.ndim else (None, None)
    if a is None:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {dims[0]} and dim1 = {dims[1]}")
    k = int(k) % 4
    if k == 1:
        return flip(x, b).transpose(a, b)
    if k == 2:
        return flip(x, (a, b))
    if k == 3:
        return flip(x, a).transpose(a, b)
    return x.clone()


def fliplr(input):  # noqa: A002
    """``torch.fliplr``: dim 1 reversed (a tensor of at least 2 dims)."""
    x = as_tensor(input)
    if x.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(x, 1)


def flipud(input):  # noqa: A002
    """``torch.flipud``: dim 0 reversed (a tensor of at least 1 dim)."""
    x = as_tensor(input)
    if x.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(x, 0)


# ---------------------------------------------------------------- reshaping and broadcasting
def unflatten(input, dim, sizes):  # noqa: A002
    """``torch.unflatten``: dim ``dim`` split into ``sizes`` (one of them may be -1), refused as PyTorch's."""
    from .shape_checks import SizeMismatch, infer_size

    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("unflatten got an unexpected error:\nDimension specified as 0 but tensor has no dimensions")
    d = wrap_dim(dim, x.ndim, "unflatten")
    sizes = _ints(sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    try:
        sizes = infer_size(sizes, x.shape[d])
    except SizeMismatch:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({x.shape[d]}) in the input tensor") from None
    except RuntimeError as e:  # (a second -1, a negative size, an ambiguous -1: infer_size's words, as PyTorch's)
        raise RuntimeError(f"unflatten got an unexpected error:\n{e}") from None
    return x.reshape(x.shape[:d] + sizes + x.shape[d + 1:])


def ravel(input):  # noqa: A002
    """``torch.ravel``: the tensor as a vector."""
    return as_tensor(input).reshape(-1)


__all__ = ["tril", "triu", "diagonal", "diag_embed", "diag", "diagflat", "trace", "movedim", "moveaxis", "swapaxes",
           "swapdims", "t", "unbind", "tensor_split", "hsplit", "vsplit", "dsplit", "tile", "repeat_interleave", "rot90",
           "fliplr", "flipud", "unflatten", "ravel", "broadcast_shapes", "broadcast_tensors", "meshgrid", "atleast_1d",
           "atleast_2d", "atleast_3d"]
