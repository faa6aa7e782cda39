"""torch.special's Bessel functions without a derivative: ``bessel_j0``, ``bessel_j1``, ``bessel_y0``,
``bessel_y1``, ``modified_bessel_i0``, ``modified_bessel_i1``, ``modified_bessel_k0``, ``modified_bessel_k1``,
``scaled_modified_bessel_k0``, ``scaled_modified_bessel_k1`` and ``spherical_bessel_j0``.

PyTorch defines no derivative for any of them: their result does not require grad even when the input does (it
is not part of the graph, so a backward through it reaches nothing), and so it is here. The values come from
:mod:`._bessel_jy`, :mod:`._bessel_k` and :mod:`._bessel_i` (numpy, Cephes' expansions, as PyTorch's kernels)
or cupyx.scipy.special (cupy). The input must be a tensor, as PyTorch's; integer and bool inputs compute in the
default float dtype. None of these is a top-level torch function or a Tensor method.
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._bessel_i import i0_array, i1_array
from ._bessel_jy import j0_array, j1_array, y0_array, y1_array
from ._bessel_k import k0_array, k0e_array, k1_array, k1e_array
from ._elementwise_common import _quiet
from .elementwise import float_input


def _spherical_j0(x):
    """``sin(x)/x``; PyTorch's Taylor polynomial below ``|x| = 0.5`` and 0 at +-inf."""
    xp = get_array_module(x)
    z = x * x
    near = 1.0 + z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (
        1.0 / 362880.0 + z * (-1.0 / 39916800.0 + z * (1.0 / 6227020800.0))))))
    with _quiet(xp):
        far = xp.sin(x) / x
    out = xp.where(xp.abs(x) < 0.5, near, xp.where(xp.isinf(x), 0.0, far))
    return out.astype(x.dtype, copy=False)


def _no_derivative(name, kernel):
    def fn(input):  # noqa: A002 - PyTorch's name
        if not isinstance(input, Tensor):
            raise TypeError(f"special_{name}(): argument 'input' (position 1) must be Tensor, not "
                            f"{type(input).__name__}")
        x = float_input(input)
        x = x.data if isinstance(x, Tensor) else x
        with _quiet(get_array_module(x), over=True):
            return Tensor(kernel(x))  # (outside the graph: PyTorch's has no derivative)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``torch.special.{name}``, elementwise (Cephes' method, as PyTorch's). PyTorch defines no "
                  "derivative: the result does not require grad.")
    return fn


bessel_j0 = _no_derivative("bessel_j0", j0_array)
bessel_j1 = _no_derivative("bessel_j1", j1_array)
bessel_y0 = _no_derivative("bessel_y0", y0_array)
bessel_y1 = _no_derivative("bessel_y1", y1_array)
modified_bessel_i0 = _no_derivative("modified_bessel_i0", i0_array)
modified_bessel_i1 = _no_derivative("modified_bessel_i1", i1_array)
modified_bessel_k0 = _no_derivative("modified_bessel_k0", k0_array)
modified_bessel_k1 = _no_derivative("modified_bessel_k1", k1_array)
scaled_modified_bessel_k0 = _no_derivative("scaled_modified_bessel_k0", k0e_array)
scaled_modified_bessel_k1 = _no_derivative("scaled_modified_bessel_k1", k1e_array)
spherical_bessel_j0 = _no_derivative("spherical_bessel_j0", _spherical_j0)

__all__ = ["bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
           "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
           "spherical_bessel_j0"]
