"""F.interpolate's 'bicubic' mode and ``antialias=True`` (bilinear, bicubic) against PyTorch (the oracle).

A seeded fuzz with layer_fuzz_harness.py's harness (the same float64 input and upstream gradient in both
libraries; outputs and input gradients compared to 1e-9): shapes, sizes or scale factors up and down
(exact, inexact, per axis), align_corners, recompute_scale_factor, F.interpolate or nn.Upsample, strided
inputs. Also: float32 against PyTorch's float32, distnn's numerical gradient check, the refusals, and an
inf outside every antialiasing window staying out of the output.

Where PyTorch's own forward and backward disagree the comparison is narrowed, at the generator:
* bicubic, a whole plane as large as the input from a scale_factor other than 1 (1.1 on 5 values):
  PyTorch's backward copies, its forward does not: only the forward is compared there.
* antialias, an axis whose length does not change under a scale_factor other than 1: PyTorch's forward
  copies it, its backward does not: only the forward is compared there.
* antialias, an output one column wide whose height changes: PyTorch's forward (CPU, 2.13) gives every
  row the first row's values. The oracle there is PyTorch on the transposed problem (H and W swapped),
  where each row is resampled; its backward agrees with the untransposed one.
distnn's gradient is its forward's (checked numerically below) in all three.

``DISTNN_LAYER_FUZZ_CASES`` scales the number of cases (default 4: 60 per op), ``DISTNN_LAYER_FUZZ_START``
sets the first seed, as for tests/test_layer_fuzz_*.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

from layer_fuzz_harness import CASES, START, G, C, Case  # noqa: E402

TF = torch.nn.functional
N_CASES = 15 * CASES


def _factor(c, down=0.3):
    """Exact and inexact factors, up and down (antialias: down to a tenth), and a random one."""
    return c.pick(2.0, 3.0, 0.5, 1.0, 1.5, 2.5, 0.7, 1.3, 1.1, 0.9, 1 / 3, 0.25, down, float(c.rng.uniform(down, 3.5)))


def _config(c, mode, hi):
    """(shape, kw) of a 4-D resampling: size or scale_factor, align_corners, recompute_scale_factor."""
    shape = c.draw(shape=(c.int(0, 2) if c.coin(0.05) else c.int(1, 2), c.int(1, 3), c.int(1, hi), c.int(1, hi)))
    kw = dict(mode=mode, align_corners=c.draw(align_corners=c.pick(None, True, False)))
    if c.draw(by=c.pick("size", "scale")) == "size":
        kw["size"] = c.pick(c.int(1, hi + 3), (c.int(1, hi + 3), c.int(1, hi + 3)))
    else:
        down = 0.1 if mode != "bicubic" or c.coin() else 0.3
        kw["scale_factor"] = c.pick(_factor(c, down), (_factor(c, down), _factor(c, down)))
        kw["recompute_scale_factor"] = c.pick(None, True, False)
    c.draw(**{k: v for k, v in kw.items() if k in ("size", "scale_factor", "recompute_scale_factor")})
    return shape, kw


def _out_size(shape, kw):
    """The output's (H, W) and whether each axis resamples by the scale itself (not recomputed)."""
    if kw.get("size") is not None:
        size = kw["size"]
        return (size, size) if isinstance(size, int) else tuple(size), (False, False)
    f = kw["scale_factor"]
    f = (f, f) if isinstance(f, float) else f
    own = not kw.get("recompute_scale_factor")
    return tuple(int(n * s) for n, s in zip(shape[2:], f)), tuple(own and s != 1.0 for s in f)


def _swap(v):
    return v[::-1] if isinstance(v, tuple) else v


def _bicubic(c):
    shape, kw = _config(c, "bicubic", 9)
    out, by_scale = _out_size(shape, kw)
    x = c.normal(*shape, ties=True)
    # PyTorch's bicubic backward copies a plane as large as the input, whatever the scale; its forward
    # resamples by the scale (see the docstring): the forward only, there.
    same = out == tuple(shape[2:]) and any(by_scale) and not kw["align_corners"]
    arg = C(x) if same else G(x)
    if c.draw(module=c.coin(0.3)):
        return c.run(dnn.Upsample(**kw), torch.nn.Upsample(**kw), [arg])
    return c.run(lambda a: DF.interpolate(a, **kw), lambda a: TF.interpolate(a, **kw), [arg])


def _antialias(c):
    shape, kw = _config(c, c.draw(mode=c.pick("bilinear", "bicubic")), 12)
    kw["antialias"] = True
    out, by_scale = _out_size(shape, kw)
    x = c.normal(*shape, ties=True)
    # PyTorch's antialiased forward copies an axis that keeps its length, its backward resamples it by the
    # scale: the forward only, there.
    same = any(o == n and s for o, n, s in zip(out, shape[2:], by_scale))
    arg = C(x) if same else G(x)

    def torch_fn(a):
        if out[1] == 1 and out[0] != shape[2]:  # (PyTorch's one-column forward: see the docstring)
            swapped = {k: _swap(v) if k in ("size", "scale_factor") else v for k, v in kw.items()}
            return TF.interpolate(a.transpose(2, 3), **swapped).transpose(2, 3)
        return TF.interpolate(a, **kw)
    return c.run(lambda a: DF.interpolate(a, **kw), torch_fn, [arg])


@pytest.mark.parametrize("name, generate", [("bicubic", _bicubic), ("antialias", _antialias)])
def test_fuzz_matches_pytorch(name, generate):
    torch.set_num_threads(1)
    ran = sum(bool(generate(Case(name, seed))) for seed in range(START, START + N_CASES))
    assert ran >= N_CASES // 2, f"{name}: PyTorch refused {N_CASES - ran} of {N_CASES} configurations drawn"


