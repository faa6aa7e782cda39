"""``ctc_loss``: the Connectionist Temporal Classification loss, as ``torch.nn.functional.ctc_loss``.

The loss of a sample is -log of the summed probability of every alignment of its
target to its ``input_length`` frames (Graves et al. 2006): the target extended
with blanks, l' = (blank, l1, blank, l2, ..., lL, blank), is walked left to right,
one position per frame staying, stepping one on, or skipping a blank between two
different labels (repeated labels need a blank between them).

Forward is the alpha recursion in log space, one step per frame (a Python loop
over T), each step vectorized over the batch and the 2L+1 positions, with
PyTorch's CPU arithmetic (the three-term logsumexp with its max, a max of -inf
taken as 0). Backward is PyTorch's alpha-beta gradient: for frame t and class c,
``exp(lp) - exp(logsumexp_{s: l'_s = c} (alpha_t(s) + beta_t(s)) + nll - lp)``
times the sample's upstream gradient, 0 past the sample's input length. The
``exp(lp)`` term makes it the gradient of the logits behind a log_softmax (which
is how PyTorch's is meant to be used), not of the loss in ``lp`` alone; distnn
gives PyTorch's. An infeasible sample (too few frames) has an infinite loss and,
unless ``zero_infinity``, a NaN gradient, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import OUTPUT, Function
from distnn.backend import get_array_module, to_numpy

from . import elementwise as E
from ._loss_common import _as_tensor, _const, _raw


def _logsumexp(terms, xp):
    """PyTorch's log(sum exp(a - m)) + m of same-shaped arrays, with m their max (0 where it is -inf)."""
    m = terms[0]
    for a in terms[1:]:
        m = xp.maximum(m, a)
    m = xp.where(m == -np.inf, 0, m)
    total = xp.exp(terms[0] - m)
    for a in terms[1:]:
        total = total + xp.exp(a - m)
    return xp.log(total) + m


def _shift(a, k, xp, forward=True):
    """``a`` along its last axis moved ``k`` places right (``forward``) or left, -inf filling in."""
    k = min(k, a.shape[-1])
    pad = xp.full(a.shape[:-1] + (k,), -np.inf, dtype=a.dtype)
    if forward:
        return xp.concatenate([pad, a[..., :a.shape[-1] - k]], axis=-1)
    return xp.concatenate([a[..., k:], pad], axis=-1)


