"""PyTorch's in-place Tensor methods with bodies of their own (a mixin of :class:`~distnn.autograd.tensor.Tensor`):
random fills, ``copy_``, ``index_put_``/``put_``, ``fill_diagonal_``, the metadata changes (``t_``, ``transpose_``,
``squeeze_``, ``unsqueeze_``, ...) and ``detach_``. They write through
:func:`~distnn.autograd.tensor_inplace_methods.write_inplace`, so autograd treats them as PyTorch does (see
that module's docstring).

The random fills draw from ``generator`` (a ``numpy.random.Generator``) or distnn's default generator
(:func:`distnn.random.default_generator`, reseeded by ``distnn.manual_seed``), as ``distnn.rand`` does; the same
generator state gives the same values. They cannot match PyTorch's stream, only its distributions.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import device_of, get_array_module

from . import inplace_direct as _direct_path
from .tensor_inplace_methods import _top, records, torch_dtype_name, write_inplace


def _gen(generator):
    from distnn import random

    return generator if generator is not None else random.default_generator()


def _floating(t, name: str) -> None:
    if t.data.dtype.kind != "f":
        raise RuntimeError(f"{name}: a continuous distribution needs a floating-point tensor, but the tensor has "
                           f"dtype {torch_dtype_name(t.dtype)}")


def _fill(t, name: str, draw):
    """``t`` takes ``draw`` (a host array of ``t``'s shape); the old value gets a zero gradient."""
    return write_inplace(t, name, lambda: np.asarray(draw).astype(t.dtype, copy=False))


def _random_bounds(t, low, high):
    """``random_``'s [low, high): ``random_()`` spans what the dtype holds exactly (floats: their mantissa), as
    PyTorch's."""
    if high is None:
        if low is not None:
            return 0, int(low)
        kind = t.data.dtype.kind
        if kind == "b":
            return 0, 2
        if kind == "f":
            return 0, 2 ** (np.finfo(t.data.dtype).nmant + 1) + 1
        return 0, int(np.iinfo(t.data.dtype).max)  # ([0, max - 1]: numpy's integers bound is exclusive)
    return int(low if low is not None else 0), int(high)


def _flat_indices(indices):
    """PyTorch's ``index_put_`` indices as raw integer arrays (a bool mask stands for its true positions)."""
    from .tensor import Tensor

    out = []
    for i in (indices if isinstance(indices, (tuple, list)) else (indices,)):
        # (an array stays where it is, a cupy one too (put_'s positions): np.asarray would refuse it; _index_put
        # moves a host index to the data's device, as PyTorch takes CPU indices for a CUDA tensor's index_put_)
        a = i.data if isinstance(i, Tensor) else i if hasattr(i, "dtype") else np.asarray(i)
        if a.dtype.kind == "b":
            out.extend(a.nonzero())
        elif a.dtype.kind in "iu":
            out.append(a)
        else:
            raise IndexError(f"index_put_: tensors used as indices must be long, int, byte or bool tensors, got "
                             f"dtype {a.dtype}")
    return out


def _index_put(x, indices, values, accumulate: bool):
    """Out of place ``index_put``: ``x`` with ``values`` written (or, ``accumulate``, added, repeated indices
    adding up) at ``indices``; differentiable for ``x`` and ``values``."""
    from .tensor import Tensor

    from distnn.functional.index_put_dtype import check_index_put_dtype

    from .complex_discard import silently_discarding

    xp = get_array_module(x.data)
    idx = [xp.asarray(a) for a in _flat_indices(indices)]
    if isinstance(values, Tensor) and values.dtype != x.dtype:  # (PyTorch's kernel refuses it, but where it
        check_index_put_dtype(x.data, tuple(indices if isinstance(indices, (tuple, list)) else (indices,)), values,
                              accumulate, lambda: x.data[tuple(idx)].shape)
        with silently_discarding(warn=False):  # masked_fill_s a one-element value through a lone mask, as a
            values = values.to(x.dtype)  # number: no copy_, so no warning of an imaginary part dropped)
    if not accumulate:
        out = x.clone()
        out[tuple(Tensor(a) for a in idx)] = values
        return out
    lead, rest = tuple(x.shape[:len(idx)]), tuple(x.shape[len(idx):])
    idx = xp.broadcast_arrays(*idx)
    for a, n in zip(idx, lead):
        if a.size and (int(a.max()) >= n or int(a.min()) < -n):
            raise IndexError(f"index_put_: index out of range for a dimension of size {n}")
    linear = xp.ravel_multi_index(tuple(xp.where(a < 0, a + n, a) for a, n in zip(idx, lead)), lead)
    if not isinstance(values, Tensor):
        values = Tensor(xp.asarray(values, dtype=x.dtype))
    values = values.expand(tuple(linear.shape) + rest).reshape((linear.size,) + rest)  # (not -1: rest may hold a 0)
    zeros = Tensor(xp.zeros((int(np.prod(lead)),) + rest, dtype=x.dtype))
    added = _top("index_add")(zeros, 0, Tensor(linear.reshape(-1)), values).reshape(tuple(x.shape))
    return x + added


def _diagonal_positions(shape, wrap: bool):
    """The flat positions ``fill_diagonal_`` writes: (i, i, ..., i); a tall matrix with ``wrap`` restarts the
    diagonal every ``cols + 1`` rows (PyTorch's, and numpy's ``fill_diagonal``)."""
    if len(shape) < 2:
        raise RuntimeError("fill_diagonal_: dimensions must larger than 1")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise RuntimeError("fill_diagonal_: all dimensions of input must be of equal length")
    step = int(sum(np.cumprod((1,) + tuple(shape[::-1]))[:-1]))  # (the sum of the strides, in elements)
    n = min(shape)
    end = shape[0] * shape[1] if len(shape) == 2 and wrap else (n - 1) * step + 1
    return np.arange(0, end, step) if n else np.arange(0)


class TensorInplaceMore:
    __slots__ = ()

    # ------------------------------------------------------------ random fills
    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        """Values drawn uniformly from [from_, to), as PyTorch's ``uniform_(from, to)``."""
        _floating(self, "uniform_")
        if from_ > to:
            raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
        return _fill(self, "uniform_", _gen(generator).uniform(from_, to, self.shape))

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        _floating(self, "normal_")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        return _fill(self, "normal_", _gen(generator).normal(mean, std, self.shape))

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        """exp of a normal draw with ``mean`` and ``std``, as PyTorch's."""
        _floating(self, "log_normal_")
        if std <= 0:
            raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
        return _fill(self, "log_normal_", _gen(generator).lognormal(mean, std, self.shape))

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        _floating(self, "cauchy_")
        if sigma <= 0:
            raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
        return _fill(self, "cauchy_", median + sigma * _gen(generator).standard_cauchy(self.shape))

    def exponential_(self, lambd=1.0, *, generator=None):
        """Draws with density ``lambd * exp(-lambd * x)``, as PyTorch's."""
        if self.data.dtype.kind != "f":
            raise RuntimeError("Exponential distribution is a continuous probability distribution. dtype must be a "
                               f"floating point but you specified {torch_dtype_name(self.dtype)}")
        if lambd <= 0:
            raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
        return _fill(self, "exponential_", _gen(generator).exponential(1.0 / lambd, self.shape))

    def geometric_(self, p, *, generator=None):
        """The number of Bernoulli(p) trials up to the first success (1, 2, ...), as PyTorch's."""
        if not 0 < p < 1:
            raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
        return _fill(self, "geometric_", _gen(generator).geometric(p, self.shape))

    def bernoulli_(self, p=0.5, *, generator=None):
        """1 with probability ``p`` (a number, or a tensor broadcastable to this one), else 0."""
        from .tensor import Tensor

        prob = np.asarray(p.detach().cpu().data if isinstance(p, Tensor) else p, dtype=np.float64)
        if prob.size and (prob.min() < 0 or prob.max() > 1):
            raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
        draws = _gen(generator).random(self.shape) < np.broadcast_to(prob, self.shape)
        return _fill(self, "bernoulli_", draws)

    def random_(self, from_=None, to=None, *, generator=None):
        """Integers drawn uniformly from [from_, to); ``random_(to)``: [0, to); ``random_()``: what the dtype holds
        exactly, as PyTorch's."""
        low, high = _random_bounds(self, from_, to)
        if low >= high:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        return _fill(self, "random_", _gen(generator).integers(low, high, self.shape))

    # ------------------------------------------------------------ copies and indexed writes
    def copy_(self, src, non_blocking=False):
        """``src`` (a Tensor or array, broadcast to this shape, cast to this dtype, moved to this device) written
        into this tensor; ``src`` gets the gradient (cast back and summed over the broadcast), the old value none."""
        done = _direct_path.direct(self, "copy_", (src,), {})  # (same dtype and shape, nothing recorded: one copy)
        if done is not None:
            return done
        from .copy_node import CopyBackwards
        from .grad_mode import no_grad
        from .tensor import Tensor

        shape, own = tuple(getattr(src, "shape", np.shape(src))), tuple(self.shape)
        for i in range(1, min(len(shape), len(own)) + 1):  # (PyTorch's TensorIterator messages, its order)
            if own[-i] != shape[-i] and 1 not in (own[-i], shape[-i]):
                raise RuntimeError(f"The size of tensor a ({own[-i]}) must match the size of tensor b "
                                   f"({shape[-i]}) at non-singleton dimension {max(len(own), len(shape)) - i}")
        broadcast = np.broadcast_shapes(shape, own)
        if broadcast != own:
            raise RuntimeError(f"output with shape {list(own)} doesn't match the broadcast shape {list(broadcast)}")

        def compute():
            # (a device array as it is (``t.copy_(p.data)`` on a GPU), which np.asarray refuses; the rest through
            # numpy, as before)
            s = src if isinstance(src, Tensor) else Tensor(
                src if hasattr(src, "__cuda_array_interface__") else np.asarray(src))
            if not records(self, [s]):
                return s.to(device_of(self.data)).to(self.dtype).expand(tuple(self.shape))
            with no_grad():  # (the values, with the casts' warnings; the gradients are CopyBackwards')
                values = s.to(device_of(self.data)).to(self.dtype).expand(tuple(self.shape))
            return CopyBackwards.apply(self, s, values=values.data)

        return write_inplace(self, "copy_", compute, [src] if isinstance(src, Tensor) else [], cast_any=True)

    def index_put_(self, indices, values, accumulate=False):
        """``self[indices] = values`` (``accumulate``: ``+=``, repeated indices adding up), as PyTorch's (``values``
        a Tensor, as PyTorch's: a number is refused)."""
        from distnn.functional.index_put_dtype import refuse_number_source

        refuse_number_source("index_put_", "values", 2, values)
        return write_inplace(self, "index_put_", lambda: _index_put(self, indices, values, accumulate),
                             [x for x in (*indices, values) if hasattr(x, "requires_grad")])

    def put_(self, index, source, accumulate=False):
        """``index_put_`` at flat positions ``index`` of this tensor (as if flattened), as PyTorch's (``source`` a
        Tensor)."""
        from distnn.functional.index_put_dtype import refuse_number_source

        refuse_number_source("put_", "source", 2, source)
        xp = get_array_module(self.data)
        flat = xp.asarray(getattr(index, "data", index)).reshape(-1)
        n = int(np.prod(self.shape))
        if flat.size and (int(flat.max()) >= n or int(flat.min()) < -n):
            raise IndexError(f"put_: index out of range for a tensor of {n} elements")
        positions = xp.unravel_index(xp.where(flat < 0, flat + n, flat), self.shape)
        src = source.reshape(-1) if hasattr(source, "reshape") else source
        return self.index_put_(positions, src, accumulate)

    def fill_diagonal_(self, fill_value, wrap=False):
        """``fill_value`` on the main diagonal (all dimensions equal past 2-D); ``wrap``: a tall matrix's diagonal
        restarts below the square, as PyTorch's."""
        mask = np.zeros(int(np.prod(self.shape)), dtype=bool)
        mask[_diagonal_positions(tuple(self.shape), wrap)] = True
        mask = get_array_module(self.data).asarray(mask.reshape(self.shape))
        return write_inplace(self, "fill_diagonal_", lambda: self.masked_fill(mask, fill_value),
                             [fill_value] if hasattr(fill_value, "requires_grad") else [])

    # ------------------------------------------------------------ metadata
    def _restride_(self, name: str, view):
        """This tensor becomes ``view(self)`` (the same memory, another shape), as PyTorch's ``t_``/``squeeze_``
        (``restride``: the views that see its memory, the node's name)."""
        from .restride import restride

        return restride(self, view, records(self))

    def t_(self):
        return self._restride_("t_", lambda x: _top("t")(x))

    def transpose_(self, dim0, dim1):
        return self._restride_("transpose_", lambda x: _top("swapaxes")(x, dim0, dim1))

    swapaxes_ = swapdims_ = transpose_

    def squeeze_(self, dim=None):
        return self._restride_("squeeze_", lambda x: x.squeeze(dim))

    def unsqueeze_(self, dim):
        return self._restride_("unsqueeze_", lambda x: x.unsqueeze(dim))

    def detach_(self):
        """Cut this tensor from the graph, in place. Refused on a view (made by a view op: indexing, reshape,
        transpose..., not view(dtype)), in or out of a graph, as PyTorch refuses it: use ``detach()``."""
        if "_view_of" in self.__dict__ or "_is_view" in self.__dict__:  # (_is_view: as_strided outside its input)
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self._node = None
        self.requires_grad = False
        return self
