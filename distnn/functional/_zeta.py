"""The Hurwitz zeta function ``zeta(x, q) = sum_{k>=0} (k + q)^-x`` and the polygamma functions of order
``n >= 2`` (``psi^(n)(x) = (-1)^(n+1) n! zeta(n + 1, x)``) of raw arrays, with numpy alone; cupy arrays use
cupyx.scipy.special, which ships with cupy.

The method is Cephes' (which PyTorch's kernel follows step for step, so the two agree to rounding and at the
edges): sum the terms directly until ``q + k > 9`` (and at least 9 terms), stopping early where a term falls
below machine epsilon of the sum, then add the Euler-Maclaurin tail with up to 12 Bernoulli terms, stopping
where one falls below epsilon. Elements leave the loops as they finish (the loops run over the ones left, not
per element in Python).

The edges are Cephes': inf at ``x = 1``, NaN for ``x < 1``, inf at ``q`` a non-positive integer, NaN for a
negative non-integer ``q`` with a non-integer ``x`` (NaN at ``q = +inf``: the tail's ``0 * inf``).
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._gamma_special import digamma_array, trigamma_array
from ._special import _cupy_special, cupy_polygamma

_MACHEP = 1.11022302462515654042e-16
# (2k)! / B_2k, the Euler-Maclaurin denominators
_A = (12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9, 7.47242496e10,
      -2.950130727918164224e12, 1.1646782814350067249e14, -4.5979787224074726105e15, 1.8152105401943546773e17,
      -7.1661652561756670113e18)


def _direct_sum(out, pos, x, q):
    """The direct sum over ``k``, for the flat positions ``pos``: writes the results that finish early into
    ``out`` and returns the others (positions, x, the last ``a = q + k``, the partial sum, the last term).

    Cephes adds one term at a time; this takes the terms a block at a time, the running ``a`` and sum as
    cumulative sums along the block (``cumsum`` adds left to right, so every partial sum is rounded exactly as
    the one-at-a-time loop rounds it), and takes each row's first stopping point. Blocks double in length (up
    to ~4M terms a block), so a far-negative ``q`` costs few of them."""
    a, s, b = q, q ** -x, np.zeros_like(q)
    leave = [tuple(v[:0] for v in (pos, x, a, s, b))]
    i, width = 0, 16
    while pos.size:
        steps = np.cumsum(np.concatenate([a[:, None], np.ones((a.size, width))], axis=1), axis=1)[:, 1:]
        terms = steps ** -x[:, None]
        sums = np.cumsum(np.concatenate([s[:, None], terms], axis=1), axis=1)[:, 1:]
        count = i + 1 + np.arange(width)  # (Cephes' i after each step)
        early = (-_MACHEP * sums < terms) & (terms < _MACHEP * sums)
        stop = early | ~((count < 9) | (steps <= 9.0))
        stops = stop.any(axis=1)
        j = np.argmax(stop, axis=1)  # (the first stop; 0 where none, unused there)
        rows = np.arange(a.size)
        a, s, b = steps[rows, j], sums[rows, j], terms[rows, j]
        finished_early = stops & early[rows, j]
        out[pos[finished_early]] = s[finished_early]
        done = stops & ~finished_early
        leave.append(tuple(v[done] for v in (pos, x, a, s, b)))
        go_on = ~stops
        pos, x = pos[go_on], x[go_on]
        a, s, b = steps[go_on, -1], sums[go_on, -1], terms[go_on, -1]
        i += width
        width = max(16, min(2 * width, (1 << 22) // max(pos.size, 1)))  # (a block of at most ~4M terms)
    return tuple(np.concatenate([part[j] for part in leave]) for j in range(5))


def _tail(x, w, s, b):
    """The Euler-Maclaurin remainder added to the partial sums ``s`` (``w`` the last ``q + k``, ``b`` its term)."""
    s = s + b * w / (x - 1.0) - 0.5 * b
    a, k = np.ones_like(x), 0.0
    done = np.zeros(x.shape, dtype=bool)
    for denominator in _A:
        a = a * (x + k)
        b = b / w
        t = a * b / denominator
        s = np.where(done, s, s + t)
        done |= np.abs(t / s) < _MACHEP
        a = a * (x + k + 1.0)
        b = b / w
        k += 2.0
    return s


def _zeta64(x, q):
    x, q = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(q, np.float64))
    shape = x.shape
    x, q = x.ravel(), q.ravel()
    out = np.full(x.shape, np.nan)
    with _quiet(np, over=True):
        pole_q = (q <= 0) & (q == np.floor(q))
        out[pole_q] = np.inf  # (the checks below override this, as Cephes checks them first)
        out[x < 1] = np.nan
        out[x == 1] = np.inf
        bad = (q <= 0) & ~pole_q & (x != np.floor(x))
        pos = np.flatnonzero(~((x <= 1) | pole_q | bad))  # (x NaN: summed, and stays NaN)
        pos, xr, w, s, b = _direct_sum(out, pos, x[pos], q[pos])
        out[pos] = _tail(xr, w, s, b)
    return out.reshape(shape)


def zeta_array(x, q):
    """Hurwitz's ``zeta(x, q)``, broadcasting, in ``x``'s and ``q``'s common dtype."""
    if get_array_module(x, q) is np:
        dtype = np.result_type(x, q)
        return _zeta64(x, q).astype(dtype, copy=False)
    return _cupy_special("zeta")(x, q)


def polygamma_array(n: int, x):
    """``psi^(n)(x)``, elementwise: digamma for ``n = 0``, trigamma for 1, ``(-1)^(n+1) n! zeta(n + 1, x)``
    above (as PyTorch computes it: ``n!`` as ``exp(lgamma(n + 1))``, inf past ``n = 170``)."""
    if n == 0:
        return digamma_array(x)
    if n == 1:
        return trigamma_array(x)
    if get_array_module(x) is not np:
        return cupy_polygamma(n, x)
    dtype = np.float32 if x.dtype == np.float16 else x.dtype  # (PyTorch multiplies in float for half)
    with _quiet(np, over=True):
        # (n! in the input's dtype: inf past 34 in float32, as PyTorch's)
        factorial = np.exp(np.asarray(math.lgamma(n + 1.0), dtype=dtype))
        sign = dtype.type(1.0 if n % 2 else -1.0)
        return (sign * factorial * _zeta64(float(n + 1), x).astype(dtype)).astype(x.dtype, copy=False)
