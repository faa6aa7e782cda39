"""PyTorch's scatter family: scatter, scatter_add, scatter_reduce, index_add, index_copy, index_fill,
masked_scatter. The selections that read elements instead (masked_select, take, take_along_dim,
nonzero, nonzero_static, argwhere) are in :mod:`.element_select`, re-exported here.

``scatter(dim, index, src)`` writes ``src[i][j]`` to ``out[index[i][j]][j]`` (dim 0; likewise for the others);
only the leading ``index.shape`` part of ``src`` is read. The gradients are PyTorch's, including
scatter_reduce's (amax/amin share the gradient evenly among the tied elements, counting the input's own
element when it equals the result, as PyTorch's formula does).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, open_grid

from ._dims import wrap_dim
from .element_select import (  # noqa: F401 - re-exported (distnn's top level and Tensor methods import them here)
    argwhere, broadcast, masked_select, nonzero, nonzero_static, take, take_along_dim,
)
from .element_select import on_data_device
from .indexing import scatter_add as _add_at
from .shape import BroadcastTo
from .shape_more import as_tensor

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _check_index(a, index, dim, op, src=None):
    """``dim`` wrapped, after PyTorch's checks of an index (integers, as many dims, inside the tensor)."""
    if getattr(index, "dtype", None) is None or index.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int64 for index")
    if index.ndim != a.ndim and index.size:
        raise RuntimeError(f"Index tensor must have the same number of dimensions as self tensor ({op})")
    d = wrap_dim(dim, a.ndim, op)
    size = a.shape[d] if a.ndim else 1
    if index.size and (int(index.min()) < -size or int(index.max()) >= size):
        raise RuntimeError(f"{op}: index {int(index.max()) if int(index.max()) >= size else int(index.min())} is out of "
                         f"bounds for dimension {d} with size {size}")
    if src is not None and src.ndim and any(index.shape[k] > src.shape[k] for k in range(index.ndim)):
        raise RuntimeError(f"{op}: Expected index {list(index.shape)} to be smaller than self {list(a.shape)} apart "
                           f"from dimension {d} and to be smaller size than src {list(src.shape)}")
    return d


def _places(xp, index, dim):
    """The output positions ``index`` names: a tuple for advanced indexing (index along ``dim``)."""
    grid = open_grid(xp, index.shape)
    grid[dim] = index
    return tuple(grid)


def _part(src, shape):
    return src[tuple(slice(0, s) for s in shape)]


_ALL_BUT_SIGN = 0x7FFFFFFFFFFFFFFF


def _ordered_keys(xp, a, ufunc):
    """float64 ``a`` as int64 keys in the floats' order (negative floats' bits but the sign flipped), a NaN as
    the extreme ``ufunc`` picks (+NaN's bits for maximum, -NaN's for minimum), so that it propagates as numpy's."""
    bits = xp.ascontiguousarray(a, dtype=np.float64).view(np.int64)
    bits = xp.where(xp.isnan(a), -0x0008000000000000 if ufunc == "minimum" else 0x7FF8000000000000, bits)
    return xp.where(bits < 0, bits ^ _ALL_BUT_SIGN, bits)


def _at(xp, ufunc, out, places, values):
    """``ufunc.at(out, places, values)`` (repeated places combine), numpy or cupy."""
    if xp is np:
        getattr(np, ufunc).at(out, places, values)
        return
    import cupyx

    if ufunc == "add":
        cupyx.scatter_add(out, places, values)
    elif ufunc in ("maximum", "minimum") and out.dtype == np.float64:
        # (cupy 14.2's float64 scatter_max/min return the extremes rounded to float32 (measured on an H100), which
        # the backward's equality with the result then misses: exact through order-preserving int64 keys)
        keys = _ordered_keys(xp, out, ufunc)
        (cupyx.scatter_max if ufunc == "maximum" else cupyx.scatter_min)(keys, places, _ordered_keys(xp, values, ufunc))
        out[...] = xp.where(keys < 0, keys ^ _ALL_BUT_SIGN, keys).view(np.float64)
    elif ufunc == "maximum":
        cupyx.scatter_max(out, places, values)
    elif ufunc == "minimum":
        cupyx.scatter_min(out, places, values)
    else:  # multiply: cupyx has no scatter-multiply; a product of sign, log-magnitude and zero count instead
        neg, logs, zeros = xp.zeros(out.shape, "int64"), xp.zeros(out.shape, "float64"), xp.zeros(out.shape, "int64")
        cupyx.scatter_add(neg, places, (values < 0).astype("int64"))
        cupyx.scatter_add(zeros, places, (values == 0).astype("int64"))
        cupyx.scatter_add(logs, places, xp.log(xp.abs(xp.where(values == 0, 1, values)).astype("float64")))
        factor = xp.where(zeros > 0, 0.0, xp.where(neg % 2 == 1, -1.0, 1.0) * xp.exp(logs))
        touched = xp.zeros(out.shape, bool)
        touched[places] = True
        out[...] = xp.where(touched, out * factor, out).astype(out.dtype)


