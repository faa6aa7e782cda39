"""Losses over class scores: cross-entropy (one fused op, log-softmax + NLL, stable and cheap) and
the negative log-likelihood, with PyTorch's ``ignore_index``, class weights and label smoothing."""
from __future__ import annotations

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .activation import log_softmax
from .class_loss_half import half_backward, half_forward
from ._elementwise_common import _quiet
from ._loss_common import _check_reduction, _const, _raw, _reduce, _saved


def _check_labels(xp, target, num_classes, ignore_index, what):
    """Raise on non-integer or out-of-range labels; return True when no label is ignored."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"{what}: target must hold integer class labels, got dtype {target.dtype}")
    if target.size == 0:
        return True
    lo, hi = int(target.min()), int(target.max())  # two cheap reductions decide the common case
    if lo >= 0 and hi < num_classes:
        return not (0 <= ignore_index < num_classes and bool((target == ignore_index).any()))
    valid = target != ignore_index
    out_of_range = valid & ((target < 0) | (target >= num_classes))
    if bool(out_of_range.any()):
        bad = target[out_of_range]
        raise ValueError(
            f"{what}: labels must be in [0, {num_classes - 1}] for {num_classes} classes; "
            f"found {sorted(set(int(v) for v in bad.ravel()[:10].tolist()))}"
        )
    return False


#: the target value the classification losses skip by default (PyTorch's ``ignore_index``)
IGNORE_INDEX = -100


class _ClassLoss(Function):
    """Shared by cross_entropy (on logits) and nll_loss (on log-probabilities).

    With per-sample class coefficients a[i, c] (one-hot times class weight,
    blended with a smoothed uniform term, zero for ignored samples), the loss is
    sum_i sum_c a[i, c] * (-logp[i, c]) / D, where D is the weighted number of
    counted samples for 'mean' (PyTorch's convention) and 1 otherwise.
    """
    autocast = "float32"  # under distnn.autocast: needs float32's range

    from_logits = True

    def forward(self, x, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean", label_smoothing=0.0):
        xp = get_array_module(x)
        if x.ndim < 1:
            raise ValueError(f"{self.label}: input must have a class dimension")
        self.in_shape = x.shape
        if getattr(target, "dtype", None) is not None and target.dtype.kind == "f" and target.shape == x.shape:
            raise ValueError(  # (cross_entropy takes them before reaching here; a floating label vector is refused below)
                f"{self.label}: class-probability targets (a floating target of the input's shape {tuple(x.shape)}) "
                f"are not supported, as in PyTorch; pass integer class labels (cross_entropy takes probabilities)"
            )
        if x.ndim == 1:  # one sample: (C,) with a 0-d target
            x, target = x[None], xp.asarray(target).reshape(1)
        # Move the class axis (1) last, flatten the rest: (M, C) and (M,).
        if x.ndim > 2:
            x = xp.moveaxis(x, 1, -1)
        batch_shape = x.shape[:-1]
        C = x.shape[-1]
        x2 = x.reshape(-1, C)
        target = xp.asarray(target)
        if target.shape != batch_shape:
            raise ValueError(
                f"{self.label}: target shape {tuple(target.shape)} does not match input batch shape {tuple(batch_shape)}"
            )
        t = target.reshape(-1)
        all_valid = _check_labels(xp, t, C, ignore_index, self.label)
        if weight is not None:
            if tuple(weight.shape) != (C,):
                raise ValueError(f"{self.label}: weight must have shape ({C},) (one per class), got {tuple(weight.shape)}")
            weight = weight.astype(x2.dtype, copy=False)  # computations stay in the input's dtype
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

        self.in_dtype, self.batch_shape, self.reduction, self.C = x2.dtype, batch_shape, reduction, C
        if x2.dtype == xp.float16:  # (PyTorch's float16 roundings, bitwise: class_loss_half)
            return half_forward(self, xp, x2, t, all_valid, weight, ignore_index, label_smoothing)
        if all_valid and weight is None and label_smoothing == 0.0:
            return self._forward_plain(xp, x2, t)

        if self.from_logits:
            with _quiet(xp):  # (a row whose maximum is infinite: NaN, as PyTorch's, without numpy's warning)
                shifted = x2 - x2.max(axis=1, keepdims=True)
            logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        else:
            logp = x2
        M = x2.shape[0]
        valid = t != ignore_index
        safe_t = xp.where(valid, t, 0)
        rows = xp.arange(M)
        w_t = weight[safe_t] if weight is not None else xp.ones(M, dtype=x2.dtype)
        w_t = w_t * valid
        eps = label_smoothing
        simple = eps == 0.0
        # An ignored row is left out with where, not multiplied by 0: its log-probabilities may be -inf
        # or NaN (a masked class, a padded position), and 0 * inf would make the whole loss NaN.
        picked = xp.where(valid, logp[rows, safe_t], 0)
        if simple:
            per = -picked * w_t
        else:
            wc = weight if weight is not None else xp.ones(C, dtype=x2.dtype)
            smooth = -xp.where(valid, (logp * wc).sum(axis=1), 0)
            per = (1 - eps) * (-picked * w_t) + (eps / C) * smooth
        if reduction == "mean":
            denom = w_t.sum()
            out = per.sum() / denom  # NaN when every target is ignored, as in PyTorch
            # ... but the gradient is then zero, not 0 * inf: one such batch must not poison the weights
            self.scale = (denom != 0) / xp.where(denom == 0, 1, denom)
        elif reduction == "sum":
            out = per.sum()
            self.scale = 1.0
        else:
            out = per.reshape(batch_shape if len(self.in_shape) > 1 else ())
            self.scale = None
        self.logp, self.rows, self.t, self.w_t, self.valid = logp, rows, safe_t, w_t, valid
        self.all_valid = all_valid
        self.eps, self.wc, self.C = eps, (None if simple else wc), C
        self.batch_shape, self.reduction = batch_shape, reduction
        return out.astype(x2.dtype) if hasattr(out, "astype") else out

    def _forward_plain(self, xp, x2, t):
        """No class weights, no smoothing, nothing ignored: the floor's arithmetic, nothing more."""
        M = x2.shape[0]
        rows = xp.arange(M)
        if self.from_logits:
            with _quiet(xp):  # (as in forward)
                shifted = x2 - x2.max(axis=1, keepdims=True)
            e = xp.exp(shifted)
            se = e.sum(axis=1, keepdims=True)
            per = xp.log(se[:, 0]) - shifted[rows, t]
            e /= se  # softmax probabilities, all backward needs
            self.probs = e
        else:
            per = -x2[rows, t]
            self.probs = None
        self.rows, self.t, self.plain = rows, t, True
        if self.reduction == "mean":
            out = per.mean()
        elif self.reduction == "sum":
            out = per.sum()
        else:
            out = per.reshape(self.batch_shape if len(self.in_shape) > 1 else ())
        return out.astype(x2.dtype, copy=False)

    def _backward_plain(self, xp, g):
        rows, t = self.rows, self.t
        M = rows.shape[0]
        if self.reduction == "none":
            scale = g.reshape(-1)
            col = scale[:, None]
        else:
            scale = col = (g / M if self.reduction == "mean" else g).astype(self.in_dtype, copy=False)
        if self.probs is not None:
            grad = self.probs * col
            grad[rows, t] -= scale
        else:
            grad = xp.zeros((M, self.C), dtype=self.in_dtype)
            grad[rows, t] = -scale
        return grad

    def backward(self, g):
        xp = get_array_module(g)
        if getattr(self, "half", False):
            return self._shape_back(xp, half_backward(self, xp, g)), None, None
        if getattr(self, "plain", False):
            return self._shape_back(xp, self._backward_plain(xp, g)), None, None
        logp, rows, t, eps, C = self.logp, self.rows, self.t, self.eps, self.C
        # a[i, c]: coefficients of -logp; sum_c a[i, c] is needed for the logits gradient.
        if self.scale is None:
            row_scale = g.reshape(-1)
        else:
            row_scale = g * self.scale
        if eps == 0.0:
            a_sum = self.w_t  # a = w_t at the label, 0 elsewhere
        else:
            a_sum = (1 - eps) * self.w_t + (eps / C) * self.wc.sum() * self.valid
        if self.from_logits:
            grad = xp.exp(logp) * (a_sum * row_scale)[:, None]
        else:
            grad = xp.zeros_like(logp)
        if eps == 0.0:
            grad[rows, t] -= self.w_t * row_scale
        else:
            grad -= (eps / C) * self.wc[None, :] * (self.valid * row_scale)[:, None]
            grad[rows, t] -= (1 - eps) * self.w_t * row_scale
        if not self.all_valid:  # ignored rows do not enter the loss: exactly 0 (not 0 * NaN)
            grad = xp.where(self.valid[:, None], grad, 0)
        return self._shape_back(xp, grad.astype(logp.dtype, copy=False)), None, None

    def _shape_back(self, xp, grad):
        """(M, C) gradient back to the input's layout (class axis 1, or a single (C,) sample)."""
        shape = self.in_shape
        if len(shape) > 2:
            return xp.moveaxis(grad.reshape(self.batch_shape + (self.C,)), -1, 1)
        if len(shape) == 1:
            return grad.reshape(shape)
        return grad


class _CrossEntropy(_ClassLoss):
    # (backward reads its own arrays; PyTorch's reads its own log-softmax too, and target and weight)
    reads = ((1, 2), (), ())
    from_logits = True
    label = "cross_entropy"  # (for messages; not ``name``: that is the Node API's Function.name())


class _NLLLoss(_ClassLoss):
    torch_name = "NllLossBackward0"
    reads = ((0, 1, 2), (), ())  # (its own arrays; the input is what PyTorch's saves, so both refuse alike)
    from_logits = False
    label = "nll_loss"


@autocast_policy("float32")
def cross_entropy(input, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) (or one sample (C,)) against ``target``.

    ``target``: integer class labels (N,) or (N, d1, ...): a fused log-softmax + negative log-likelihood;
    or, as PyTorch, class probabilities: a floating target of the input's shape (see
    :func:`_cross_entropy_probabilities`). ``label_smoothing`` eps mixes the target with the uniform
    distribution: (1 - eps) * target + eps / C.

    float16 'mean' (and 'sum') differs from PyTorch's CPU kernel on purpose: distnn adds the per-sample losses
    up in float32 and rounds once, as every float16 reduction here (and PyTorch's own ``sum``/``mean`` of
    Half); PyTorch 2.13's ``nll_loss`` adds them in Half itself (a cascade of 8 partial sums of 16 samples
    each, every addition rounded to float16) and divides in Half. Over random batches distnn's mean is within
    1 float16 unit of the float64 mean of the same losses (equal in 294 of 300), PyTorch's up to 2 units off
    (equal in 148 of 300); with class weights and ignored samples distnn's is within 2 units (the weighted sum
    and the weight total each rounded to float16 before the division), PyTorch's within 5. The two may then
    differ by a few units, PyTorch's being the less accurate. The float16 per-sample losses ('none') and the
    gradients are PyTorch's, rounded where its composition rounds (``class_loss_half``): a weighted 'mean'
    gradient divides by PyTorch's Half cascade total weight (``nll_cascade_sum``), not the forward's.
    """
    t = _raw(target)
    if getattr(t, "dtype", None) is not None and t.dtype.kind == "f" and tuple(t.shape) == tuple(input.shape):
        if ignore_index != IGNORE_INDEX:  # (no label to ignore: PyTorch refuses it too)
            raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) does not apply to class-probability "
                             f"targets (a floating target of the input's shape {tuple(input.shape)})")
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    return _CrossEntropy.apply(
        input, _saved(input, target), _saved(input, weight),
        ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
    )


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    """PyTorch's cross_entropy with class-probability targets: per sample -sum_c weight[c] target[c] log p[c],
    'mean' over the samples (not over their weights; there is no ``ignore_index``). Composed from
    differentiable ops, so a target that requires grad gets its gradient (-weight log p) too."""
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    axis = 0 if input.ndim == 1 else 1  # the class axis
    C = input.shape[axis]
    if not isinstance(target, Tensor):
        target = _const(input, target)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / C
    terms = log_softmax(input, dim=axis) * target
    if weight is not None:
        w = _const(input, weight)
        if tuple(w.shape) != (C,):
            raise ValueError(f"cross_entropy: weight must have shape ({C},) (one per class), got {tuple(w.shape)}")
        terms = terms * w.astype(_raw(input).dtype, copy=False).reshape((C,) + (1,) * (input.ndim - axis - 1))
    return _reduce(-terms.sum(dim=axis), reduction)


def nll_loss(input, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` at integer ``target``. A float16 'mean' or 'sum'
    adds up in float32 and rounds once (PyTorch's CPU kernel adds in float16: see :func:`cross_entropy`)."""
    return _NLLLoss.apply(input, _saved(input, target), _saved(input, weight), ignore_index=ignore_index,
                          reduction=reduction)
