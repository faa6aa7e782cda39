"""More of PyTorch's activations: silu, mish, hardtanh/relu6, hardswish, hardsigmoid, selu, celu, softsign,
tanhshrink, softshrink, hardshrink, threshold, glu, softmin, prelu.

Each follows PyTorch's definition, including its gradient at the kinks (hardtanh's is 0 at both bounds,
hardswish's 0 at x = -3 and 1 at x = 3, threshold's 0 at the threshold) and how a NaN passes, and
declares in ``reads`` what PyTorch's saves (the input for most), so that both refuse the same in-place
changes before backward (see ``Function.reads``).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._dims import wrap_dim
from ._fresh import constant, fresh_float
from .activation import _LAST, Softmax, _softmax_dim, sigmoid_array, softplus_array
from .activation_elu import CELU, ScaledELU  # noqa: F401 - (selu's and celu's nodes)
from .elementwise import float_input
from .half_activation_opmath import at_or_below_cut, threshold_value
from .in_place_activation import apply_activation, refuse_integers
from .rounding import real_sign

SIXTH_F32 = 0.1666666716337204  # float(numpy.float32(1 / 6)): PyTorch's CPU kernel's factor, in every dtype

# SELU's constants (Klambauer et al.), as PyTorch's to the digit
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class SiLU(Function):
    """x sigmoid(x) (swish). Gradient s (1 + x (1 - s)), s = sigmoid(x), PyTorch's form, s recomputed in backward:
    the node keeps the input alone, as PyTorch's (in place too, a copy made before the write)."""

    torch_name = "SiluBackward0"
    reads = ((0,),)
    float_kernel = "silu"

    def forward(self, x):
        self.x = x
        s = sigmoid_array(x)
        return get_array_module(x).multiply(x, s, out=s) if fresh_float(x) else x * s

    def backward(self, g):
        x = self.x
        # PyTorch's silu_backward, sigmoid as 1 / (1 + e^-x): fewer passes than the forward's two-tailed form, and
        # exact in both tails but below x = -88 (float32), where e^-x is inf and sigmoid 0, and so is torch's
        xp = get_array_module(x)
        if not fresh_float(x):
            s = 1 / (1 + xp.exp(-x))
            return (g * s * (1 + x * (1 - s)),)
        one = constant(1, x)  # (the same steps in place on fresh temporaries: recomputing s costs less)
        s = xp.negative(x)
        xp.exp(s, out=s)
        xp.add(s, one, out=s)
        xp.true_divide(one, s, out=s)
        grad = g * s
        xp.subtract(one, s, out=s)
        xp.multiply(x, s, out=s)
        xp.add(s, one, out=s)
        return (xp.multiply(grad, s, out=grad),)


class Mish(Function):
    """x tanh(softplus(x)); softplus formed stably (it is linear, not inf, for large x). The node keeps the input
    alone, as PyTorch's: backward recomputes tanh(softplus(x))."""

    torch_name = "MishBackward0"
    reads = ((0,),)
    float_kernel = "mish"

    def forward(self, x):
        self.x = x
        return x * get_array_module(x).tanh(softplus_array(x))

    def backward(self, g):
        # PyTorch's mish_backward: tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), with its fewer passes, sigmoid as
        # 1 / (1 + e^-x) and softplus as log1p(e^x) (inf above x = 88 in float32, where tanh of it is 1, as torch's)
        xp = get_array_module(g)
        x = self.x
        s = 1 / (1 + xp.exp(-x))
        t = xp.tanh(xp.log1p(xp.exp(x)))
        return (g * (t + x * s * (1 - t * t)),)


class Hardtanh(Function):
    """clamp(x, min_val, max_val); the gradient passes strictly inside only (0 at either bound, PyTorch's
    hardtanh_backward), and passes at a NaN (no comparison holds). The node keeps the input, as PyTorch's."""

    torch_name = "HardtanhBackward0"
    reads = ((0,),)

    def forward(self, x, min_val=-1.0, max_val=1.0):
        xp = get_array_module(x)
        self.x, self.min_val, self.max_val = x, min_val, max_val
        return xp.minimum(xp.maximum(x, x.dtype.type(min_val)), x.dtype.type(max_val))

    def stops(self):
        """Where the gradient stops: at and beyond either bound."""
        x = self.x
        return (x <= self.min_val) | (x >= self.max_val)

    def backward(self, g):
        return (get_array_module(g).where(self.stops(), 0, g),)


class Hardswish(Function):
    """x relu6(x + 3) / 6. Gradient: 0 up to -3, x / 3 + 0.5 inside (-3, 3), 1 from 3 on (PyTorch's ends)."""

    torch_name = "HardswishBackward0"
    reads = ((0,),)
    float_kernel = "hardswish"  # (in place, its node too: it keeps x alone, as PyTorch's hardswish_)

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return x * xp.minimum(xp.maximum(x + 3, 0), 6) / 6

    def backward(self, g):
        xp = get_array_module(g)
        x = self.x
        return (xp.where(x <= -3, 0, xp.where(x < 3, g * (x / 3 + 0.5), g)),)