F32_CASES = [
    ((2, 3, 7, 6), dict(scale_factor=1.7, mode="bicubic")),
    ((2, 3, 7, 6), dict(size=(4, 11), mode="bicubic", align_corners=True)),
    ((1, 2, 9, 10), dict(scale_factor=(0.45, 0.3), mode="bicubic")),
    ((1, 2, 40, 33), dict(scale_factor=0.13, mode="bilinear", antialias=True)),
    ((1, 2, 40, 33), dict(size=(7, 5), mode="bicubic", antialias=True, align_corners=True)),
    ((2, 2, 6, 5), dict(scale_factor=(2.5, 1.6), mode="bicubic", antialias=True)),
]


@pytest.mark.parametrize("shape, kw", F32_CASES)
def test_float32_matches_pytorch(shape, kw):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = DF.interpolate(xd, **kw), TF.interpolate(xt, **kw)
    assert yd.dtype == np.float32
    g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    (yd * distnn.tensor(g)).sum().backward()
    yt.backward(torch.from_numpy(g))
    assert xd.grad.dtype == np.float32
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(xd.grad.data), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [
    dict(mode="bicubic", scale_factor=2.3), dict(mode="bicubic", size=(3, 8), align_corners=True),
    dict(mode="bicubic", scale_factor=(0.4, 1.6)),
    dict(mode="bicubic", scale_factor=1.1),  # (a copy's shape: PyTorch's backward copies, see the docstring)
    dict(mode="bilinear", antialias=True, scale_factor=(0.3, 0.45)),
    dict(mode="bicubic", antialias=True, size=(3, 12), align_corners=True),
    dict(mode="bicubic", antialias=True, scale_factor=(1.1, 0.3)),  # (an axis that keeps its length)
    dict(mode="bilinear", antialias=True, size=(7, 1)),  # (one column: PyTorch's forward copies row 0)
])
def test_gradient_is_the_forwards(kw):
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 7))
    check_grad(lambda a: DF.interpolate(a, **kw), x)


def test_upsample_bicubic_module_is_pytorchs():
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5))
    for kw in (dict(scale_factor=2, mode="bicubic"), dict(size=(3, 7), mode="bicubic", align_corners=True)):
        dm, tm = dnn.Upsample(**kw), torch.nn.Upsample(**kw)
        assert repr(dm) == repr(tm)
        np.testing.assert_allclose(np.asarray(dm(distnn.tensor(x)).data), tm(torch.from_numpy(x)).numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_bilinear_antialias_upsampling_is_plain_bilinear():
    # PyTorch's documented behaviour: antialiasing changes only a downsampling (align_corners=False)
    x = distnn.tensor(np.random.default_rng(6).standard_normal((1, 2, 4, 5)))
    aa = DF.interpolate(x, scale_factor=(2.5, 1.5), mode="bilinear", antialias=True)
    plain = DF.interpolate(x, scale_factor=(2.5, 1.5), mode="bilinear")
    np.testing.assert_allclose(np.asarray(aa.data), np.asarray(plain.data), rtol=1e-12, atol=1e-12)


def test_inf_outside_every_antialiasing_window_stays_out():
    # 12 columns to 3: each output reads a window of about 8 columns, column 0 only the first output's
    x = np.random.default_rng(7).standard_normal((1, 1, 2, 12))
    x[..., 0] = np.inf
    kw = dict(size=(2, 3), mode="bilinear", antialias=True)
    ours = np.asarray(DF.interpolate(distnn.tensor(x), **kw).data)
    ref = TF.interpolate(torch.from_numpy(x), **kw).numpy()
    assert np.isfinite(ref[..., 1:]).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12, equal_nan=True)


REFUSALS = [
    ((1, 2, 5), dict(size=3, mode="bicubic"), NotImplementedError),
    ((1, 2, 3, 4, 5), dict(size=3, mode="bicubic"), NotImplementedError),
    ((1, 2, 4, 5), dict(size=3, mode="nearest", antialias=True), ValueError),
    ((1, 2, 4, 5), dict(size=3, mode="nearest-exact", antialias=True), ValueError),
    ((1, 2, 4, 5), dict(size=3, mode="area", antialias=True), ValueError),
    ((1, 2, 5), dict(size=3, mode="linear", antialias=True), ValueError),
    ((1, 2, 5), dict(size=3, mode="bilinear", antialias=True), ValueError),
    ((1, 2, 3, 4, 5), dict(size=3, mode="trilinear", antialias=True), ValueError),
    ((1, 2, 3, 4, 5), dict(size=3, mode="bicubic", antialias=True), ValueError),
    ((1, 2, 4, 5), dict(size=3, mode="nearest", align_corners=False), ValueError),
    ((1, 2, 4, 5), dict(size=(3,), mode="bicubic"), ValueError),
    ((1, 2, 4, 5), dict(size=3, scale_factor=2.0, mode="bicubic", antialias=True), ValueError),
    ((1, 2, 4, 5), dict(size=(3, 0), mode="bicubic"), (ValueError, RuntimeError)),
]


@pytest.mark.parametrize("shape, kw, err", REFUSALS)
def test_refusals_are_pytorchs(shape, kw, err):
    x = np.zeros(shape)
    with pytest.raises(err):
        TF.interpolate(torch.from_numpy(x), **kw)
    with pytest.raises(err) as info:
        DF.interpolate(distnn.tensor(x), **kw)
    assert "interpolate" in str(info.value)
    if kw.get("antialias") and "size" in kw and "scale_factor" not in kw:
        assert "antialias" in str(info.value)
