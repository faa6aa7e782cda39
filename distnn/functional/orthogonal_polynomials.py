"""torch.special's orthogonal polynomials ``p(input, n)``: ``chebyshev_polynomial_t``/``u``/``v``/``w``, their
``shifted_chebyshev_polynomial_*`` on [0, 1], ``hermite_polynomial_h`` (physicists'), ``hermite_polynomial_he``
(probabilists'), ``laguerre_polynomial_l`` and ``legendre_polynomial_p``.

Each is evaluated as PyTorch's kernel (``ATen/native/Math.h``) evaluates it, step for step, so that the values
agree to the last bit where the arithmetic is the same:

* both arguments are promoted to one floating dtype (integers and bools: the default float dtype; either may be
  a number), then ``n`` is truncated to an integer (C's cast: -0.5 counts as 0); an infinite or NaN ``n``, or one
  beyond int64, counts as negative, and every polynomial of negative degree is 0;
* the exact special values PyTorch returns first: at ``|x| == 1`` for the Chebyshev and Legendre polynomials, at
  ``x == 1`` and ``x == 0`` for the shifted ones (their ``2x - 1 = +-1``), 1 at ``x == 0`` for Laguerre's;
* above a degree that differs per variant (T: 6, U/V/W: 8; shifted T/U/V: 6, shifted W: 4) and for
  ``|x| < 1`` (shifted: ``|2x - 1| < 1``) the Chebyshev polynomials come from their trigonometric forms
  ``cos(n t)``, ``sin((n+1) t) / sin t``, ``cos((n+1/2) t) / cos(t/2)``, ``sin((n+1/2) t) / sin(t/2)`` with
  ``t = acos x``, with PyTorch's fallbacks where the denominator rounds to 0 (near ``x = +-1``);
* otherwise the three-term recurrence from degrees 0 and 1, stopped (NaN) once a value is NaN; Hermite's are
  NaN above degree 512 (float64) / 128 (float32), as PyTorch's (a bound on the work: their recurrences
  overflow to NaN before those degrees anyway, as measured over x in [-40, 40]).

Where PyTorch's compiled kernel fuses a multiply and an add (FMA, on CPUs that have it) the last bits differ,
growing with the degree as any recurrence's rounding does. At a NaN ``x`` of degree 2 or more this returns NaN:
PyTorch's Chebyshev (U, W), Laguerre and Legendre kernels return an uninitialised value there (their loop, which
stops at a NaN, never runs).

Vectorized: one whole-array step per degree, each on the elements still recurring (those of higher degree,
not yet NaN), never a loop over elements. PyTorch defines no derivative: the result never requires grad.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._elementwise_common import _check_broadcast, _quiet
from .parser_refusal import invalid_combination, parser_type_name
from .pointwise_binary import _operands

_HERMITE_LIMIT = {np.dtype(np.float32): 128, np.dtype(np.float64): 512}


def _degrees(n):
    """``static_cast<int64_t>(n)`` of a float array: truncation; NaN, +-inf and values beyond int64 (undefined in
    C, INT64_MIN on x86) become -1, which every kernel treats alike (degree below 0: 0)."""
    xp = get_array_module(n)
    ok = xp.isfinite(n) & (xp.abs(n) < 2.0**63)
    return xp.where(ok, n, -1).astype(np.int64)


def _evaluate(x, n, cases, first, step):
    """The polynomial at flat ``x`` (a float dtype) and int64 degrees ``n``: ``cases`` are PyTorch's early
    returns in order, ``(mask(x, n), value(x, n))``; then degree 0 is 1, degree 1 ``first(x)``, and higher ones
    ``step(x, p, q, j)`` (``p``, ``q`` the values of degree ``j - 1`` and ``j``) until degree ``n``."""
    xp = get_array_module(x)
    one = x.dtype.type(1)
    out = xp.empty_like(x)
    todo = xp.ones(x.shape, dtype=bool)
    below = (lambda x, n: n < 0, lambda x, n: xp.zeros_like(x))
    low = [(lambda x, n: n == 0, lambda x, n: xp.ones_like(x)), (lambda x, n: n == 1, lambda x, n: first(x))]
    for mask, value in [below, *cases, *low]:
        hit = todo & mask(x, n)
        if hit.any():
            out[hit] = value(x[hit], n[hit])
        todo &= ~hit
    idx = xp.nonzero(todo)[0]
    xs, ns = x[idx], n[idx]
    p, q, j = xp.full(xs.shape, one), first(xs), 1
    while idx.size:
        r = step(xs, p, q, j)
        j += 1
        done = (ns == j) | xp.isnan(r)  # (PyTorch's loop ends at degree n or on a NaN)
        out[idx[done]] = r[done]
        keep = ~done
        idx, xs, ns, p, q = idx[keep], xs[keep], ns[keep], q[keep], r[keep]
    return out


def _float(n, x):
    return n.astype(x.dtype)  # (C++'s int64 -> T conversion of the degree in PyTorch's expressions)


def _sign_by_parity(n, value):
    """``value`` for even ``n``, ``-value`` for odd."""
    return get_array_module(value).where(n % 2 == 0, value, -value)


# The Chebyshev family ---------------------------------------------------------------------------------------
# (kind: the recurrence's first value at y = x or 2x - 1, the |y| == 1 values, the trigonometric form and
# its fallback where its denominator rounds away; shifted: whether y = 2x - 1.)


def _cheb_first(kind):
    return {"t": lambda y: y, "u": lambda y: y + y, "v": lambda y: y + y - 1, "w": lambda y: y + y + 1}[kind]


def _cheb_ends(kind, xp):
    """The values at ``y == 1`` and ``y == -1``, as PyTorch writes them."""
    ones = lambda n, x: xp.ones_like(x)  # noqa: E731
    odd = lambda n, x: _float(n + n + 1, x)  # noqa: E731
    return {"t": (ones, lambda n, x: _sign_by_parity(n, xp.ones_like(x))),
            "u": (lambda n, x: _float(n + 1, x), lambda n, x: _sign_by_parity(n, _float(n + 1, x))),
            "v": (ones, lambda n, x: _sign_by_parity(n, odd(n, x))),
            "w": (odd, lambda n, x: _sign_by_parity(n, xp.ones_like(x)))}[kind]


def _cheb_trig(kind, shifted, xp):
    """``(y, n) -> value`` of PyTorch's trigonometric branch for ``|y| < 1``, fallbacks included."""
    def t(y, n):
        return xp.cos(_float(n, y) * xp.arccos(y))

    def u(y, n):
        a = xp.arccos(y)
        m = _float(n + 1, y)
        s = xp.sin(a)
        with _quiet(xp):
            return xp.where(s != 0, xp.sin(m * a) / s, m * xp.cos(m * a) / y)

    def v(y, n):
        a = xp.arccos(y)
        with _quiet(xp):
            value = xp.cos((_float(n, y) + y.dtype.type(0.5)) * a) / xp.cos(a / 2)
        return xp.where(xp.sin(a / 2) != 1, value, _sign_by_parity(n, _float(n + n + 1, y)))

    def w(y, n):
        a = xp.arccos(y)
        with _quiet(xp):
            value = xp.sin((_float(n, y) + y.dtype.type(0.5)) * a) / xp.sin(a / 2)
        end = _sign_by_parity(n, xp.ones_like(y))
        if not shifted:  # (the shifted kernel's fallback, at y near 1, has no such case: +-1 there)
            end = xp.where(y > 0, _float(n + n + 1, y), end)
        return xp.where(xp.cos(a / 2) != 1, value, end)

    return {"t": t, "u": u, "v": v, "w": w}[kind]


