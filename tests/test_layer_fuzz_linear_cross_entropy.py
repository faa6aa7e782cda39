"""Seeded fuzz of F.linear_cross_entropy and nn.LinearCrossEntropyLoss (PyTorch 2.13) against PyTorch (the
oracle), with tests/layer_fuzz_harness.py: random valid arguments and shapes, float64, outputs and the
gradients of the input, the projection's weight and bias compared.

Drawn: batched (N, F) or single (F,) inputs (N = 0 now and then), K-dimensional weights (C, d1, ..., dK, F),
bias or not, class weights, every reduction, ignore_index (None, -100, or a class that occurs), label smoothing,
integer or class-probability targets, and the reference path (options=None) or the chunked one (a chunk size,
or "auto"); configurations the chunked path does not take fall back, in both libraries alike.

Left out: the gradient of a chunked 'mean' whose every label is ignored (PyTorch 2.13's chunked path gives
NaN there, its reference path zeros; distnn gives zeros on both, see test_linear_cross_entropy.py).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the first
seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

from layer_fuzz_harness import C, G, op_registry, run_cases  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _draw(c):
    """A configuration: shapes, the keyword arguments and the matching options of both libraries."""
    batched = c.coin(0.8)
    n, f, k = c.dim(6), c.int(1, 5), c.int(1, 6)
    out_features = c.pick((), (), (c.int(1, 3),), (c.int(1, 2), c.int(1, 3))) if batched else ()
    chunk = c.pick(None, None, "auto", c.int(1, 4))
    probs = c.coin(0.2)
    c.draw(batched=batched, n=n, f=f, k=k, out_features=out_features, chunk=chunk, probs=probs)
    lead = (n,) if batched else ()
    if probs:
        target = c.rng.random(lead + (k,) + out_features)
        target /= np.maximum(target.sum(axis=len(lead), keepdims=True), 1e-12)
    else:
        target = c.rng.integers(0, k, size=lead + out_features)
    kw = dict(reduction=c.pick("mean", "sum", "none"), label_smoothing=c.pick(0.0, 0.0, round(c.rng.random(), 3)))
    if not probs and target.size and c.coin(0.4):
        kw["ignore_index"] = c.pick(-100, int(target.flat[0]))
        if kw["ignore_index"] == -100:
            target.flat[0] = -100
    c.draw(**kw)
    if chunk is None:
        dopts = topts = None
    elif chunk == "auto":
        dopts, topts = dnn.LinearCrossEntropyOptions(), torch.nn.LinearCrossEntropyOptions()
    else:
        dopts = dnn.LinearCrossEntropyOptions(batch_chunk_size=chunk, chunking_method=None)
        topts = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk, chunking_method=None)
    return lead, f, k, out_features, target, kw, dopts, topts


def _backward(lead, target, kw, dopts):
    """Whether to compare gradients: not of an empty batch, nor of a chunked all-ignored 'mean' (see above)."""
    if lead and lead[0] == 0:
        return False
    ignored = target.dtype.kind in "iu" and bool((target == kw.get("ignore_index", -100)).all())
    return not (dopts is not None and kw["reduction"] == "mean" and ignored)


@op("linear_cross_entropy")
def _functional(c):
    lead, f, k, out_features, target, kw, dopts, topts = _draw(c)
    args = [G(c.normal(*lead, f)), G(c.normal(k, *out_features, f)), C(target)]
    if c.draw(bias=c.coin()):
        args.append(G(c.normal(k, *out_features)))
    if c.draw(class_weight=c.coin(0.4)):
        args.append(C(c.rng.uniform(0.2, 2.0, k)))
        wpos = len(args) - 1
    else:
        wpos = None

    def call(F, opts):
        def fn(x, w, t, *rest):
            b = rest[0] if len(rest) > (wpos is not None) else None
            cw = rest[-1] if wpos is not None else None
            return F.linear_cross_entropy(x, w, t, linear_bias=b, weight=cw, options=opts, **kw)
        return fn
    return c.run(call(DF, dopts), call(TF, topts), args, backward=_backward(lead, target, kw, dopts))


@op("LinearCrossEntropyLoss")
def _module(c):
    lead, f, k, out_features, target, kw, dopts, topts = _draw(c)
    bias = c.draw(bias=c.coin())
    cw = c.rng.uniform(0.2, 2.0, k) if c.draw(class_weight=c.coin(0.4)) else None
    dm = dnn.LinearCrossEntropyLoss(f, k, out_features=out_features, bias=bias, options=dopts,
                                    weight=None if cw is None else cw.copy(), **kw)
    tm = torch.nn.LinearCrossEntropyLoss(f, k, out_features=out_features, bias=bias, options=topts,
                                         weight=None if cw is None else torch.from_numpy(cw.copy()), **kw)
    c.randomize(dm, positive=("weight",))
    if cw is not None:
        dm.weight.data[...] = cw
    return c.run(dm, tm, [G(c.normal(*lead, f)), C(target)], dmod=dm, tmod=tm,
                 backward=_backward(lead, target, kw, dopts))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (numpy's, where an empty mean is NaN as PyTorch's)
@pytest.mark.parametrize("name", sorted(OPS))
def test_linear_cross_entropy_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])
