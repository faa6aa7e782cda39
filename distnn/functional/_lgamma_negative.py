"""``lgamma(x)`` for ``-28 < x < -2`` to a few ulp relative, its zeros' neighbourhoods included.

The reflection ``lgamma(x) = log(pi / |x sin(pi x)|) - lgamma(-x)`` (:mod:`._lgamma`) subtracts two terms of size
up to ~70 here: its error is absolute, so next to each of lgamma's zeros on the negative axis (-2.457, -2.747,
-3.144, ...; two in every interval between integers, nearing the integers as 1/n!) its relative error is
unbounded. PyTorch's CPU lgamma is glibc's, whose ``lgamma_neg`` (Joseph Myers) is accurate there; this is the
same idea, written here for numpy: every quantity is computed from ``d = x - x0``, the distance to the zero
``x0`` of the half-interval holding ``x`` (``x0`` to double-double precision, so ``d`` is exact to a rounding),
and so is its rounding error:

    lgamma(x) = lgamma(x) - lgamma(x0)
              = log|sin(pi x0) / sin(pi x)|  +  (lgamma(1 - x0) - lgamma(1 - x))        (reflection, twice)

* the first: ``sin(pi x) - sin(pi x0) = 2 cos(pi (x + x0) / 2) sin(pi d / 2)``, so it is ``-log1p(q)`` with ``q``
  that difference over ``sin(pi x0)`` (the cosine's argument reduced exactly, taken as a sine past a quarter
  turn); next to the pole (``q`` near -1) it is ``log|sin(pi x0)| - log|sin(pi x)|``, no longer small;
* the second, with ``y = 1 - x`` and ``y0 = 1 - x0`` shifted up by ``m`` to ``Y >= 10``: the shift's logs differ by
  ``log1p(d / (y + k))`` each, and Stirling's formula's difference is ``(Y0 - 1/2) log1p(d / Y) + d (log Y - 1)``
  plus its series' difference, ``c_j (Y0^-p - Y^-p) = -c_j d sum_i Y0^-(i+1) Y^-(p-i)``: every term a multiple of
  ``d``, none cancelling another by more than a few bits (between -3 and -2, where they cancel more, a
  polynomial per eighth instead: below).

The zeros (and ``sin(pi x0)``) were computed with mpmath at 60 digits (bisection of log|Gamma| on each
half-interval); tests/test_lgamma_negative_zeros.py checks the table against mpmath where it is installed.
"""
from __future__ import annotations

import math

import numpy as np

