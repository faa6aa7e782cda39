"""The modified Bessel functions of the second kind ``K0``, ``K1`` and their scaled forms ``e^x K0(x)``,
``e^x K1(x)`` of raw arrays, with numpy alone (scipy is not a dependency); cupy arrays use cupyx.scipy.special's
``k0``/``k1``/``k0e``/``k1e``, which are Cephes' too.

The method is Cephes' (``k0.c``/``k1.c``), as PyTorch's ``modified_bessel_k0_forward`` ... evaluate it: up to
``x = 2`` a Chebyshev series in ``x^2 - 2`` (Clenshaw's recurrence, :func:`._bessel_i.chbevl`) minus (K0) or plus
(K1) ``log(x/2)`` times I0 or I1, above 2 ``e^-x / sqrt(x)`` times a series in ``8/x - 2``. inf at 0, NaN below
0 (and at -inf), 0 at +inf, as PyTorch's.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module

from ._bessel_i import _i0e64, _i1e64, chbevl
from ._elementwise_common import _quiet
from ._special import _cupy_special, _in_float64

_K0_SMALL = (1.37446543561352307156e-16, 4.25981614279661018399e-14, 1.03496952576338420167e-11,
             1.90451637722020886025e-09, 2.53479107902614945675e-07, 2.28621210311945178607e-05,
             1.26461541144692592338e-03, 3.59799365153615016266e-02, 3.44289899924628486886e-01,
             -5.35327393233902768720e-01)
_K0_LARGE = (5.30043377268626276149e-18, -1.64758043015242134646e-17, 5.21039150503902756861e-17,
             -1.67823109680541210385e-16, 5.51205597852431940784e-16, -1.84859337734377901440e-15,
             6.34007647740507060557e-15, -2.22751332699166985548e-14, 8.03289077536357521100e-14,
             -2.98009692317273043925e-13, 1.14034058820847496303e-12, -4.51459788337394416547e-12,
             1.85594911495471785253e-11, -7.95748924447710747776e-11, 3.57739728140030116597e-10,
             -1.69753450938905987466e-09, 8.57403401741422608519e-09, -4.66048989768794782956e-08,
             2.76681363944501510342e-07, -1.83175552271911948767e-06, 1.39498137188764993662e-05,
             -1.28495495816278026384e-04, 1.56988388573005337491e-03, -3.14481013119645005427e-02,
             2.44030308206595545468e+00)
_K1_SMALL = (-7.02386347938628759343e-18, -2.42744985051936593393e-15, -6.66690169419932900609e-13,
             -1.41148839263352776110e-10, -2.21338763073472585583e-08, -2.43340614156596823496e-06,
             -1.73028895751305206302e-04, -6.97572385963986435018e-03, -1.22611180822657148235e-01,
             -3.53155960776544875667e-01, 1.52530022733894777053e+00)
_K1_LARGE = (-5.75674448366501715755e-18, 1.79405087314755922667e-17, -5.68946255844285935196e-17,
             1.83809354436663880070e-16, -6.05704724837331885336e-16, 2.03870316562433424052e-15,
             -7.01983709041831346144e-15, 2.47715442448130437068e-14, -8.97670518232499435011e-14,
             3.34841966607842919884e-13, -1.28917396095102890680e-12, 5.13963967348173025100e-12,
             -2.12996783842756842877e-11, 9.21831518760500529508e-11, -4.19035475934189648750e-10,
             2.01504975519703286596e-09, -1.03457624656780970260e-08, 5.74108412545004946722e-08,
             -3.50196060308781257119e-07, 2.40648494783721712015e-06, -1.93619797416608296024e-05,
             1.95215518471351631108e-04, -2.85781685962277938680e-03, 1.03923736576817238437e-01,
             2.72062619048444266945e+00)


def _k64(x, order, scaled):
    """K0/K1 (``order``) of float64 ``x``, times ``e^x`` when ``scaled``."""
    low = x <= 2.0
    with _quiet(np, over=True):
        s = np.where(low & (x > 0), x, 1.0)
        if order == 0:
            near = chbevl(s * s - 2.0, _K0_SMALL) - np.log(0.5 * s) * (np.exp(s) * _i0e64(s))
        else:
            near = np.log(0.5 * s) * (np.exp(s) * _i1e64(s)) + chbevl(s * s - 2.0, _K1_SMALL) / s
        if scaled:
            near = near * np.exp(s)
        big = np.where(low, 4.0, x)
        far = chbevl(8.0 / big - 2.0, _K0_LARGE if order == 0 else _K1_LARGE) / np.sqrt(big)
        if not scaled:
            far = np.exp(-big) * far
    out = np.where(low, near, far)  # (+inf: the far series' limit at 8/x - 2 = -2 times e^-inf, 0)
    return np.where(x == 0, np.inf, np.where(x < 0, np.nan, out))


def k0_array(x):
    """``K0(x)``, elementwise (inf at 0, NaN below 0)."""
    return _in_float64(lambda v: _k64(v, 0, False), x) if get_array_module(x) is np else _cupy_special("k0")(x)


def k1_array(x):
    """``K1(x)``, elementwise (inf at 0, NaN below 0)."""
    return _in_float64(lambda v: _k64(v, 1, False), x) if get_array_module(x) is np else _cupy_special("k1")(x)


def k0e_array(x):
    """``e^x K0(x)``, elementwise."""
    return _in_float64(lambda v: _k64(v, 0, True), x) if get_array_module(x) is np else _cupy_special("k0e")(x)


def k1e_array(x):
    """``e^x K1(x)``, elementwise."""
    return _in_float64(lambda v: _k64(v, 1, True), x) if get_array_module(x) is np else _cupy_special("k1e")(x)
