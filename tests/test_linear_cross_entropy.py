"""F.linear_cross_entropy, nn.LinearCrossEntropyLoss and nn.LinearCrossEntropyOptions (PyTorch 2.13) against
PyTorch: float64 tightly and float32 loosely on both paths (the reference composition and the chunked one),
each reduction with class weights and ignored labels; the chunked path's gradient handover (a second backward
refused unless allow_retain_graph), its fallback warning, its peak memory (no (N, C) block), the refusals
(type and gist of PyTorch's messages), the options' checks and chunk sizes, repr and state_dict.
(The fuzz over shapes and arguments is test_layer_fuzz_linear_cross_entropy.py.)
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402
from torch_twins import copy_torch_weights  # noqa: E402

TF = torch.nn.functional
R = np.random.default_rng(2031)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _case(n=9, f=4, k=7, out_features=()):
    x, w = R.standard_normal((n, f)), R.standard_normal((k, *out_features, f)) / 2
    b, cw = R.standard_normal((k, *out_features)), R.uniform(0.3, 2.0, k)
    t = R.integers(0, k, (n, *out_features))
    t.flat[1] = -100
    return x, w, b, cw, t


def _both(kw, dopts, topts, x, w, b, cw, t, dtype, rtol, atol):
    """One call in each library on the same values: loss and the three gradients compared."""
    ds = [distnn.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
    ts = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
    yd = DF.linear_cross_entropy(ds[0], ds[1], distnn.tensor(t), linear_bias=ds[2],
                                 weight=distnn.tensor(cw.astype(dtype)), options=dopts, **kw)
    yt = TF.linear_cross_entropy(ts[0], ts[1], torch.from_numpy(t), linear_bias=ts[2],
                                 weight=torch.from_numpy(cw.astype(dtype)), options=topts, **kw)
    assert yd.dtype == dtype and tuple(yd.shape) == tuple(yt.shape)
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = R.standard_normal(tuple(yt.shape)).astype(dtype)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    for d, tt, name in zip(ds, ts, ("input", "linear_weight", "linear_bias")):
        assert d.grad.dtype == dtype, name
        np.testing.assert_allclose(np.asarray(d.grad.data), tt.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("dtype,rtol,atol", [(np.float64, 1e-10, 1e-12), (np.float32, 1e-4, 1e-5)],
                         ids=["f64", "f32"])
@pytest.mark.parametrize("chunk", [None, 2, 4, 100], ids=["reference", "chunk2", "chunk4", "one-chunk"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_both_paths_match_pytorch(reduction, chunk, dtype, rtol, atol):
    dopts = topts = None
    if chunk is not None:
        dopts = dnn.LinearCrossEntropyOptions(batch_chunk_size=chunk)
        topts = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk)
    _both(dict(reduction=reduction), dopts, topts, *_case(), dtype, rtol, atol)
    x, w, b, cw, t = _case(k=4)
    t[t == -100] = 3
    _both(dict(reduction=reduction, ignore_index=3), dopts, topts, x, w, b, cw, t, dtype, rtol, atol)


@pytest.mark.parametrize("out_features", [(3,), (2, 3)])
def test_k_dimensional_loss_and_label_smoothing_match_pytorch(out_features):
    x, w, b, cw, t = _case(n=5, f=3, k=4, out_features=out_features)
    for kw in (dict(), dict(reduction="none", label_smoothing=0.2), dict(reduction="sum", label_smoothing=0.5)):
        _both(kw, None, None, x, w, b, cw, t, np.float64, 1e-10, 1e-12)
    # a single sample (F,), and class-probability targets
    _both(dict(label_smoothing=0.1), None, None, x[0], w.reshape(4, -1, 3)[:, 0], b.reshape(4, -1)[:, 0], cw,
          np.array(2), np.float64, 1e-10, 1e-12)
    p = R.random((5, 4, *out_features))
    p /= p.sum(axis=1, keepdims=True)
    _both(dict(reduction="sum"), None, None, x, w, b, cw, p, np.float64, 1e-10, 1e-12)


def test_single_sample_on_the_chunked_path_is_pytorchs():
    x, w, b, cw, _ = _case()
    for red in ("mean", "none"):
        _both(dict(reduction=red), dnn.LinearCrossEntropyOptions(), torch.nn.LinearCrossEntropyOptions(), x[0],
              w, b, cw, np.array(5), np.float64, 1e-10, 1e-12)


def test_gradients_are_numerically_right():
    x, w, b, cw, t = _case(n=6, f=3, k=5)
    opts = dnn.LinearCrossEntropyOptions(batch_chunk_size=4)
    for red in ("mean", "none"):
        check_grad(lambda a, m, c: DF.linear_cross_entropy(a, m, t, linear_bias=c, weight=cw, reduction=red,
                                                           options=opts), x, w, b)


def test_chunked_gradients_are_handed_over_once_unless_retain_graph_is_allowed():
    x, w, b, cw, t = _case()
    for red, allow in (("mean", False), ("sum", False), ("mean", True), ("none", False)):
        opts = dnn.LinearCrossEntropyOptions(batch_chunk_size=3, allow_retain_graph=allow)
        xd = distnn.tensor(x, requires_grad=True)
        y = DF.linear_cross_entropy(xd, distnn.tensor(w), distnn.tensor(t), reduction=red, options=opts).sum()
        y.backward(retain_graph=True)
        first = np.asarray(xd.grad.data).copy()
        if red != "none" and not allow:  # (PyTorch's: its forward's gradients are consumed in place)
            with pytest.raises(RuntimeError, match="backward called twice"):
                y.backward()
        else:  # kept (allow_retain_graph) or recomputed ('none'): the same gradient again
            y.backward()
            np.testing.assert_allclose(np.asarray(xd.grad.data), 2 * first, rtol=1e-12)


def test_an_inplace_change_before_backward_is_refused_where_pytorchs_is():
    # 'mean'/'sum' made their gradients in forward (nothing saved: PyTorch lets the weight change, as here);
    # 'none' recomputes from the saved inputs: both refuse the change
    x, w, _, _, t = _case()
    t[t < 0] = 0
    for red in ("mean", "none"):
        for lib, opts in ((distnn, dnn.LinearCrossEntropyOptions(batch_chunk_size=4)),
                          (torch, torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4))):
            xs = lib.tensor(x, requires_grad=True)
            ws = lib.tensor(w, requires_grad=True)
            y = (DF if lib is distnn else TF).linear_cross_entropy(xs, ws, lib.tensor(t), reduction=red,
                                                                   options=opts).sum()
            with lib.no_grad():
                ws.mul_(2.0)
            if red == "none":
                with pytest.raises(RuntimeError):
                    y.backward()
            else:
                y.backward()
                assert xs.grad is not None


def test_float16_on_the_chunked_path_computes_in_float32_as_pytorchs():
    x, w, _, _, t = _case()
    t[t < 0] = 0
    for red in ("mean", "none"):
        ds = [distnn.tensor(a.astype(np.float16), requires_grad=True) for a in (x, w)]
        ts = [torch.tensor(a.astype(np.float16), requires_grad=True) for a in (x, w)]
        yd = DF.linear_cross_entropy(*ds, t, reduction=red, options=dnn.LinearCrossEntropyOptions(batch_chunk_size=4))
        yt = TF.linear_cross_entropy(*ts, torch.from_numpy(t), reduction=red,
                                     options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4))
        assert yd.dtype == np.float16
        yd.sum().backward()
        yt.sum().backward()
        np.testing.assert_allclose(np.asarray(yd.data, np.float64), yt.detach().double().numpy(), rtol=2e-3, atol=2e-3)
        for d, tt in zip(ds, ts):
            assert d.grad.dtype == np.float16
            np.testing.assert_allclose(np.asarray(d.grad.data, np.float64), tt.grad.double().numpy(), rtol=1e-2,
                                       atol=2e-3)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (numpy's 0 / 0, the NaN PyTorch gives too)
def test_all_ignored_mean_is_nan_with_zero_gradients_on_both_paths():
    # PyTorch: NaN loss on both paths; zero gradients on its reference path, NaN on its chunked one. distnn
    # keeps the reference path's zeros on both (one such batch must not poison the weights).
    x, w, _, _, _ = _case(n=3)
    t = np.full(3, -100)
    for opts in (None, dnn.LinearCrossEntropyOptions()):
        xd, wd = distnn.tensor(x, requires_grad=True), distnn.tensor(w, requires_grad=True)
        y = DF.linear_cross_entropy(xd, wd, t, options=opts)
        assert np.isnan(float(y.data))
        y.backward()
        assert not np.asarray(xd.grad.data).any() and not np.asarray(wd.grad.data).any()


def test_unsupported_configurations_fall_back_with_pytorchs_warning():
    x, w, b, cw, t = _case(n=4, f=3, k=5)
    opts = dnn.LinearCrossEntropyOptions(batch_chunk_size=2)
    for kw, tt in ((dict(label_smoothing=0.1), t), (dict(), t.astype(np.int32))):
        with pytest.warns(UserWarning, match="``options`` ignored; chunked path needs"):
            y = DF.linear_cross_entropy(distnn.tensor(x), distnn.tensor(w), tt, options=opts, **kw)
        ref = TF.linear_cross_entropy(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(t.astype(np.int64)),
                                      **kw)
        np.testing.assert_allclose(float(y.data), float(ref), rtol=1e-12)


def test_the_chunked_path_never_holds_the_full_logits():
    n, f, k, chunk = 512, 8, 1000, 16  # the (N, C) float64 logits: 4 MB; one chunk's block: 128 kB
    x, w, t = R.standard_normal((n, f)), R.standard_normal((k, f)) * 0.1, R.integers(0, k, n)

    def peak(opts):
        xd, wd = distnn.tensor(x, requires_grad=True), distnn.tensor(w, requires_grad=True)
        tracemalloc.start()
        try:
            DF.linear_cross_entropy(xd, wd, t, options=opts).backward()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    full = n * k * 8
    assert peak(None) >= full  # (the reference path does hold them: the measurement sees them)
    assert peak(dnn.LinearCrossEntropyOptions(batch_chunk_size=chunk)) < full / 4


def test_options_check_and_size_chunks_as_pytorchs():
    for kw in (dict(acc_policy="fast"), dict(chunking_method="aspect"), dict(chunking_method="aspect_ratio:0"),
               dict(batch_chunk_size=0), dict(batch_chunk_size=2.0), dict(acc_dtype=np.int32)):
        with pytest.raises(ValueError) as d:
            dnn.LinearCrossEntropyOptions(**kw)
        with pytest.raises(ValueError) as t:
            torch.nn.LinearCrossEntropyOptions(**{**kw, **({"acc_dtype": torch.int32} if "acc_dtype" in kw else {})})
        assert str(d.value).split()[:3] == str(t.value).split()[:3]
    assert repr(dnn.LinearCrossEntropyOptions()) == repr(torch.nn.LinearCrossEntropyOptions())
    for method in ("auto", "aspect_ratio", "aspect_ratio:3", None):
        for n, f, k in ((100, 8, 1000), (7, 3, 5), (1, 4, 100), (64, 64, 64)):
            d = dnn.LinearCrossEntropyOptions(chunking_method=method)._adjust(n, f, k, np.float32)
            t = torch.nn.LinearCrossEntropyOptions(chunking_method=method)._adjust(n, f, k, torch.float32,
                                                                                  torch.device("cpu"))
            assert (d.batch_chunk_size, d.chunking_method, d.acc_policy) == (t.batch_chunk_size, t.chunking_method,
                                                                             t.acc_policy)
    with pytest.raises(ValueError, match="give different chunk sizes"):
        dnn.LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio")._adjust(100, 8, 1000,
                                                                                                  np.float32)
    with pytest.raises(TypeError, match="LinearCrossEntropyOptions"):
        DF.linear_cross_entropy(distnn.tensor(np.ones((2, 3))), distnn.tensor(np.ones((4, 3))), np.zeros(2, np.int64),
                                options={"batch_chunk_size": 1})


def _refused(fd, ft, match):
    with pytest.raises(Exception) as t:
        ft()
    with pytest.raises(type(t.value), match=match):
        fd()


def test_refusals_are_pytorchs():
    x, w = R.standard_normal((3, 4)), R.standard_normal((5, 4))
    t = np.array([0, 1, 2])

    def pair(xa, wa, ta, **kw):
        return (lambda: DF.linear_cross_entropy(distnn.tensor(xa), distnn.tensor(wa), distnn.tensor(ta), **{
                    k: (distnn.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}),
                lambda: TF.linear_cross_entropy(torch.from_numpy(xa), torch.from_numpy(wa), torch.from_numpy(ta), **{
                    k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}))
    _refused(*pair(x[None], w, t), "expected input with dimensionality 1 or 2, got 3")
    _refused(*pair(x, w[0], t), "expected linear_weight with dimensionality at least 2, got 1")
    _refused(*pair(x, w[:, :3], t), "expected equal input and linear_weight last dimensions")
    _refused(*pair(x, w, t, linear_bias=np.zeros(4)), r"expected linear_bias shape \(5,\), got \(4,\)")
    _refused(*pair(x[0], w[:, None], np.array(t[0])), "requires batched input")
    p = np.full((3, 5), 0.2)
    _refused(*pair(x, w, p, ignore_index=1), "ignore_index cannot be specified when target contains probabilities")
    with pytest.raises(RuntimeError, match=r"expected weight shape to be \(5,\), got \(4,\)"):
        dnn.LinearCrossEntropyLoss(4, 5, weight=np.ones(4))
    with pytest.raises(RuntimeError, match=r"expected label_smoothing to be in range \[0, 1\], got 1.5"):
        dnn.LinearCrossEntropyLoss(4, 5, label_smoothing=1.5)
    with pytest.raises(ValueError, match="labels must be in"):  # (PyTorch: an index error or a device assert)
        DF.linear_cross_entropy(distnn.tensor(x), distnn.tensor(w), np.array([0, 5, 1]),
                                options=dnn.LinearCrossEntropyOptions())


def test_module_matches_pytorch_with_its_state_and_repr():
    cw = R.uniform(0.5, 2.0, 4)
    kw = dict(out_features=(3,), bias=True, reduction="sum", ignore_index=1, label_smoothing=0.1)
    tm = torch.nn.LinearCrossEntropyLoss(5, 4, weight=torch.from_numpy(cw), **kw).double()
    dm = dnn.LinearCrossEntropyLoss(5, 4, weight=cw, dtype=np.float64, **kw)
    assert list(dm.state_dict()) == list(tm.state_dict()) == ["weight", "linear.weight", "linear.bias"]
    copy_torch_weights(tm, dm)
    x, t = R.standard_normal((6, 5)), R.integers(0, 4, (6, 3))
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = dm(xd, t), tm(xt, torch.from_numpy(t))
    np.testing.assert_allclose(float(yd.data), float(yt.detach()), rtol=1e-12)
    yd.backward()
    yt.backward()
    np.testing.assert_allclose(np.asarray(xd.grad.data), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(dm.linear.weight.grad.data), tm.linear.weight.grad.numpy(), rtol=1e-10,
                               atol=1e-12)
    # a round trip keeps every entry, and the defaults' state has no class weight (a None buffer)
    again = dnn.LinearCrossEntropyLoss(5, 4, weight=np.ones(4), dtype=np.float64, **kw)
    again.load_state_dict(dm.state_dict())
    for k, v in dm.state_dict().items():
        np.testing.assert_array_equal(np.asarray(again.state_dict()[k]), np.asarray(v))
    assert list(dnn.LinearCrossEntropyLoss(5, 4).state_dict()) == ["linear.weight"]
    # repr: PyTorch's fields (distnn's Module prints a one-line extra_repr beside the child, not above it)
    for d, tt in ((dm, tm), (dnn.LinearCrossEntropyLoss(3, 2, options=dnn.LinearCrossEntropyOptions()),
                             torch.nn.LinearCrossEntropyLoss(3, 2, options=torch.nn.LinearCrossEntropyOptions()))):
        assert d.extra_repr() == tt.extra_repr()
        assert repr(d.linear) == repr(tt.linear) and d.extra_repr() in repr(d)
