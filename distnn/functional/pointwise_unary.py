"""PyTorch's unary pointwise math (``torch.sin``, ``torch.erf``, ``torch.logit``, ...), each differentiable with
PyTorch's derivative formula (``derivatives.yaml``), written as it writes it so that the edge points agree.

Integer and bool inputs of the float-valued functions compute in the default float dtype (float32), as PyTorch's;
``square``, ``neg``, ``sgn``, ``nan_to_num`` and ``positive`` keep an integer dtype, as there.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import as_array, get_array_module

from ._elementwise_common import _quiet
from ._special import erf_array, erfc_array, erfinv_array
from .elementwise import float_input
from .rounding import _Step

_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class _Unary(Function):
    """One pointwise function: ``compute(xp, x)`` the value, ``derivative(xp, x, out)`` its derivative (what the
    upstream gradient is multiplied by). ``reads`` names which of ``x`` (0) and the output the formula reads."""

    reads = ((0,),)

    def forward(self, x):
        xp = get_array_module(x)
        with _quiet(xp, over=True):  # (inf and NaN where PyTorch gives them, without numpy's warnings)
            out = self.compute(xp, x)
        self.x, self.out = x, out
        return out

    def backward(self, g):
        xp = get_array_module(g)
        with _quiet(xp, over=True):
            return (g * self.derivative(xp, self.x, self.out),)

    def backward_complex(self, g):
        # (a holomorphic f: grad * conj(f'(z)), PyTorch's convention; only the classes marked below)
        xp = get_array_module(g)
        with _quiet(xp, over=True):
            return (g * xp.conj(self.derivative(xp, self.x, self.out)),)


def _unary(name, compute, derivative, reads=(0,), doc=""):
    cls = type(name, (_Unary,), {"compute": staticmethod(compute), "derivative": staticmethod(derivative),
                                 "reads": (reads,), "__doc__": doc, "__module__": __name__})
    return cls


# derivative formulas as PyTorch's derivatives.yaml writes them (x: the input, y: the output)
Sin = _unary("Sin", lambda xp, x: xp.sin(x), lambda xp, x, y: xp.cos(x))
Cos = _unary("Cos", lambda xp, x: xp.cos(x), lambda xp, x, y: -xp.sin(x))
Tan = _unary("Tan", lambda xp, x: xp.tan(x), lambda xp, x, y: 1 + y * y, (OUTPUT,))
Asin = _unary("Asin", lambda xp, x: xp.arcsin(x), lambda xp, x, y: 1 / xp.sqrt(-x * x + 1))
Acos = _unary("Acos", lambda xp, x: xp.arccos(x), lambda xp, x, y: -1 / xp.sqrt(-x * x + 1))
Atan = _unary("Atan", lambda xp, x: xp.arctan(x), lambda xp, x, y: 1 / (x * x + 1))
Sinh = _unary("Sinh", lambda xp, x: xp.sinh(x), lambda xp, x, y: xp.cosh(x))
Cosh = _unary("Cosh", lambda xp, x: xp.cosh(x), lambda xp, x, y: xp.sinh(x))
Asinh = _unary("Asinh", lambda xp, x: xp.arcsinh(x), lambda xp, x, y: 1 / xp.sqrt(x * x + 1))
Acosh = _unary("Acosh", lambda xp, x: xp.arccosh(x), lambda xp, x, y: 1 / xp.sqrt(x * x - 1))
Atanh = _unary("Atanh", lambda xp, x: xp.arctanh(x), lambda xp, x, y: 1 / (1 - x * x))
Log1p = _unary("Log1p", lambda xp, x: xp.log1p(x), lambda xp, x, y: 1 / (x + 1))
Expm1 = _unary("Expm1", lambda xp, x: xp.expm1(x), lambda xp, x, y: y + 1, (OUTPUT,))
Log2 = _unary("Log2", lambda xp, x: xp.log2(x), lambda xp, x, y: 1 / (x * _LN2))
Log10 = _unary("Log10", lambda xp, x: xp.log10(x), lambda xp, x, y: 1 / (x * _LN10))
Exp2 = _unary("Exp2", lambda xp, x: xp.exp2(x), lambda xp, x, y: y * _LN2, (OUTPUT,))
Erf = _unary("Erf", lambda xp, x: erf_array(x), lambda xp, x, y: _TWO_OVER_SQRT_PI * xp.exp(-x * x))
Erfc = _unary("Erfc", lambda xp, x: erfc_array(x), lambda xp, x, y: -_TWO_OVER_SQRT_PI * xp.exp(-x * x))
Erfinv = _unary("Erfinv", lambda xp, x: erfinv_array(x), lambda xp, x, y: (math.sqrt(math.pi) / 2) * xp.exp(y * y),
                (OUTPUT,))
Rsqrt = _unary("Rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda xp, x, y: -0.5 * y * y * y, (OUTPUT,))
Reciprocal = _unary("Reciprocal", lambda xp, x: 1 / x, lambda xp, x, y: -(y * y), (OUTPUT,))
Square = _unary("Square", lambda xp, x: x * x, lambda xp, x, y: 2 * x)
Frac = _unary("Frac", lambda xp, x: x - xp.trunc(x), lambda xp, x, y: 1, ())
Deg2rad = _unary("Deg2rad", lambda xp, x: x * (math.pi / 180), lambda xp, x, y: math.pi / 180, ())
Rad2deg = _unary("Rad2deg", lambda xp, x: x * (180 / math.pi), lambda xp, x, y: 180 / math.pi, ())


# holomorphic, with derivative formulas that hold for complex z: differentiable for complex inputs too
for _cls in (Sin, Cos, Tan, Sinh, Cosh, Reciprocal, Square):
    _cls.supports_complex = True


def _torch_node_name(cls) -> str:
    """PyTorch's node name of a unary op here: its name with a capital after a digit (``Log1PBackward0``)."""
    name = cls.__name__
    return "".join(c.upper() if i and name[i - 1].isdigit() else c for i, c in enumerate(name)) + "Backward0"


