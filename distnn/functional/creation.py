"""Creating tensors, as PyTorch's: eye, linspace, logspace, empty(_like), full_like, and the random ones
(rand_like, randn_like, randint(_like), randperm, bernoulli, multinomial).

The random ones draw from ``generator`` (a ``numpy.random.Generator``) or distnn's default generator
(:func:`distnn.random.default_generator`, which ``distnn.manual_seed`` reseeds), as ``distnn.rand`` does: the
same seed gives the same numbers, though never PyTorch's numbers. Floats get the default dtype (float32 unless
set_default_dtype changed it), integers int64.
A ``*_like`` tensor is made on its input's device.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn import random
from distnn.autograd.half_rounding import into_half
from distnn.autograd.number_range import REAL_NUMBERS, scalar_for_dtype
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module

from .shape_more import as_tensor
from .torch_ranges import follows_torch, torch_linspace


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _gen(generator):
    return generator if generator is not None else random.default_generator()


def _like(input, array, dtype, requires_grad=False):  # noqa: A002
    """``array`` (drawn on the host) on ``input``'s device, in ``dtype``."""
    xp = get_array_module(input.data)
    return Tensor(xp.asarray(array).astype(dtype, copy=False), requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, requires_grad=False):
    """``torch.eye``: an ``n`` x ``m`` (default square) matrix with ones on the diagonal."""
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"n must be greater or equal to 0, got {n}" if n < 0 else
                           f"m must be greater or equal to 0, got {m}")
    return Tensor(np.eye(int(n), None if m is None else int(m), dtype=dtype or default_dtype()),
                  requires_grad=requires_grad)


def _integral_ends(start, end):
    """PyTorch casts the ends of an integer ``linspace``/``logspace`` to integers first (truncating)."""
    return float(int(start)), float(int(end))