def _reduce_forward(xp, a, index, src, dim, reduce, include_self):
    """scatter_reduce's value on arrays (the backward uses it too, on masked copies)."""
    places = _places(xp, index, dim)
    src = _part(src, index.shape)
    out = a.copy()
    if not include_self:  # (the scattered places start from the reduction's identity)
        # (amax/amin: any of the place's own src values, which is reduced with the rest anyway)
        out[places] = {"sum": 0, "mean": 0, "prod": 1}.get(reduce, src)
    _at(xp, {"sum": "add", "mean": "add", "prod": "multiply", "amax": "maximum", "amin": "minimum"}[reduce],
        out, places, src)
    if reduce == "mean":
        count = xp.ones(a.shape, a.dtype) if include_self else xp.zeros(a.shape, a.dtype)
        _add_at(count, places, xp.ones(src.shape, a.dtype))
        safe = xp.where(count == 0, 1, count)  # (a place nothing reached keeps the input's value)
        out = out // safe if a.dtype.kind in "iu" else out / safe
    return out.astype(a.dtype, copy=False)


class ScatterReduce(Function):
    """``out = input`` with ``src`` reduced into the places ``index`` names (see the module docstring)."""

    reads = ((0, 2, OUTPUT), (0, 2, OUTPUT), ())

    def forward(self, a, src, index, dim, reduce, include_self):
        xp = get_array_module(a)
        out = _reduce_forward(xp, a, index, src, dim, reduce, include_self)
        self.a, self.src, self.index, self.out = a, src, index, out
        self.dim, self.reduce, self.include_self = dim, reduce, include_self
        return out

    def backward(self, g):
        xp = get_array_module(g)
        a, index, dim, reduce, out = self.a, self.index, self.dim, self.reduce, self.out
        src = _part(self.src, index.shape)
        places = _places(xp, index, dim)
        if reduce == "sum":
            g_self, g_src = g, g[places]
        elif reduce == "mean":
            n = xp.ones(a.shape, g.dtype) if self.include_self else xp.zeros(a.shape, g.dtype)
            _add_at(n, places, xp.ones(src.shape, g.dtype))
            n = xp.where(n == 0, 1, n)
            g_self = g / n
            g_src = g_self[places]
        elif reduce == "prod":  # (PyTorch's: the product of the others, with zeros handled exactly)
            masked_self = xp.where(a == 0, 1, a)
            g_self = g * _reduce_forward(xp, masked_self, index, src, dim, reduce, self.include_self) / masked_self
            src_zero = src == 0
            zeros = xp.zeros(a.shape, g.dtype)
            _add_at(zeros, places, src_zero.astype(g.dtype))
            single_zero = src_zero & (zeros[places] == 1)
            without = _reduce_forward(xp, a, index, xp.where(single_zero, 1, src), dim, reduce, self.include_self)
            g_src = xp.where(single_zero, (g * without)[places], (g * out)[places] / xp.where(src_zero, 1, src))
        else:  # amax, amin: shared evenly among the elements equal to the result
            value = out[places]
            self_is = (a == out).astype(g.dtype)
            src_is = (src == value).astype(g.dtype)
            n = self_is.copy()
            _add_at(n, places, src_is)
            shared = g / n
            g_self = self_is * shared
            g_src = src_is * shared[places]
        if not self.include_self:
            g_self = g_self.copy()
            g_self[places] = 0
        full_src = xp.zeros(self.src.shape, g.dtype)
        full_src[tuple(slice(0, s) for s in index.shape)] = g_src
        return g_self, full_src, None