for _cls in (Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Log1p, Expm1, Log2, Log10, Exp2, Erf,
             Erfc, Erfinv, Rsqrt, Reciprocal, Frac, Deg2rad, Rad2deg):
    _cls.torch_name = _torch_node_name(_cls)
Square.torch_name = "PowBackward0"  # (PyTorch's square is pow(x, 2))


def _sinc(xp, x):
    px = math.pi * x
    return xp.where(x == 0, 1, xp.sin(px) / xp.where(x == 0, 1, px)).astype(x.dtype, copy=False)


def _sinc_derivative(xp, x, y):
    px, squared = math.pi * x, x * x * math.pi  # (PyTorch's sinc_backward: 0 where x^2 pi underflows to 0)
    return xp.where(squared == 0, 0, (px * xp.cos(px) - xp.sin(px)) / squared)


Sinc = _unary("Sinc", _sinc, _sinc_derivative, doc="sin(pi x) / (pi x), 1 at 0 (the normalized sinc).")
Sinc.torch_name = "SincBackward0"


class Logit(Function):
    """``log(x / (1 - x))`` of ``x`` clamped to ``[eps, 1 - eps]`` (when ``eps`` is given). The gradient is
    PyTorch's ``logit_backward``: ``g / (x (1 - x))``; outside ``[0, 1]`` NaN without ``eps`` (or with a
    negative one), and outside ``[eps, 1 - eps]`` zero with it."""

    reads = ((0,),)

    def forward(self, x, eps=None):
        xp = get_array_module(x)
        self.x, self.eps = x, eps
        z = x if eps is None else xp.clip(x, eps, 1 - eps)
        with _quiet(xp):
            return xp.log(z / (1 - z))

    def backward(self, g):
        xp = get_array_module(g)
        x, eps = self.x, self.eps
        with _quiet(xp):
            d = g / xp.abs(x * (1 - x))  # (+0 at x = -0.0, as PyTorch's kernel divides there: inf with g's sign)
        if eps is None:
            return (xp.where((x < 0) | (x > 1), xp.nan, d),)
        return (xp.where((x < eps) | (x > 1 - eps), 0, d),)


class NanToNum(Function):
    """NaN, +inf and -inf replaced; the gradient passes where the input was finite (PyTorch's
    ``grad * isfinite(x)``)."""

    reads = ((0,),)

    def forward(self, x, nan=0.0, posinf=None, neginf=None):
        xp = get_array_module(x)
        if x.dtype.kind not in "fc":
            return x.copy()
        self.finite = xp.isfinite(x)
        return xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        return (g * self.finite,)


class Sgn(_Step):
    reads = ((0, OUTPUT),)  # (PyTorch's sgn saves its input and result)
    supports_complex = True

    def forward(self, a, **params):
        self.a = a
        self.out = out = super().forward(a, **params)
        return out

    @staticmethod
    def compute(xp, a):
        return xp.where(xp.isnan(a), 0, xp.sign(a)).astype(a.dtype, copy=False)

    def backward_complex(self, g):
        """PyTorch's sgn_backward: ``(g - s Re(g conj(s))) / |z|`` (0 at 0), the part of ``g`` across ``s``."""
        xp = get_array_module(g)
        a, s = self.a, self.out
        r = xp.abs(a)
        with _quiet(xp):
            out = (g - s * (g * xp.conj(s)).real) / xp.where(r == 0, 1, r)
        return (xp.where(r == 0, xp.zeros((), dtype=out.dtype), out),)

    @staticmethod
    def integer(xp, a):
        return a.copy() if a.dtype.kind == "b" else xp.sign(a)


