"""distnn.masked against torch.masked (2.13) as the oracle: the same inputs and masks (broadcast ones, rows with
every element masked out), every reduction and normalization's values, dtypes and gradients (float64 tight,
float32 loose), the integer dtypes' promotions and identities, and torch's refusals (error type and message).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import masked as DM  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

TM = torch.masked
_R = np.random.default_rng(0)
X = _R.permutation(24).reshape(2, 3, 4) / 7.0 - 1.5  # distinct values: no ties for amax, argmax, median
M_FULL = _R.random((2, 3, 4)) < 0.6
M_FULL[1, 2, :] = False  # a row (along dim 2) with every element masked out
M_FULL[:, 0, 1] = False  # a column (along dim 0) with every element masked out
M_ROW = np.array([True, False, True, True])  # broadcasts along the last dim
M_COL = np.array([[True], [False], [True]])  # (3, 1): broadcasts to (2, 3, 4); row 1 of dim 1 all masked out

# (name, call with the module M, a tensor x and a mask m) for M in torch.masked and distnn.masked
CASES = [
    ("sum_all", lambda M, x, m: M.sum(x, mask=m)),
    ("sum_dim2", lambda M, x, m: M.sum(x, 2, mask=m)),
    ("sum_dims_keepdim", lambda M, x, m: M.sum(x, (0, 2), keepdim=True, mask=m)),
    ("prod_dim2", lambda M, x, m: M.prod(x, 2, mask=m)),
    ("prod_dims", lambda M, x, m: M.prod(x, (0, -1), keepdim=True, mask=m)),
    ("amax_dim2", lambda M, x, m: M.amax(x, 2, mask=m)),
    ("amax_dims", lambda M, x, m: M.amax(x, (0, 1), keepdim=True, mask=m)),
    ("amin_dim0", lambda M, x, m: M.amin(x, 0, mask=m)),
    ("mean_all", lambda M, x, m: M.mean(x, mask=m)),
    ("mean_dim2", lambda M, x, m: M.mean(x, 2, keepdim=True, mask=m)),
    ("mean_dims", lambda M, x, m: M.mean(x, (0, 2), mask=m)),
    ("median_last", lambda M, x, m: M.median(x, mask=m)),
    ("median_dim1_keepdim", lambda M, x, m: M.median(x, 1, keepdim=True, mask=m)),
    ("logsumexp_dim2", lambda M, x, m: M.logsumexp(x, 2, mask=m)),
    ("logsumexp_all", lambda M, x, m: M.logsumexp(x, mask=m)),
    ("norm_2", lambda M, x, m: M.norm(x, 2.0, 2, mask=m)),
    ("norm_1_keepdim", lambda M, x, m: M.norm(x, 1, (1, 2), keepdim=True, mask=m)),
    ("norm_3", lambda M, x, m: M.norm(x, 3.0, 0, mask=m)),
    ("norm_inf", lambda M, x, m: M.norm(x, float("inf"), 2, mask=m)),
    ("norm_ninf", lambda M, x, m: M.norm(x, float("-inf"), 2, mask=m)),
    ("norm_0", lambda M, x, m: M.norm(x, 0, 2, mask=m)),
    ("norm_negative", lambda M, x, m: M.norm(x, -2.0, 2, mask=m)),
    ("var_dim2", lambda M, x, m: M.var(x, 2, mask=m)),
    ("var_biased", lambda M, x, m: M.var(x, (0, 2), unbiased=False, keepdim=True, mask=m)),
    ("var_correction2", lambda M, x, m: M.var(x, 2, correction=2, mask=m)),
    ("var_correction_half", lambda M, x, m: M.var(x, 1, correction=0.5, mask=m)),
    ("std_dim0", lambda M, x, m: M.std(x, 0, mask=m)),
    ("std_all", lambda M, x, m: M.std(x, mask=m)),
    ("cumsum_dim2", lambda M, x, m: M.cumsum(x, 2, mask=m)),
    ("cumprod_dim1", lambda M, x, m: M.cumprod(x, 1, mask=m)),
    ("softmax_dim2", lambda M, x, m: M.softmax(x, 2, mask=m)),
    ("softmax_dim0", lambda M, x, m: M.softmax(x, 0, mask=m)),
    ("log_softmax_dim2", lambda M, x, m: M.log_softmax(x, -1, mask=m)),
    ("softmin_dim1", lambda M, x, m: M.softmin(x, 1, mask=m)),
    ("normalize_2", lambda M, x, m: M.normalize(x, 2.0, 2, mask=m)),
    ("normalize_1_dim0", lambda M, x, m: M.normalize(x, 1.0, 0, eps=1e-3, mask=m)),
    ("normalize_inf", lambda M, x, m: M.normalize(x, float("inf"), 1, mask=m)),
    ("logaddexp", lambda M, x, m: M.logaddexp(x, x.flip(0) * 0.5, input_mask=m,
                                              other_mask=None if m is None else ~m)),
]
MASKS = {"none": None, "full": M_FULL, "row": M_ROW, "col": M_COL}


def _to_torch(a):
    return None if a is None else torch.tensor(a)


def _to_distnn(a):
    return None if a is None else distnn.tensor(a)


def _run(mod, make, fn, x, m, seed=3):
    """``fn`` of ``x`` and ``m`` in one framework, and ``x``'s gradient under a random upstream gradient on the
    output's finite elements (NaN and inf outputs, those of masked-out rows, send none back)."""
    t = make(x.copy())
    t.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = fn(mod, t, make(m) if m is not None else None)
        u = np.random.default_rng(seed).standard_normal(tuple(y.shape)).astype(x.dtype)
        finite = make(np.isfinite(np.asarray(y.detach().numpy() if mod is TM else y.data)))
        zero = make(np.zeros((), x.dtype))
        (mod_where(mod)(finite, y, zero) * make(u)).sum().backward()
    g = t.grad
    g = np.zeros(x.shape) if g is None else (g.numpy() if mod is TM else np.asarray(g))
    return (y.detach().numpy() if mod is TM else np.asarray(y.data)), g