class CTCLossFunction(Function):
    """Per-sample negative log-likelihoods (N,) of log-probabilities (T, N, C); see the module docstring.

    ``ext`` (N, 2S+1) is each sample's extended target l' (blank-padded past its length), ``il`` and
    ``tl`` (host int64, (N,)) the input and target lengths.
    """

    # As PyTorch's, backward reads the log-probabilities and the loss (its saved alpha is distnn's own).
    reads = ((0, OUTPUT),)

    def forward(self, x, ext, il, tl, zero_infinity=False):
        xp = get_array_module(x)
        T, N, _ = x.shape
        width = ext.shape[1]
        rows = xp.arange(N)[:, None]
        lp_ext = x[:, rows, ext]  # (T, N, 2S+1): each position's log-probability at each frame
        s = xp.arange(width)
        valid = s[None, :] < 2 * xp.asarray(tl)[:, None] + 1  # the positions of each sample's own l'
        # a skip from s - 2 to s: between two different labels (never onto a blank: l'_{s-2} is one too)
        skip = xp.zeros((N, width), dtype=bool)
        skip[:, 2:] = ext[:, 2:] != ext[:, :-2]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            alpha = xp.full((T, N, width), -np.inf, dtype=x.dtype)
            alpha[0, :, :2] = xp.where(valid[:, :2], lp_ext[0, :, :2], -np.inf)
            for t in range(1, T):
                prev = alpha[t - 1]
                la3 = xp.where(skip, _shift(prev, 2, xp), -np.inf)
                step = _logsumexp([prev, _shift(prev, 1, xp), la3], xp) + lp_ext[t]
                alpha[t] = xp.where(valid, step, -np.inf)
            # the likelihood: the last frame's logsumexp of the final blank and the final label
            last = alpha[xp.asarray(np.maximum(il - 1, 0)), xp.arange(N)]  # (N, 2S+1)
            end = xp.asarray(2 * tl)[:, None]
            l1 = xp.take_along_axis(last, end, axis=1)[:, 0]
            l2 = xp.take_along_axis(last, xp.maximum(end - 1, 0), axis=1)[:, 0]
            has_labels = xp.asarray(tl > 0)
            both = _logsumexp([l1, l2], xp)
            nll = -xp.where(has_labels, both, l1)
        # no frames: a likelihood of 1 for an empty target (nll -0.0, as PyTorch's -0), else 0
        no_frames = xp.asarray(il == 0)
        nll = xp.where(no_frames, xp.where(has_labels, np.inf, -0.0), nll).astype(x.dtype)
        self.x, self.ext, self.lp_ext, self.alpha, self.valid = x, ext, lp_ext, alpha, valid
        self.il, self.tl, self.nll, self.zero_infinity = il, tl, nll, zero_infinity
        return nll

    def backward(self, grad):
        x, ext, lp_ext, alpha, valid, nll = self.x, self.ext, self.lp_ext, self.alpha, self.valid, self.nll
        xp = get_array_module(x)
        T, N, C = x.shape
        width = ext.shape[1]
        il = xp.asarray(self.il)
        tl = xp.asarray(self.tl)
        s = xp.arange(width)
        final = (s[None, :] == 2 * tl[:, None]) | ((s[None, :] == 2 * tl[:, None] - 1) & (tl[:, None] > 0))
        skip_on = xp.zeros((N, width), dtype=bool)  # a skip from s to s + 2
        skip_on[:, :-2] = ext[:, :-2] != ext[:, 2:]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            beta = xp.full((T, N, width), -np.inf, dtype=x.dtype)
            nxt = beta[0]  # (all -inf: no frame after the last)
            for t in range(T - 1, -1, -1):
                lb3 = xp.where(skip_on, _shift(nxt, 2, xp, forward=False), -np.inf)
                step = _logsumexp([nxt, _shift(nxt, 1, xp, forward=False), lb3], xp) + lp_ext[t]
                # each sample starts at its own last frame, from its final blank and final label
                start = (il == t + 1)[:, None]
                row = xp.where(start, xp.where(final, lp_ext[t], -np.inf), step)
                beta[t] = nxt = xp.where(valid & (t < il)[:, None], row, -np.inf)
            ab = alpha + beta
            frames = (xp.arange(T)[:, None] < il[None, :])[:, :, None]  # (T, N, 1)
            ab = xp.where(frames & valid[None], ab, -np.inf)  # (alpha past a sample's frames is never read)
            # PyTorch's last frame assigns the final blank's term, then the final label's (not a log-add): a
            # final label equal to the blank (a target holding the blank) overwrites the blank's term
            last_label = xp.take_along_axis(ext, xp.maximum(2 * tl - 1, 0)[:, None], axis=1)[:, 0]
            lost = (tl > 0) & (last_label == ext[:, 0])
            at_end = ((xp.arange(T)[:, None, None] == il[None, :, None] - 1)
                      & (s[None, None, :] == 2 * tl[None, :, None]))
            ab = xp.where(at_end & lost[None, :, None], -np.inf, ab)
            # logsumexp of alpha + beta over the positions of each class, as one bincount: the exps are taken
            # against the frame's largest alpha + beta (the sum underflows only for terms negligible beside it)
            m = ab.max(axis=2, keepdims=True)
            m = xp.where(m == -np.inf, 0, m)
            flat = ((xp.arange(T)[:, None, None] * N + xp.arange(N)[None, :, None]) * C + ext[None]).ravel()
            summed = xp.bincount(flat, weights=xp.exp(ab - m).ravel().astype(np.float64), minlength=T * N * C)
            lcab = xp.log(summed.reshape(T, N, C)).astype(x.dtype) + m
            g = grad.reshape(1, N, 1).astype(x.dtype)
            nll3 = nll.reshape(1, N, 1)
            out = (xp.exp(x) - xp.exp(lcab + nll3 - x)) * g
        zero = ~frames
        if self.zero_infinity:
            zero = zero | (nll3 == np.inf)
        return xp.where(zero, xp.zeros((), dtype=x.dtype), out).astype(x.dtype), None, None, None


