"""Graph backwards of the rest of the pointwise math and of the reductions and scans with a closed-form
gradient: the binary ops of ``pointwise_binary`` and ``pointwise_division`` (atan2, hypot, logaddexp(2), xlogy,
copysign, fmax/fmin, lerp, fmod/remainder, div with rounding), the step functions (sign, sgn,
round, floor, ceil, trunc: zero gradients), nan_to_num, positive, lgamma/digamma/igamma, var/std, logsumexp,
nanmean, median of every element, and prod/cumprod of inputs without zeros.

The binary ops' own ``grads(xp, g, a, b, out)`` formulas (PyTorch's derivatives.yaml) are evaluated on Tensors,
through :class:`_TensorXp`: the few ``xp`` functions they call, recorded where they are differentiable (exp,
log, power, where's branches) and constants where they are piecewise constant (isinf, isnan, trunc, floor
division: derivative zero almost everywhere, as PyTorch's).
"""
from __future__ import annotations

from distnn.autograd.complex_grad import conj
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional import elementwise as E
from distnn.functional import elementwise_choice as C
from distnn.functional import gamma_functions as GF
from distnn.functional import order_stats as OS
from distnn.functional import pointwise_binary as PB
from distnn.functional import pointwise_division as PD
from distnn.functional import pointwise_unary as U
from distnn.functional import reduce_more as RM
from distnn.functional import reduce_scan as RS
from distnn.functional import rounding as RO
from distnn.functional import variance as V
from distnn.functional._elementwise_common import _quiet
from distnn.functional._gamma_special import trigamma_array

from . import register, saved_input, saved_output, unsqueeze_to


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


class _TensorXp:
    """The ``xp`` functions the binary ops' ``grads`` call, on Tensors (see the module docstring)."""

    nan = float("nan")

    @staticmethod
    def where(cond, a, b):
        return C.where(_raw(cond), a, b)

    @staticmethod
    def exp(x):
        return E.exp(x) if isinstance(x, Tensor) else get_array_module(x).exp(x)

    @staticmethod
    def exp2(x):
        return _TensorXp.exp(x * 0.6931471805599453)

    @staticmethod
    def log(x):
        return E.log(x) if isinstance(x, Tensor) else get_array_module(x).log(x)

    @staticmethod
    def power(a, b):
        return a ** b

    @staticmethod
    def zeros_like(x):
        return x * 0.0

    @staticmethod
    def isinf(x):
        return get_array_module(_raw(x)).isinf(_raw(x))

    @staticmethod
    def isnan(x):
        return get_array_module(_raw(x)).isnan(_raw(x))

    @staticmethod
    def trunc(x):
        return get_array_module(_raw(x)).trunc(_raw(x))

    @staticmethod
    def floor_divide(a, b):
        return get_array_module(_raw(a), _raw(b)).floor_divide(_raw(a), _raw(b))


@register(PB._Binary)  # (Atan2, Hypot, LogAddExp(2), Xlogy, Copysign, Fmax/Fmin; Fmod, Remainder,
def _binary(node, g):  # RoundedDivide: their grads(xp, ...), on Tensors)
    a, b = saved_input(node, 0, node.a), saved_input(node, 1, node.b)
    out = saved_output(node, node.out) if node.out is not None else None
    with _quiet(get_array_module(g.data), over=True):
        ga, gb = node.grads(_TensorXp, g, a, b, out)
    na, nb = node.needs_input_grad
    return (ga if na else None), (gb if nb else None)


@register(GF.Igamma)
def _igamma(node, g):
    x = saved_input(node, 1, node.b)
    a = node.a  # (a constant: the derivative in the shape is refused, as PyTorch's)
    return None, g * E.exp((a - 1) * E.log(x) - x - GF.lgamma_array(a))


_igamma.unsupported = lambda node: (
    "the derivative for 'igamma' with respect to input (the shape) is not implemented, as in PyTorch"
    if node.needs_input_grad[0] else None)


@register(PB.Lerp, complex_ok=True)
def _lerp(node, g):
    ns, ne, nw = node.needs_input_grad
    if node.weight is None:  # (a number weight, all the node keeps: PyTorch's lerp.Scalar)
        w = conj(node.given)
        return (g * (1 - w) if ns else None), (g * w if ne else None), None
    start, end = saved_input(node, 0, node.start), saved_input(node, 1, node.end)
    w = conj(saved_input(node, 2, node.weight))  # (complex: the conjugated factors, as Lerp.backward's)
    return (g * (1 - w) if ns else None), (g * w if ne else None), (g * conj(end - start) if nw else None)


@register(RO._Step)  # (Round, Floor, Ceil, Trunc, Sign, Sgn: zero gradients)
def _step(node, g):
    return (g * 0.0,)


