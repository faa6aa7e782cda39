"""What the pooling files share: the number of windows along an axis, unbatched inputs as a batch of one,
and the 1-D ops as 2-D ones over a height of 1 (named as the 1-D op in their errors)."""
from __future__ import annotations

import functools

import numpy as np

from distnn.backend import get_array_module

from . import shape as S


def pooled_length(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """The number of windows (kernel ``k``, stride ``s``, padding ``p``, dilation ``d``) along an axis of
    ``size``, by PyTorch's rule; below 1 where the dilated kernel does not fit the padded input. With
    ceil_mode a window may run past the padded input (its missing cells count as padding), but the last
    one must start inside the input or the left padding."""
    span = size + 2 * p - (d * (k - 1) + 1)
    n = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def _unbatched(batched_ndim):
    """Let a pool of ``batched_ndim``-D inputs (N, C, *spatial) take an unbatched (C, *spatial) one as well, as
    PyTorch (and the convolutions) do: a batch of one."""
    def decorate(pool):
        @functools.wraps(pool)
        def wrapper(input, *args, **kwargs):
            if input.ndim == batched_ndim - 1:
                result = pool(input.reshape((1,) + tuple(input.shape)), *args, **kwargs)
                return tuple(r[0] for r in result) if isinstance(result, tuple) else result[0]
            return pool(input, *args, **kwargs)
        return wrapper
    return decorate


_unbatched_as_one = _unbatched(4)  # the 2-D pools'


def _as_2d(input):
    """(N, C, L) -> (N, C, 1, L) and (C, L) -> (C, 1, L) (max_pool2d and kin take both)."""
    if input.ndim not in (2, 3):
        raise ValueError(f"expected a 3-D input (N, C, L) or a 2-D one (C, L), got shape {tuple(input.shape)}")
    return S.Unsqueeze.apply(input, axis=input.ndim - 1)


def _squeezed(result):
    if isinstance(result, tuple):
        return tuple(r.squeeze(-2) for r in result)
    return result.squeeze(-2)


def _named_1d(name):
    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as e:  # named as the 1-D op, whichever 2-D one refused
                msg = str(e).replace(name.replace("1d", "2d") + ": ", "")
                raise ValueError(msg if msg.startswith(name) else f"{name}: {msg}") from None
        return call
    return wrap


def max_pool_grad(g, indices, xshape):
    """The input gradient of a max pool: each output's gradient added at its winner. ``indices`` are flat
    within each (sample, channel) plane (PyTorch's ``return_indices``); overlapping windows add up."""
    xp = get_array_module(g)
    N, C = xshape[:2]
    plane = int(np.prod(xshape[2:]))
    gx = xp.zeros(N * C * plane, dtype=g.dtype)
    planes = (xp.arange(N * C, dtype=np.int64) * plane).reshape((N, C) + (1,) * (g.ndim - 2))
    S.scatter_add(gx, (indices + planes).ravel(), g.ravel())
    return gx.reshape(xshape)
