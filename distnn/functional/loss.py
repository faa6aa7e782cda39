"""Losses. cross_entropy is one fused op (log-softmax + NLL), stable and cheap."""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import elementwise as E
from .activation import log_softmax, relu, sigmoid_array, softplus_array


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _const(input, x):
    """A constant of a loss (target, class weights) on ``input``'s device: a host array given with a GPU
    input is copied there (as the trainer's host labels are), so numpy constants work on either device."""
    x = _raw(x)
    if x is None or isinstance(x, (int, float)):
        return x
    xp = get_array_module(_raw(input))
    return x if xp is np or get_array_module(x) is xp else xp.asarray(x)


def _as_tensor(x, like=None):
    """``x`` as a Tensor: a Tensor stays itself, an array or a number becomes a constant one (on ``like``'s
    device when given, a Tensor)."""
    if isinstance(x, Tensor):
        return x
    if like is not None:
        x = get_array_module(like.data).asarray(x)
    return Tensor(x)


def _operand(input, x):
    """A target or weight of a loss composed of differentiable ops, as a Tensor: one that requires grad stays
    itself (it gets its gradient); any other value becomes a constant on ``input``'s device, a floating or
    integer one in ``input``'s dtype (the loss is computed in the input's dtype, as the fused losses are)."""
    if isinstance(x, Tensor) and x.requires_grad:
        return x
    a = _const(input, x)
    if not hasattr(a, "dtype"):  # a number or a list
        a = get_array_module(_raw(input)).asarray(a)
    dtype = _raw(input).dtype
    if dtype.kind == "f" and a.dtype.kind in "fiu" and a.dtype != dtype:
        a = a.astype(dtype)
    return x if isinstance(x, Tensor) and a is x.data else Tensor(a)


def _saved(input, x):
    """A constant a fused loss's backward reads (target, class weights): a Tensor on ``input``'s device that
    needs no gradient stays one, so that its version is checked at backward, as PyTorch's saved target and
    weight are (an in-place change of it between forward and backward would give a wrong gradient); else
    :func:`_const`."""
    if isinstance(x, Tensor) and not x.requires_grad and get_array_module(x.data) is get_array_module(_raw(input)):
        return x
    return _const(input, x)


def _check_reduction(name, reduction):
    """A ValueError naming the loss ``name`` unless ``reduction`` is 'mean', 'sum' or 'none'."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    """A Tensor's or a raw array's per-sample losses reduced as ``reduction`` says."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


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

    from_logits = True

    def forward(self, x, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean", label_smoothing=0.0):
        xp = get_array_module(x)
        if x.ndim < 1:
            raise ValueError(f"{self.name}: input must have a class dimension")
        self.in_shape = x.shape
        if getattr(target, "dtype", None) is not None and target.dtype.kind == "f" and target.shape == x.shape:
            raise ValueError(  # (cross_entropy takes them before reaching here; a floating label vector is refused below)
                f"{self.name}: class-probability targets (a floating target of the input's shape {tuple(x.shape)}) "
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
                f"{self.name}: target shape {tuple(target.shape)} does not match input batch shape {tuple(batch_shape)}"
            )
        t = target.reshape(-1)
        all_valid = _check_labels(xp, t, C, ignore_index, self.name)
        if weight is not None:
            if tuple(weight.shape) != (C,):
                raise ValueError(f"{self.name}: weight must have shape ({C},) (one per class), got {tuple(weight.shape)}")
            weight = weight.astype(x2.dtype, copy=False)  # computations stay in the input's dtype
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

        self.in_dtype, self.batch_shape, self.reduction, self.C = x2.dtype, batch_shape, reduction, C
        if all_valid and weight is None and label_smoothing == 0.0:
            return self._forward_plain(xp, x2, t)

        if self.from_logits:
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
    name = "cross_entropy"


class _NLLLoss(_ClassLoss):
    reads = ((0, 1, 2), (), ())  # (its own arrays; the input is what PyTorch's saves, so both refuse alike)
    from_logits = False
    name = "nll_loss"


def cross_entropy(input, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) (or one sample (C,)) against ``target``.

    ``target``: integer class labels (N,) or (N, d1, ...): a fused log-softmax + negative log-likelihood;
    or, as PyTorch, class probabilities: a floating target of the input's shape (see
    :func:`_cross_entropy_probabilities`). ``label_smoothing`` eps mixes the target with the uniform
    distribution: (1 - eps) * target + eps / C.
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
    """Negative log-likelihood of log-probabilities ``input`` at integer ``target``."""
    return _NLLLoss.apply(input, _saved(input, target), _saved(input, weight), ignore_index=ignore_index,
                          reduction=reduction)