def mod_where(mod):
    return torch.where if mod is TM else distnn.where


def _assert_close(a, b, rtol):
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.max(np.abs(np.where(np.isfinite(b), b, 0)), initial=1.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)


@pytest.mark.parametrize("mask,dtype", [(m, np.float64) for m in MASKS] + [("full", np.float32)],
                         ids=[f"{m}-f64" for m in MASKS] + ["full-f32"])
@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch(name, fn, mask, dtype):
    x, m = X.astype(dtype), MASKS[mask]
    yd, gd = _run(DM, _to_distnn, fn, x, m)
    yt, gt = _run(TM, _to_torch, fn, x, m)
    assert yd.dtype == yt.dtype
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    _assert_close(yd, yt, rtol)
    _assert_close(gd, gt, rtol)
    if m is not None and name != "logaddexp":  # (logaddexp's x also feeds `other`)
        # a masked-out element gets no gradient; but var/std subtract the mean from every element, and a row
        # with nothing masked in has a NaN mean: NaN times where's 0 is NaN there, in torch as here
        masked_out = ~np.broadcast_to(m, x.shape)
        assert (gd[masked_out] == 0).all() or (name[:3] in ("var", "std") and (gd[masked_out] != 0).any()
                                               and np.isnan(gd[masked_out][gd[masked_out] != 0]).all())