def _operands(input, dim, index, src, op):  # noqa: A002
    x = as_tensor(input)
    idx = on_data_device(x, index)
    if isinstance(src, numbers.Number):
        src = Tensor(get_array_module(x.data).full(idx.shape, src, dtype=x.dtype))
    s = as_tensor(src)
    if s.dtype != x.dtype:
        raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype")
    d = _check_index(x.data, idx, dim, op, s.data)
    size = x.shape[d] if x.ndim else 1
    return x, s, idx % size if idx.size and int(idx.min()) < 0 else idx, d


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):  # noqa: A002
    """``torch.scatter_reduce``: ``src`` reduced ('sum', 'prod', 'mean', 'amax', 'amin') into ``input`` at the
    places ``index`` names; ``include_self=False`` leaves the input's own values at those places out. An
    integer 'mean' divides with floor, as PyTorch."""
    reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)  # (PyTorch takes these spellings too)
    if reduce not in REDUCTIONS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    x, s, idx, d = _operands(input, dim, index, src, "scatter_reduce")
    return ScatterReduce.apply(x, s, idx, dim=d, reduce=reduce, include_self=bool(include_self))


def scatter_add(input, dim, index, src):  # noqa: A002
    """``torch.scatter_add``: ``src`` added into ``input`` at the places ``index`` names (repeats add up)."""
    x, s, idx, d = _operands(input, dim, index, src, "scatter_add")
    return ScatterReduce.apply(x, s, idx, dim=d, reduce="sum", include_self=True)


class Scatter(Function):
    """``src`` written into a copy of ``input`` at the places ``index`` names. The input's gradient is zero
    at those places; ``src`` gets the gradient gathered from them (PyTorch's, also for a repeated place,
    where which write wins is unspecified)."""

    reads = ((2,), (2,), ())

    def forward(self, a, src, index, dim):
        xp = get_array_module(a)
        self.places = _places(xp, index, dim)
        self.src_shape, self.index_shape = src.shape, index.shape
        out = a.copy()
        out[self.places] = _part(src, index.shape) if src.ndim else src
        return out

    def backward(self, g):
        xp = get_array_module(g)
        g_self = g.copy()
        g_self[self.places] = 0
        g_src = xp.zeros(self.src_shape, g.dtype)
        if len(self.src_shape):
            g_src[tuple(slice(0, s) for s in self.index_shape)] = g[self.places]
        else:
            g_src = g[self.places].sum()
        return g_self, g_src, None


def scatter(input, dim, index, src=None, *, value=None, reduce=None):  # noqa: A002
    """``torch.scatter``: ``src`` (a tensor, or a number ``value``) written into ``input`` at the places
    ``index`` names. ``reduce='add'`` / ``'multiply'`` combine instead (as scatter_reduce's sum / prod)."""
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() needs src (a tensor) or value (a number)")
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
        x, s, idx, d = _operands(input, dim, index, src, "scatter")
        return ScatterReduce.apply(x, s, idx, dim=d, reduce="sum" if reduce == "add" else "prod", include_self=True)
    x, s, idx, d = _operands(input, dim, index, src, "scatter")
    return Scatter.apply(x, s, idx, dim=d)


