"""The Bessel functions of the first and second kind ``J0``, ``J1``, ``Y0``, ``Y1`` of raw arrays, with numpy alone
(scipy is not a dependency); cupy arrays use cupyx.scipy.special's, which are Cephes' too.

The method is Cephes' (Moshier's ``j0.c``/``j1.c``), as PyTorch's ``bessel_j0_forward`` ... ``bessel_y1_forward``
evaluate it, in the same order of operations so that the two agree to rounding: up to ``|x| = 5`` a rational
function of ``x^2`` (J0 and J1 times their first two zeros' factors; Y0 and Y1 plus ``2/pi log(x) J``), above 5
Hankel's asymptotic form ``sqrt(2/(pi x)) (P cos(x - phase) - (5/x) Q sin(x - phase))`` with ``P`` and ``Q``
rational in ``25/x^2``. J0 is even, J1 odd; Y0 and Y1 are -inf at 0 and NaN below; all are NaN at +-inf
(``cos(inf)``), as PyTorch's.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._special import _cupy_special, _in_float64, horner as _horner

# P and Q of the asymptotic form (in 25/x^2), J0/Y0 and J1/Y1
_PP0 = (7.96936729297347051624e-04, 8.28352392107440799803e-02, 1.23953371646414299388e+00, 5.44725003058768775090e+00,
        8.74716500199817011941e+00, 5.30324038235394892183e+00, 9.99999999999999997821e-01)
_PQ0 = (9.24408810558863637013e-04, 8.56288474354474431428e-02, 1.25352743901058953537e+00, 5.47097740330417105182e+00,
        8.76190883237069594232e+00, 5.30605288235394617618e+00, 1.00000000000000000218e+00)
_QP0 = (-1.13663838898469149931e-02, -1.28252718670509318512e+00, -1.95539544257735972385e+01,
        -9.32060152123768231369e+01, -1.77681167980488050595e+02, -1.47077505154951170175e+02,
        -5.14105326766599330220e+01, -6.05014350600728481186e+00)
_QQ0 = (6.43178256118178023184e+01, 8.56430025976980587198e+02, 3.88240183605401609683e+03, 7.24046774195652478189e+03,
        5.93072701187316984827e+03, 2.06209331660327847417e+03, 2.42005740240291393179e+02)
_PP1 = (7.62125616208173112003e-04, 7.31397056940917570436e-02, 1.12719608129684925192e+00, 5.11207951146807644818e+00,
        8.42404590141772420927e+00, 5.21451598682361504063e+00, 1.00000000000000000254e+00)
_PQ1 = (5.71323128072548699714e-04, 6.88455908754495404082e-02, 1.10514232634061696926e+00, 5.07386386128601488557e+00,
        8.39985554327604159757e+00, 5.20982848682361821619e+00, 9.99999999999999997461e-01)
_QP1 = (5.10862594750176621635e-02, 4.98213872951233449420e+00, 7.58238284132545283818e+01, 3.66779609360150777800e+02,
        7.10856304998926107277e+02, 5.97489612400613639965e+02, 2.11688757100572135698e+02, 2.52070205858023719784e+01)
_QQ1 = (7.42373277035675149943e+01, 1.05644886038262816351e+03, 4.98641058337653607651e+03, 9.56231892404756170795e+03,
        7.99704160447350683650e+03, 2.82619278517639096600e+03, 3.36093607810698293419e+02)
# the small range (in x^2): J0 / ((x^2 - z1^2)(x^2 - z2^2)), J1 / (x (x^2 - z1^2)(x^2 - z2^2))
_RP0 = (-4.79443220978201773821e+09, 1.95617491946556577543e+12, -2.49248344360967716204e+14, 9.70862251047306323952e+15)
_RQ0 = (4.99563147152651017219e+02, 1.73785401676374683123e+05, 4.84409658339962045305e+07, 1.11855537045356834862e+10,
        2.11277520115489217587e+12, 3.10518229857422583814e+14, 3.18121955943204943306e+16, 1.71086294081043136091e+18)
_RP1 = (-8.99971225705559398224e+08, 4.52228297998194034323e+11, -7.27494245221818276015e+13, 3.68295732863852883286e+15)
_RQ1 = (6.20836478118054335476e+02, 2.56987256757748830383e+05, 8.35146791431949253037e+07, 2.21511595479792499675e+10,
        4.74914122079991414898e+12, 7.84369607876235854894e+14, 8.95222336184627338078e+16, 5.32278620332680085395e+18)
# Y0 - 2/pi log(x) J0, and (Y1 - 2/pi (J1 log(x) - 1/x)) / x
_YP0 = (1.55924367855235737965e+04, -1.46639295903971606143e+07, 5.43526477051876500413e+09, -9.82136065717911466409e+11,
        8.75906394395366999549e+13, -3.46628303384729719441e+15, 4.42733268572569800351e+16, -1.84950800436986690637e+16)
_YQ0 = (1.04128353664259848412e+03, 6.26107330137134956842e+05, 2.68919633393814121987e+08, 8.64002487103935000337e+10,
        2.02979612750105546709e+13, 3.17157752842975028269e+15, 2.50596256172653059228e+17)
_YP1 = (1.26320474790178026440e+09, -6.47355876379160291031e+11, 1.14509511541823727583e+14, -8.12770255501325109621e+15,
        2.02439475713594898196e+17, -7.78877196265950026825e+17)
_YQ1 = (5.94301592346128195359e+02, 2.35564092943068577943e+05, 7.34811944459721705660e+07, 1.87601316108706159478e+10,
        3.88231277496238566008e+12, 6.20557727146953693363e+14, 6.87141087355300489866e+16, 3.97270608116560655612e+18)
_Z1_SQ0, _Z2_SQ0 = 5.78318596294678452118e+00, 3.04712623436620863991e+01  # J0's first two zeros, squared
_Z1_SQ1, _Z2_SQ1 = 1.46819706421238932572e+01, 4.92184563216946036703e+01  # J1's
_PI_4, _3PI_4 = 0.785398163397448309615660845819875721, 2.356194490192344928846982537459627163
_SQRT_2_OVER_PI = 0.797884560802865355879892119868763737
_TWO_OVER_PI = 0.636619772367581343075535053490057448


def _asymptotic(x, order, second_kind):
    """Hankel's form above 5 (``x > 5``; other entries are masked by the caller). J0/Y0 take ``25/(x x)``,
    J1/Y1 ``5/x (5/x)``, as PyTorch's code rounds them."""
    pp, pq, qp, qq, phase = ((_PP0, _PQ0, _QP0, _QQ0, _PI_4) if order == 0 else (_PP1, _PQ1, _QP1, _QQ1, _3PI_4))
    z = 25.0 / (x * x) if order == 0 else 5.0 / x * (5.0 / x)
    p, q = _horner(z, pp) / _horner(z, pq), 5.0 / x * (_horner(z, qp) / _horner(z, qq))
    c, s = np.cos(x - phase), np.sin(x - phase)
    return ((p * s + q * c) if second_kind else (p * c - q * s)) * _SQRT_2_OVER_PI / np.sqrt(x)


