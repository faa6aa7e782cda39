"""``distnn.special``: PyTorch's ``torch.special`` namespace, for the functions distnn has.

Most are PyTorch's aliases of functions distnn already has under their top-level names (``expit`` is
``sigmoid``, ``gammaln`` is ``lgamma``, ``psi`` is ``digamma``, ``gammainc`` is ``igamma``, ``multigammaln`` is
``mvlgamma``, ...); ``i0e``, ``i1``, ``i1e`` (:mod:`distnn.functional.bessel`) and ``zeta``
(:mod:`distnn.functional.polygamma`) are torch.special's only. torch.special's ``out=`` keyword is not taken,
as distnn's pointwise functions take none.

``ndtr``, ``log_ndtr``, ``ndtri``, ``erfcx``, ``entr`` and ``xlog1py`` (:mod:`distnn.functional.normal_cdf`) are
torch.special's only too, differentiable as there; so are the Bessel functions ``bessel_j0``/``j1``/``y0``/``y1``,
``modified_bessel_i0``/``i1``/``k0``/``k1``, ``scaled_modified_bessel_k0``/``k1`` and ``spherical_bessel_j0``
(:mod:`distnn.functional.bessel_more`), which have no derivative, as PyTorch's.

``airy_ai`` (:mod:`distnn.functional.airy`) and the orthogonal polynomials ``chebyshev_polynomial_t``/``u``/``v``/
``w``, ``shifted_chebyshev_polynomial_t``/``u``/``v``/``w``, ``hermite_polynomial_h``/``he``,
``laguerre_polynomial_l`` and ``legendre_polynomial_p`` (:mod:`distnn.functional.orthogonal_polynomials`, each
``(input, n)``) complete torch.special; they too have no derivative, as PyTorch's.
"""
from __future__ import annotations

from distnn.functional.activation import log_softmax as _log_softmax, sigmoid as expit, softmax as _softmax
from distnn.functional.airy import airy_ai
from distnn.functional.bessel import i0, i0e, i1, i1e
from distnn.functional.bessel_more import (bessel_j0, bessel_j1, bessel_y0, bessel_y1, modified_bessel_i0,
                                           modified_bessel_i1, modified_bessel_k0, modified_bessel_k1,
                                           scaled_modified_bessel_k0, scaled_modified_bessel_k1, spherical_bessel_j0)
from distnn.functional.gamma_functions import digamma, igamma as gammainc, igammac as gammaincc, lgamma as gammaln
from distnn.functional.normal_cdf import entr, erfcx, log_ndtr, ndtr, ndtri, xlog1py
from distnn.functional.orthogonal_polynomials import (chebyshev_polynomial_t, chebyshev_polynomial_u,
                                                      chebyshev_polynomial_v, chebyshev_polynomial_w,
                                                      hermite_polynomial_h, hermite_polynomial_he,
                                                      laguerre_polynomial_l, legendre_polynomial_p,
                                                      shifted_chebyshev_polynomial_t, shifted_chebyshev_polynomial_u,
                                                      shifted_chebyshev_polynomial_v, shifted_chebyshev_polynomial_w)
from distnn.functional.pointwise_binary import xlogy
from distnn.functional.pointwise_unary import erf, erfc, erfinv, exp2, expm1, log1p, logit, sinc
from distnn.functional.polygamma import polygamma, zeta
from distnn.functional.reduce_more import logsumexp
from distnn.functional.rounding import round  # noqa: A004 - PyTorch's name
from distnn.torch_toplevel_linalg import mvlgamma as multigammaln

psi = digamma


def _in_dtype(input, dtype):  # noqa: A002
    """``input`` cast to ``dtype`` first, as PyTorch's ``dtype=`` argument of softmax does (None: as it is)."""
    return input if dtype is None else input.to(dtype)


def softmax(input, dim, *, dtype=None):  # noqa: A002 - PyTorch's names
    """``torch.special.softmax(input, dim, *, dtype=None)``: ``exp(x) / sum(exp(x))`` along ``dim``, the input
    cast to ``dtype`` first when one is given."""
    return _softmax(_in_dtype(input, dtype), dim=dim)


def log_softmax(input, dim, *, dtype=None):  # noqa: A002
    """``torch.special.log_softmax(input, dim, *, dtype=None)``: ``log(softmax(x))`` along ``dim``, computed
    stably, the input cast to ``dtype`` first when one is given."""
    return _log_softmax(_in_dtype(input, dtype), dim=dim)


__all__ = ["airy_ai", "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
           "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
           "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
           "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p", "bessel_j0", "bessel_j1",
           "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
           "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0",
           "digamma", "psi", "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expm1", "expit", "gammainc",
           "gammaincc", "gammaln", "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax", "logit",
           "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma", "round", "sinc", "softmax", "xlog1py",
           "xlogy", "zeta"]