class Positive(Function):
    saves_tensors = False

    def forward(self, x):
        return x

    def backward(self, g):
        return (g,)


def _floats(name, cls):
    """The public function of a float-valued op: integer and bool inputs compute in the default float dtype."""

    def fn(input):  # noqa: A002 - PyTorch's name
        return cls.apply(float_input(input))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``torch.{name}``, elementwise, with PyTorch's gradient and dtype rules."
    return fn


sin, cos, tan = _floats("sin", Sin), _floats("cos", Cos), _floats("tan", Tan)
asin, acos, atan = _floats("asin", Asin), _floats("acos", Acos), _floats("atan", Atan)
sinh, cosh = _floats("sinh", Sinh), _floats("cosh", Cosh)
asinh, acosh, atanh = _floats("asinh", Asinh), _floats("acosh", Acosh), _floats("atanh", Atanh)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
log1p, expm1, log2, log10, exp2 = (_floats("log1p", Log1p), _floats("expm1", Expm1), _floats("log2", Log2),
                                   _floats("log10", Log10), _floats("exp2", Exp2))
erf, erfc, erfinv = _floats("erf", Erf), _floats("erfc", Erfc), _floats("erfinv", Erfinv)
rsqrt, reciprocal, sinc = _floats("rsqrt", Rsqrt), _floats("reciprocal", Reciprocal), _floats("sinc", Sinc)
deg2rad, rad2deg = _floats("deg2rad", Deg2rad), _floats("rad2deg", Rad2deg)


def _raw_dtype(input):  # noqa: A002
    return (input.data if isinstance(input, Tensor) else as_array(input)).dtype  # (a raw device array as it is)


def square(input):  # noqa: A002
    """``torch.square``: ``x * x``; integers stay integers and bool becomes int64, as PyTorch's."""
    if _raw_dtype(input).kind == "b":
        input = (input.data if isinstance(input, Tensor) else as_array(input)).astype(np.int64)
    return Square.apply(input)


def neg(input, *, out=None):  # noqa: A002
    """``torch.neg``: ``-x``; refused for bool (PyTorch's error: use ``~`` or ``logical_not`` on a mask).
    ``out``: PyTorch's rules (:mod:`.out_common`)."""
    from distnn.autograd.dtype_rules import refuse_bool_negation

    from .elementwise import Neg

    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("neg", neg, out, input, exact_dtype=True)

    refuse_bool_negation(input, arrays=True)

    return Neg.apply(input)


def negative(input, *, out=None):  # noqa: A002
    """``torch.negative``: :func:`neg` (``out``'s refusals under negative's name, autograd's under neg's)."""
    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("negative", neg, out, input, grad_name="neg", exact_dtype=True)
    return neg(input)


def positive(input):  # noqa: A002
    """``torch.positive``: the input itself (refused for bool, as PyTorch's)."""
    if _raw_dtype(input).kind == "b":
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input if isinstance(input, Tensor) else Positive.apply(input)


def sgn(input):  # noqa: A002
    """``torch.sgn``: the sign of real inputs, 0 at NaN (as PyTorch's); zero gradient; integers and bool keep
    their dtype."""
    return Sgn.apply(input)


def frac(input):  # noqa: A002
    """``torch.frac``: ``x - trunc(x)``, gradient 1; floating inputs only, as PyTorch's."""
    dtype = _raw_dtype(input)
    if dtype.kind not in "fc":
        raise NotImplementedError(f'"frac" not implemented for {dtype} (PyTorch\'s frac takes floating tensors)')
    return Frac.apply(input)


def logit(input, eps=None):  # noqa: A002
    """``torch.logit``: ``log(p / (1 - p))``, ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given."""
    return Logit.apply(float_input(input), eps=None if eps is None or eps < 0 else float(eps))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):  # noqa: A002
    """``torch.nan_to_num``: NaN to ``nan``, +inf to ``posinf`` and -inf to ``neginf`` (by default the dtype's
    largest and lowest finite values); integer and bool tensors come back unchanged."""
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


__all__ = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin",
           "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "log1p", "expm1", "log2", "log10", "exp2", "erf",
           "erfc", "erfinv", "rsqrt", "reciprocal", "square", "neg", "negative", "sgn", "frac", "logit", "sinc",
           "deg2rad", "rad2deg", "nan_to_num", "positive"]
