"""Selecting and rearranging along dims, as PyTorch's: index_select, narrow, flip, roll."""
from __future__ import annotations

import numbers

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._dims import wrap_dim, wrap_dims
from .shape import scatter_add


class IndexSelect(Function):
    """``out = a.take(index, dim)``; backward adds each gradient slice back at its index (an index given twice
    gets both)."""

    torch_name = "IndexSelectBackward0"
    reads = ((1,), ())  # (the index, as PyTorch's saves it; the input's values are not read)

    def forward(self, a, index, dim):
        xp = get_array_module(a)
        if getattr(index, "dtype", None) is None or index.dtype.kind not in "iu":
            raise TypeError(f"index_select: index must be a tensor of integers (int32 or int64), got "
                            f"{getattr(index, 'dtype', type(index).__name__)}")
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be a vector (1-D or 0-d), got shape {tuple(index.shape)}")
        index = xp.asarray(index).reshape(-1)
        n = a.shape[dim]
        if index.size and (int(index.min()) < 0 or int(index.max()) >= n):
            raise IndexError(f"index_select: indices must be in [0, {n}) for dim {dim} of shape {tuple(a.shape)}, "
                             f"got [{int(index.min())}, {int(index.max())}]")
        self.index, self.dim, self.shape = index, dim, a.shape
        return xp.take(a, index, axis=dim)

    def backward(self, g):
        xp = get_array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        scatter_add(out, (slice(None),) * self.dim + (self.index,), g)
        return out, None


def index_select(input, dim, index):  # noqa: A002
    """``torch.index_select``: the slices at ``index`` (a vector of integers) along ``dim``, in that order."""
    data = unwrap(input)
    if data.ndim == 0:
        raise ValueError("index_select: a 0-d tensor has no dim to select along")
    return IndexSelect.apply(input, index, dim=wrap_dim(dim, data.ndim, "index_select"))


def narrow(input, dim, start, length):  # noqa: A002
    """``torch.narrow``: ``length`` elements of ``dim`` from ``start`` (negative: from the end); a view, as in
    PyTorch (an in-place change of either is seen by both)."""
    data = unwrap(input)
    if data.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, data.ndim, "narrow")
    start, length = int(start.item() if isinstance(start, Tensor) else start), int(length)
    n = data.shape[d]
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    if start < 0:
        start += n
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    index = tuple(slice(start, start + length) if i == d else slice(None) for i in range(data.ndim))
    from .piece_nodes import SlicePiece, slice_view

    if isinstance(input, Tensor):  # (a view with the input's version counter; SliceBackward0 even over the whole dim)
        return slice_view(input, index)
    return SlicePiece.apply(input, index=index)


class Flip(Function):
    """The order of ``dims`` reversed; a copy, as PyTorch's (numpy's flip is a view)."""

    torch_name = "FlipBackward0"
    saves_tensors = False

    def forward(self, a, dims):
        self.dims = dims
        return get_array_module(a).flip(a, dims).copy()

    def backward(self, g):
        return (get_array_module(g).flip(g, self.dims),)


def flip(input, dims):  # noqa: A002
    """``torch.flip``: reverse the order along each of ``dims`` (an int or a sequence)."""
    data = unwrap(input)
    dims = wrap_dims(dims, data.ndim, "flip")
    if data.ndim == 0:
        dims = ()
    return Flip.apply(input, dims=dims)


class Roll(Function):
    """Elements shifted cyclically by ``shifts`` along ``dims`` (None: the flattened tensor)."""

    torch_name = "RollBackward0"
    saves_tensors = False
    supports_complex = True  # (a permutation: its backward reads no operand, right for complex as written)

    def forward(self, a, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return get_array_module(a).roll(a, shifts, axis=dims)

    def backward(self, g):
        xp = get_array_module(g)
        back = -self.shifts if isinstance(self.shifts, int) else tuple(-s for s in self.shifts)
        return (xp.roll(g, back, axis=self.dims),)


def roll(input, shifts, dims=None):  # noqa: A002
    """``torch.roll``: shift elements cyclically by ``shifts`` along ``dims`` (one shift per dim); with no
    ``dims``, the tensor is rolled as if flattened, then given its shape back."""
    data = unwrap(input)

    def ints(v):
        return (int(v),) if isinstance(v, numbers.Integral) else tuple(int(s) for s in v)

    shift_list = ints(shifts)
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts!r}")
        if data.ndim == 0:
            return Roll.apply(input, shifts=0, dims=None)
        return Roll.apply(input, shifts=shift_list[0], dims=None)
    dim_list = tuple(wrap_dim(d, data.ndim, "roll") for d in ints(dims))
    if len(shift_list) != len(dim_list):
        raise ValueError(f"roll: shifts and dims must align: {len(shift_list)} shift(s) {shifts!r} for "
                         f"{len(dim_list)} dim(s) {dims!r}")
    if data.ndim == 0:
        return Roll.apply(input, shifts=0, dims=None)
    return Roll.apply(input, shifts=shift_list, dims=dim_list)