class Hardsigmoid(Function):
    """relu6(x + 3) / 6. Gradient 1/6 strictly inside (-3, 3), else 0 (PyTorch's); the node keeps the input."""

    torch_name = "HardsigmoidBackward0"
    reads = ((0,),)
    float_kernel = "hardsigmoid"

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return xp.minimum(xp.maximum(x + 3, 0), 6) / 6

    def passes(self):
        """Where the gradient passes: strictly inside (-3, 3)."""
        return (self.x > -3) & (self.x < 3)

    def backward(self, g):
        # (PyTorch's CPU kernel multiplies by 1/6 rounded to float32, in every dtype: so do we)
        return (get_array_module(g).where(self.passes(), g * SIXTH_F32, 0),)


class Softsign(Function):
    """x / (1 + |x|); gradient 1 / (1 + |x|)^2, computed as PyTorch's composed op computes it."""

    reads = ((0,),)  # (PyTorch's, composed, saves x for abs and the division)

    def forward(self, x):
        xp = get_array_module(x)
        self.d = 1 + xp.abs(x)
        self.x = x  # (for its graph backward, create_graph=True: the sign of x is not in d)
        return x / self.d

    def backward(self, g):
        # PyTorch's, composed (x / (|x| + 1)): the division's two gradients, the second through abs's sign,
        # so that the gradient is NaN at +-inf (inf / inf) as PyTorch's, and its finite values bit for bit
        d = self.d
        return (g / d - g * (self.x / d / d) * real_sign(get_array_module(d), self.x),)


class Tanhshrink(Function):
    """x - tanh(x); gradient tanh(x)^2."""

    reads = ((),)  # (PyTorch's, composed, saves only tanh's result: a change of x in place afterwards is fine)

    def forward(self, x):
        self.t = get_array_module(x).tanh(x)
        return x - self.t

    def backward(self, g):
        return (g * self.t * self.t,)


class Shrink(Function):
    """softshrink (x -+ lambd outside [-lambd, lambd], ``soft``) or hardshrink (x there); 0 inside. The
    gradient is 0 on [-lambd, lambd], ends included (PyTorch's)."""

    reads = ((0,),)

    def forward(self, x, lambd=0.5, soft=True):
        xp = get_array_module(x)
        self.inside = (x >= -lambd) & (x <= lambd)
        if soft:
            out = xp.where(x > lambd, x - lambd, xp.where(x < -lambd, x + lambd, 0))
            return xp.where(xp.isnan(x), x, out).astype(x.dtype, copy=False)  # (NaN stays NaN, as PyTorch's)
        return xp.where(self.inside, 0, x).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        return (xp.where(self.inside, 0, g),)


class Softshrink(Shrink):
    torch_name = "SoftshrinkBackward0"


class Hardshrink(Shrink):
    torch_name = "HardshrinkBackward0"


class Threshold(Function):
    """x where x > threshold, else value; gradient 0 where x <= threshold (a NaN passes both). The node keeps the
    input, as PyTorch's."""

    torch_name = "ThresholdBackward0"
    reads = ((0,),)

    def forward(self, x, threshold=0.0, value=0.0):
        self.x, self.threshold = x, threshold
        return get_array_module(x).where(at_or_below_cut(x, threshold), threshold_value(x.dtype, value), x)

    def stops(self):
        """Where the gradient stops: at and below the threshold (compared as the forward does)."""
        return at_or_below_cut(self.x, self.threshold)

    def backward(self, g):
        return (get_array_module(g).where(self.stops(), 0, g),)


class ThresholdInPlace(Threshold):
    """threshold_'s node: the same, under PyTorch's other name (a copy of the input made before the write)."""

    torch_name = "ThresholdBackward1"


Threshold.in_place_form = ThresholdInPlace


class GLU(Function):
    """a sigmoid(b), with a and b the halves of ``dim``."""

    torch_name = "GluBackward0"
    reads = ((0,),)

    def forward(self, x, dim=-1):
        xp = get_array_module(x)
        self.a, b = xp.split(x, 2, axis=dim)
        self.x = x  # (a's base anyway: the graph backward's input)
        self.s, self.dim = sigmoid_array(b), dim
        return self.a * self.s

    def backward(self, g):
        xp = get_array_module(g)
        s = self.s
        return (xp.concatenate([g * s, g * self.a * s * (1 - s)], axis=self.dim),)


