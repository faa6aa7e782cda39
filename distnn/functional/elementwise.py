"""Elementwise arithmetic (+, -, *, /, **, negation) and exp/log/sqrt/abs, with their public wrappers.

Broadcasting is handled by the engine: a backward may return a gradient of the
output's (broadcast) shape and ``engine.sum_to_shape`` reduces it.

The rest of what was here has modules of their own, every name importable from here as before:
matmul (:mod:`.matrix_multiply`), maximum/minimum/clamp/where (:mod:`.elementwise_choice`),
cast/device copy/clone (:mod:`.copy_ops`) and the shared helpers (:mod:`._elementwise_common`).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.complex_grad import conj as _conj
from distnn.autograd.dtype_rules import refuse_bool_negation, refuse_bool_subtraction
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import _elementwise_common as _common, elementwise_choice as _choice, matrix_multiply as _matrix_multiply
from ._elementwise_common import _check_broadcast, _quiet, float_input  # noqa: F401 - (importable from here too)
from .out_common import unary_into_out as _unary_out
from .copy_ops import Cast, Clone, ToDevice, integer_cast
from .half_scalar_opmath import half_over_number, half_times_number, is_half_with_number, times_number
from .elementwise_choice import Clip, Maximum, Minimum, Where, clamp, clamp_node, clip, maximum, minimum, where
from .matrix_multiply import MatMul, matmul
from .pow_forms import _c_pow, _integer_power, _number_pow, _rsqrt, sqrt_array  # noqa: F401 - (importable here)
from .rounding import real_sign
from .torch_layout import torch_layout

__all__ = ["Add", "Sub", "Rsub", "Mul", "Div", "Pow", "PowConstant", "NumberPow", "ReciprocalScaled", "Neg", "Exp",
           "Log", "Sqrt", "Abs", "add", "sub", "mul", "div", "pow", "neg", "float_input", "exp", "log", "sqrt", "abs",
           # (from the modules split out of this one)
           "Cast", "Clone", "ToDevice", "integer_cast", "Clip", "Maximum", "Minimum", "Where", "clamp", "clip",
           "maximum", "minimum", "where", "MatMul", "matmul"]
_NUMBERS = (int, float)  # (the Python numbers PyTorch's float16 mul/div read as float32: half_scalar_opmath)
# (private helpers, importable from here as before: Tensor's operators use _on_device, several ops _quiet)
_shape, _on_device, _Select, _f_only = _common._shape, _common._on_device, _choice._Select, _matrix_multiply._f_only


class Add(Function):
    torch_name = "AddBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, b):
        try:
            return torch_layout(a + b, a, b)
        except ValueError:
            _check_broadcast(a, b, "+")
            raise

    def backward(self, g):
        return g, g


class Sub(Function):
    torch_name = "SubBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, b):
        try:
            return torch_layout(a - b, a, b)
        except ValueError:
            _check_broadcast(a, b, "-")
            raise
        except TypeError:  # (numpy refuses bool - bool: PyTorch's error instead)
            refuse_bool_subtraction(a, b, arrays=True)
            raise

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Rsub(Sub):
    """``number - x`` (``x.__rsub__``): PyTorch's rsub node."""

    torch_name = "RsubBackward1"


class Mul(Function):
    torch_name = "MulBackward0"
    reads = ((1,), (0,))  # (``reads``: what each input's gradient reads, as PyTorch saves it; see Function)
    supports_complex, conj_saved = True, ("a", "b")  # (complex: grad * conj(b), see autograd.complex_grad)

    def forward(self, a, b):
        self.a, self.b = (a if self.needs_input_grad[1] else None), (b if self.needs_input_grad[0] else None)
        if type(b) in _NUMBERS or type(a) in _NUMBERS:  # (a float16 array by a number: float32, PyTorch's opmath)
            if is_half_with_number(a, b) or is_half_with_number(b, a):
                return torch_layout(half_times_number(a, b) if type(b) in _NUMBERS else half_times_number(b, a), a, b)
        try:
            return torch_layout(a * b, a, b)
        except ValueError:
            _check_broadcast(a, b, "*")
            raise

    def backward(self, g):
        na, nb = self.needs_input_grad  # (a number beside a float16 gradient: in float32, as PyTorch's mul)
        return (times_number(g, self.b) if na else None), (times_number(g, self.a) if nb else None)


