"""Graph backwards of the pointwise ops: arithmetic, pow, exp/log/sqrt/abs, the trigonometric family and the
rest of ``pointwise_unary``'s math whose derivative is exp/sqrt arithmetic (log1p, expm1, erf, rsqrt...),
sinc, logit, maximum/minimum/clamp/where. Each is its op's ``backward`` written with recorded Tensor ops (the saved
masks and weights stay constants: their derivative is zero almost everywhere, as PyTorch's)."""
from __future__ import annotations

import math

from distnn.functional import elementwise as E
from distnn.functional import elementwise_choice as C
from distnn.functional import pointwise_unary as U

from distnn.autograd.complex_grad import conj
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import recorded, register, saved_input, saved_output, zero_link


def _where(cond, a, b):
    return C.where(cond, a, b)


@register(E.Add, complex_ok=True)
def _add(node, g):
    return g, g


@register(E.Sub, complex_ok=True)
def _sub(node, g):
    return g, (-g if node.needs_input_grad[1] else None)


@register(E.Neg, complex_ok=True)
def _neg(node, g):
    return (-g,)


@register(E.Mul, complex_ok=True)
def _mul(node, g):
    na, nb = node.needs_input_grad
    return ((g * conj(saved_input(node, 1, node.b)) if na else None),
            (g * conj(saved_input(node, 0, node.a)) if nb else None))


@register(E.Div)
def _div(node, g):
    na, nb = node.needs_input_grad
    b = saved_input(node, 1, node.b)
    ga = g / b if na else None
    gb = -g * (saved_input(node, 0, node.a) / b) / b if nb else None
    return ga, gb


@register(E.Pow)  # (PowConstant too: its exponent is then a constant)
def _pow(node, g):
    """The op's backward (PyTorch's pow_backward_self/_exponent), recorded: a number exponent's ``a ** (b - 1)``
    is PyTorch's scalar pow (sqrt, rsqrt... forms), a tensor exponent's C's pow (E.Pow, whatever ``b`` is)."""
    na, nb = node.needs_input_grad
    a, b = saved_input(node, 0, node.a), saved_input(node, 1, node.b)
    b_raw = node.b
    ga = gb = None
    if na:
        if node._number_exponent() and b_raw == 0:  # (PyTorch's zeros, +0.0 whatever g is)
            ga = _where(get_array_module(g.data).ones((), dtype=bool), 0.0, g)
        elif node._number_exponent():  # a number exponent, as x ** 2
            ga = g * (b_raw * a ** (b_raw - 1))
        else:  # d(a^0)/da is 0, also at a = 0 (the op's own mask)
            ga = _where(b_raw == 0, 0.0, g * (b * E.Pow.apply(a, b - 1)))
    if nb:
        out = saved_output(node, node.out)
        a_raw = node.a
        xp = get_array_module(node.out)
        zero = (xp.asarray(a_raw) == 0) & (b_raw >= 0)  # (0 ** b for b >= 0: 0; a < 0: NaN, log's)
        if isinstance(a, Tensor):
            gb = g * _where(zero, 0.0, out * E.log(a))
        else:  # a constant base (2.0 ** x): log(a) is a constant too
            with E._quiet(xp):
                gb = g * _where(zero, 0.0, out * xp.log(xp.asarray(a_raw)))
    return ga, gb


@register(E.ReciprocalScaled)
def _reciprocal_scaled(node, g):
    # r = 1/a as a node of its own (c = 1) on a's producer: its backward is -g r^2, d(1/a)/da
    r = recorded(E.ReciprocalScaled, node.parents, node.input_shapes[:1], node.r, r=node.r, c=1)
    return (-(g * node.c) * (r * r),)


@register(E.Exp, complex_ok=True)
def _exp(node, g):
    return (g * conj(saved_output(node, node.out)),)


@register(E.Log)
def _log(node, g):
    return (g / saved_input(node, 0, node.a),)


@register(E.Sqrt)
def _sqrt(node, g):
    return (g / (2 * saved_output(node, node.out)),)


@register(E.Abs)
def _abs(node, g):
    return (zero_link(g * node.sign, node, 0),)


class _TensorMath:
    """The few ``xp`` functions the trigonometric derivative formulas call, on Tensors (recorded)."""

    sin, cos, sinh, cosh, sqrt, exp = U.sin, U.cos, U.sinh, U.cosh, E.sqrt, E.exp


@register(U.Sin, U.Cos, U.Tan, U.Asin, U.Acos, U.Atan, U.Sinh, U.Cosh, U.Asinh, U.Acosh, U.Atanh, U.Log1p, U.Expm1,
          U.Log2, U.Log10, U.Exp2, U.Erf, U.Erfc, U.Erfinv, U.Rsqrt, U.Reciprocal, U.Square, U.Frac, U.Deg2rad,
          U.Rad2deg)
def _unary(node, g):
    # the op's own derivative formula (PyTorch's derivatives.yaml), evaluated on Tensors instead of arrays
    x, y = saved_input(node, 0, node.x), saved_output(node, node.out)
    return (g * node.derivative(_TensorMath, x, y),)


@register(C.Maximum, C.Minimum)
def _select(node, g):
    ga = zero_link(zero_link(g * node.wa, node, 0), node, 1) if node.wa is not None else None
    gb = zero_link(zero_link(g * node.wb, node, 0), node, 1) if node.wb is not None else None
    return ga, gb


@register(C.Clip)
def _clip(node, g):
    na, nlo, nhi = node.needs_input_grad
    return (zero_link(_where(node.mask, g, 0.0), node, 0) if na else None,
            _where(node.mask_lo, g, 0.0) if nlo else None, _where(node.mask_hi, g, 0.0) if nhi else None)


@register(C.Where)
def _where_backward(node, g):
    _, na, nb = node.needs_input_grad
    return None, (_where(node.cond, g, 0.0) if na else None), (_where(node.cond, 0.0, g) if nb else None)


@register(U.Sinc)
def _sinc(node, g):
    # PyTorch's sinc_backward, composed as it composes it: ((pi x) cos(pi x) - sin(pi x)) / (x^2 pi), 0 where
    # x^2 pi is 0 (the where picks the constant: the quotient's NaN there gets a zero gradient)
    x = saved_input(node, 0, node.x)
    px = x * math.pi
    squared = x * x * math.pi
    zero = (node.x * node.x * math.pi) == 0
    return (C.where(zero, 0.0, g * (px * U.cos(px) - U.sin(px)) / C.where(zero, 1.0, squared)),)


@register(U.Logit)
def _logit(node, g):
    # PyTorch's infinitely_differentiable_logit_backward: g / (x (1 - x)) inside [0, 1] (or [eps, 1 - eps]),
    # outside NaN without eps and 0 with it
    x = saved_input(node, 0, node.x)
    raw, eps = node.x, node.eps
    if eps is None:
        inside, fill = (raw >= 0) & (raw <= 1), float("nan")
    else:
        inside, fill = (raw >= eps) & (raw <= 1 - eps), 0.0
    return (C.where(inside, g / (x * (1 - x)), fill),)