_TRIG_FROM = {("t", False): 6, ("u", False): 8, ("v", False): 8, ("w", False): 8,
              ("t", True): 6, ("u", True): 6, ("v", True): 6, ("w", True): 4}


def _chebyshev(kind, shifted):
    def kernel(x, n):
        xp = get_array_module(x)
        first = _cheb_first(kind)
        at_plus, at_minus = _cheb_ends(kind, xp)
        trig, above = _cheb_trig(kind, shifted, xp), _TRIG_FROM[(kind, shifted)]
        if shifted:  # (PyTorch tests x itself at the ends, 2x - 1 elsewhere)
            y = lambda x: x + x - 1  # noqa: E731
            cases = [(lambda x, n: x == 1, lambda x, n: at_plus(n, x)),
                     (lambda x, n: x == 0, lambda x, n: at_minus(n, x))]
        else:
            y = lambda x: x  # noqa: E731
            cases = [(lambda x, n: xp.abs(x) == 1, lambda x, n: xp.where(x > 0, at_plus(n, x), at_minus(n, x)))]
        cases.append((lambda x, n: (n > above) & (xp.abs(y(x)) < 1), lambda x, n: trig(y(x), n)))
        return _evaluate(x, n, cases, lambda x: first(y(x)), lambda x, p, q, j: (y(x) + y(x)) * q - p)

    return kernel


# Hermite, Laguerre, Legendre ----------------------------------------------------------------------------------

def _hermite_h(x, n):
    limit = _HERMITE_LIMIT[x.dtype]
    xp = get_array_module(x)
    # (PyTorch checks the limit after degrees 0 and 1: checked first here, the same, as both are below it)
    return _evaluate(x, n, [(lambda x, n: n > limit, lambda x, n: xp.full_like(x, np.nan))],
                     lambda x: x + x, lambda x, p, q, j: (x + x) * q - x.dtype.type(j + j) * p)


def _hermite_he(x, n):
    limit = _HERMITE_LIMIT[x.dtype]
    xp = get_array_module(x)
    return _evaluate(x, n, [(lambda x, n: n > limit, lambda x, n: xp.full_like(x, np.nan))],
                     lambda x: x, lambda x, p, q, j: x * q - x.dtype.type(j) * p)


def _laguerre(x, n):
    xp = get_array_module(x)
    t = x.dtype.type

    def step(x, p, q, j):
        return ((t(j + j) + (1 - x)) * q - t(j) * p) / t(j + 1)

    return _evaluate(x, n, [(lambda x, n: xp.abs(x) == 0, lambda x, n: xp.ones_like(x))], lambda x: 1 - x, step)