@register(U.Positive)
def _positive(node, g):
    return (g,)


@register(U.NanToNum)
def _nan_to_num(node, g):
    return (g * node.finite,)


@register(GF.Lgamma)
def _lgamma(node, g):
    return (g * GF.Digamma.apply(saved_input(node, 0, node.x)),)


class Trigamma(Function):
    """``polygamma(1, x)``, digamma's derivative, as an op (its own derivative, polygamma(2, x), distnn has not:
    a third derivative through digamma is refused by name)."""

    saves_tensors = False

    def forward(self, x):
        with _quiet(get_array_module(x), over=True):
            return trigamma_array(x)

    def backward(self, g):
        raise NotImplementedError("the derivative of polygamma(1, x) (digamma's second derivative, polygamma(2, x)) "
                                  "is not implemented in distnn")


@register(GF.Digamma)
def _digamma(node, g):
    return (g * Trigamma.apply(saved_input(node, 0, node.x)),)


@register(V.Var)
def _var(node, g):
    x = saved_input(node, 0, node.centered)  # (the input's parent; the centered array stands for its value)
    centered = x - x.mean(dim=node.axes, keepdim=True) if isinstance(x, Tensor) else node.centered
    return (_var_backward(node, unsqueeze_to(g, node.axes, node.keepdims), centered),)


def _var_backward(node, gk, centered):
    """PyTorch's var_backward on Tensors (see Var._var_backward: inf and NaN where PyTorch's give them)."""
    if node.full and node.dof <= 0:
        xp = get_array_module(node.centered)
        with _quiet(xp):
            same = (node.centered == 0) | (xp.isnan(node.centered) & xp.isinf(node.mean))
        return gk * Tensor(xp.where(same, node.centered.dtype.type("nan"), node.centered.dtype.type("inf")))
    return gk * (2.0 / node.dof if node.dof else float("inf")) * centered


@register(V.Std)
def _std(node, g):
    x = saved_input(node, 0, node.centered)
    centered = x - x.mean(dim=node.axes, keepdim=True)
    s = saved_output(node, node.s.reshape(_out_shape(node.s, node.axes, node.keepdims)))
    s = unsqueeze_to(s, node.axes, node.keepdims)
    gk = unsqueeze_to(g, node.axes, node.keepdims)
    zero = node.s == 0  # (PyTorch's std_backward: grad / (2 std), 0 where std is 0, then var_backward)
    return (_var_backward(node, C.where(zero, 0.0, gk / (C.where(zero, 1.0, s) * 2)), centered),)


def _out_shape(kept, axes, keepdims):
    return kept.shape if keepdims else tuple(n for i, n in enumerate(kept.shape) if i not in axes)


@register(RM.LogSumExp)
def _logsumexp(node, g):
    x = saved_input(node, 0, node.a)
    out = saved_output(node, node.out.reshape(_out_shape(node.out, node.axes, node.keepdim or not node.a.ndim)))
    keep = node.keepdim or not node.a.ndim
    return (unsqueeze_to(g, node.axes, keep) * E.exp(x - unsqueeze_to(out, node.axes, keep)),)


@register(RS.NanMean)
def _nanmean(node, g):
    with _quiet(get_array_module(g.data)):  # (0 / 0 where a slice holds no number: NaN, as the forward)
        return (unsqueeze_to(g / node.count.reshape(g.shape), node.axes, node.keepdim) * node.keep.astype(g.dtype),)


@register(OS.MedianAll)
def _median_all(node, g):
    xp = get_array_module(node.a)
    same = (node.a == node.out) | (xp.isnan(node.a) & bool(xp.isnan(node.out)))
    return (g * (same / max(int(same.sum()), 1)),)


@register(RM.Prod)
def _prod(node, g):
    # (no zero in the input, see _prod.unsupported: the product of the others is out / x)
    x = saved_input(node, 0, node.a)
    out = saved_output(node, get_array_module(node.a).asarray(node.out))
    if node.dim is not None and not node.keepdim and node.a.ndim:
        g, out = g.unsqueeze(node.dim), out.unsqueeze(node.dim)
    return (g * out / x,)


def _zero_input(name):
    def check(node):
        if bool((node.a == 0).any()):
            return (f"{name} of an input holding zeros has no differentiable backward in distnn (only its first "
                    "derivative is exact there)")
        return None
    return check


_prod.unsupported = _zero_input("prod")


@register(RS.CumProd)
def _cumprod(node, g):
    x = saved_input(node, 0, node.a)
    d = node.dim
    return ((g * saved_output(node, node.out)).flip(d).cumsum(d).flip(d) / x,)


_cumprod.unsupported = _zero_input("cumprod")