@pytest.mark.parametrize("seed", range(8))
def test_fuzz_shapes_dims_and_masks_match_torch(seed):
    rng = np.random.default_rng(100 + seed)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 5, ndim))
    x = rng.permutation(int(np.prod(shape))).reshape(shape) / 5.0 - 1.0
    mshape = tuple(s if rng.random() < 0.6 else 1 for s in shape)[int(rng.integers(0, ndim)):]
    m = rng.random(mshape) < 0.6
    keep = bool(rng.integers(0, 2))
    d = int(rng.integers(-ndim, ndim))
    dims = tuple(sorted(set(int(v) for v in rng.integers(0, ndim, 2))))
    calls = [lambda M, x, m: M.sum(x, dims, keepdim=keep, mask=m),
             lambda M, x, m: M.prod(x, d, keepdim=keep, mask=m),
             lambda M, x, m: M.amax(x, dims, keepdim=keep, mask=m),
             lambda M, x, m: M.amin(x, d, keepdim=keep, mask=m),
             lambda M, x, m: M.mean(x, dims, keepdim=keep, mask=m),
             lambda M, x, m: M.median(x, d, keepdim=keep, mask=m),
             lambda M, x, m: M.var(x, dims, keepdim=keep, mask=m),
             lambda M, x, m: M.std(x, d, correction=0, keepdim=keep, mask=m),
             lambda M, x, m: M.norm(x, 2.0, dims, keepdim=keep, mask=m),
             lambda M, x, m: M.logsumexp(x, d, keepdim=keep, mask=m),
             lambda M, x, m: M.cumsum(x, d, mask=m),
             lambda M, x, m: M.cumprod(x, d, mask=m),
             lambda M, x, m: M.softmax(x, d, mask=m),
             lambda M, x, m: M.log_softmax(x, d, mask=m),
             lambda M, x, m: M.normalize(x, 2.0, d, mask=m)]
    for i, fn in enumerate(calls):
        yd, gd = _run(DM, _to_distnn, fn, x, m, seed=i)
        yt, gt = _run(TM, _to_torch, fn, x, m, seed=i)
        _assert_close(yd, yt, 1e-12)
        _assert_close(gd, gt, 1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (softmax of a row of -inf is NaN: numpy says so)
def test_rows_with_every_element_masked_out_give_torchs_values():
    x, m = distnn.tensor(X), distnn.tensor(M_FULL)
    assert (DM.sum(x, 2, mask=m).numpy()[1, 2]) == 0
    assert (DM.prod(x, 2, mask=m).numpy()[1, 2]) == 1
    assert DM.amax(x, 2, mask=m).numpy()[1, 2] == -np.inf and DM.amin(x, 2, mask=m).numpy()[1, 2] == np.inf
    assert DM.logsumexp(x, 2, mask=m).numpy()[1, 2] == -np.inf
    assert DM.norm(x, 2, 2, mask=m).numpy()[1, 2] == 0 and DM.norm(x, -np.inf, 2, mask=m).numpy()[1, 2] == np.inf
    for f in (DM.mean, DM.median, DM.var, DM.std):
        assert np.isnan(f(x, 2, mask=m).numpy()[1, 2]), f.__name__
    assert np.isnan(DM.softmax(x, 2, mask=m).numpy()[1, 2]).all()
    assert (DM.normalize(x, 2.0, 2, mask=m).numpy()[1, 2] == 0).all()
    assert DM.argmax(x, 2, mask=m).numpy()[1, 2] == 0


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_inputs_match_torchs_dtypes_and_identities(dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    xd, xt = distnn.tensor(a), torch.tensor(a)
    md, mt = distnn.tensor(M_FULL), torch.tensor(M_FULL)
    calls = [lambda M, x, m: M.sum(x, 2, mask=m), lambda M, x, m: M.prod(x, (0, 2), mask=m),
             lambda M, x, m: M.sum(x, 2, dtype=torch.float64 if M is TM else distnn.float64, mask=m),
             lambda M, x, m: M.mean(x, 2, mask=m,
                                                                          dtype=torch.float64 if M is TM else
                                                                          distnn.float64)]
    if dtype != np.bool_:  # (torch has no bool identity for amax/amin/argmax, and refuses var's bool subtraction)
        calls += [lambda M, x, m: M.var(x, 2, mask=m), lambda M, x, m: M.std(x, 1, mask=m),
                  lambda M, x, m: M.cumsum(x, 2, mask=m),
                  lambda M, x, m: M.amax(x, 2, mask=m), lambda M, x, m: M.amin(x, (0, 1), mask=m),
                  lambda M, x, m: M.argmax(x, 2, mask=m), lambda M, x, m: M.argmin(x, 1, mask=m),
                  lambda M, x, m: M.median(x, 2, mask=m | np.eye(3, 4, dtype=bool) if M is DM else
                                           m | torch.tensor(np.eye(3, 4, dtype=bool)))]
    for fn in calls:
        yd, yt = fn(DM, xd, md), fn(TM, xt, mt)
        assert yd.dtype == np.dtype(str(yt.dtype).replace("torch.", "")), (yd.dtype, yt.dtype)
        np.testing.assert_allclose(np.asarray(yd.data, np.float64), yt.double().numpy(), rtol=1e-6, equal_nan=True)


def test_argmax_returns_the_inputs_dtype_unless_told_as_torch():
    x, m = distnn.tensor(X), distnn.tensor(M_FULL)
    out = DM.argmax(x, 2, mask=m)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), TM.argmax(torch.tensor(X), 2, mask=torch.tensor(M_FULL)).numpy())
    assert DM.argmin(x, 1, keepdim=True, dtype=distnn.int64, mask=m).dtype == np.int64
    assert DM.argmax(x, mask=m).numpy() == TM.argmax(torch.tensor(X), mask=torch.tensor(M_FULL)).numpy()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (softmax of a row of -inf is NaN: numpy says so)
