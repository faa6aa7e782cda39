"""Activations, softmax/log_softmax and dropout. Each saves the cheapest thing its backward needs."""
from __future__ import annotations

import math
import warnings

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.half_accumulate import widened
from distnn.autograd.half_rounding import narrowed
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._fresh import constant, fresh_float
from .half_activation_opmath import half_softplus, half_softplus_backward, is_half
from .half_scalar_opmath import times_number
from .activation_elu import ScaledELU as ELU  # noqa: F401 - (elu's node, the elu family's: activation_elu)
from .activation_of_result import LeakyReluOfResult
from .elementwise import float_input
from .in_place_activation import apply_activation
from .log_softmax_rounding import log_softmax_values  # noqa: F401 - (importable from here too)
from .softmax_rounding import HALF, softmax_other_axis_half
from .out_common import unary_into_out as _unary_out


class ReLU(Function):
    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "ReluBackward0"
    reads = ((OUTPUT,),)

    def forward(self, x):
        xp = get_array_module(x)
        out = xp.maximum(x, 0)
        self.out = out
        return out

    def backward(self, g):
        # out is 0 where x <= 0 and NaN where x is: != 0 passes the gradient of a NaN, as PyTorch. where, not
        # g * mask: an inf or NaN gradient arriving where x <= 0 gives 0 (not inf * 0), as PyTorch's threshold_backward
        xp = get_array_module(g)
        return (xp.where(self.out != 0, g, 0),)


class LeakyReLU(Function):
    """Its node keeps the input alone, as PyTorch's (what saved_tensors_hooks see), and backward tests its sign."""

    torch_name = "LeakyReluBackward0"
    reads = ((0,),)
    float_kernel = "leaky_relu"
    in_place_form = LeakyReluOfResult  # (PyTorch's leaky_relu_ saves the result: activation_of_result)

    def forward(self, x, negative_slope=0.01):
        xp = get_array_module(x)
        self.x, self.slope = x, negative_slope
        return xp.where(x > 0, x, times_number(x, negative_slope))  # (float16: the slope in float32, as PyTorch)

    def backward(self, g):
        # (PyTorch's leaky_relu_backward: x > 0 passes g, anything else, a NaN too, takes the slope)
        return (get_array_module(g).where(self.x > 0, g, times_number(g, self.slope)),)


def _erf(xp, x):
    if xp.__name__ == "numpy":
        try:
            from scipy.special import erf

            return erf(x)
        except ImportError:  # (scipy is optional: numpy's whole-array erf, not a Python call per element)
            from ._special import erf_array

            return erf_array(x)
    from cupyx.scipy.special import erf  # cupy

    return erf(x)


class GELU(Function):
    """GELU, exact (erf) by default or the tanh approximation, as PyTorch."""

    torch_name = "GeluBackward0"
    reads = ((0,),)

    def forward(self, x, approximate="none"):
        xp = get_array_module(x)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            self.t = xp.tanh(k * (x + 0.044715 * x**3))
            return 0.5 * x * (1 + self.t)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.cdf = 0.5 * (1 + _erf(xp, x / math.sqrt(2.0)))
        return x * self.cdf

    def backward(self, g):
        xp = get_array_module(g)
        x = self.x
        if self.approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            t = self.t
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)),)
        pdf = xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (g * (self.cdf + x * pdf),)


class Tanh(Function):
    torch_name = "TanhBackward0"
    reads = ((OUTPUT,),)
    supports_complex, conj_saved = True, ("out",)

    def forward(self, x):
        self.out = get_array_module(x).tanh(x)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


