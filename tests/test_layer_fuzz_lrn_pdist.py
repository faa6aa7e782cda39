"""Seeded fuzz of the local response norms, pdist, the triplet loss with a distance function and the upsample
aliases against PyTorch (the oracle), with tests/layer_fuzz_harness.py: random valid arguments and shapes,
float64, outputs and input gradients compared.

Covered: LocalResponseNorm and F.local_response_norm (3-D to 5-D inputs, windows wider than the channels),
CrossMapLRN2d (PyTorch's legacy window and backward), F.pdist (p = 0, fractional, 1, 2, > 2 and inf, with
equal rows and tied coordinates), TripletMarginWithDistanceLoss and F.triplet_margin_with_distance_loss
(default distance, a cosine-similarity lambda, a p-norm pairwise distance, a PairwiseDistance module; swap;
reductions), F.upsample, F.upsample_nearest and F.upsample_bilinear.

Left out, each at its generator with the reason: F.pdist of an empty (0, M) input with a gradient (PyTorch
2.13's backward crashes the process there), CrossMapLRN2d's gradient for size 1 (PyTorch's backward raises),
and, as in test_layer_fuzz_layers23.py, the nearest gradient of 3-D and 5-D inputs where PyTorch's backward
takes a shortcut its forward does not, and 'area' to an empty output.

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the first
seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

from layer_fuzz_harness import C, G, op_registry, run_cases  # noqa: E402
from test_layer_fuzz_layers23 import _nearest_backward_differs  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _lrn_args(c):
    size = c.draw(size=c.pick(1, 2, 3, c.int(1, 9)))
    alpha, beta, k = c.draw(alpha=c.pick(1e-4, c.rng.uniform(0.01, 2.0)), beta=c.pick(0.75, c.rng.uniform(0.1, 2.0)),
                            k=c.pick(1.0, c.rng.uniform(0.5, 3.0)))
    return size, alpha, beta, k


@op("LocalResponseNorm")
def _lrn(c):
    size, alpha, beta, k = _lrn_args(c)
    spatial = tuple(c.int(1, 4) for _ in range(c.int(1, 3)))
    shape = c.draw(shape=(c.int(0, 3) if c.coin(0.1) else c.int(1, 3), c.dim(7)) + spatial)
    if c.draw(functional=c.coin()):
        dm = lambda x: DF.local_response_norm(x, size, alpha, beta, k)  # noqa: E731
        tm = lambda x: TF.local_response_norm(x, size, alpha, beta, k)  # noqa: E731
    else:
        dm, tm = dnn.LocalResponseNorm(size, alpha, beta, k), torch.nn.LocalResponseNorm(size, alpha, beta, k)
    return c.run(dm, tm, [G(c.normal(*shape) * c.pick(1.0, 3.0))], backward=shape[0] * shape[1] > 0)


@op("CrossMapLRN2d")
def _cross_map_lrn(c):
    size, alpha, beta, k = _lrn_args(c)
    shape = c.draw(shape=(c.int(0, 3) if c.coin(0.1) else c.int(1, 3), c.int(1, 8), c.int(1, 4), c.int(1, 4)))
    dm, tm = dnn.CrossMapLRN2d(size, alpha, beta, k), torch.nn.CrossMapLRN2d(size, alpha, beta, k)
    # (size 1: PyTorch's backward raises, so only the forward is compared)
    return c.run(dm, tm, [G(c.normal(*shape))], backward=size > 1 and shape[0] > 0)


@op("F.pdist")
def _pdist(c):
    n, m = c.draw(n=c.int(1, 6), m=c.pick(0, c.int(1, 5)))  # (n = 0: PyTorch's backward crashes)
    p = c.draw(p=c.pick(0, 0.5, 1, 1.5, 2, 3, math.inf, c.rng.uniform(0.2, 4.0)))
    x = c.normal(n, m, ties=True)
    if n > 2 and c.coin(0.3):
        x[c.int(1, n - 1)] = x[0]  # two equal rows: a pair at distance 0
    return c.run(lambda t: DF.pdist(t, p), lambda t: TF.pdist(t, p), [G(x)])


def _distance(c):
    """The distance function in both libraries: (distnn's, PyTorch's); None for the default."""
    kind = c.draw(distance=c.pick("default", "cosine", "pnorm", "module"))
    if kind == "default":
        return None, None
    if kind == "cosine":
        return ((lambda a, b: 1.0 - DF.cosine_similarity(a, b, dim=-1)),
                (lambda a, b: 1.0 - TF.cosine_similarity(a, b, dim=-1)))
    p = c.draw(p=c.pick(1.0, 3.0, math.inf))
    if kind == "pnorm":
        return (lambda a, b: DF.pairwise_distance(a, b, p)), (lambda a, b: TF.pairwise_distance(a, b, p))
    return dnn.PairwiseDistance(p), torch.nn.PairwiseDistance(p)


@op("TripletMarginWithDistanceLoss")
def _triplet_distance(c):
    df, tf = _distance(c)
    margin, swap, red = c.draw(margin=c.pick(1.0, c.rng.uniform(0.1, 3.0)), swap=c.coin(),
                               reduction=c.pick("mean", "sum", "none"))
    d = c.int(1, 5)
    shapes = [(c.int(1, 4), d) if c.coin(0.8) else (d,)] * 3
    if len(shapes[0]) == 2 and c.coin(0.3):
        shapes[c.int(0, 2)] = (1, d)  # a broadcast row
    c.draw(shapes=shapes)
    kw = dict(margin=margin, swap=swap, reduction=red)
    if c.draw(functional=c.coin()):
        fd = lambda a, p, n: DF.triplet_margin_with_distance_loss(a, p, n, distance_function=df, **kw)  # noqa: E731
        ft = lambda a, p, n: TF.triplet_margin_with_distance_loss(a, p, n, distance_function=tf, **kw)  # noqa: E731
    else:
        fd = dnn.TripletMarginWithDistanceLoss(distance_function=df, **kw)
        ft = torch.nn.TripletMarginWithDistanceLoss(distance_function=tf, **kw)
    return c.run(fd, ft, [G(c.normal(*s, ties=True)) for s in shapes])


@op("F.upsample")
def _upsample(c):
    which = c.draw(which=c.pick("upsample", "upsample_nearest", "upsample_bilinear"))
    nd = 2 if which == "upsample_bilinear" else c.int(1, 3)
    shape = c.draw(shape=(c.int(1, 2), c.int(1, 3)) + tuple(c.int(1, 5) for _ in range(nd)))
    if c.coin():
        kw = dict(size=c.pick(c.int(1, 8), tuple(c.int(1, 8) for _ in range(nd))))
    else:
        kw = dict(scale_factor=c.pick(float(c.int(1, 3)), round(float(c.rng.uniform(0.5, 2.5)), 2)))
    if which == "upsample":
        mode = c.pick("nearest", "nearest-exact", ("linear", "bilinear", "trilinear")[nd - 1], "area")
        kw["mode"] = mode
        if mode not in ("nearest", "nearest-exact", "area"):
            kw["align_corners"] = c.coin()
    c.draw(**kw)
    scale = kw.get("scale_factor")
    if kw.get("mode") == "area" and scale is not None and any(int(n * scale) < 1 for n in shape[2:]):
        return False  # (an empty output: PyTorch's backward refuses, distnn's forward; see test_layer_fuzz_layers23)
    x = c.normal(*shape)
    arg = G(x)
    if kw.get("mode", "nearest") == "nearest" and nd != 2 and scale is not None and \
            _nearest_backward_differs(shape, scale):
        arg = C(x)  # PyTorch's nearest backward is not its forward's there: forward only (test_layer_fuzz_layers23)
    return c.run(lambda x: getattr(DF, which)(x, **kw), lambda x: getattr(TF, which)(x, **kw), [arg])


@pytest.mark.parametrize("name", sorted(OPS))
def test_lrn_pdist_triplet_upsample_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])