# (x0 rounded to a double, x0 less that, sin(pi x0)): the zero in (-n - 1/2, -n), then the one in (-n - 1,
# -n - 1/2), for n = 2, 3, ..., 27
_ZEROS = np.array([
    (-2.4570247382208006, -3.7075610815513266e-17, -0.9908998820547394),
    (-2.7476826467274127, 9.055340329338315e-17, -0.7122358617632761),
    (-3.14358088834998, -2.1818179852331714e-16, 0.43593116091177747),
    (-3.955294284858598, -1.999428391746348e-17, 0.13998587206036103),
    (-4.039361839740537, 2.1143995503980602e-16, -0.12334395219176375),
    (-4.991544640560048, 1.5174411760571722e-16, -0.026560171328441236),
    (-5.0082181683225935, -4.3926353491015815e-17, 0.025815269031142563),
    (-5.998607480080875, -3.311862478893795e-16, 0.004374716393786695),
    (-6.001385294453155, 6.415847287933042e-17, -0.004352017139067646),
    (-6.999801507890638, 1.0550130037400023e-17, -0.0006235813121544979),
    (-7.000198333407325, 2.504354173632409e-16, 0.0006230827350960788),
    (-7.999975197095821, -5.261737128572354e-17, 7.79206214786423e-05),
    (-8.000024800270682, -4.354586297860107e-16, -7.791234810265725e-05),
    (-8.999997244250977, -2.2185620509727132e-16, -8.657440884215026e-06),
    (-9.000002755714823, -9.491348611623208e-17, 8.657333442118684e-06),
    (-9.99999972442663, 4.883037618642443e-16, 8.657392773354907e-07),
    (-10.000000275573013, -3.4909708332642057e-16, -8.65738155199651e-07),
    (-10.99999997494789, 1.9843998306985407e-16, -7.870352447680882e-08),
    (-11.000000025052106, -6.850849812286175e-16, 7.870351484446998e-08),
    (-11.999999997912324, -1.0020693920103036e-16, 6.5586266729732254e-09),
    (-12.000000002087676, 1.2222548112048185e-16, -6.558626603799936e-09),
    (-12.99999999983941, 6.747262033096337e-16, -5.045097416252393e-10),
    (-13.00000000016059, -6.745919484964342e-16, 5.045097412034653e-10),
    (-13.99999999998853, 8.094860741926607e-16, 3.603641010213065e-11),
    (-14.00000000001147, -8.094853704222662e-16, -3.6036410099919684e-11),
    (-14.999999999999236, 8.82932241476868e-16, -2.40242734007338e-12),
    (-15.000000000000764, -8.829322382710274e-16, 2.4024273400633087e-12),
    (-15.999999999999952, -1.668613399265054e-16, 1.5015170875429165e-13),
    (-16.000000000000046, -1.6094954994609367e-15, -1.501517087542514e-13),
    (-16.999999999999996, -7.412564244549576e-16, -8.83245345613369e-15),
    (-17.000000000000004, 7.412564244550028e-16, 8.832453456133548e-15),
    (-18.0, 1.5619206968586233e-16, 4.906918586740901e-16),
    (-18.0, -1.561920696858622e-16, -4.906918586740897e-16),
    (-19.0, 8.22063524662433e-18, -2.5825887298636314e-17),
    (-19.0, -8.22063524662433e-18, 2.582588729863631e-17),
    (-20.0, 4.110317623312165e-19, 1.2912943649318157e-18),
    (-20.0, -4.110317623312165e-19, -1.2912943649318157e-18),
    (-21.0, 1.9572941063391263e-20, -6.149020785389598e-20),
    (-21.0, -1.9572941063391263e-20, 6.149020785389598e-20),
    (-22.0, 8.896791392450574e-22, 2.795009447904363e-21),
    (-22.0, -8.896791392450574e-22, -2.795009447904363e-21),
    (-23.0, 3.868170170630684e-23, -1.2152214990888533e-22),
    (-23.0, -3.868170170630684e-23, 1.2152214990888533e-22),
    (-24.0, 1.6117375710961184e-24, 5.063422912870222e-24),
    (-24.0, -1.6117375710961184e-24, -5.063422912870222e-24),
    (-25.0, 6.446950284384474e-26, -2.025369165148089e-25),
    (-25.0, -6.446950284384474e-26, 2.025369165148089e-25),
    (-26.0, 2.4795962632247976e-27, 7.789881404415727e-27),
    (-26.0, -2.4795962632247976e-27, -7.789881404415727e-27),
    (-27.0, 9.183689863795546e-29, -2.8851412608947135e-28),
    (-27.0, -9.183689863795546e-29, 2.8851412608947135e-28),
    (-28.0, 3.279889237069838e-30, 1.0304075931766834e-29),
])

