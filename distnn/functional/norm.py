"""Normalization as fused Functions: ``layer_norm``, ``rms_norm`` and ``batch_norm``.

Each forward computes statistics in two passes (mean, then the mean of squared
deviations) rather than E[x^2] - mean^2, which loses precision in float32.
Backward uses the closed forms

    layer norm:  dx = rstd * (dxh - mean(dxh) - xhat * mean(dxh * xhat))      over the normalized dims
    batch norm:  dx = w * rstd * (dy - sum(dy)/M - xhat * sum(dy * xhat)/M)   over (N, spatial)

with dxh = dy * weight. A float16 input (with float16 or float32 parameters, or none) is normalized in
float32 and the result cast back to float16, as PyTorch's CPU kernels do (their "opmath" type): the input's
gradient comes back float16, the parameters' in their own dtype. An integer or bool input is refused with
PyTorch's NotImplementedError. ``BatchNormTrain`` keeps its cross-sample sums behind one
method (``combine_grad_sums``) and takes the batch statistics as arguments, so a
synchronized batch norm can reuse it: compute global statistics, pass them in,
and override ``combine_grad_sums`` to allreduce.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dtype_checks import _lower, check_floating, check_norm
from ._into import destinations, sum_into


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def opmath(a):
    """``a`` in the dtype PyTorch's norm kernels compute in: float32 for float16 (which would lose the statistics'
    precision), its own otherwise. None stays None."""
    return a.astype(np.float32) if a is not None and a.dtype == np.float16 else a


def cast_to(a, like):
    """``a`` in ``like``'s dtype (a gradient or output computed in opmath going back to its tensor's dtype)."""
    return a if a is None or like is None or a.dtype == like.dtype else a.astype(like.dtype)


# ------------------------------------------------------------------ layer norm
class LayerNorm(Function):
    torch_name = "NativeLayerNormBackward0"
    # backward reads xhat and rstd (its own) and, for x's gradient, the weight; PyTorch's native_layer_norm
    # saves the input, the weight and the bias whichever needs a gradient, and not its output: so do we
    reads = ((0, 1, 2), (0, 1, 2), (0, 1, 2))

    def forward(self, x, weight=None, bias=None, ndim=1, eps=1e-5):
        xp = get_array_module(x)
        self.dtypes = (x.dtype, weight, bias)  # (what the gradients go back to)
        x, weight, bias = opmath(x), opmath(weight), opmath(bias)
        axes = tuple(range(x.ndim - ndim, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=axes, keepdims=True)
        rstd = 1.0 / xp.sqrt(var + eps)
        xhat = xc * rstd
        out = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            out += bias
        self.xhat, self.rstd, self.weight, self.axes, self.ndim = xhat, rstd, weight, axes, ndim
        self.has_bias = bias is not None
        return out.astype(self.dtypes[0], copy=False)

    def backward(self, g):
        xhat, axes = self.xhat, self.axes
        nin = self.needs_input_grad
        gx = gw = gb = None
        g = opmath(g)
        lead = tuple(range(g.ndim - self.ndim))
        if nin[0]:
            gxh = g * self.weight if self.weight is not None else g
            gx = self.rstd * (gxh - gxh.mean(axis=axes, keepdims=True)
                              - xhat * (gxh * xhat).mean(axis=axes, keepdims=True))
        dest = destinations(self, 3)
        if self.weight is not None and nin[1]:
            gw = sum_into(g * xhat, lead, dest[1])
        if self.has_bias and nin[2]:
            gb = sum_into(g, lead, dest[2])
        x_dtype, w, b = self.dtypes
        return (None if gx is None else gx.astype(x_dtype, copy=False)), cast_to(gw, w), cast_to(gb, b)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing ``normalized_shape`` dims, then scale by ``weight`` and shift by ``bias``."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    shape = tuple(input.shape)
    if shape[len(shape) - len(normalized_shape):] != normalized_shape or len(shape) < len(normalized_shape):
        raise ValueError(f"layer_norm: input of shape {shape} does not end with normalized_shape {normalized_shape}")
    check_norm(_raw(input), _raw(weight), _raw(bias))
    check_floating(_raw(input), "LayerNormKernelImpl")
    return LayerNorm.apply(input, weight, bias, ndim=len(normalized_shape), eps=eps)


# ------------------------------------------------------------------ RMS norm
class RMSNorm(Function):
    """``x * rsqrt(mean(x^2) + eps) * weight`` over the trailing ``ndim`` dims; backward, with xhat = x * r:
    dx = r * (dxh - xhat * mean(dxh * xhat)), dxh = dy * weight; dw = sum(dy * xhat) over the leading dims."""

    # PyTorch's rms_norm is composed (pow, mean, rsqrt, mul): x's gradient reads x and the weight, the weight's
    # only the normalized intermediate (its own), and nothing reads the output: so refuse the same changes
    reads = ((0, 1), ())

    def forward(self, x, weight=None, ndim=1, eps=None):
        xp = get_array_module(x)
        self.dtypes = (x.dtype, weight)
        # PyTorch's composite: in opmath, the normalized input cast back to the input's dtype, times the weight
        # in their common dtype, and the result in the input's dtype (whatever the weight's: no refusal)
        x = opmath(x)
        axes = tuple(range(x.ndim - ndim, x.ndim))
        r = 1.0 / xp.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
        xhat = (x * r).astype(self.dtypes[0], copy=False)
        # (a copy without a weight: the output may be changed in place, while backward reads xhat)
        out = (xhat * weight).astype(self.dtypes[0], copy=False) if weight is not None else xhat.copy()
        self.xhat, self.r, self.weight, self.axes, self.ndim = xhat, r, weight, axes, ndim
        return out

    def backward(self, g):
        xhat, axes = opmath(self.xhat), self.axes
        nin = self.needs_input_grad
        gx = gw = None
        if nin[0]:
            gxh = g * self.weight if self.weight is not None else g
            gxh = opmath(gxh)
            gx = (self.r * (gxh - xhat * (gxh * xhat).mean(axis=axes, keepdims=True))).astype(self.dtypes[0],
                                                                                             copy=False)
        if self.weight is not None and len(nin) > 1 and nin[1]:
            gw = cast_to(sum_into(g * xhat, tuple(range(g.ndim - self.ndim)), destinations(self, 2)[1]),
                         self.weight)
        return gx, gw


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Root-mean-square normalization over the trailing ``normalized_shape`` dims, times ``weight``
    (PyTorch's ``F.rms_norm``); ``eps=None`` is the machine epsilon of the input's dtype. The result has the
    input's dtype whatever the weight's; a weight of another dtype gives PyTorch's UserWarning ("Mismatch dtype
    between input and weight"), once a process as there."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    shape = tuple(input.shape)
    if len(shape) < len(normalized_shape) or shape[len(shape) - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"rms_norm: input of shape {shape} does not end with normalized_shape {normalized_shape}")
    if weight is not None and tuple(weight.shape) != normalized_shape:
        raise ValueError(f"rms_norm: weight of shape {tuple(weight.shape)} is not normalized_shape "
                         f"{normalized_shape}")
    _warn_mixed(_raw(input), _raw(weight))
    check_floating(_raw(input), "rms_norm")
    if eps is None:
        # (PyTorch's: that of the dtype it computes in, float32 at least)
        eps = float(np.finfo(np.promote_types(_raw(input).dtype, np.float32)).eps)
    return RMSNorm.apply(input, weight, ndim=len(normalized_shape), eps=eps)


_mixed_warned = False  # (PyTorch warns once a process: its TORCH_WARN_ONCE; every time under set_warn_always)


def _warn_mixed(x, weight):
    """PyTorch's UserWarning, once a process, for an input and a weight of different dtypes (any two: float16
    and float32, float32 and float64, an integer input...): its fused kernel takes one dtype, so it computes
    the composite (the result in the input's dtype, as here). Warned before an integer input is refused."""
    global _mixed_warned
    from distnn.torch_settings import is_warn_always_enabled

    if weight is None or weight.dtype == x.dtype or (_mixed_warned and not is_warn_always_enabled()):
        return
    _mixed_warned = True
    warnings.warn(f"Mismatch dtype between input and weight: input dtype = {_lower(x.dtype)}, weight dtype = "
                  f"{_lower(weight.dtype)}, Cannot dispatch to fused implementation. (PyTorch's warning, given "
                  "once a process; the result has the input's dtype: cast the weight, e.g. the module's .to(), to "
                  "silence it)", UserWarning, stacklevel=3)


# ------------------------------------------------------------------ batch norm
def _bn_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _bcast(v, ndim):
    """(C,) -> (1, C, 1, ...) so it broadcasts against (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_stats(x):
    """Per-channel (mean, biased variance, count) of x (N, C, ...), two-pass."""
    axes = _bn_axes(x.ndim)
    count = x.size // x.shape[1]
    x = opmath(x)
    mean = x.mean(axis=axes)
    xc = x - _bcast(mean, x.ndim)
    var = (xc * xc).mean(axis=axes)
    return mean, var, count


def update_running_stats(running_mean, running_var, mean, var, count, momentum):
    """PyTorch's update, in place: r = m * stat + (1 - m) r, with the unbiased variance var * n / (n - 1),
    rounded as ATen's CPU kernels round it (found on many draws against PyTorch 2.13): for float16 and float32
    buffers in float32, the momentum rounded to float32 and 1 - m taken there, each product and the sum rounded
    (float64 arithmetic rounded once to float16 differed in up to 2 % of channels), except that the float32
    kernel fuses the variance's multiply-add; float64 buffers in float64. One past float16's range holds inf,
    silently as there (numpy warned "overflow encountered in cast"). Either buffer may be None (left out, as
    ATen's sync-batchnorm kernels allow)."""
    unbiased = var * (count / max(count - 1, 1))
    for buf, stat, fused in ((running_mean, mean, False), (running_var, unbiased, True)):
        if buf is None:
            continue
        r = _raw(buf)
        xp = get_array_module(r)
        if r.dtype == xp.float64:
            wide = (1 - momentum) * r + momentum * xp.asarray(stat, dtype=xp.float64)
        else:
            m, stat = xp.float32(momentum), xp.asarray(stat, dtype=xp.float32)
            kept = (xp.float32(1) - m) * r.astype(xp.float32)
            if fused and r.dtype == xp.float32:  # (one rounding of m * stat + kept: the product is exact in float64)
                wide = (xp.float64(m) * stat.astype(xp.float64) + kept).astype(xp.float32)
            else:
                wide = m * stat + kept
        with np.errstate(over="ignore"):  # (a float16 statistic past 65504: inf, PyTorch's, no warning)
            r[...] = wide.astype(r.dtype)


def input_grad(g, xhat, rstd, weight, sum_g, sum_gxhat, count):
    """The input's gradient of a training batch norm from the per-channel sums of ``g`` and ``g * xhat`` over
    ``count`` values per channel (over every rank's batch, in a synchronized one)."""
    nd = g.ndim
    scale = rstd if weight is None else weight * rstd
    return _bcast(scale, nd) * (g - _bcast(sum_g / count, nd) - xhat * _bcast(sum_gxhat / count, nd))


class BatchNormTrain(Function):
    """Batch norm with given batch statistics ``mean``/``var`` (biased) over ``count`` samples per channel."""

    torch_name = "NativeBatchNormBackward0"

    # backward reads xhat and rstd (its own: ``relu(bn(x), inplace=True)`` is fine, as in PyTorch) and, for x's
    # gradient, the weight; PyTorch's native_batch_norm saves the input and the weight whichever needs a
    # gradient, not the bias nor its output: so do we. (It also saves the running statistics, which here are
    # no inputs: changed in place after the forward, PyTorch refuses and distnn, which reads none of them,
    # backpropagates.) SyncBatchNorm's and the valid-rows subclasses inherit this.
    reads = ((0, 1), (0, 1), (0, 1))

    def forward(self, x, weight, bias, mean, var, count, eps=1e-5):
        check_norm(x, weight, bias)  # (mean and var are the input's own statistics)
        xp = get_array_module(x)
        self.dtypes = (x.dtype, weight, bias)
        # PyTorch's CPU kernel keeps the batch mean and 1/std in the parameters' dtype (the input's without a
        # weight): float16 parameters round both to float16 before normalizing (and its backward reads those)
        stats_dtype = (weight if weight is not None else x).dtype
        x, weight, bias = opmath(x), opmath(weight), opmath(bias)
        nd = x.ndim
        rstd = 1.0 / xp.sqrt(var + eps)
        if stats_dtype == np.float16:
            mean, rstd = (v.astype(np.float16).astype(x.dtype) for v in (mean, rstd))
        xhat = (x - _bcast(mean, nd)) * _bcast(rstd.astype(x.dtype, copy=False), nd)
        out = xhat * _bcast(weight, nd) if weight is not None else xhat.copy()
        if bias is not None:
            out += _bcast(bias, nd)
        self.xhat, self.rstd, self.weight, self.count = xhat, rstd.astype(x.dtype, copy=False), weight, count
        self.has_bias = bias is not None
        return out.astype(self.dtypes[0], copy=False)

    def backward(self, g):
        """The gradients in opmath (``grads``, which subclasses override), each back in its tensor's dtype."""
        gx, gw, gb = self.grads(opmath(g))
        x_dtype, w, b = self.dtypes
        return (None if gx is None else gx.astype(x_dtype, copy=False)), cast_to(gw, w), cast_to(gb, b)

    def combine_grad_sums(self, sum_g, sum_gxhat):
        """Hook for synchronized batch norm: return the sums over all ranks (here: this process only)."""
        return sum_g, sum_gxhat

    def grads(self, g):
        nd, xhat = g.ndim, self.xhat
        axes = _bn_axes(nd)
        nin = self.needs_input_grad
        dest = destinations(self, 3)  # the weight's and bias's gradients are these sums: write them in place
        sum_g = sum_into(g, axes, dest[2] if self.has_bias and nin[2] else None)
        sum_gxhat = sum_into(g * xhat, axes, dest[1] if self.weight is not None and nin[1] else None)
        gx = None
        if nin[0]:
            tot_g, tot_gxhat = self.combine_grad_sums(sum_g, sum_gxhat)
            gx = input_grad(g, xhat, self.rstd, self.weight, tot_g, tot_gxhat, self.count)
        gw = sum_gxhat if (self.weight is not None and nin[1]) else None
        gb = sum_g if (self.has_bias and nin[2]) else None
        return gx, gw, gb


class BatchNormEval(Function):
    """Batch norm with fixed (running) statistics: a per-channel affine map."""

    # the weight's gradient reads the input (its scale and the mean are copies); PyTorch's saves the input and
    # the weight whichever needs a gradient, not the bias (nor the output): so do we
    reads = ((0, 1), (0, 1), (0, 1))

    def forward(self, x, weight, bias, mean, var, eps=1e-5):
        xp = get_array_module(x)
        self.dtypes = (x.dtype, weight, bias)
        x, weight, bias = opmath(x), opmath(weight), opmath(bias)
        nd = x.ndim
        # (host running statistics beside cupy data are copied over, as host indices are (on_data_device;
        # PyTorch refuses both); cupy refuses numpy arrays in its calls)
        mean, var = xp.asarray(mean), xp.asarray(var)
        rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        scale = rstd * weight if weight is not None else rstd
        shift = -mean * scale
        if bias is not None:
            shift = shift + bias
        # mean is the running-mean buffer, which a training forward updates in place before this
        # backward may run: keep a copy (C values) for the weight's gradient.
        needs_w = weight is not None and len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
        self.scale, self.x, self.mean, self.rstd = scale, x, mean.copy() if needs_w else None, rstd
        self.has_weight, self.has_bias = weight is not None, bias is not None
        out = x * _bcast(scale.astype(x.dtype, copy=False), nd) + _bcast(shift.astype(x.dtype, copy=False), nd)
        return out.astype(self.dtypes[0], copy=False)

    def backward(self, g):
        nd = g.ndim
        g = opmath(g)
        axes = _bn_axes(nd)
        nin = self.needs_input_grad
        gx = g * _bcast(self.scale, nd) if nin[0] else None
        gw = gb = None
        dest = destinations(self, 3)
        if self.has_weight and nin[1]:
            xhat = (self.x - _bcast(self.mean, nd)) * _bcast(self.rstd, nd)
            gw = sum_into(g * xhat, axes, dest[1])
        if self.has_bias and nin[2]:
            gb = sum_into(g, axes, dest[2])
        x_dtype, w, b = self.dtypes
        return (None if gx is None else gx.astype(x_dtype, copy=False)), cast_to(gw, w), cast_to(gb, b)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over (N, C, ...) per channel C (PyTorch's ``F.batch_norm``).

    In training mode the batch statistics are used, and ``running_mean``/``running_var``
    (if given) are updated in place with ``momentum`` and the unbiased variance.
    Otherwise the running statistics are used.
    """
    x = _raw(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {tuple(x.shape)}")
    check_norm(x, _raw(weight), _raw(bias), _raw(running_mean), _raw(running_var), training)
    check_floating(x, "batch_norm")
    if x.size == 0:  # an empty batch: an empty result, the running statistics left alone (PyTorch's shortcut)
        xp = get_array_module(x)
        C = x.shape[1]
        return BatchNormEval.apply(input, weight, bias, mean=xp.zeros(C, x.dtype), var=xp.ones(C, x.dtype), eps=eps)
    if training:
        mean, var, count = batch_stats(x)
        if count == 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input of shape {tuple(x.shape)}"
            )
        if running_mean is not None and running_var is not None:
            update_running_stats(running_mean, running_var, mean, var, count, momentum)
        return BatchNormTrain.apply(input, weight, bias, mean=mean, var=var, count=count, eps=eps)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
    return BatchNormEval.apply(input, weight, bias, mean=_raw(running_mean), var=_raw(running_var), eps=eps)
