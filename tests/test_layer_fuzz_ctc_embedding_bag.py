"""Seeded fuzz of CTCLoss and EmbeddingBag (each as its ``distnn.nn`` module and its functional) against
PyTorch (the oracle), with tests/layer_fuzz_harness.py: float64 outputs and gradients compared tightly.

CTCLoss draws the batch (unbatched too), the frames, the classes, the blank, padded or concatenated targets
(repeated labels, the blank inside a target, empty targets), input lengths down to 0 and too short for their
targets (infinite losses, NaN gradients), every reduction and zero_infinity. EmbeddingBag draws the modes,
1-D input with offsets (empty bags, include_last_offset) or 2-D bags, padding_idx, per_sample_weights
(requiring grad or not), max_norm, scale_grad_by_freq, tied and NaN-free small-integer weights for max's ties.

Left out, at its generator, with the reason (each a deliberate difference, documented in
``distnn.functional.embedding_bag``): scale_grad_by_freq where an index repeats (PyTorch 2.13's CPU kernel divides
by another index's count); decreasing offsets (PyTorch takes other bags than they name).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the first
seed, as in tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from layer_fuzz_harness import REDUCTIONS, C, G, op_registry, run_cases
from layer_fuzz_harness import torch  # noqa: F401  (importorskip'd there)

import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _log_softmax(z):
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@op("CTCLoss")
def _ctc(c):
    batched = c.draw(batched=c.coin(0.8))
    N = c.draw(N=c.int(1, 4)) if batched else 1
    T, Cn = c.draw(T=c.int(1, 7), C=c.int(2, 5))
    blank = c.draw(blank=c.pick(0, 0, Cn - 1, c.int(0, Cn - 1)))
    tl = [c.int(0, 4) for _ in range(N)]
    labels = [c.rng.integers(0, Cn, size=n) for n in tl]  # (the blank itself now and then)
    if c.coin(0.3):  # repeats: a run of one label needs a blank between its copies
        labels = [np.full(n, c.int(0, Cn - 1)) for n in tl]
    il = [c.int(0, T) if c.coin(0.3) else T for _ in range(N)]
    concat = c.draw(concat=c.coin(0.4))
    if concat:
        tg = np.concatenate([np.asarray(v, np.int64) for v in labels]) if N else np.zeros(0, np.int64)
    else:
        tg = c.rng.integers(0, Cn, size=(N, max(tl) + c.int(0, 2)))  # junk past each length
        for i, v in enumerate(labels):
            tg[i, :len(v)] = v
    red, zi = c.draw(reduction=c.pick(*REDUCTIONS), zero_infinity=c.coin(), il=il, tl=tl)[:2]
    x = _log_softmax(c.normal(T, N, Cn) * c.pick(1.0, 3.0))
    if not batched:
        x = x[:, 0]
    kw = dict(blank=blank, reduction=red, zero_infinity=zi)
    as_tensors = c.draw(tensor_lengths=c.coin())
    ilt, tlt = (torch.tensor(il), torch.tensor(tl)) if as_tensors else (il, tl)
    if c.draw(functional=c.coin()):
        return c.run(lambda a, t: DF.ctc_loss(a, t, il, tl, **kw), lambda a, t: TF.ctc_loss(a, t, ilt, tlt, **kw),
                     [G(x, may_stride=False), C(tg)])
    return c.run(lambda a, t: dnn.CTCLoss(**kw)(a, t, il, tl), lambda a, t: torch.nn.CTCLoss(**kw)(a, t, ilt, tlt),
                 [G(x, may_stride=False), C(tg)])


@op("EmbeddingBag")
def _embedding_bag(c):
    num, dim = c.draw(num=c.int(1, 8), dim=c.int(1, 4))
    mode = c.draw(mode=c.pick("sum", "mean", "max"))
    pad = c.draw(padding_idx=c.pick(None, c.int(-num, num - 1)))
    max_norm = c.draw(max_norm=c.pick(None, None, None, c.rng.uniform(0.3, 2.0)))
    two_d = c.draw(two_d=c.coin(0.3))
    ilo = c.draw(include_last_offset=c.coin(0.3)) and not two_d
    if two_d:
        idx = c.rng.integers(0, num, size=(c.int(0, 4), c.int(1, 4)))
        offsets = None
    else:
        n = c.int(0, 8)
        idx = c.rng.integers(0, num, size=n)
        cuts = np.sort(c.rng.integers(0, n + 1, size=c.int(0, 4)))  # repeats: empty bags
        offsets = np.concatenate([[0], cuts] + ([[n]] if ilo else [])).astype(np.int64)
    # scale_grad_by_freq only where no index repeats: PyTorch's CPU kernel divides by another index's count there
    sgf = c.draw(scale_grad_by_freq=mode != "max" and len(np.unique(idx)) == idx.size and c.coin(0.4))
    psw_kind = c.draw(per_sample_weights=c.pick(None, None, "grad", "const") if mode == "sum" else None)
    kw = dict(max_norm=max_norm, scale_grad_by_freq=sgf, mode=mode, include_last_offset=ilo, padding_idx=pad)
    w = c.normal(num, dim, ties=mode == "max")
    args = [C(idx)] + ([C(offsets)] if offsets is not None else [])
    if psw_kind is not None:
        p = c.normal(*idx.shape)
        args.append(G(p, may_stride=False) if psw_kind == "grad" else C(p))
    names = ["input"] + (["offsets"] if offsets is not None else []) + (["per_sample_weights"] if psw_kind else [])

    how = c.draw(how=c.pick("module", "functional", "from_pretrained"))
    if how == "functional":
        return c.run(lambda wt, *a: DF.embedding_bag(a[0], wt, **dict(zip(names[1:], a[1:])), **kw),
                     lambda wt, *a: TF.embedding_bag(a[0], wt, **dict(zip(names[1:], a[1:])), **kw),
                     [G(w)] + args)
    if how == "from_pretrained":
        freeze = c.draw(freeze=c.coin())
        dm = dnn.EmbeddingBag.from_pretrained(w.copy(), freeze=freeze, **kw)
        tm = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(w.copy()), freeze=freeze, **kw)
    else:
        dm, tm = dnn.EmbeddingBag(num, dim, **kw), torch.nn.EmbeddingBag(num, dim, **kw)
        c.randomize(dm)
        if mode == "max":  # ties
            dm.weight.data[...] = w
    fwd = (lambda m: (lambda *a: m(a[0], **dict(zip(names[1:], a[1:])))))
    return c.run(fwd(dm), fwd(tm), args, dm, tm, steps=2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's
@pytest.mark.parametrize("name", sorted(OPS))
def test_ctc_embedding_bag_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])
