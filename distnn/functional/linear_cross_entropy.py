"""``linear_cross_entropy(input, linear_weight, target, ...)``: PyTorch's (2.13) cross-entropy of a linear
projection, ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``.

With ``options=None`` (the default) it is exactly that composition (the reference path: any target form,
label smoothing, K-dimensional ``linear_weight`` (C, d1, ..., dK, F)). With a
:class:`LinearCrossEntropyOptions` it runs PyTorch's chunked path: the batch rows are taken a chunk at a
time, so the (N, C) logits are never held, only one (chunk, C) block; the point is a large vocabulary head.
As PyTorch's, 'mean' and 'sum' compute the gradients in that same forward pass (one logits matmul per chunk
in all) and backward only scales them by the upstream gradient; 'none' saves the inputs and recomputes the
chunks in backward (its upstream gradient is per row, unknown in forward). Configurations the chunked path
does not cover (K-dimensional weights, label smoothing, a non-int64 target) fall back to the reference
path with PyTorch's warning.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .class_loss import _check_labels, cross_entropy
from .linear import linear
from .linear_cross_entropy_options import LinearCrossEntropyOptions
from ._loss_common import _const, _raw

_TWICE = ("linear_cross_entropy chunked backward called twice; retain_graph=True / double backward are not "
          "supported (pass LinearCrossEntropyOptions(allow_retain_graph=True) to allow it).")


def _chunk_loop(xp, x, w, b, t, row_w, chunk, acc, grads):
    """One pass over the rows ``chunk`` at a time: per-row ``row_w[n] * (logsumexp(z_n) - z_n[t_n])`` with
    ``z = x w^T + b`` and, for each True of ``grads`` (input, weight, bias), the gradient of
    ``sum_n row_w[n] * loss_n``. Computed in ``acc``; only one (chunk, C) block of logits lives at a time."""
    N, F = x.shape
    C = w.shape[0]
    wa = w.astype(acc, copy=False)
    ba = None if b is None else b.astype(acc, copy=False)
    loss = xp.empty(N, dtype=acc)
    gx = xp.empty((N, F), dtype=x.dtype) if grads[0] else None
    gw = xp.zeros((C, F), dtype=acc) if grads[1] else None
    gb = xp.zeros(C, dtype=acc) if grads[2] else None
    for s in range(0, N, chunk):
        xc, tc, rc = x[s:s + chunk].astype(acc, copy=False), t[s:s + chunk], row_w[s:s + chunk]
        rows = xp.arange(tc.shape[0])
        z = xc @ wa.T
        if ba is not None:
            z += ba
        z -= z.max(axis=1, keepdims=True)  # (stability: exp of at most 0)
        picked = z[rows, tc]
        np_ = xp.exp(z, out=z)  # z now holds exp(shifted logits); the block is reused, not copied
        denom = np_.sum(axis=1)
        # (an ignored row has weight 0: its loss is 0, not 0 * a stray logit)
        loss[s:s + chunk] = xp.where(rc != 0, rc * (xp.log(denom) - picked), 0)
        if not any(grads):
            continue
        # d loss / d z = row_w * (softmax - onehot(t)): built in the same block
        np_ *= (rc / denom)[:, None]
        np_[rows, tc] -= rc
        if gx is not None:
            gx[s:s + chunk] = np_ @ wa
        if gw is not None:
            gw += np_.T @ xc
        if gb is not None:
            gb += np_.sum(axis=0)
    return loss, gx, gw, gb


class _ChunkedLinearCrossEntropy(Function):
    """The chunked path for 2-D ``x`` (N, F), ``w`` (C, F), optional ``b`` (C,) and int64 labels (N,)."""
    # 'mean'/'sum': the gradients are made in forward, backward reads no input (PyTorch's saves none either, so
    # an in-place change between forward and backward is not refused); 'none' is _ChunkedNoReduction's
    reads = ((), (), ())

    def forward(self, x, w, b, target, weight=None, reduction="mean", ignore_index=-100, chunk=1,
                acc=None, allow_retain_graph=False):
        xp = get_array_module(x)
        t = xp.asarray(target)
        C = w.shape[0]
        if t.shape != x.shape[:1]:
            raise ValueError(f"linear_cross_entropy: target shape {tuple(t.shape)} does not match input batch "
                             f"shape {tuple(x.shape[:1])}")
        _check_labels(xp, t, C, ignore_index, "linear_cross_entropy")
        if weight is not None and tuple(weight.shape) != (C,):
            raise ValueError(f"linear_cross_entropy: weight must have shape ({C},) (one per class), got "
                             f"{tuple(weight.shape)}")
        acc = np.dtype(acc or x.dtype)
        valid = t != ignore_index
        t = xp.where(valid, t, 0)  # (in range for the gathers; the row's weight is 0)
        row_w = (weight.astype(acc)[t] if weight is not None else xp.ones(t.shape, dtype=acc)) * valid
        scale = 1.0
        if reduction == "mean":
            d = row_w.sum()
            scale = (d != 0) / xp.where(d == 0, 1, d)  # an all-ignored batch: NaN loss, zero gradient
        self.reduction, self.chunk, self.acc, self.dtypes = reduction, chunk, acc, (x.dtype, w.dtype)
        need = tuple(self.needs_input_grad[:3])
        if reduction == "none":
            loss, *_ = _chunk_loop(xp, x, w, b, t, row_w, chunk, acc, (False,) * 3)
            self.x, self.w, self.b, self.t, self.row_w = x, w, b, t, row_w  # backward recomputes the chunks
            return loss.astype(x.dtype, copy=False)
        loss, gx, gw, gb = _chunk_loop(xp, x, w, b, t, row_w * scale, chunk, acc, need)
        self.grads, self.retain = [gx, gw, gb], allow_retain_graph
        out = loss.sum()
        if reduction == "mean" and not bool(d != 0):
            out = xp.asarray(np.nan, dtype=acc)  # (as PyTorch: 0 / 0)
        return xp.asarray(out).astype(x.dtype)

    def backward(self, g):
        xp = get_array_module(g)
        if self.reduction == "none":  # fold the per-row upstream gradient into the row weights, then recompute
            need = tuple(self.needs_input_grad[:3])
            _, gx, gw, gb = _chunk_loop(xp, self.x, self.w, self.b, self.t, self.row_w * g.astype(self.acc),
                                        self.chunk, self.acc, need)
        else:
            if self.grads is None:
                raise RuntimeError(_TWICE)
            gx, gw, gb = self.grads
            if not self.retain:  # handed over once (PyTorch's default): no second gradient-sized copy
                self.grads = None
            gx, gw, gb = (None if a is None else (a * g if self.retain else _scale_(a, g)) for a in (gx, gw, gb))
        dx, dw = self.dtypes
        return (None if gx is None else gx.astype(dx, copy=False), None if gw is None else gw.astype(dw, copy=False),
                None if gb is None else gb.astype(dw, copy=False), None, None)


class _ChunkedNoReduction(_ChunkedLinearCrossEntropy):
    """'none': backward recomputes the chunks from the inputs, so their versions are checked (PyTorch saves them)."""
    reads = ((0, 1, 2), (0, 1, 2), (0, 1, 2))


def _scale_(a, g):
    a *= g
    return a


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """PyTorch's ``F.linear_cross_entropy``: ``cross_entropy(linear(input, linear_weight, linear_bias), target)``.

    ``input`` (F,) or (N, F); ``linear_weight`` (C, F) or (C, d1, ..., dK, F) (then a K-dimensional loss over
    logits (N, C, d1, ..., dK); it needs a batched input); ``linear_bias`` (C, d1, ..., dK). ``target``: class
    labels, or class probabilities of the logits' shape (then ``ignore_index`` must stay None). ``ignore_index``
    None means -100. ``options``: None for the reference composition, a :class:`LinearCrossEntropyOptions` for
    the chunked path (see the module docstring), which never holds the (N, C) logits.
    """
    if input.ndim < 1 or input.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.ndim}")
    batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), "
                           f"got {input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, "
                           f"got {tuple(linear_bias.shape)}")
    if out_features and not batches:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
                           f"requires batched input, (N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    if options is not None and not isinstance(options, LinearCrossEntropyOptions):
        raise TypeError(f"linear_cross_entropy: options must be a LinearCrossEntropyOptions or None, "
                        f"got {type(options).__name__}")
    logits_shape = (*batches, num_classes, *out_features)
    t = _raw(target)
    if tuple(getattr(t, "shape", ())) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    t_dtype = getattr(t, "dtype", None)
    if options is not None:
        if out_features or reduction not in ("mean", "sum", "none") or label_smoothing != 0.0 \
                or t_dtype != np.int64:
            warnings.warn(
                "linear_cross_entropy: ``options`` ignored; chunked path needs reduction in {'mean','sum','none'}, "
                f"label_smoothing == 0, target.dtype == int64, out_features == (). Got reduction={reduction!r}, "
                f"label_smoothing={label_smoothing}, target.dtype={t_dtype}, out_features={out_features}, "
                f"linear_bias.shape={None if linear_bias is None else tuple(linear_bias.shape)}.", stacklevel=2)
        else:
            return _chunked(input, linear_weight, target, linear_bias, weight, reduction, ignore_index, options)
    if out_features:  # one 2-D linear, then the logits shaped (N, C, d1, ..., dK) as the weight says
        flat = math.prod(out_features, start=num_classes)
        linear_weight = linear_weight.reshape(flat, in_features)
        if linear_bias is not None:
            linear_bias = linear_bias.reshape(flat)
    logits = linear(input, linear_weight, linear_bias).reshape(logits_shape)
    return cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing)


def _chunked(input, linear_weight, target, linear_bias, weight, reduction, ignore_index, options):
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = _const(x, target)
    t = t.reshape(1) if input.ndim == 1 else t
    xp = get_array_module(_raw(x))
    opts = options._adjust(x.shape[0], x.shape[1], linear_weight.shape[0], _raw(x).dtype,
                           "cpu" if xp is np else "cuda")
    fn = _ChunkedNoReduction if reduction == "none" else _ChunkedLinearCrossEntropy
    out = fn.apply(
        x, linear_weight, linear_bias, t, _const(x, weight), reduction=reduction, ignore_index=ignore_index,
        chunk=opts.batch_chunk_size, acc=opts.acc_dtype, allow_retain_graph=opts.allow_retain_graph)
    return out.reshape(()) if input.ndim == 1 and reduction == "none" else out