# Between -3 and -2 the two terms above are each up to 8 times their sum (lgamma's minimum, -0.056 near -2.5, lies
# between zeros 0.29 apart): there, as glibc, lgamma(x) = log1p(f(x) (x - x0) / (x - xn)), ``xn`` the nearest
# integer (the pole) and ``f = (|Gamma(x)| - 1) (x - xn) / (x - x0)`` smooth and away from 0: a polynomial in
# ``x - xm`` on each eighth [xm - 1/16, xm + 1/16] (mpmath's chebyfit at 50 digits, relative error below 3e-19;
# highest order first)
_EIGHTHS = np.array([
    # centre -2.0625
    (-1.141329559100811, 0.5424008458736121, -1.0512108792685102, 0.3982157177296312, -0.9973285427470978,
     0.27223205103338943, -0.958933566713097, 0.152039803564702, -0.9342156173437621, 0.0378585061161863,
     -0.917628148190522, -0.0634284308922129, -0.8886202355931935, -0.12024314713667901, -0.7782305330903959,
     -1.044704781216989),
    # centre -2.1875
    (-8.757959847553654, 7.027082176423909, -5.678042975196727, 4.489653632114895, -3.7955910953487515,
     2.9095122630964054, -2.570750423982117, 1.8434019322328203, -1.7877038527748181, 1.109566492233138,
     -1.302783188366215, 0.5895033535450255, -1.0103405242265346, 0.22573667716250329, -0.7904814408001738,
     -0.9475560525532617),
    # centre -2.3125
    (-127.39060749439346, 87.5631723124723, -58.23261621663879, 40.00441758053447, -27.555585025204365,
     18.891942329824534, -13.056696522275528, 8.886265966532426, -6.226293797372251, 4.126868049827475,
     -3.0335805112373837, 1.8304912291487025, -1.5714574536588874, 0.6907850597415871, -0.9007307074535104,
     -0.8430565186694192),
    # centre -2.4375
    (-3211.109909538038, 1806.2451223426997, -965.8451982813003, 543.2792971033814, -305.92516795907744,
     172.06507701401358, -96.81036405136514, 54.41910622523858, -30.661348729514472, 17.17216772910795,
     -9.760480701486141, 5.34247602928879, -3.1959170708566615, 1.5312814420427348, -1.1660574285890253,
     -0.7160435758996516),
    # centre -2.5625
    (6995.823468779665, 3935.149587665096, 2104.2107671004374, 1183.6159336222927, 666.4749697104367,
     374.8859393630566, 210.86390068319614, 118.59616597766392, 66.69272138646693, 37.47998123572998,
     21.04033872835628, 11.756636042997258, 6.519619683971415, 3.5062756740549954, 1.802085679017021,
     -0.23852637693191414),
    # centre -2.6875
    (277.51807008888926, 190.7925415306806, 126.8343405922353, 87.19637976480763, 59.97570949698322,
     41.22862422571708, 28.344347877190334, 19.476357509747462, 13.385726557030795, 9.178552193030653,
     6.29287060022281, 4.269547627725693, 2.883164498865158, 1.857011060616651, 1.1595155903726022,
     -0.41939003261259933),
    # centre -2.8125
    (18.9857655423596, 15.42154684653218, 12.238310781576843, 9.93735106351574, 8.082606823422523,
     6.557755857713472, 5.336590612081004, 4.321134774652243, 3.5198506647117407, 2.833820680021974,
     2.306106587313862, 1.8221702560969362, 1.4614073971218526, 1.0799053526044047, 0.8033521909763837,
     -0.5400649246179795),
    # centre -2.9375
    (1.9245751056869467, 1.7786826782576024, 1.6645630666434426, 1.5319453438241644, 1.466433340738999,
     1.3422330980612227, 1.2917158910182, 1.1732175877869637, 1.1355786101051308, 1.01832888359802,
     0.9880464193253893, 0.861963874247848, 0.8240481145323397, 0.6661716257481446, 0.5900197543087655,
     -0.6260808948176508),
])

LOW, HIGH = -28.0, -2.0  # the range this module covers (open at both ends)
_STIRLING_FROM = 10.0
# Stirling's series' coefficients B_2j / (2j (2j - 1)), j = 1..10: enough past 10 (the 10th term's share of the
# difference is below 3e-19)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156, -3617 / 122400,
             43867 / 244188, -174611 / 125400)


