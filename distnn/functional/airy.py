"""``torch.special.airy_ai``: the Airy function ``Ai(x)``, the solution of ``y'' = x y`` that decays as
``x -> inf``.

The method is Cephes' ``airy.c`` as PyTorch's ``airy_ai_forward`` (``ATen/native/Math.h``) has it:

* ``x < -2.09``: the oscillating asymptotic form ``(sin(t) (1 + z^2 f(z^2)) - cos(t) z g(z^2)) / (sqrt(pi)
  (-x)^(1/4))`` with ``zeta = 2 (-x)^(3/2) / 3``, ``z = 1/zeta``, ``t = zeta + pi/4`` and ``f``, ``g`` rational
  functions;
* ``2.09 <= x <= 103.892``: the decaying form ``e^-zeta P(1/zeta) / (2 sqrt(pi) x^(1/4))`` (``P`` rational);
  0 above 103.892, where it underflows;
* between: the Maclaurin series ``c1 f(x) - c2 g(x)`` of the two solutions, summed until a term's share of
  ``f`` is below the machine epsilon (whole-array steps; each element stops on its own);
* NaN at both infinities (PyTorch's: Cephes' domain error), NaN at NaN.

Computed in the input's dtype, as PyTorch's kernel (so float32's ``e^zeta`` overflows, and Ai underflows to 0,
from x = 25.77 on, as there). Integer and bool inputs compute in the default float dtype. PyTorch defines no
derivative: the result does not require grad.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._special import horner
from .elementwise import float_input

_AN = (3.46538101525629032477e-01, 1.20075952739645805542e+01, 7.62796053615234516538e+01,
       1.68089224934630576269e+02, 1.59756391350164413639e+02, 7.05360906840444183113e+01,
       1.40264691163389668864e+01, 9.99999999999999995305e-01)
_AD = (5.67594532638770212846e-01, 1.47562562584847203173e+01, 8.45138970141474626562e+01,
       1.77318088145400459522e+02, 1.64234692871529701831e+02, 7.14778400825575695274e+01,
       1.40959135607834029598e+01, 1.00000000000000000470e+00)
_AFN = (-1.31696323418331795333e-01, -6.26456544431912369773e-01, -6.93158036036933542233e-01,
        -2.79779981545119124951e-01, -4.91900132609500318020e-02, -4.06265923594885404393e-03,
        -1.59276496239262096340e-04, -2.77649108155232920844e-06, -1.67787698489114633780e-08)
_AFD = (1.33560420706553243746e+01, 3.26825032795224613948e+01, 2.67367040941499554804e+01,
        9.18707402907259625840e+00, 1.47529146771666414581e+00, 1.15687173795188044134e-01,
        4.40291641615211203805e-03, 7.54720348287414296618e-05, 4.51850092970580378464e-07)
_AGN = (1.97339932091685679179e-02, 3.91103029615688277255e-01, 1.06579897599595591108e+00,
        9.39169229816650230044e-01, 3.51465656105547619242e-01, 6.33888919628925490927e-02,
        5.85804113048388458567e-03, 2.82851600836737019778e-04, 6.98793669997260967291e-06,
        8.11789239554389293311e-08, 3.41551784765923618484e-10)
_AGD = (9.30892908077441974853e+00, 1.98352928718312140417e+01, 1.55646628932864612953e+01,
        5.47686069422975497931e+00, 9.54293611618961883998e-01, 8.64580826352392193095e-02,
        4.12656523824222607191e-03, 1.01259085116509135510e-04, 1.17166733214413521882e-06,
        4.91834570062930015649e-09)
_INV_SQRT_PI = 5.64189583547756286948e-01
_C1, _C2 = 0.355028053887817239260, 0.258819403792806798405  # Ai(0) and -Ai'(0)
_NEAR, _UNDERFLOW = 2.09, 103.892


def _oscillating(x):
    """``x < -2.09``'s form (``x`` negative)."""
    xp = get_array_module(x)
    zeta = -2.0 * x * xp.sqrt(-x) / 3.0
    z = 1.0 / zeta
    zz = z * z
    t = zeta + 0.25 * math.pi
    f = zz * horner(zz, _AFN) / horner(zz, _AFD)
    g = z * horner(zz, _AGN) / horner(zz, _AGD)
    return _INV_SQRT_PI / xp.sqrt(xp.sqrt(-x)) * (xp.sin(t) * (1.0 + f) - xp.cos(t) * g)


def _decaying(x):
    """``x >= 2.09``'s form."""
    xp = get_array_module(x)
    zeta = 2.0 * x * xp.sqrt(x) / 3.0
    w = 1.0 / zeta
    return _INV_SQRT_PI * (horner(w, _AN) / horner(w, _AD)) / (2.0 * xp.sqrt(xp.sqrt(x)) * xp.exp(zeta))


def _maclaurin(x):
    """``|x| < 2.09``: ``c1 f - c2 g``, ``f = 1 + x^3/3! + 1*4 x^6/6! + ...``, ``g = x + 2 x^4/4! + ...``, each
    element summed until its last term of ``f`` is below the dtype's epsilon relative to ``f`` (Cephes' test)."""
    xp = get_array_module(x)
    z = x * x * x
    f, g, m, n = xp.ones_like(x), x.copy(), xp.ones_like(x), x.copy()
    k, going = 1.0, xp.ones(x.shape, dtype=bool)
    while going.any():
        m1 = m * z / (k + 1.0) / (k + 2.0)
        n1 = n * z / (k + 2.0) / (k + 3.0)
        k += 3.0
        f1, g1 = f + m1, g + n1
        m, n = xp.where(going, m1, m), xp.where(going, n1, n)
        f, g = xp.where(going, f1, f), xp.where(going, g1, g)
        going &= xp.abs(m1 / f1) > np.finfo(x.dtype).eps  # (NaN: false, stops)
    return _C1 * f - _C2 * g


def airy_ai_array(x):
    """``Ai(x)`` of a float32 or float64 array, computed in its dtype (the coefficients rounded to it)."""
    xp = get_array_module(x)
    v = x
    neg, pos = v < -_NEAR, (v >= _NEAR) & (v <= _UNDERFLOW)
    mid = ~neg & ~(v >= _NEAR)  # (NaN too: the series keeps it)
    with _quiet(xp, over=True):
        out = xp.where(neg, _oscillating(xp.where(neg, v, -3.0)), 0.0)
        out = xp.where(pos, _decaying(xp.where(pos, v, 3.0)), out)
        out = xp.where(mid, _maclaurin(xp.where(mid, v, 0.0)), out)
    return xp.where(xp.isinf(v), np.nan, out).astype(x.dtype, copy=False)  # (astype: a 0-d where's result)


def airy_ai(input):  # noqa: A002 - PyTorch's name
    """``torch.special.airy_ai(input)``: the Airy function ``Ai``, elementwise (Cephes' method, as PyTorch's:
    0 above 103.892, NaN at +-inf). PyTorch defines no derivative: the result does not require grad."""
    if not isinstance(input, Tensor):
        raise TypeError(f"special_airy_ai(): argument 'x' (position 1) must be Tensor, not {type(input).__name__}")
    x = float_input(input)
    x = x.data if isinstance(x, Tensor) else x
    if x.dtype not in (np.float32, np.float64):
        raise NotImplementedError(f'"airy_ai" not implemented for {x.dtype} (PyTorch\'s takes float32 and float64)')
    return Tensor(airy_ai_array(x))  # (outside the graph: PyTorch's has no derivative)


__all__ = ["airy_ai"]