def _j0_small(a):
    z = a * a
    out = (z - _Z1_SQ0) * (z - _Z2_SQ0) * _horner(z, _RP0) / _horner(z, _RQ0)
    return np.where(a < 1e-5, 1.0 - a * a / 4.0, out)


def _j1_small(x):
    z = x * x
    return _horner(z, _RP1) / _horner(z, _RQ1) * x * (z - _Z1_SQ1) * (z - _Z2_SQ1)  # (odd in x: J1(-0) = -0)


def _j0_64(x):
    a = np.abs(x)
    small = a <= 5.0
    with _quiet(np, over=True):
        return np.where(small, _j0_small(np.where(small, a, 1.0)), _asymptotic(np.where(small, 6.0, a), 0, False))


def _j1_64(x):
    a = np.abs(x)
    small = a <= 5.0
    with _quiet(np, over=True):
        far = _asymptotic(np.where(small, 6.0, a), 1, False)
        return np.where(small, _j1_small(np.where(small, x, 1.0)), np.where(x < 0, -far, far))


def _y_64(x, order):
    small = x <= 5.0
    xs = np.where(small & (x > 0), x, 1.0)
    with _quiet(np, over=True):
        z = xs * xs
        if order == 0:
            near = _horner(z, _YP0) / _horner(z, _YQ0) + _TWO_OVER_PI * np.log(xs) * _j0_64(xs)
        else:
            near = xs * (_horner(z, _YP1) / _horner(z, _YQ1)) + _TWO_OVER_PI * (_j1_64(xs) * np.log(xs) - 1.0 / xs)
        far = _asymptotic(np.where(small, 6.0, x), order, True)
    near = np.where(x == 0, -np.inf, np.where(x < 0, np.nan, near))
    return np.where(small, near, far)  # (NaN: not small, and the asymptotic form keeps it NaN)


def _dispatch(fn64, cupy_name, x):
    return _in_float64(fn64, x) if get_array_module(x) is np else _cupy_special(cupy_name)(x)


def j0_array(x):
    """``J0(x)``, elementwise."""
    return _dispatch(_j0_64, "j0", x)


def j1_array(x):
    """``J1(x)``, elementwise."""
    return _dispatch(_j1_64, "j1", x)


def y0_array(x):
    """``Y0(x)``, elementwise (-inf at 0, NaN below)."""
    return _dispatch(lambda v: _y_64(v, 0), "y0", x)


def y1_array(x):
    """``Y1(x)``, elementwise (-inf at 0, NaN below)."""
    return _dispatch(lambda v: _y_64(v, 1), "y1", x)
