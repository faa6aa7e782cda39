"""Seeded fuzz of the added losses and distances against PyTorch (the oracle), with tests/layer_fuzz_harness.py.

Covered, each as its ``distnn.nn`` module and its functional: SmoothL1Loss, KLDivLoss, PoissonNLLLoss,
CosineEmbeddingLoss, MarginRankingLoss, TripletMarginLoss, MultiLabelSoftMarginLoss, MultiLabelMarginLoss,
CosineSimilarity and PairwiseDistance. Each case draws the hyper-parameters (every reduction, 'batchmean'
included; beta = 0; every norm order p; swap; eps large enough to matter), shapes (unbatched inputs, empty
batches, inputs that broadcast) and values holding the kinks exactly (|d| = beta, a hinge at 0, a target of
0 or 1, tied maxima, zero vectors, norms below eps), and compares outputs and the gradients of the input and,
where PyTorch's is differentiable in them, of the target and weight, in float64.

Left out, at its generator, with the reason (each a deliberate difference, tested in test_losses_more_edges): PoissonNLLLoss's
target gradient at a target <= 0 with ``full`` (PyTorch's is NaN, distnn's the loss's derivative);
MultiLabelMarginLoss's 'mean' and 'sum' of an empty batch (PyTorch's are uninitialized memory).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the first
seed, as in tests/layer_fuzz_harness.py. The explicit edge cases and errors are in test_losses_more_edges.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from layer_fuzz_harness import REDUCTIONS, C, G, op_registry, run_cases
from layer_fuzz_harness import torch  # noqa: F401  (importorskip'd there)

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()
FNAME = {"SmoothL1Loss": "smooth_l1_loss", "KLDivLoss": "kl_div", "PoissonNLLLoss": "poisson_nll_loss",
         "CosineEmbeddingLoss": "cosine_embedding_loss", "MarginRankingLoss": "margin_ranking_loss",
         "TripletMarginLoss": "triplet_margin_loss", "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
         "MultiLabelMarginLoss": "multilabel_margin_loss", "CosineSimilarity": "cosine_similarity",
         "PairwiseDistance": "pairwise_distance"}
P_NORMS = (2.0, 1.0, math.inf, -math.inf, 0.0, 0.5, 3.0, 1.5, -1.0)


def _shape(c, lo=0, hi=3):
    return tuple(c.dim(4) for _ in range(c.int(lo, hi)))


def _broadcast_partner(c, shape):
    """``shape``, or a shape that broadcasts to it: a suffix of it, or it with some sizes 1."""
    how = c.pick("same", "same", "suffix", "ones")
    if how == "suffix":
        return shape[c.int(0, len(shape)):]
    if how == "ones":
        return tuple(1 if c.coin() else s for s in shape)
    return shape


def _broadcast_pair(c):
    """Two shapes that broadcast together, the larger first or second."""
    shape = _shape(c, 0, 3)
    shape2 = c.draw(shape=shape, shape2=_broadcast_partner(c, shape))[1]
    if c.coin(0.3):
        shape, shape2 = shape2, shape
    return shape, shape2


def _both(c, name, kw, args, module_kw=None):
    """Run the functional or (now and then) the module, both libraries, on ``args``."""
    if c.draw(functional=c.coin()):
        fd, ft = getattr(DF, FNAME[name]), getattr(TF, FNAME[name])
        return c.run(lambda *a: fd(*a, **kw), lambda *a: ft(*a, **kw), args)
    mkw = kw if module_kw is None else module_kw
    return c.run(getattr(dnn, name)(**mkw), getattr(torch.nn, name)(**mkw), args)


@op("SmoothL1Loss")
def _smooth_l1(c):
    shape = _shape(c)
    beta, red, ygrad = c.draw(shape=shape, beta=c.pick(1.0, 0.0, 0.5, 2.0), reduction=c.pick(*REDUCTIONS),
                              target_grad=c.coin())[1:]
    x = c.normal(*shape, ties=True)
    tshape = c.draw(target_shape=_broadcast_partner(c, shape))
    y = c.normal(*tshape, ties=True)
    if tshape == shape and x.size and c.coin(0.6):  # the kinks exactly: |d| = beta, d = 0
        pick = c.rng.random(shape)
        y = np.where(pick < 0.3, x - beta, np.where(pick < 0.6, x + beta, np.where(pick < 0.8, x, y)))
    return _both(c, "SmoothL1Loss", dict(reduction=red, beta=beta), [G(x), G(y) if ygrad else C(y)])


@op("KLDivLoss")
def _kl_div(c):
    shape = _shape(c)
    log_target, red, ygrad = c.draw(shape=shape, log_target=c.coin(), reduction=c.pick("batchmean", *REDUCTIONS),
                                    target_grad=c.coin())[1:]
    x = c.normal(*shape)
    if shape and c.coin():  # log-probabilities over the last dimension, as the loss expects
        x = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    tshape = c.draw(target_shape=_broadcast_partner(c, shape))
    y = c.rng.random(tshape)
    if log_target:
        y = np.log(y + 0.05) * c.pick(1.0, 3.0)
    elif y.size and c.coin(0.5):  # zero probabilities: a loss of 0, and (as PyTorch's) a NaN target gradient
        y = np.where(c.rng.random(tshape) < 0.3, 0.0, y)
    return _both(c, "KLDivLoss", dict(reduction=red, log_target=log_target), [G(x), G(y) if ygrad else C(y)])


@op("PoissonNLLLoss")
def _poisson(c):
    shape = _shape(c)
    log_input, full, eps, red, ygrad = c.draw(shape=shape, log_input=c.coin(), full=c.coin(), eps=c.pick(1e-8, 0.1),
                                              reduction=c.pick(*REDUCTIONS), target_grad=c.coin())[1:]
    if log_input:
        x = c.normal(*shape) * 2
    else:  # rates, 0 now and then (eps keeps the log finite)
        x = np.where(c.rng.random(shape) < 0.2, 0.0, c.rng.random(shape) * 3)
    tshape = c.draw(target_shape=_broadcast_partner(c, shape))
    y = c.rng.poisson(1.5, tshape).astype(np.float64)  # 0, 1 (the Stirling term's edge) and above
    if c.coin(0.3):
        y = y + c.rng.random(tshape)  # (the formula takes any real target)
    if ygrad and full:  # (PyTorch's target gradient is NaN at y <= 0 with full: see the module docstring)
        y = np.where(y <= 0, 0.5, y)
    kw = dict(log_input=log_input, full=full, eps=eps, reduction=red)
    return _both(c, "PoissonNLLLoss", kw, [G(x), G(y) if ygrad else C(y)])


@op("CosineEmbeddingLoss")
def _cosine_embedding(c):
    D = c.int(1, 5)
    unbatched = c.coin(0.2)
    shape = (D,) if unbatched else (c.dim(4), D)
    margin, red = c.draw(shape=shape, margin=c.pick(0.0, 0.5, -0.3), reduction=c.pick(*REDUCTIONS))[1:]
    x1 = c.normal(*shape, ties=True)
    shape2 = c.draw(shape2=(1, D) if not unbatched and c.coin(0.2) else shape)
    x2 = c.normal(*shape2, ties=True)
    if c.coin(0.3) and x1.size:  # zero vectors: cos = 0 exactly, at the hinge's corner for margin 0
        x1[..., :] = np.where(c.rng.random(x1.shape[:-1] + (1,)) < 0.5, 0.0, x1)
    t = c.rng.choice([1, -1, 1, -1, 0], size=shape[:-1])
    if c.coin(0.3):
        t = t.astype(np.float64)
    return _both(c, "CosineEmbeddingLoss", dict(margin=margin, reduction=red), [G(x1), G(x2), C(t)])


@op("MarginRankingLoss")
def _margin_ranking(c):
    shape = _shape(c, 0, 2)
    margin, red, tgrad = c.draw(shape=shape, margin=c.pick(0.0, 1.0, 0.5), reduction=c.pick(*REDUCTIONS),
                                target_grad=c.coin(0.3))[1:]
    shapes = [tuple(1 if c.coin(0.2) else s for s in shape) for _ in range(3)]
    c.draw(shapes=shapes)
    x1 = c.normal(*shapes[0], ties=True) * 0.5  # halves: -t (x1 - x2) + margin = 0 now and then
    x2 = c.normal(*shapes[1], ties=True) * 0.5
    t = c.rng.choice([1.0, -1.0], size=shapes[2])
    if tgrad:
        tt = G(t)
    else:
        tt = C(t.astype(np.int64) if c.coin(0.3) else t)
    return _both(c, "MarginRankingLoss", dict(margin=margin, reduction=red), [G(x1), G(x2), tt])


@op("TripletMarginLoss")
def _triplet(c):
    D = c.int(1, 5)
    unbatched = c.coin(0.2)
    shape = (D,) if unbatched else (c.dim(4), D)
    margin, p, eps, swap, red = c.draw(shape=shape, margin=c.pick(1.0, 0.5, 2.0), p=c.pick(*P_NORMS),
                                       eps=c.pick(1e-6, 0.0, 0.3), swap=c.coin(), reduction=c.pick(*REDUCTIONS))[1:]
    shapes = [shape if unbatched or c.coin(0.8) else (1, D) for _ in range(3)]
    c.draw(shapes=shapes)
    a, pos, neg = (c.normal(*s, ties=True) for s in shapes)
    if c.coin(0.2) and shapes[0] == shapes[1]:
        pos = a.copy()  # equal vectors: a distance of |eps| per entry
    kw = dict(margin=margin, p=p, eps=eps, swap=swap, reduction=red)
    return _both(c, "TripletMarginLoss", kw, [G(a), G(pos), G(neg)])


@op("MultiLabelSoftMarginLoss")
def _multilabel_soft_margin(c):
    Cn = c.dim(4)
    shape = c.pick((Cn,), (c.dim(4), Cn), (c.dim(3), c.int(1, 3), Cn))
    red, tgrad = c.draw(shape=shape, reduction=c.pick(*REDUCTIONS), target_grad=c.coin(0.3))[1:]
    x = c.normal(*shape) * 3
    y = c.rng.random(shape)
    if c.coin(0.7):
        y = np.round(y)
    wshape = c.draw(weight=c.pick(None, None, (Cn,), shape[-1:] if len(shape) < 2 else (1,) * (len(shape) - 1) + (Cn,)))
    weight = None if wshape is None else c.rng.uniform(0.1, 2.0, wshape)
    yy = G(y) if tgrad else C(y)
    if c.draw(functional=c.coin()):
        return c.run(lambda a, t, w: DF.multilabel_soft_margin_loss(a, t, w, reduction=red),
                     lambda a, t, w: TF.multilabel_soft_margin_loss(a, t, w, reduction=red),
                     [G(x), yy, None if weight is None else (G(weight) if c.coin(0.3) else C(weight))])
    dm = dnn.MultiLabelSoftMarginLoss(weight=None if weight is None else distnn.tensor(weight), reduction=red)
    tm = torch.nn.MultiLabelSoftMarginLoss(weight=None if weight is None else torch.from_numpy(weight), reduction=red)
    return c.run(dm, tm, [G(x), yy])


@op("MultiLabelMarginLoss")
def _multilabel_margin(c):
    Cn = c.int(1, 5)
    shape = c.pick((), (Cn,), (Cn,), (c.dim(4), Cn), (c.dim(4), Cn))
    red = c.draw(shape=shape, reduction=c.pick(*REDUCTIONS))[1]
    Cn = shape[-1] if shape else 1
    rows = []
    for _ in range(shape[0] if len(shape) == 2 else 1):
        k = c.int(0, Cn)  # this many targets, then -1 (if room), then anything in range
        labels = list(c.rng.permutation(Cn)[:k]) if c.coin(0.8) else list(c.rng.integers(0, Cn, k))  # (repeats)
        row = labels + ([-1] if k < Cn else [])
        row += list(c.rng.integers(-1, Cn, Cn - len(row)))
        rows.append(row)
    if len(shape) == 2 and shape[0] == 0 and red != "none":
        return False  # (PyTorch's reduction of no samples is uninitialized memory; distnn's NaN and 0: see below)
    t = np.array(rows, dtype=np.int64).reshape(shape)
    x = c.normal(*shape, ties=True) * 0.5  # halves: 1 - x[j] + x[i] = 0 now and then
    return _both(c, "MultiLabelMarginLoss", dict(reduction=red), [G(x), C(t)])


@op("CosineSimilarity")
def _cosine_similarity(c):
    shape, shape2 = _broadcast_pair(c)
    nd = max(len(shape), len(shape2))
    dim, eps = c.draw(dim=c.int(-max(nd, 1), max(nd, 1) - 1), eps=c.pick(1e-8, 1e-8, 0.5, 1e-3))
    x1 = c.normal(*shape, ties=True) * c.pick(1.0, 1e-3)  # small norms: below a large eps
    x2 = c.normal(*shape2, ties=True)
    kw = dict(dim=dim, eps=eps)
    return _both(c, "CosineSimilarity", kw, [G(x1), G(x2)])


@op("PairwiseDistance")
def _pairwise_distance(c):
    shape, shape2 = _broadcast_pair(c)
    p, eps, keepdim = c.draw(p=c.pick(*P_NORMS), eps=c.pick(1e-6, 0.0, 0.5), keepdim=c.coin())
    x1 = c.normal(*shape, ties=True)
    x2 = c.normal(*shape2, ties=True)
    if shape == shape2 and x1.size and c.coin(0.3):
        x2 = np.where(c.rng.random(shape) < 0.5, x1, x2)  # zero differences (a norm of 0 with eps = 0)
    module_kw = dict(p=p, eps=eps, keepdim=keepdim)
    return _both(c, "PairwiseDistance", dict(p=p, eps=eps, keepdim=keepdim), [G(x1), G(x2)], module_kw)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's (empty means)
@pytest.mark.parametrize("name", sorted(OPS))
def test_loss_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])