class _BCEWithLogits(Function):
    """loss = (1 - y) x + L softplus(-x), L = 1 + (pos_weight - 1) y; differentiable in x and y (as PyTorch)."""

    # both gradients read x, y and the weights (as PyTorch's, whose formulas take all four), not the result
    reads = ((0, 1, 2, 3), (0, 1, 2, 3), (), ())

    def forward(self, x, y, weight=None, pos_weight=None, reduction="mean"):
        if y.shape != x.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(y.shape)} != input shape {tuple(x.shape)}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        for name, w in (("weight", weight), ("pos_weight", pos_weight)):
            if w is not None and np.broadcast_shapes(x.shape, w.shape) != x.shape:
                # (a larger broadcast loss would be averaged over more terms than the input has: PyTorch refuses too)
                raise ValueError(f"binary_cross_entropy_with_logits: {name} of shape {tuple(w.shape)} must broadcast "
                                 f"to the input's shape {tuple(x.shape)}, not enlarge it")
        dt = x.dtype
        y = y.astype(dt, copy=False)
        weight = None if weight is None else weight.astype(dt, copy=False)
        pos_weight = None if pos_weight is None else pos_weight.astype(dt, copy=False)
        L = 1 + (pos_weight - 1) * y if pos_weight is not None else 1
        # softplus(-x) = log(1 + e^-x), computed stably (never forms log(sigmoid(x))).
        sp = softplus_array(-x)
        loss = (1 - y) * x + L * sp
        if weight is not None:
            loss = loss * weight
        self.x, self.y, self.L, self.sp = x, y, L, sp
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction
        return _reduce(loss, reduction).astype(dt, copy=False)

    def backward(self, g):
        need_x, need_y = self.needs_input_grad[0], self.needs_input_grad[1]
        scale = g / self.x.size if self.reduction == "mean" else g
        if self.weight is not None:
            scale = scale * self.weight
        gx = gy = None
        if need_x:
            sig = sigmoid_array(self.x)
            gx = ((1 - self.y) - self.L * (1 - sig)) * scale
        if need_y:
            dy = -self.x if self.pos_weight is None else (self.pos_weight - 1) * self.sp - self.x
            gy = dy * scale
        return gx, gy, None, None


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction="mean"):
    """Binary cross-entropy on logits, stable for large |logit| (never forms log(sigmoid))."""
    if not isinstance(target, Tensor):
        target = get_array_module(_raw(input)).asarray(target)
    return _BCEWithLogits.apply(input, target, _saved(input, weight), _saved(input, pos_weight), reduction=reduction)


# PyTorch's floor under p (1 - p) in BCE's gradient is the float 1e-12 (9.99999996e-13 as a double), in
# every dtype: 1e-12 itself gives a float64 gradient at p = 0 or 1 that is 4e-9 (relative) off PyTorch's.
_BCE_GRAD_FLOOR = float(np.float32(1e-12))


