"""Multi-label classification losses, as PyTorch's: ``multilabel_soft_margin_loss`` (one logistic loss per
class, averaged over the classes) and ``multilabel_margin_loss`` (a hinge between every target class and
every other class)."""
from __future__ import annotations

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .activation import logsigmoid
from .elementwise import _quiet
from .loss import _as_tensor, _check_reduction, _operand, _raw, _reduce, _saved


def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    """``-(y log sigmoid(x) + (1 - y) log sigmoid(-x))``, times ``weight`` (per class, broadcast), summed over
    the last (class) dimension and divided by the number of classes C, as PyTorch's.

    ``input`` (N, C) or (C,) (more leading dimensions are kept by 'none'); ``target`` in {0, 1} (or any
    real: the formula's value), broadcast against it. Composed as PyTorch composes it: a target or weight
    that requires grad gets its gradient.
    """
    _check_reduction("multilabel_soft_margin_loss", reduction)
    x = _as_tensor(input)
    if x.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: the input needs a class dimension, got a 0-d input")
    y = _operand(x, target)
    loss = -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * _operand(x, weight)
    class_dim = x.ndim - 1
    return _reduce(loss.sum(class_dim) / x.shape[class_dim], reduction)


class _MultiLabelMargin(Function):
    """Per sample: sum over its target classes j and its other classes i of max(0, 1 - (x[j] - x[i])), over C.

    A sample's targets are the entries of its target row before the first -1 (a class listed twice counts
    twice, as in PyTorch's loop). A term counts where 1 - x[j] + x[i] > 0 (strictly: no gradient at the
    corner, nor from a NaN term, as PyTorch's kernel). The pairs are formed C x C per sample, in chunks of
    samples, so that memory stays bounded for many classes.
    """

    reads = ((0, 1), ())  # (its own counts: the input and target are what PyTorch's saves)
    CHUNK = 1 << 22  # pair terms formed at a time

    def forward(self, x, target, reduction="mean"):
        xp = get_array_module(x)
        N, C = (1, 1) if x.ndim == 0 else (1, x.shape[0]) if x.ndim == 1 else x.shape
        t = target.reshape(N, C)
        before_end = xp.cumsum(t == -1, axis=1) == 0  # the prefix before each row's first -1
        classes = xp.arange(C)
        # cnt[n, c]: how many times class c is one of sample n's targets
        self.cnt = ((t[:, :, None] == classes) & before_end[:, :, None]).sum(axis=1).astype(x.dtype)
        self.x2, self.in_shape, self.N, self.C, self.reduction = x.reshape(N, C), x.shape, N, C, reduction
        per = xp.zeros(N, dtype=x.dtype)
        for rows, z, coef in self._pairs(xp):
            per[rows] = xp.where(coef > 0, z * coef, 0).sum(axis=(1, 2))
        per /= C
        if reduction == "none":
            return per.reshape(()) if x.ndim <= 1 else per
        if reduction == "mean":  # (NaN for an empty batch, as the other losses' means; PyTorch's is uninitialized)
            with _quiet(xp):
                return per.sum() / x.dtype.type(N)
        return per.sum()

    def _pairs(self, xp):
        """(rows, z, coef) per chunk of samples: z[n, j, i] = 1 - x[j] + x[i], coef[n, j, i] the number of
        times the pair counts (target j listed that many times, i not a target), 0 where z <= 0."""
        C, x2, cnt = self.C, self.x2, self.cnt
        other = (cnt == 0)[:, None, :]
        step = max(1, self.CHUNK // max(C * C, 1))
        for lo in range(0, self.N, step):
            rows = slice(lo, lo + step)
            xs = x2[rows]
            z = 1 - xs[:, :, None] + xs[:, None, :]
            coef = xp.where(z > 0, cnt[rows][:, :, None] * other[rows], 0)
            yield rows, z, coef

    def backward(self, g):
        xp = get_array_module(g)
        if self.reduction == "none":
            g = g.reshape(self.N)[:, None, None]
        elif self.reduction == "mean":
            g = g / self.N
        grad = xp.zeros((self.N, self.C), dtype=self.x2.dtype)
        for rows, _, coef in self._pairs(xp):
            a = coef * (g[rows] if g.ndim else g) / self.C
            grad[rows] = a.sum(axis=1) - a.sum(axis=2)  # +a to each other class i, -a to each target j
        return grad.reshape(self.in_shape), None


@autocast_policy("float32")
def multilabel_margin_loss(input, target, reduction="mean"):
    """PyTorch's multi-label hinge loss: per sample, the sum over its target classes j and the classes i
    that are not targets of max(0, 1 - (x[j] - x[i])), divided by the number of classes C.

    ``input`` (N, C), (C,) or 0-d; ``target`` of the same shape, integer class indices, each row's targets
    ending at its first -1 (the rest of the row is ignored, but must still be in [-1, C - 1], as PyTorch
    checks). 'mean' averages over the samples. An empty batch gives NaN ('mean') or 0 ('sum'), as the other
    losses; PyTorch's multilabel_margin_loss returns uninitialized memory there.
    """
    _check_reduction("multilabel_margin_loss", reduction)
    x = _as_tensor(input)
    t = _saved(x, target)
    t = t if hasattr(t, "shape") else get_array_module(x.data).asarray(t)
    shape, tshape = tuple(x.shape), tuple(t.shape)
    if x.ndim > 2 or (x.ndim and shape[-1] == 0):
        raise ValueError(f"multilabel_margin_loss: expected a non-empty vector or matrix (with a batch of any "
                         f"size, 0 included) as input, got shape {shape}")
    C = shape[-1] if x.ndim else 1
    size = 1
    for s in tshape:
        size *= s
    if (x.ndim <= 1 and not (len(tshape) <= 1 and size == C)) or (x.ndim == 2 and tshape != shape):
        raise ValueError(f"multilabel_margin_loss: target of shape {tshape} does not match the input of shape "
                         f"{shape} (it must have the input's shape)")
    raw = _raw(t)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"multilabel_margin_loss: the target must hold integer class indices, got dtype "
                        f"{raw.dtype}")
    if raw.size and not (int(raw.min()) >= -1 and int(raw.max()) < C):
        raise ValueError(f"multilabel_margin_loss: target values must be class indices in [0, {C - 1}] or -1 "
                         f"(the end of a sample's targets), got values in [{int(raw.min())}, {int(raw.max())}]")
    return _MultiLabelMargin.apply(x, t, reduction=reduction)


__all__ = ["multilabel_soft_margin_loss", "multilabel_margin_loss"]