def test_dtype_argument_matches_torch():
    xd, xt = distnn.tensor(X.astype(np.float32)), torch.tensor(X.astype(np.float32))
    md, mt = distnn.tensor(M_FULL), torch.tensor(M_FULL)
    for name in ("sum", "mean", "amax", "logsumexp", "softmax", "log_softmax", "softmin", "cumsum", "cumprod", "var",
                 "std"):
        yd = getattr(DM, name)(xd, 2, dtype=distnn.float64, mask=md)
        yt = getattr(TM, name)(xt, 2, dtype=torch.float64, mask=mt)
        assert yd.dtype == np.float64 and yt.dtype == torch.float64, name
        np.testing.assert_allclose(yd.numpy(), yt.numpy(), rtol=1e-6, equal_nan=True, err_msg=name)


def test_a_non_bool_mask_is_read_as_bool_as_torch():
    m = (M_FULL * 3).astype(np.int64)
    np.testing.assert_allclose(DM.sum(distnn.tensor(X), 2, mask=distnn.tensor(m)).numpy(),
                               TM.sum(torch.tensor(X), 2, mask=torch.tensor(m)).numpy(), rtol=1e-12)


def test_finite_difference_gradients():
    ok = np.ones((2, 3, 4), bool)  # (every line keeps elements: finite values to difference)
    ok[0, 1, 2] = ok[1, 0, 0] = ok[1, 2, 3] = ok[0, 2, 1] = False
    m = distnn.tensor(ok)
    x = distnn.tensor(X, requires_grad=True)
    check_grad(lambda a: DM.var(a, 2, mask=m), x)
    check_grad(lambda a: DM.softmax(a, 1, mask=m), x)
    check_grad(lambda a: DM.normalize(a, 3.0, 2, mask=m), x)
    check_grad(lambda a: DM.logsumexp(a, (0, 2), mask=m), x)


def _refusal(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as ed:
            fn(DM, distnn)
        with pytest.raises(Exception) as et:
            fn(TM, torch)
    return ed, et


@pytest.mark.parametrize("fn,gist", [
    (lambda M, L: M.sum(L.tensor(X), 0, mask=L.tensor(M_FULL[None])), "dimensionality higher"),
    (lambda M, L: M.sum(L.tensor(X), 0, mask=L.tensor(np.ones((3, 3), bool))), "expanded size"),
    (lambda M, L: M.sum(L.tensor(X), (0, 0)), "appears multiple times"),
    (lambda M, L: M.amax(L.tensor(X), 3), "Dimension out of range"),
    (lambda M, L: M.softmax(L.tensor(X), -4), "Dimension out of range"),
    (lambda M, L: M.mean(L.tensor(np.arange(4))), "Could not infer output dtype"),
    (lambda M, L: M.mean(L.tensor(X), dtype=L.int32), "Could not infer output dtype"),
    (lambda M, L: M.var(L.tensor(X), 0, True, correction=1), "Only one of unbiased and correction"),
    (lambda M, L: M.median(L.tensor(np.arange(4)), mask=L.tensor(np.zeros(4, bool))), "fully masked out rows"),
    (lambda M, L: M.norm(L.tensor(np.arange(4)), float("-inf"), mask=L.tensor(np.ones(4, bool))),
     "must be floating point"),
    (lambda M, L: M.amax(L.tensor(np.ones(4, bool)), mask=L.tensor(np.ones(4, bool))), "identity of amax"),
    (lambda M, L: M.var(L.tensor(np.ones(4, bool))), "with a bool tensor is not supported"),
])
def test_refusals_match_torch(fn, gist):
    ed, et = _refusal(fn)
    assert type(ed.value) is type(et.value), (ed.value, et.value)
    assert gist in str(et.value) and gist in str(ed.value), (str(ed.value), str(et.value))


def test_distnn_masked_is_a_lazy_submodule_with_torchs_names():
    import distnn.masked as dm

    assert distnn.masked is dm
    for name in dm.__all__:
        assert hasattr(TM, name), name