class _BCE(Function):
    """-w (y log p + (1 - y) log(1 - p)) on probabilities p, each log clamped at -100 (PyTorch's BCELoss).

    The lecture notes' binary cross-entropy as written. On a sigmoid's output it loses the tails: p
    rounds to 0 or 1 (float32: |logit| > 17), so prefer binary_cross_entropy_with_logits (the notes'
    softplus form) when the logits are at hand. The clamp keeps p = 0 or 1 finite (a loss of at most 100).
    """

    # p's gradient reads p, y and the weight, y's its own logs and the weight; PyTorch's formulas both take
    # the input, the target and the weight: declared as those, so that both refuse alike
    reads = ((0, 1, 2), (0, 1, 2), ())

    def forward(self, p, y, weight=None, reduction="mean"):
        xp = get_array_module(p)
        if y.shape != p.shape:
            raise ValueError(f"binary_cross_entropy: target shape {tuple(y.shape)} != input shape {tuple(p.shape)}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if weight is not None and np.broadcast_shapes(p.shape, weight.shape) != p.shape:
            raise ValueError(f"binary_cross_entropy: weight of shape {tuple(weight.shape)} must broadcast to the "
                             f"input's shape {tuple(p.shape)}, not enlarge it")
        if p.size and not bool(((p >= 0) & (p <= 1)).all()):  # (NaN fails too, as in PyTorch)
            raise ValueError("binary_cross_entropy: every input must be a probability in [0, 1] (for logits use "
                             "binary_cross_entropy_with_logits)")
        dt = p.dtype
        y = y.astype(dt, copy=False)
        weight = None if weight is None else weight.astype(dt, copy=False)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            log_p = xp.maximum(xp.log(p), -100)
            log_q = xp.maximum(xp.log1p(-p), -100)
        loss = -(y * log_p + (1 - y) * log_q)
        if weight is not None:
            loss = loss * weight
        self.p, self.y, self.weight, self.reduction = p, y, weight, reduction
        self.log_p, self.log_q = log_p, log_q
        return _reduce(loss, reduction).astype(dt, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        scale = g / self.p.size if self.reduction == "mean" else g
        if self.weight is not None:
            scale = scale * self.weight
        gp = gy = None
        if self.needs_input_grad[0]:  # (p - y) / (p (1 - p)), its denominator kept >= PyTorch's floor
            p = self.p
            gp = (p - self.y) / xp.maximum(p * (1 - p), _BCE_GRAD_FLOOR) * scale
        if self.needs_input_grad[1]:
            gy = (self.log_q - self.log_p) * scale
        return gp, gy, None


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` (same shape)."""
    if not isinstance(target, Tensor):
        target = get_array_module(_raw(input)).asarray(target)
    return _BCE.apply(input, target, _saved(input, weight), reduction=reduction)


def _warn_if_shapes_differ(name, input, target):
    """As PyTorch: a target that only broadcasts against the input (a (N, 1) output for a (N,) target)
    is almost always a bug: the loss is taken over the N x N broadcast."""
    ts = getattr(target, "shape", None)
    if ts is not None and tuple(ts) != tuple(input.shape):
        warnings.warn(f"{name}: the target's shape {tuple(ts)} differs from the input's {tuple(input.shape)}; they "
                      "are broadcast, which is likely not what you want (make the shapes equal)", stacklevel=3)


def mse_loss(input, target, reduction="mean"):
    _warn_if_shapes_differ("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, reduction="mean"):
    _warn_if_shapes_differ("l1_loss", input, target)
    return _reduce(E.abs(input - target), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta) (PyTorch's HuberLoss); delta > 0."""
    check_huber_delta(delta)
    _warn_if_shapes_differ("huber_loss", input, target)
    diff = input - target
    ad = E.abs(diff)
    quad = E.minimum(ad, delta)
    lin = ad - quad
    return _reduce(0.5 * quad * quad + delta * lin, reduction)


def check_huber_delta(delta) -> None:
    if not (isinstance(delta, (int, float, np.integer, np.floating)) and delta > 0):
        raise ValueError(f"huber_loss: delta must be a number > 0, got {delta!r}")


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Multi-class hinge loss: sum over j != y of max(0, margin - x[y] + x[j])^p / C."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    t = np.asarray(_raw(target)) if get_array_module(_raw(input)) is np else _raw(target)
    xp = get_array_module(_raw(input))
    # the target's own memory (a Tensor): it stays one, so that the gather of the target scores checks it, as
    # PyTorch's saved target (changed in place before backward, the gradient would go to the new class)
    index = target if isinstance(input, Tensor) and isinstance(target, Tensor) and target.data is t else t
    if input.ndim == 1:  # one sample (C,) with a 0-d target, as PyTorch allows: a batch of one, a 0-d result
        per = multi_margin_loss(input.reshape(1, -1), index.reshape(1), p, margin, weight, reduction="none")
        return _reduce(per.reshape(()), reduction)
    if input.ndim != 2:
        raise ValueError(f"multi_margin_loss: expected an input of shape (N, C) or (C,), got {tuple(input.shape)}")
    N, C = input.shape
    if tuple(t.shape) != (N,):
        raise ValueError(f"multi_margin_loss: target shape {tuple(t.shape)} does not match the input's batch ({N},)")
    if weight is not None and tuple(_raw(weight).shape) != (C,):
        raise ValueError(f"multi_margin_loss: weight of shape {tuple(_raw(weight).shape)} must have one entry per "
                         f"class ({C},)")
    _check_labels(xp, xp.asarray(t), C, -10**9, "multi_margin_loss")
    rows = xp.arange(N)
    x_y = input[rows, index].reshape(N, 1)
    h = relu(margin - x_y + input)  # no gradient at a hinge of exactly 0 (PyTorch's z > 0)
    if p == 2:
        h = h * h
    not_target = xp.ones((N, C), dtype=_raw(input).dtype)
    not_target[rows, t] = 0
    h = h * not_target
    if weight is not None:
        h = h * xp.asarray(_raw(weight), dtype=_raw(input).dtype)[t].reshape(N, 1)
    per = h.sum(axis=1) / C
    return _reduce(per, reduction)


__all__ = [
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
    "huber_loss", "multi_margin_loss", "log_softmax",
]