def _two_sum(a, b):
    """``a + b`` as (the rounded sum, its rounding error), exactly (Knuth)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _cos_pi(hi, lo):
    """``cos(pi (hi + lo))`` to a few ulp relative for ``|lo|`` tiny beside ``hi``: the sine of what is left to
    the quarter turn from the argument less its nearest integer (exact where the cosine is small: Sterbenz)."""
    k = np.round(hi)
    r = hi - k  # (exact: Sterbenz)
    sign = np.where(np.fmod(k, 2.0) == 0, 1.0, -1.0)
    return sign * np.sin(math.pi * ((0.5 - np.abs(r)) - np.where(r < 0, -lo, lo)))


def _log_sine_ratio(x, d, x0_hi, x0_lo, sin_x0):
    """``log|sin(pi x0) / sin(pi x)|`` from ``d = x - x0``."""
    s_hi, s_lo = _two_sum(x, x0_hi)
    q = 2.0 * _cos_pi(s_hi / 2, (s_lo + x0_lo) / 2) * np.sin(math.pi * d / 2) / sin_x0
    near_pole = q < -0.5  # (sin(pi x) small: the ratio is far from 1, and its log far from 0)
    out = -np.log1p(np.where(near_pole, 0.0, q))
    if near_pole.any():
        sin_x = np.sin(math.pi * (x[near_pole] - np.round(x[near_pole])))  # (the reduced argument exact)
        out[near_pole] = np.log(np.abs(sin_x0[near_pole] / sin_x))  # (one rounding before the log)
    return out


def _lgamma_difference(x, d, x0_hi):
    """``lgamma(1 - x0) - lgamma(1 - x)`` from ``d = x - x0``."""
    y = 1.0 - x  # (a rounding here moves only denominators and logs: relative errors of a few ulp)
    shift = np.maximum(np.ceil(_STIRLING_FROM - y), 0.0)
    # the shift's sum of log1p(d / (y + k)) as one log1p of prod(1 + d / (y + k)) - 1, carried as that excess
    # (e + a + e a: terms of one sign, no cancellation)
    excess = np.zeros_like(x)
    for k in range(int(shift.max(initial=0.0))):
        a = np.where(k < shift, d / (y + k), 0.0)
        excess = excess + a + excess * a
    big_y = y + shift
    big_y0 = (1.0 - x0_hi) + shift  # (x0's low part and this rounding: relative errors only)
    u, u0 = 1.0 / big_y, 1.0 / big_y0
    # the series' difference: c_j (u0^p - u^p) = -d u u0 c_j h_(p-1), h_k = sum_i u0^i u^(k-i) (h_k = u0^k + u h_(k-1))
    h, u0_power, u_squared = np.ones_like(x), np.ones_like(x), u * u
    series = _STIRLING[0] * h
    for c in _STIRLING[1:]:
        u0_power = u0_power * u0
        h = u0_power + u * h  # (h_(p-1) to h_p, then to h_(p+1): p odd only are used)
        u0_power = u0_power * u0
        h = u0_power + u * h
        series = series + c * h
    stirling = (big_y0 - 0.5) * np.log1p(d / big_y) + d * (np.log(big_y) - 1.0) - d * u * u0 * series
    return stirling - np.log1p(excess)


def _between_three_and_two(x, d):
    """``lgamma(x)`` for x in (-3, -2) from ``d = x - x0``: the eighth's polynomial."""
    eighth = np.clip(np.floor(-8.0 * x) - 16, 0, 7).astype(np.intp)
    centre = -2.0 - (2 * eighth + 1) / 16.0
    t = x - centre  # (exact: Sterbenz)
    coefficients = _EIGHTHS[eighth]
    f = coefficients[:, 0]
    for k in range(1, coefficients.shape[1]):
        f = f * t + coefficients[:, k]
    pole = np.where(x > -2.5, -2.0, -3.0)
    return np.log1p(f * d / (x - pole))  # (x - pole exact: Sterbenz)


def lgamma_negative(x):
    """``lgamma(x)`` of a 1-d float64 numpy ``x``, every element in ``(-28, -2)`` and not an integer."""
    n = np.floor(-x)
    upper = x > -n - 0.5
    index = (2 * (n - 2) + np.where(upper, 0, 1)).astype(np.intp)
    x0_hi, x0_lo, sin_x0 = _ZEROS[index, 0], _ZEROS[index, 1], _ZEROS[index, 2]
    d = (x - x0_hi) - x0_lo  # (x - x0_hi exact: Sterbenz, both in the same interval)
    out = np.empty_like(x)
    near = x > -3.0
    if near.any():
        out[near] = _between_three_and_two(x[near], d[near])
    far = ~near
    if far.any():
        out[far] = (_log_sine_ratio(x[far], d[far], x0_hi[far], x0_lo[far], sin_x0[far])
                    + _lgamma_difference(x[far], d[far], x0_hi[far]))
    return out