def _lengths(v, name):
    """A length argument (ints: a sequence, an int, an integer array or Tensor of at most 1 dim) as host int64."""
    if isinstance(v, (list, tuple)):
        a = np.asarray([to_numpy(_raw(u)) for u in v]) if len(v) else np.zeros(0, np.int64)
    else:
        a = to_numpy(_raw(v))
    if a.dtype.kind not in "iu":
        raise TypeError(f"ctc_loss: {name} must be integral, got dtype {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"ctc_loss: {name} must be a sequence of ints or a 0-d or 1-d tensor, got shape {a.shape}")
    return a.reshape(-1).astype(np.int64)


def _padded_targets(targets, tl, N, C, blank, xp):
    """The targets as (N, S) int64 on ``xp`` (S the longest target length, blank past each length),
    from padded (N, S') or concatenated (sum(target_lengths),) targets, checked as PyTorch checks them."""
    S = int(tl.max()) if N else 0
    if targets.ndim == 1:  # concatenated
        if targets.shape[0] != int(tl.sum()):
            raise ValueError(f"ctc_loss: concatenated (1-D) targets must hold sum(target_lengths) = {int(tl.sum())} "
                             f"labels, got {targets.shape[0]}")
        starts = np.concatenate([[0], np.cumsum(tl)[:-1]]).astype(np.int64)
        pos = starts[:, None] + np.arange(S)[None, :]
    elif targets.ndim == 2:
        if targets.shape[0] != N or targets.shape[1] < S:
            raise ValueError(f"ctc_loss: padded (2-D) targets must be (batch_size, >= max(target_lengths)) = "
                             f"({N}, >= {S}), got shape {tuple(targets.shape)}")
        pos = None
    else:
        raise ValueError(f"ctc_loss: targets must be 1-D (concatenated) or 2-D (N, S), got shape "
                         f"{tuple(targets.shape)}")
    inside = np.arange(S)[None, :] < tl[:, None]
    if pos is not None:
        padded = targets[xp.asarray(np.where(inside, pos, 0))] if targets.shape[0] else xp.zeros((N, S), np.int64)
    else:
        padded = targets[:, :S]
    inside_x = xp.asarray(inside)
    padded = xp.where(inside_x, padded.astype(np.int64), blank)
    if padded.size and (int(padded.min()) < 0 or int(padded.max()) >= C):
        bad = to_numpy(padded[(padded < 0) | (padded >= C)])
        raise ValueError(f"ctc_loss: target labels must be in [0, {C - 1}] for {C} classes; found "
                         f"{sorted(set(int(v) for v in bad[:10]))}")
    return padded


@autocast_policy("float32")
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """The CTC loss of ``log_probs`` (T, N, C), or unbatched (T, C), as ``torch.nn.functional.ctc_loss``.

    ``targets``: padded (N, S) (each row's first ``target_lengths[n]`` labels count) or the targets
    concatenated (sum(target_lengths),); labels in [0, C), any numeric dtype (truncated to integers, as
    PyTorch converts them). ``input_lengths`` and ``target_lengths``: N ints each (a sequence or an integer
    array/Tensor), input lengths at most T. ``reduction='mean'`` divides each loss by its target length
    (at least 1) and averages; 'sum' sums; 'none' gives (N,) (unbatched: 0-d). An alignment that cannot fit
    gives an infinite loss; ``zero_infinity`` makes those losses and their gradients 0. The gradient is
    PyTorch's (see the module docstring). Labels out of range are refused (PyTorch reads past its memory).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"ctc_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    lp = _as_tensor(log_probs)
    x = lp.data
    if x.dtype.kind != "f":
        raise TypeError(f"ctc_loss: log_probs must be floating, got dtype {x.dtype}")
    if x.ndim not in (2, 3):
        raise ValueError(f"ctc_loss: log_probs must be 3-D (T, N, C) or 2-D (T, C) unbatched, got shape "
                         f"{tuple(x.shape)}")
    if x.size == 0:
        raise ValueError(f"ctc_loss: log_probs tensor must not be empty, got shape {tuple(x.shape)}")
    batched = x.ndim == 3
    T, C = x.shape[0], x.shape[-1]
    N = x.shape[1] if batched else 1
    if not 0 <= blank < C:
        raise ValueError(f"ctc_loss: blank must be in label range [0, {C}), got {blank}")
    il, tl = _lengths(input_lengths, "input_lengths"), _lengths(target_lengths, "target_lengths")
    for name, a in (("input_lengths", il), ("target_lengths", tl)):
        if a.shape[0] != N:
            raise ValueError(f"ctc_loss: {name} must be of size batch_size ({N}), got {a.shape[0]}")
        if a.size and int(a.min()) < 0:
            raise ValueError(f"ctc_loss: {name} must be at least 0, got {int(a.min())}")
    if il.size and int(il.max()) > T:
        raise ValueError(f"ctc_loss: input_lengths must be at most the number of frames T = {T}, got {int(il.max())}")
    xp = get_array_module(x)
    tg = xp.asarray(_const(x, targets))
    if tg.dtype.kind not in "iufb":
        raise TypeError(f"ctc_loss: targets must be numeric, got dtype {tg.dtype}")
    padded = _padded_targets(tg.astype(np.int64) if tg.dtype.kind == "f" else tg, tl, N, C, blank, xp)
    ext = xp.full((N, 2 * padded.shape[1] + 1), blank, dtype=np.int64)
    ext[:, 1::2] = padded
    lp3 = lp if batched else lp.reshape(T, 1, C)
    loss = CTCLossFunction.apply(lp3, ext, il, tl, zero_infinity=zero_infinity)
    if zero_infinity:
        loss = E.where(loss.data == np.inf, 0.0, loss)
    if reduction == "mean":
        return (loss / xp.asarray(np.maximum(tl, 1), dtype=x.dtype)).mean()
    if reduction == "sum":
        return loss.sum()
    return loss if batched else loss.reshape(())


__all__ = ["ctc_loss"]