def _legendre(x, n):
    xp = get_array_module(x)
    t = x.dtype.type
    ends = (lambda x, n: xp.abs(x) == 1,
            lambda x, n: xp.where(x > 0, xp.ones_like(x), _sign_by_parity(n, xp.ones_like(x))))
    return _evaluate(x, n, [ends], lambda x: x, lambda x, p, q, j: (t(j + j + 1) * x * q - t(j) * p) / t(j + 1))


# The public functions -------------------------------------------------------------------------------------------

_POLYNOMIAL_SIGNATURES = ("(Tensor x, Tensor n, *, Tensor out = None)", "(Number x, Tensor n, *, Tensor out = None)",
                          "(Tensor x, Number n, *, Tensor out = None)")


def _polynomial(name, kernel, doc):
    def fn(input, n):  # noqa: A002 - PyTorch's names
        if not isinstance(input, Tensor) and not isinstance(n, Tensor):
            raise invalid_combination(f"special_{name}", [parser_type_name(input), parser_type_name(n)],
                                      _POLYNOMIAL_SIGNATURES)
        for v in (input, n):
            if not isinstance(v, (Tensor, bool, int, float)):
                raise TypeError(f"special_{name}(): expected a Tensor or a real number, got {type(v).__name__}")
        a, b = _operands(input, n, name)
        a, b = (v.data if isinstance(v, Tensor) else v for v in (a, b))
        dtype = next(v.dtype for v in (a, b) if hasattr(v, "dtype"))
        if dtype not in _HERMITE_LIMIT:
            raise NotImplementedError(f'"{name}" not implemented for {dtype} (PyTorch\'s takes float32 and '
                                      "float64, integers and bools computed in float32)")
        xp = get_array_module(a, b)  # (a host 0-d tensor beside a device one, as PyTorch takes: moved below)
        _check_broadcast(a, b, name)
        x, m = xp.broadcast_arrays(xp.asarray(a, dtype=dtype), xp.asarray(b, dtype=dtype))
        with _quiet(xp, over=True):
            out = kernel(x.reshape(-1), _degrees(m.reshape(-1)))
        return Tensor(out.reshape(x.shape))  # (outside the graph: PyTorch's has no derivative)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``torch.special.{name}(input, n)``: {doc}, elementwise and broadcasting (either argument may "
                  "be a number; ``n`` truncated to an integer, 0 below 0), evaluated as PyTorch's kernel. PyTorch "
                  "defines no derivative: the result does not require grad.")
    return fn


chebyshev_polynomial_t = _polynomial("chebyshev_polynomial_t", _chebyshev("t", False),
                                     "the Chebyshev polynomial of the first kind ``T_n(x)``")
chebyshev_polynomial_u = _polynomial("chebyshev_polynomial_u", _chebyshev("u", False),
                                     "the Chebyshev polynomial of the second kind ``U_n(x)``")
chebyshev_polynomial_v = _polynomial("chebyshev_polynomial_v", _chebyshev("v", False),
                                     "the Chebyshev polynomial of the third kind ``V_n(x)``")
chebyshev_polynomial_w = _polynomial("chebyshev_polynomial_w", _chebyshev("w", False),
                                     "the Chebyshev polynomial of the fourth kind ``W_n(x)``")
shifted_chebyshev_polynomial_t = _polynomial("shifted_chebyshev_polynomial_t", _chebyshev("t", True),
                                             "the shifted Chebyshev polynomial of the first kind ``T_n(2x - 1)``")
shifted_chebyshev_polynomial_u = _polynomial("shifted_chebyshev_polynomial_u", _chebyshev("u", True),
                                             "the shifted Chebyshev polynomial of the second kind ``U_n(2x - 1)``")
shifted_chebyshev_polynomial_v = _polynomial("shifted_chebyshev_polynomial_v", _chebyshev("v", True),
                                             "the shifted Chebyshev polynomial of the third kind ``V_n(2x - 1)``")
shifted_chebyshev_polynomial_w = _polynomial("shifted_chebyshev_polynomial_w", _chebyshev("w", True),
                                             "the shifted Chebyshev polynomial of the fourth kind ``W_n(2x - 1)``")
hermite_polynomial_h = _polynomial("hermite_polynomial_h", _hermite_h,
                                   "the physicists' Hermite polynomial ``H_n(x)`` (NaN above degree 512 in float64, "
                                   "128 in float32)")
hermite_polynomial_he = _polynomial("hermite_polynomial_he", _hermite_he,
                                    "the probabilists' Hermite polynomial ``He_n(x)`` (NaN above degree 512 in "
                                    "float64, 128 in float32)")
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l", _laguerre, "the Laguerre polynomial ``L_n(x)``")
legendre_polynomial_p = _polynomial("legendre_polynomial_p", _legendre, "the Legendre polynomial ``P_n(x)``")

__all__ = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
           "legendre_polynomial_p"]