# ---------------------------------------------------------------- along one dim by a vector of indices
def _vector_index(x, dim, index, op):
    idx = on_data_device(x, index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{op}_(): Expected dtype int32/int64 for index")
    if idx.ndim > 1:
        raise IndexError(f"{op}_(): Index is supposed to be a vector")
    d = wrap_dim(dim, x.ndim, op)
    size = x.shape[d] if x.ndim else 1
    idx = idx.reshape(-1)
    if idx.size and (int(idx.min()) < -size or int(idx.max()) >= size):
        raise IndexError(f"{op}(): index out of range for dimension {d} with size {size}")
    return idx % size if idx.size else idx, d


def index_add(input, dim, index, source, *, alpha=1):  # noqa: A002
    """``torch.index_add``: ``alpha * source`` added to the slices ``index`` names along ``dim`` (repeats add)."""
    x, s = as_tensor(input), as_tensor(source)
    idx, d = _vector_index(x, dim, index, "index_add")
    grid = (slice(None),) * d + (idx,)
    if s.shape != x[grid].shape:
        raise RuntimeError(f"index_add_(): source of shape {list(s.shape)} does not fit {len(idx)} slices of "
                           f"{list(x.shape)} along dim {d}")
    return _IndexAdd.apply(x, s if alpha == 1 else s * alpha, grid=grid)


class _IndexAdd(Function):
    torch_name = "IndexAddBackward0"
    saves_tensors = False

    def forward(self, a, source, grid):
        out = a.copy()
        _add_at(out, grid, source.astype(a.dtype, copy=False))
        self.grid = grid
        return out

    def backward(self, g):
        return g, g[self.grid]


def index_copy(input, dim, index, source):  # noqa: A002
    """``torch.index_copy``: the slices ``index`` names along ``dim`` replaced by ``source``'s."""
    x, s = as_tensor(input), as_tensor(source)
    idx, d = _vector_index(x, dim, index, "index_copy")
    xp = get_array_module(x.data)
    grid = (slice(None),) * d + (idx,)
    if s.shape != x[grid].shape:
        raise RuntimeError(f"index_copy_(): Source/destination tensor must have same slice shapes. Destination "
                           f"slices of {list(x.shape)} along dim {d}, source {list(s.shape)}")
    # (index_copy writes each index's slice of source: the places it names, in source's order)
    places = open_grid(xp, s.shape)
    places[d] = idx.reshape((-1,) + (1,) * (s.ndim - d - 1))
    return Scatter.apply(x, s, xp.broadcast_to(places[d], s.shape), dim=d)


def index_fill(input, dim, index, value):  # noqa: A002
    """``torch.index_fill``: the slices ``index`` names along ``dim`` set to ``value`` (a number or a 0-d
    tensor, which then gets their gradient)."""
    x = as_tensor(input)
    idx, d = _vector_index(x, dim, index, "index_fill")
    xp = get_array_module(x.data)
    mask = xp.zeros(x.shape[d] if x.ndim else 1, bool)
    mask[idx] = True
    return x.masked_fill(mask.reshape((-1,) + (1,) * (x.ndim - d - 1)) if x.ndim else mask.reshape(()), value)


# ---------------------------------------------------------------- where a mask is true
class MaskedScatter(Function):
    """``source``'s leading elements written, in order, where ``mask`` is true."""

    reads = ((1,), (1,), ())

    def forward(self, a, mask, source):
        self.mask, self.source_shape = mask, source.shape
        n = int(mask.sum())
        if n > source.size:
            raise RuntimeError(f"masked_scatter: expected source to have at least {n} elements (the mask's true "
                               f"ones), got {source.size}")
        out = a.copy()
        out[mask] = source.reshape(-1)[:n]
        return out

    def backward(self, g):
        xp = get_array_module(g)
        g_source = xp.zeros(int(np.prod(self.source_shape)), g.dtype)
        picked = g[self.mask]
        g_source[:picked.size] = picked
        return xp.where(self.mask, 0, g), None, g_source.reshape(self.source_shape)


def masked_scatter(input, mask, source):  # noqa: A002
    """``torch.masked_scatter``: ``source``'s elements, in order, written where ``mask`` (broadcast) is true."""
    x, s = as_tensor(input), as_tensor(source)
    m = on_data_device(x, mask)
    if m.dtype != bool:
        raise RuntimeError(f"masked_scatter_: expected BoolTensor for mask, got {m.dtype}")
    if s.dtype != x.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got {x.dtype} and "
                           f"{s.dtype}")
    shape = tuple(np.broadcast_shapes(x.shape, m.shape))
    x = x if x.shape == shape else BroadcastTo.apply(x, shape=shape)
    return MaskedScatter.apply(x, get_array_module(m).broadcast_to(m, shape), s)