def sigmoid_array(x):
    """1 / (1 + e^-x) on a raw array, to full relative precision in both tails (e^-|x| never overflows;
    the tanh form 0.5 (1 + tanh(x/2)) cancels to 0 below about x = -17 in float32)."""
    xp = get_array_module(x)
    if not fresh_float(x):
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1, e) / (1 + e)
    # The same bits with fewer passes: each temporary reused in place, and the numerator maximum(e, x >= 0), as
    # 0 <= e <= 1 (1 at x = 0; a NaN wins either way): a where over a mask of mixed signs costs several times more
    e = xp.absolute(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    numerator = xp.maximum(e, x >= constant(0, x))
    xp.add(e, constant(1, x), out=e)
    return xp.true_divide(numerator, e, out=numerator)


def softplus_array(x):
    """log(1 + e^x) on a raw array, formed so nothing overflows: max(x, 0) + log(1 + e^-|x|)."""
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class Sigmoid(Function):
    torch_name = "SigmoidBackward0"
    reads = ((OUTPUT,),)

    def forward(self, x):
        self.out = sigmoid_array(x)
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


class LogSigmoid(Function):
    """log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log(1 + e^-|x|).

    Written so nothing overflows (e^-|x| <= 1): log(sigmoid(x)) formed literally is log(0) = -inf once
    sigmoid(x) underflows (float32: x below about -104), and e^-x overflows there too.
    """

    torch_name = "LogSigmoidBackward0"
    reads = ((0,),)

    def forward(self, x):
        self.x = x  # backward's sigmoid(-x) from the output, 1 - e^out, would cancel to 0 for large x
        return -softplus_array(-x)

    def backward(self, g):
        return (g * sigmoid_array(-self.x),)  # d/dx log sigmoid(x) = 1 - sigmoid(x) = sigmoid(-x)


class Softplus(Function):
    """log(1 + e^(beta x)) / beta, linear above ``threshold`` (PyTorch's definition)."""

    torch_name = "SoftplusBackward0"
    reads = ((0,),)  # (its own arrays; the input is what PyTorch's saves, so both refuse alike)

    def forward(self, x, beta=1.0, threshold=20.0):
        xp = get_array_module(x)
        bx = beta * x
        self.sig = sigmoid_array(bx)
        self.beta = beta  # (for its graph backward, create_graph=True: autograd/derivatives/nn.py)
        self.half_x = x if is_half(x) else None
        if self.half_x is not None:  # (PyTorch's float32 opmath; its cut too)
            out, self.linear = half_softplus(xp, x, beta, threshold)
            return out
        self.linear = bx > threshold
        return xp.where(self.linear, x, softplus_array(bx) / beta)

    def backward(self, g):
        xp = get_array_module(g)
        if self.half_x is not None and is_half(g):
            return (half_softplus_backward(xp, g, self.half_x, self.beta, self.linear),)
        return (xp.where(self.linear, g, g * self.sig),)


class Softmax(Function):
    """Over ``axis``; a float16 input is exponentiated, summed and divided in float32 and rounded once, as
    PyTorch's CPU kernel (its gradient too); over another axis than the last, some positions twice, as its
    other-axis kernel (:mod:`.softmax_rounding`)."""

    torch_name = "SoftmaxBackward0"
    reads = ((OUTPUT,),)

    def forward(self, x, axis=-1):
        xp = get_array_module(x)
        if x.size == 0:  # (an empty tensor: empty, as PyTorch's; max would have no identity)
            self.out, self.axis = x.copy(), axis
            return self.out
        if x.dtype == HALF and x.ndim > 1 and axis % x.ndim != x.ndim - 1:
            self.out, self.axis = softmax_other_axis_half(xp, x, axis), axis
            return self.out
        wide = widened(x)
        with _quiet(xp):  # (a row whose maximum is infinite: inf - inf is NaN, as PyTorch's, without numpy's warning)
            e = xp.exp(wide - wide.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        self.out, self.axis = narrowed(e, x.dtype), axis
        return self.out

    def backward(self, g):
        y, wide_g = widened(self.out), widened(g)
        return (narrowed(y * (wide_g - (wide_g * y).sum(axis=self.axis, keepdims=True)), g.dtype),)


class LogSoftmax(Function):
    """As :class:`Softmax`, float16 computed in float32, except that PyTorch's last-axis kernel rounds the sum of
    the exponentials and its log to float16 (so do we: the same values, bitwise; :func:`log_softmax_values`)."""

    torch_name = "LogSoftmaxBackward0"
    reads = ((OUTPUT,),)

    def forward(self, x, axis=-1):  # (an empty tensor: empty, as PyTorch's)
        self.out, self.axis = (x.copy() if x.size == 0 else log_softmax_values(get_array_module(x), x, axis)), axis
        return self.out

    def backward(self, g):
        xp = get_array_module(g)
        wide_g = widened(g)
        return (narrowed(wide_g - xp.exp(widened(self.out)) * wide_g.sum(axis=self.axis, keepdims=True), g.dtype),)


class Dropout(Function):
    """Inverted dropout: kept units are scaled by 1/(1-p); the same mask is reused in backward. PyTorch's CPU dropout
    is a product with its noise (a 0-d zero for p = 1), MulBackward0, which keeps the noise alone: so does this node,
    in place too, where PyTorch's is ``mul_``'s, of the same name. The mask is a constant input (next_functions:
    None), as PyTorch's noise."""

    torch_name = "MulBackward0"
    saves_tensors = False

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask, None  # no gradient for the mask


def relu(x, inplace=False):
    """max(x, 0). ``inplace=True``: ``x`` itself becomes the result (:func:`.in_place_activation.apply_activation`)."""
    if getattr(x, "dtype", None) == bool:  # (PyTorch's refusal; numpy's maximum would answer in int64)
        raise RuntimeError("Boolean inputs not supported for relu")
    return apply_activation(ReLU, x, inplace)


def leaky_relu(x, negative_slope=0.01, inplace=False):
    """max(x, 0) + negative_slope * min(x, 0). ``inplace=True``: PyTorch's ``leaky_relu_`` node, which keeps the
    result (a later in-place change of ``x`` is refused at backward; a negative slope's backward is refused)."""
    return apply_activation(LeakyReLU, x, inplace, negative_slope=negative_slope)


def elu(x, alpha=1.0, inplace=False):
    """x where x > 0, else alpha * (e^x - 1). ``inplace=True``: PyTorch's ``elu_`` node, which keeps the result
    (as :func:`leaky_relu`)."""
    return apply_activation(ELU, x, inplace, alpha=alpha)


def gelu(x, approximate="none"):
    return GELU.apply(x, approximate=approximate)


def tanh(x, *, out=None):
    """``torch.tanh``; ``out``: PyTorch's rules (:func:`.out_common.unary_into_out`)."""
    return Tanh.apply(float_input(x)) if out is None else _unary_out("tanh", Tanh, x, out)


def sigmoid(x, *, out=None):
    """``torch.sigmoid``; ``out``: PyTorch's rules (:func:`.out_common.unary_into_out`)."""
    return Sigmoid.apply(float_input(x)) if out is None else _unary_out("sigmoid", Sigmoid, x, out)


def logsigmoid(x):
    """log(sigmoid(x)) elementwise, stable for any |x| (the notes' -softplus(-x); PyTorch's logsigmoid)."""
    return LogSigmoid.apply(float_input(x))


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus.apply(x, beta=beta, threshold=threshold)


_LAST = "last"  # softmax's default axis: the last dimension, questioned where PyTorch would pick another


def _softmax_dim(name, x, axis, dim):
    """``dim``, else numpy's ``axis``, else the last dimension: with a warning where PyTorch's deprecated
    implicit choice (dim 0 of 0-, 1- and 3-D input, dim 1 otherwise) differs, as a ported softmax over
    (N, C, H, W) channels would otherwise normalize over W without a word."""
    if dim is not None:
        return dim
    if axis is not _LAST:  # (axis=None: every element, numpy's meaning)
        return axis
    ndim = len(x.shape)
    theirs = 0 if ndim in (0, 1, 3) else 1
    if ndim > 1 and theirs != ndim - 1:
        warnings.warn(f"{name} without dim takes the last dimension ({ndim - 1}) of this {ndim}-D input; "
                      f"PyTorch's deprecated implicit choice is dim={theirs}. Pass dim explicitly.",
                      UserWarning, stacklevel=3)
    return -1


def softmax(x, axis=_LAST, dim=None):
    """exp(x) / sum(exp(x)) along ``dim`` (or numpy's ``axis``; neither: the last dimension, see _softmax_dim)."""
    return Softmax.apply(float_input(x), axis=_softmax_dim("softmax", x, axis, dim))


def log_softmax(x, axis=_LAST, dim=None):
    """x - logsumexp(x), stable (max subtracted first), along ``dim`` (or ``axis``; neither: the last)."""
    return LogSoftmax.apply(float_input(x), axis=_softmax_dim("log_softmax", x, axis, dim))


def dropout(x, p=0.5, training=True, inplace=False, *, generator=None, batch_dim=None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    Identity when ``training`` is False or ``p == 0``. ``generator`` is a
    ``numpy.random.Generator``; by default distnn's per-thread generator
    (``distnn.random``), so runs are reproducible and checkpointable.
    ``batch_dim``: the axis of ``x`` that holds the samples, for the trainer's
    per-sample masks (see :func:`keep_mask`); None: guessed from the shape.
    """
    if not isinstance(inplace, bool):  # (an older positional call passed the generator here)
        raise TypeError(f"dropout: the 4th argument is inplace (PyTorch's order), got {type(inplace).__name__}; "
                        "pass a generator as generator=...")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    from distnn import random as drandom

    xp = get_array_module(x)
    rng = generator if generator is not None else drandom.default_generator()
    data = x.data if isinstance(x, Tensor) else xp.asarray(x)  # an ndarray's .data is a memoryview
    if p != 1.0 and data.dtype.kind in "biu":  # (PyTorch's: its float noise cannot be stored in x's dtype)
        from distnn.autograd.tensor_inplace_methods import torch_dtype_name

        raise RuntimeError(f"result type Float can't be cast to the desired output type {torch_dtype_name(data.dtype)}")
    if p == 1.0:  # (PyTorch's: a product with a 0-d zero)
        mask = xp.zeros((), dtype=data.dtype)
    else:
        keep = keep_mask(rng, data.shape, p, _float_kind(data.dtype), batch_dim=batch_dim)
        mask = keep.astype(data.dtype) * data.dtype.type(1.0 / (1.0 - p))
        if xp.__name__ != "numpy":
            mask = xp.asarray(mask)
    return apply_activation(Dropout, x, inplace, mask)


def keep_mask(rng, shape, p, dtype=None, batch_dim=None):
    """Dropout's bool mask (True: keep, with probability ``1 - p``) drawn from ``rng``.

    A generator with its own ``keep_mask`` (the trainer's per-sample one, see
    :mod:`distnn.data.batch_random`) makes it; a numpy generator draws uniforms.
    ``batch_dim`` tells the former which axis holds the samples (an RNN's
    time-major ``(T, N, H)``: 1); None lets it guess from the shape, which
    cannot tell ``(T, N, H)`` from ``(N, T, H)`` when ``N == T``.
    """
    import numpy as np

    if hasattr(rng, "keep_mask"):
        return rng.keep_mask(shape, p, batch_dim=batch_dim)
    return rng.random(shape, dtype=dtype or np.float32) >= p


def unit_uniform(rng, shape, dtype=None, batch_dim=None):
    """Uniform numbers on [0, 1) of ``shape`` drawn from ``rng`` as :func:`keep_mask` draws a mask: the
    trainer's per-sample generator makes them per sample (its ``unit_uniform``, the same on any number of
    ranks), a numpy generator draws them in ``dtype`` (float32 by default). RReLU's random slopes."""
    import numpy as np

    if hasattr(rng, "unit_uniform"):
        return rng.unit_uniform(shape, batch_dim=batch_dim)
    return rng.random(shape, dtype=dtype or np.float32)


def _float_kind(dtype):
    import numpy as np

    return np.float32 if dtype == np.float32 or dtype.itemsize <= 4 else np.float64