class PReLU(Function):
    """max(0, x) + a * min(0, x) with a learned slope per channel (dim 1) or one shared slope."""

    # x's gradient reads the slope, the slope's x; PyTorch's _prelu_kernel saves both whichever needs a
    # gradient, and not its output: so do we
    reads = ((0, 1), (0, 1))

    def forward(self, x, a):
        xp = get_array_module(x)
        self.shared, self.a_shape = a.size == 1, a.shape
        aa = a.reshape(()) if self.shared else a.reshape((-1,) + (1,) * (x.ndim - 2))
        self.pos = x > 0
        self.x, self.a = x, aa
        return xp.where(self.pos, x, x * aa)

    def backward(self, g):
        xp = get_array_module(g)
        ga = gx = None
        if self.needs_input_grad[0]:
            gx = xp.where(self.pos, g, g * self.a)
        if self.needs_input_grad[1]:
            neg = xp.where(self.pos, 0, g * self.x)
            if self.shared:
                ga = neg.sum().reshape(self.a_shape)  # (a 0-d weight's gradient is 0-d, a (1,) one's (1,))
            else:
                ga = neg.sum(axis=(0,) + tuple(range(2, g.ndim))) if g.ndim > 1 else neg
        return gx, ga


# ---------------------------------------------------------------- the functions (PyTorch's signatures)
def silu(input, inplace=False):
    """x * sigmoid(x)."""
    return apply_activation(SiLU, input, inplace)


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    return apply_activation(Mish, input, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val), gradient 0 at and beyond the bounds."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    kind = getattr(getattr(input, "dtype", None), "kind", None)  # (PyTorch's refusals, in its words)
    if kind == "b":
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if kind == "u" and (int(min_val) < 0 or int(max_val) < 0):  # (the limits as PyTorch converts them: truncated)
        raise RuntimeError("cannot do hardtanh on an unsigned type with negative limits")
    return apply_activation(Hardtanh, input, inplace, min_val=min_val, max_val=max_val)


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh(x, 0, 6) (so the gradient is 0 at x = 0 and x = 6, as PyTorch's)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6."""
    return apply_activation(Hardswish, input, inplace)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    return apply_activation(Hardsigmoid, input, inplace)


def selu(input, inplace=False):
    """scale * (max(0, x) + min(0, alpha * (e^x - 1))) with PyTorch's alpha and scale."""
    return apply_activation(ScaledELU, input, inplace, alpha=SELU_ALPHA, scale=SELU_SCALE)


def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha * (e^(x / alpha) - 1))."""
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0")
    return apply_activation(CELU, input, inplace, alpha=alpha, input_scale=1.0 / alpha)


def softsign(input):
    """x / (1 + |x|)."""
    return Softsign.apply(float_input(input))


def tanhshrink(input):
    """x - tanh(x)."""
    return Tanhshrink.apply(float_input(input))


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between; lambd >= 0."""
    if not lambd >= 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return Softshrink.apply(float_input(input), lambd=lambd, soft=True)


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    return Hardshrink.apply(float_input(input), lambd=lambd, soft=False)


def threshold(input, threshold, value, inplace=False):  # noqa: A002 - PyTorch's names
    """x where x > threshold, else value."""
    if getattr(input, "dtype", None) == bool:
        refuse_integers("threshold", input)
    return apply_activation(Threshold, input, inplace, threshold=threshold, value=value)


def glu(input, dim=-1):
    """First half of ``dim`` times the sigmoid of the second half (the size of ``dim`` must be even)."""
    shape = tuple(input.shape)
    if not shape:
        raise ValueError("glu: does not take a 0-dimensional input")
    d = wrap_dim(dim, len(shape), "glu")
    if shape[d] % 2:
        raise ValueError(f"glu: halving dimension {dim} needs an even size, got {shape[d]}")
    return GLU.apply(float_input(input), dim=d)


def softmin(input, dim=None):
    """softmax(-x) along ``dim`` (neither given: the last, with a warning where PyTorch's choice differs)."""
    return Softmax.apply(-float_input(input), axis=_softmax_dim("softmin", input, _LAST, dim))


@autocast_policy("lower")  # (PyTorch's CPU autocast runs it in the lower dtype)
def prelu(input, weight):
    """max(0, x) + weight * min(0, x), PyTorch's F.prelu: ``weight`` is 0-d or 1-D, of one slope shared by all
    elements or one per channel (dimension 1 of ``input``; an input of fewer than 2 dimensions has one channel).
    """
    xs, ws = tuple(input.shape), tuple(weight.shape)
    if len(ws) > 1:
        raise ValueError(f"prelu: expected `weight` to be a scalar or 1D tensor, but got: ndim = {len(ws)}")
    n, channels = int(np.prod(ws)), xs[1] if len(xs) >= 2 else 1
    if n != 1 and n != channels:
        raise ValueError(f"prelu: mismatch of parameter numbers and input channel size. Found parameter numbers = "
                         f"{n} and channel size = {channels} (input shape {xs})")
    if input.dtype != weight.dtype:
        raise TypeError(f"prelu: type promoting not supported, got input {input.dtype} and weight {weight.dtype}")
    return PReLU.apply(input, weight)


__all__ = ["silu", "mish", "hardtanh", "relu6", "hardswish", "hardsigmoid", "selu", "celu", "softsign", "tanhshrink",
           "softshrink", "hardshrink", "threshold", "glu", "softmin",
           "prelu"]