def linspace(start, end, steps, *, dtype=None, requires_grad=False):
    """``torch.linspace``: ``steps`` evenly spaced values from ``start`` to ``end``, computed as PyTorch's (the
    first half from ``start``, the second from ``end``)."""
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dtype = np.dtype(dtype or default_dtype())
    work = dtype if dtype.kind == "f" else np.dtype(np.float64)
    start, end = (float(start), float(end)) if dtype.kind == "f" else _integral_ends(start, end)
    if steps == 1:  # (a float into float16 through float32, as PyTorch's fill)
        values = np.full(1, into_half(start, dtype), dtype=work)
    elif follows_torch(dtype):  # (float16: PyTorch's arithmetic, torch_ranges)
        values = torch_linspace(start, end, steps)
    else:
        i = np.arange(steps, dtype=work)
        step = work.type((end - start) / max(steps - 1, 1))
        values = np.where(i < steps // 2, work.type(start) + i * step, work.type(end) - (steps - 1 - i) * step)
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, requires_grad=False):
    """``torch.logspace``: ``base ** linspace(start, end, steps)``."""
    dtype = np.dtype(dtype or default_dtype())
    if dtype.kind != "f" and steps > 1:  # (one step: base ** start of the given start, as PyTorch's)
        start, end = _integral_ends(start, end)
    exponents = linspace(start, end, steps, dtype=np.float64).data
    return Tensor((float(base) ** exponents).astype(dtype), requires_grad=requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    """``torch.empty``: a tensor of ``size`` (zero-filled here: PyTorch leaves it uninitialized)."""
    return Tensor(np.zeros(_size(size), dtype=dtype or default_dtype()), requires_grad=requires_grad)


def empty_like(input, *, dtype=None, requires_grad=False):  # noqa: A002
    """``torch.empty_like``: like :func:`empty`, with ``input``'s shape, dtype and device."""
    x = as_tensor(input)
    return Tensor(get_array_module(x.data).zeros(x.shape, dtype=dtype or x.dtype), requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad=False):  # noqa: A002
    """``torch.full_like``: ``fill_value`` everywhere, with ``input``'s shape, dtype (unless ``dtype``) and device."""
    x = as_tensor(input)
    target = np.dtype(dtype or x.dtype)
    if isinstance(fill_value, REAL_NUMBERS):  # (range-checked as PyTorch's Scalar argument, filled by its fill_)
        fill_value = scalar_for_dtype(target, fill_value, rounds_half=x.data.size == 1)
    fill_value = into_half(fill_value, target)  # (a float into float16 through float32, as PyTorch's)
    return Tensor(get_array_module(x.data).full(x.shape, fill_value, dtype=dtype or x.dtype),
                  requires_grad=requires_grad)


def _float_dtype(dtype, op):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating point dtype, got {dtype}")
    return dtype


def rand_like(input, *, dtype=None, requires_grad=False, generator=None):  # noqa: A002
    """``torch.rand_like``: uniform on [0, 1), with ``input``'s shape, (float) dtype and device."""
    x = as_tensor(input)
    dtype = _float_dtype(dtype or x.dtype, "rand_like")
    return _like(x, _gen(generator).random(x.shape), dtype, requires_grad)


def randn_like(input, *, dtype=None, requires_grad=False, generator=None):  # noqa: A002
    """``torch.randn_like``: standard normal, with ``input``'s shape, (float) dtype and device."""
    x = as_tensor(input)
    dtype = _float_dtype(dtype or x.dtype, "randn_like")
    return _like(x, _gen(generator).standard_normal(x.shape), dtype, requires_grad)


def randint(*args, size=None, generator=None, dtype=None, requires_grad=False):
    """``torch.randint(low=0, high, size)``: integers drawn uniformly from [low, high) (int64 by default)."""
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint() takes (high, size) or (low, high, size)")
    low, high = (0, args[0]) if len(args) == 1 else args
    if not low < high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    values = _gen(generator).integers(int(low), int(high), size=_size((size,)))
    return Tensor(values.astype(dtype or np.int64), requires_grad=requires_grad)


def randint_like(input, *args, dtype=None, generator=None):  # noqa: A002
    """``torch.randint_like(input, low=0, high)``: integers from [low, high), ``input``'s shape, dtype, device."""
    x = as_tensor(input)
    if len(args) not in (1, 2):
        raise TypeError("randint_like() takes (input, high) or (input, low, high)")
    low, high = (0, args[0]) if len(args) == 1 else args
    if not low < high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _like(x, _gen(generator).integers(int(low), int(high), size=x.shape), dtype or x.dtype)


def randperm(n, *, generator=None, dtype=None, requires_grad=False):
    """``torch.randperm``: a random permutation of ``0 .. n-1`` (int64 by default)."""
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    return Tensor(_gen(generator).permutation(int(n)).astype(dtype or np.int64), requires_grad=requires_grad)


def bernoulli(input, p=None, *, generator=None):  # noqa: A002
    """``torch.bernoulli``: 1 with probability ``input`` (or the number ``p``) at each place, else 0, in
    ``input``'s dtype."""
    x = as_tensor(input)
    xp = get_array_module(x.data)
    probs = x.data if p is None else xp.full(x.shape, float(p))
    if probs.size and not bool(((probs >= 0) & (probs <= 1)).all()):
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    draws = xp.asarray(_gen(generator).random(x.shape))
    dtype = x.dtype if x.dtype.kind in "fb" or p is not None else default_dtype()
    return Tensor((draws < probs).astype(dtype))


def multinomial(input, num_samples, replacement=False, *, generator=None):  # noqa: A002
    """``torch.multinomial``: ``num_samples`` category indices per row of non-negative weights (1-D or 2-D),
    with or without replacement (int64). Without replacement the draws are the weighted Gumbel top-k (the
    same law as drawing one at a time)."""
    w = as_tensor(input).data
    xp = get_array_module(w)
    if w.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if w.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {w.dtype}")
    if not isinstance(num_samples, numbers.Integral) or num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    rows = w.reshape(1, -1) if w.ndim == 1 else w
    n = rows.shape[1]
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if not bool(xp.isfinite(rows).all()) or bool((rows < 0).any()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(1, keepdims=True)
    if bool((totals <= 0).any()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    gen = _gen(generator)
    if replacement:
        # each row's cumulative distribution, shifted by 2 * row so one sorted search serves every row
        offsets = 2.0 * xp.arange(rows.shape[0])[:, None]
        cdf = xp.cumsum(rows.astype(np.float64), 1) / totals + offsets
        u = xp.asarray(gen.random((rows.shape[0], int(num_samples)))) + offsets
        picks = xp.searchsorted(cdf.reshape(-1), u.reshape(-1), side="right").reshape(u.shape)
        picks = xp.minimum(picks - xp.arange(rows.shape[0])[:, None] * n, n - 1)
    else:
        if bool(((rows > 0).sum(1) < num_samples).any()):
            raise RuntimeError("invalid multinomial distribution (with replacement=False, not enough non-negative "
                               "category to sample)")
        with np.errstate(divide="ignore"):
            keys = xp.log(xp.asarray(gen.random(rows.shape))) / rows.astype(np.float64)  # (-inf at weight 0)
        picks = xp.argsort(-keys, axis=1, kind="stable")[:, :int(num_samples)]
    picks = picks.astype(np.int64)
    return Tensor(picks.reshape(-1) if w.ndim == 1 else picks)