class Div(Function):
    torch_name = "DivBackward0"
    # Reads its inputs, not its output (PyTorch's formula): ``t /= w`` then ``t += 1`` backpropagates, as there.
    reads = ((1,), (0, 1))
    supports_complex, conj_saved = True, ("a", "b")  # (g / conj(b), -g conj(a / b^2))

    def forward(self, a, b):
        try:
            with _quiet(get_array_module(a, b)):  # (x / 0 is inf or NaN, as PyTorch's, without numpy's warnings)
                out = half_over_number(a, b) if type(b) in _NUMBERS and is_half_with_number(a, b) else a / b  # (opmath)
        except ValueError:
            _check_broadcast(a, b, "/")
            raise
        self.a, self.b = (a if self.needs_input_grad[1] else None), b
        return torch_layout(out, a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        with _quiet(get_array_module(g)):  # (a division by 0 again: inf/NaN gradients, as PyTorch's, silently)
            ga = (half_over_number(g, self.b) if is_half_with_number(g, self.b) else g / self.b) if na else None
            gb = -g * (self.a / self.b) / self.b if nb else None
        return ga, gb


class Pow(Function):
    """``a ** b`` with a Tensor exponent, or a constant base (``2.0 ** x``).

    As PyTorch: a number exponent (:class:`PowConstant`) takes its special forms, ``sqrt`` for 0.5 (-0.0 at
    -0.0, NaN at -inf), ``rsqrt`` for -0.5, ``x * x`` for 2...; a tensor exponent or a number base takes C's
    ``pow`` everywhere (``pow(-0.0, 0.5)`` is +0.0, ``pow(-inf, 0.5)`` inf), forward and in the gradient."""

    torch_name = "PowBackward1"
    reads = ((0, 1, OUTPUT), (0, 1, OUTPUT))  # (PyTorch's pow.Tensor_Tensor keeps its result in either case)

    def _number_exponent(self):
        """PyTorch's pow(Tensor, Scalar): a number exponent (an array constant is a tensor to PyTorch)."""
        return type(self) is PowConstant and getattr(self.b, "ndim", 0) == 0

    def forward(self, a, b):
        self.a, self.b = a, b
        xp = get_array_module(a, b)
        number = self._number_exponent()
        try:
            with _quiet(xp, over=True):  # (0 ** -1 and 1e-30 ** -2 are inf, as PyTorch's, without numpy's warnings)
                if number:  # (numpy's ** already takes PyTorch's sqrt for 0.5, x * x for 2 and 1 / x for -1)
                    out = _number_pow(a, b)
                else:
                    out = _c_pow(xp, a, b)
        except (ValueError, OverflowError) as e:  # (OverflowError: numpy's uint8 ** -1)
            _check_broadcast(a, b, "**")
            if type(self) is PowConstant and isinstance(b, numbers.Integral) and b < 0:
                # (PyTorch refuses a negative number as an integer tensor's exponent)
                raise RuntimeError("Integers to negative integer powers are not allowed.") from None
            if "negative integer powers" not in str(e):
                raise
            out = _integer_power(a, b)  # (but computes one with a tensor exponent, as numpy does not)
        self.out = out if self.needs_input_grad[1] or out.dtype.kind == "c" else None
        return out

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = gb = None
        xp = get_array_module(a, b)  # (not a's alone: a number base, 2.0 ** x, would mean numpy for cupy data)
        with _quiet(xp):  # (inf and NaN gradients at 0 and below, as PyTorch's, without numpy's warnings)
            if na and self._number_exponent():  # PyTorch's pow_backward: grad * (b * a^(b-1)), its scalar pow
                if b == 0:
                    ga = xp.zeros_like(g)
                else:  # (x ** 0.5: 0.5 * rsqrt(x), -inf at -0.0, as PyTorch; float16: C's pow, +inf)
                    d = _number_pow(a, b - 1)
                    ga = g * (b * d)
            elif na:  # pow_backward_self: 0 where b is 0 (also at a = 0, where b * a^(b-1) would be 0 * inf)
                ga = xp.where(b == 0, xp.zeros((), dtype=g.dtype), g * (b * _c_pow(xp, a, b - 1)))
            if nb:  # pow_backward_exponent: a^b log(a); 0 for a = 0 and b >= 0; NaN for a < 0, as PyTorch
                mask = (a == 0) & (b >= 0)
                gb = g * xp.where(mask, xp.zeros((), dtype=g.dtype), self.out * xp.log(a))
        return ga, gb

    supports_complex = True

    def backward_complex(self, g):
        """PyTorch's pow_backward_self/_exponent for complex: the conjugated derivatives, 0 where ``b`` is 0
        (self) and where ``a`` is 0 with ``b`` real and >= 0 (exponent)."""
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        xp = get_array_module(g)
        ga = gb = None
        with _quiet(xp, over=True):
            b_arr = xp.asarray(b)
            if na:
                ga = g * _conj(b * xp.power(a, b - 1))
                ga = xp.where(b_arr == 0, xp.zeros((), dtype=ga.dtype), ga)
            if nb:
                a_arr = xp.asarray(a).astype(self.out.dtype)  # (the log of a negative real base is complex)
                real_b = (b_arr.real >= 0) & (b_arr.imag == 0) if b_arr.dtype.kind == "c" else b_arr >= 0
                gb = g * xp.where((a_arr == 0) & real_b, xp.zeros((), dtype=self.out.dtype),
                                  _conj(self.out * xp.log(a_arr)))
        return ga, gb


class PowConstant(Pow):
    """``a ** c`` with a constant exponent (``x ** 2``): its gradient reads ``a`` only, as PyTorch's."""

    torch_name = "PowBackward0"
    reads = ((0,), ())
    number_inputs = (1,)  # (pow.Tensor_Scalar: one edge, the base's)


class NumberPow(Pow):
    """``number ** x`` (``x.__rpow__``): PyTorch's pow(Scalar, Tensor) node."""

    torch_name = "PowBackward2"
    number_inputs = (0,)  # (pow.Scalar: one edge, the exponent's)


class ReciprocalScaled(Function):
    """``c / a`` for a constant ``c``, as PyTorch computes it: ``reciprocal(a) * c``, whose backward reads
    the reciprocal, its own array. So ``z = 3.0 / y; y += 1`` backpropagates, as in PyTorch (a ``Div``
    would read ``y``)."""

    saves_tensors = False
    supports_complex, conj_saved = True, ("r", "c")

    def forward(self, a, c):
        with _quiet(get_array_module(a)):  # (c / 0 is inf or NaN, as PyTorch's, without numpy's warnings)
            self.r, self.c = 1 / a, c
            return half_times_number(self.r, c) if is_half_with_number(self.r, c) else self.r * c  # (opmath)

    def backward(self, g):
        r = self.r
        with _quiet(get_array_module(g)):  # (0 * inf at a = 0: NaN, as PyTorch's)
            return (-times_number(g, self.c) * (r * r),)


class Neg(Function):
    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "NegBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a):
        try:
            return -a
        except TypeError:  # (numpy refuses -mask too: PyTorch's error instead)
            refuse_bool_negation(a, arrays=True)
            raise

    def backward(self, g):
        return (-g,)


class Exp(Function):
    torch_name = "ExpBackward0"
    reads = ((OUTPUT,),)
    supports_complex, conj_saved = True, ("out",)

    def forward(self, a):
        xp = get_array_module(a)
        self.out = xp.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    torch_name = "LogBackward0"
    reads = ((0,),)
    supports_complex, conj_saved = True, ("a",)

    def forward(self, a):
        self.a = a
        xp = get_array_module(a)
        with _quiet(xp):  # (log(0) = -inf, log(-1) = NaN, as PyTorch's, without numpy's warnings)
            return xp.log(a)

    def backward(self, g):
        with _quiet(get_array_module(g)):  # (1 / 0 at a = 0: inf, as PyTorch's)
            return (g / self.a,)


class Sqrt(Function):
    torch_name = "SqrtBackward0"
    reads = ((OUTPUT,),)
    supports_complex, conj_saved = True, ("out",)

    def forward(self, a):
        self.out = sqrt_array(a)  # (sqrt(-1) = NaN with PyTorch's sign, without numpy's warning)
        return self.out

    def backward(self, g):
        with _quiet(get_array_module(g)):  # (1 / 0 at a = 0: inf, as PyTorch's)
            return (g / (2 * self.out),)


class Abs(Function):
    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "AbsBackward0"
    reads = ((0,),)  # (backward reads its own sign array; the input is PyTorch's, so both refuse a change of it)
    supports_complex = True  # (xp.sign of a complex z is z / |z|, 0 at 0: PyTorch's sgn, its abs gradient)

    def forward(self, a):
        xp = get_array_module(a)
        kind = a.dtype.kind
        if kind == "b":  # (PyTorch's abs kernel has no bool loop)
            raise NotImplementedError(f"\"abs_{'cpu' if xp is np else 'cuda'}\" not implemented for 'Bool'")
        # (the gradient is PyTorch's grad * sgn(a): 0 at NaN for a real a, where numpy's sign gives NaN)
        self.sign = real_sign(xp, a) if kind == "f" else xp.sign(a)
        return xp.abs(a)

    def backward(self, g):
        return (g * self.sign,)


# ---------------------------------------------------------------- public wrappers
# With a Tensor operand these are the operators, typed as PyTorch types them (a float32 tensor stays
# float32 beside a numpy float64 scalar or an integer tensor: see distnn.autograd.dtype_rules).
def add(a, b):
    return a + b if isinstance(a, Tensor) or isinstance(b, Tensor) else Add.apply(a, b)


def sub(a, b):
    return a - b if isinstance(a, Tensor) or isinstance(b, Tensor) else Sub.apply(a, b)


def mul(a, b):
    return a * b if isinstance(a, Tensor) or isinstance(b, Tensor) else Mul.apply(a, b)


def div(a, b):
    return a / b if isinstance(a, Tensor) or isinstance(b, Tensor) else Div.apply(a, b)


def pow(a, b):  # noqa: A001 - numpy/torch name
    return a ** b if isinstance(a, Tensor) or isinstance(b, Tensor) else Pow.apply(a, b)


def neg(a):
    return Neg.apply(a)


def exp(a, *, out=None):
    """``torch.exp``; ``out``: PyTorch's rules (:func:`.out_common.unary_into_out`)."""
    return Exp.apply(float_input(a)) if out is None else _unary_out("exp", Exp, a, out)


def log(a, *, out=None):
    """``torch.log``; ``out``: PyTorch's rules (:func:`.out_common.unary_into_out`)."""
    return Log.apply(float_input(a)) if out is None else _unary_out("log", Log, a, out)


def sqrt(a, *, out=None):
    """``torch.sqrt``; ``out``: PyTorch's rules (:func:`.out_common.unary_into_out`)."""
    return Sqrt.apply(float_input(a)) if out is None else _unary_out("sqrt", Sqrt, a, out)


def abs(a, *, out=None):  # noqa: A001
    """``torch.abs``; ``out``: PyTorch's rules (:mod:`.out_common`): of the input's dtype exactly (``abs``'s
    structured kernel casts nothing), but for a complex input, whose real result is cast into ``out`` where
    ``canCast`` allows it."""
    if out is None:
        return Abs.apply(a)
    from .out_common import pointwise_into_out

    kind = a.dtype.kind if getattr(a, "dtype", None) is not None else None
    return pointwise_into_out("abs", Abs.apply, out, a, exact_dtype=kind != "c",
                              result_dtype="bool" if kind == "b" else None)  # (refused by its kernel after out's)
